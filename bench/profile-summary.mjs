// Summarises a V8 CPU profile of the bench bundle (bench/PROFILE.md): self time per
// function, attributed to its source file through esbuild's `// src/...` markers in the
// bundle, and grouped into composing, the SMTP client, the backend, GC, the write syscall,
// and idle. Usage: node bench/profile-summary.mjs prof/X.cpuprofile [top]
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const [file, topArg] = process.argv.slice(2);
if (file === undefined) throw new Error("usage: node bench/profile-summary.mjs <file.cpuprofile> [top]");
const top = Number(topArg ?? 15);
const profile = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const owners = new Map();
/** The source file a bundle line belongs to: the last `// path` marker above it. */
function ownerOf(url, line) {
  if (!url.startsWith("file:") || !url.endsWith(".mjs")) return url === "" ? "(native)" : url;
  if (!owners.has(url)) {
    let current = "?";
    owners.set(url, readFileSync(fileURLToPath(url), "utf8").split("\n").map((text) => {
      const marker = /^\/\/ (?:\.\.\/)*((?:src|bench)\/\S+)$/.exec(text);
      if (marker) current = marker[1];
      return current;
    }));
  }
  return owners.get(url)[line] ?? "?";
}
const self = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const { functionName, url, lineNumber } = byId.get(id).callFrame;
  // A function starting on the bundle's first line is the module's top-level code: the workload's own loop.
  const where = functionName === "" && lineNumber === 0 && url.endsWith(".mjs") ? "bench (top-level code)" : ownerOf(url, lineNumber);
  const key = `${functionName || "(anonymous)"}\t${where}`;
  const dt = profile.timeDeltas[i] ?? 0;
  self.set(key, (self.get(key) ?? 0) + dt);
  total += dt;
});
function category(name, where) {
  if (where.startsWith("src/mime/")) return "composing and rendering (src/mime)";
  if (where.startsWith("src/smtp/")) return "SMTP client (src/smtp)";
  if (where.startsWith("src/backends/")) return "backend and lanes (src/backends)";
  if (where.startsWith("src/") || where.startsWith("bench")) return "other missive code (and the workload's own loop)";
  if (name === "(garbage collector)") return "garbage collector";
  if (name === "writev") return "writev (the syscall, and waiting for a core after it)";
  if (name === "(idle)") return "idle (waiting for replies)";
  return "Node internals, microtasks, other native";
}
const categories = new Map();
for (const [key, t] of self) {
  const [name, where] = key.split("\t");
  const c = category(name, where);
  categories.set(c, (categories.get(c) ?? 0) + t);
}
const pct = (t, of) => `${((100 * t) / of).toFixed(1).padStart(5)}%`;
console.log(`${(total / 1e3).toFixed(0)} ms sampled`);
for (const [c, t] of [...categories].sort((a, b) => b[1] - a[1])) console.log(`${pct(t, total)}  ${c}`);
const own = [...self].filter(([key]) => key.split("\t")[1].startsWith("src/"));
const ownTotal = own.reduce((sum, [, t]) => sum + t, 0);
console.log(`top functions, share of missive's own code (${pct(ownTotal, total).trim()} of the samples):`);
for (const [key, t] of own.sort((a, b) => b[1] - a[1]).slice(0, top)) {
  const [name, where] = key.split("\t");
  console.log(`${pct(t, ownTotal)}  ${name} (${where})`);
}
