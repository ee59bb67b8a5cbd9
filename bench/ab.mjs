// `node bench/ab.mjs <git-ref> [prepare|smtp|pool] [pairs]`: the CPU per message of this
// tree against an older one, measured in ONE process, alternately, pair by pair
// (bench/PROFILE.md). Both trees are bundled into one module (esbuild, as bench/bundle.mjs
// does), the old one exported with `git archive` into a temporary directory, so that a
// change is judged on a busy machine by the median of same-moment ratios rather than by two
// runs minutes apart. `prepare` is the SMTP backend's per-message work without the network
// (bench/compose.ts), `smtp` and `pool` full sends to smtp-sink (bench/profile.ts's workloads).
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const [ref, workload = "prepare", pairsArg = "16"] = process.argv.slice(2);
if (ref === undefined || !["prepare", "smtp", "pool"].includes(workload)) throw new Error("usage: node bench/ab.mjs <git-ref> [prepare|smtp|pool] [pairs]");
const old = mkdtempSync(join(tmpdir(), "missive-ab-"));
try {
  execFileSync("sh", ["-c", `git -C "${root}" archive "${ref}" | tar -x -C "${old}"`], { stdio: "inherit" });
  symlinkSync(join(root, "node_modules"), join(old, "node_modules"));
  // The older tree may predate bench/compose.ts's sendPath: it gets this tree's bench helpers.
  for (const file of ["compose.ts", "smtp.ts", "sinks.ts", "env.ts"]) execFileSync("cp", [join(root, "bench", file), join(old, "bench", file)]);
  const outdir = join(root, "node_modules", ".cache", "missive-bench");
  mkdirSync(outdir, { recursive: true });
  const entry = join(outdir, "ab-entry.ts");
  writeFileSync(entry, abEntry(old, root, workload, Number(pairsArg)));
  const outfile = join(outdir, "ab.mjs");
  await build({ entryPoints: [entry], bundle: true, platform: "node", format: "esm", target: "node20", packages: "external", outfile, logLevel: "warning" });
  await import(pathToFileURL(outfile).href);
} finally {
  rmSync(old, { recursive: true, force: true });
}

function abEntry(oldRoot, newRoot, workload, pairs) {
  const at = (tree, path) => JSON.stringify(join(tree, path));
  return `
import * as oldCompose from ${at(oldRoot, "bench/compose.ts")};
import * as newCompose from ${at(newRoot, "bench/compose.ts")};
import * as oldSmtp from ${at(oldRoot, "bench/smtp.ts")};
import * as newSmtp from ${at(newRoot, "bench/smtp.ts")};
import { SmtpBackend as OldBackend } from ${at(oldRoot, "src/backends/smtp.ts")};
import { SmtpBackend as NewBackend } from ${at(newRoot, "src/backends/smtp.ts")};
import { startSmtpSink } from ${at(newRoot, "bench/sinks.ts")};
const workload = ${JSON.stringify(workload)};
const count = Number(process.env.BENCH_MESSAGES ?? (workload === "prepare" ? 3000 : 2000));
const cpuPerMessage = async (n, task) => { const t = process.cpuUsage(); await task(); const u = process.cpuUsage(t); return (u.user + u.system) / n; };
const sink = workload === "prepare" ? undefined : await startSmtpSink();
const send = (Backend, compose) => async () => {
  const backend = new Backend({ host: sink.host, port: sink.port, tls: "none", ...(workload === "pool" ? { pool: { maxConnections: 4 } } : {}) });
  await backend.open();
  try {
    return await cpuPerMessage(count, async () => {
      const sent = await backend.sendMessages(Array.from({ length: count }, (_, i) => compose(i)));
      if (sent !== count) throw new Error("sent " + sent + " of " + count);
    });
  } finally { await backend.close(); }
};
const runOld = workload === "prepare" ? () => oldCompose.sendPath(count) : send(OldBackend, oldSmtp.composeMessage);
const runNew = workload === "prepare" ? () => newCompose.sendPath(count) : send(NewBackend, newSmtp.composeMessage);
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const olds = [], news = [], ratios = [];
try {
  // Four pairs to warm the JIT up, not counted; the order within a pair alternates.
  for (let r = 0; r < ${pairs} + 4; r++) {
    const first = r % 2 === 0 ? runOld : runNew;
    const a = await first();
    const b = await (r % 2 === 0 ? runNew : runOld)();
    const [o, n] = r % 2 === 0 ? [a, b] : [b, a];
    if (r >= 4) { olds.push(o); news.push(n); ratios.push(n / o); }
  }
} finally { await sink?.stop(); }
console.log(workload + ": CPU per message, median of ${pairs} pairs: ${ref} " + median(olds).toFixed(1) + " µs, this tree " + median(news).toFixed(1) + " µs, ratio (this / ${ref}) " + median(ratios).toFixed(3));
`;
}
