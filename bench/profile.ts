/**
 * One workload at a time, for a CPU profile (bench/PROFILE.md): no reference runs beside it,
 * so that every sample is missive's. `node --cpu-prof --cpu-prof-dir=prof bench/bundle.mjs
 * profile smtp` (or `pool`, `aiosmtpd`, `rfc2047`, `compose`, `prepare`), then `node bench/profile-summary.mjs prof/*.cpuprofile`.
 */
import { SmtpBackend } from "../src/backends/smtp.js";
import { renderHeader } from "../src/mime/headers.js";
import { composeSplit, sendPath } from "./compose.js";
import { composeMessage } from "./smtp.js";
import { startAiosmtpd, startSmtpSink } from "./sinks.js";

const workload = process.argv[3] ?? "smtp";
const count = Number(process.env["BENCH_MESSAGES"] ?? 2000);

if (workload === "compose") {
  // The bench's message built and rendered without a network: where composing's CPU goes.
  for (let round = 0; round < 16; round++) {
    const split = await composeSplit(count);
    console.log(`compose: constructor ${split.construct.toFixed(1)} µs, asBytes(eightBit) ${split.asBytes.toFixed(1)} µs, recipients() ${split.recipients.toFixed(1)} µs CPU per message`);
  }
} else if (workload === "prepare") {
  // What the SMTP backend does for each message before the client gets its bytes (bench/compose.ts).
  for (let round = 0; round < 16; round++) console.log(`prepare: ${(await sendPath(count)).toFixed(1)} µs CPU per message`);
} else if (workload === "rfc2047") {
  const subjects = ["Réunion trimestrielle : résultats, prévisions et café ☕", "Квартальный отчёт: итоги и планы"];
  let octets = 0;
  for (let round = 0; round < 40; round++) for (const subject of subjects) for (let i = 0; i < 20_000; i++) octets += renderHeader("Subject", subject, { utf8: false, charset: "utf-8" }).length;
  console.log(`rendered ${octets} octets of Subject headers`);
} else if (workload === "smtp" || workload === "pool" || workload === "aiosmtpd") {
  // aiosmtpd: the slow server of bench/smtp.ts (a Python server, no PIPELINING), an eighth of the messages.
  const sink = workload === "aiosmtpd" ? await startAiosmtpd() : await startSmtpSink();
  const messages = workload === "aiosmtpd" ? Math.max(50, Math.round(count / 8)) : count;
  try {
    // Six runs: the first ones warm the JIT up, as in bench/smtp.ts.
    for (let round = 0; round < 6; round++) {
      const backend = new SmtpBackend({ host: sink.host, port: sink.port, tls: "none", ...(workload === "pool" ? { pool: { maxConnections: 4 } } : {}) });
      await backend.open();
      const started = performance.now();
      const cpu = process.cpuUsage();
      const sent = await backend.sendMessages(Array.from({ length: messages }, (_, i) => composeMessage(i)));
      const used = process.cpuUsage(cpu);
      console.log(`${workload}: ${sent} messages, ${((sent / (performance.now() - started)) * 1000).toFixed(0)} msg/s, ${((used.user + used.system) / 1000 / sent).toFixed(3)} ms CPU/msg`);
      await backend.close();
    }
  } finally {
    await sink.stop();
  }
} else {
  throw new Error(`bench/profile.ts: no workload ${workload} (smtp, pool, aiosmtpd, rfc2047, compose, prepare)`);
}
