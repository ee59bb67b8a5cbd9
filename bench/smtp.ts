/**
 * SMTP throughput: ~10 KB messages composed and sent by missive's SMTP backend, next to the
 * minimal raw client (bench/reference/raw-smtp.ts) sending the same bytes in the same run.
 *
 * - smtp-sink, one connection: missive (composing each message included) against the raw
 *   client at one round trip per message, and (for information) at two;
 * - smtp-sink, `pool: { maxConnections: 4 }` against the raw client with 16 connections (16
 *   messages in flight);
 * - aiosmtpd (no PIPELINING, a Python server: the slow server), one connection, against the
 *   raw client with the same round trips (every command waits for its reply).
 *
 * CPU per message is process.cpuUsage() (user + system, every thread of this process) over
 * the missive run divided by the messages sent: composing, rendering and the SMTP client.
 */
import { SmtpBackend } from "../src/backends/smtp.js";
import { EmailMessage } from "../src/mime/message.js";
import { policies } from "../src/mime/policy.js";
import { SmtpClient } from "../src/smtp/client.js";
import { environment, median, report, timed } from "./env.js";
import { rawSend, rawSendParallel, type RoundTrips } from "./reference/raw-smtp.js";
import { startAiosmtpd, startSmtpSink, type Sink } from "./sinks.js";

const FROM = "ann@example.com";
/** The raw client's envelope (it sends one prebuilt message; the size is what matters). */
const TO = ["customer0@example.org"];
const LINE = "The quarterly figures are attached; please review them before Friday's meeting.\n";
const BODY = `Hello Bob,\n\n${LINE.repeat(125)}Regards,\nAnn Müller\n`;

/**
 * The message a user would build for a bulk send: one sender, a recipient and subject of
 * its own, a non-ASCII subject and display name, a ~10 KB text body.
 */
export function composeMessage(i: number): EmailMessage {
  return new EmailMessage({ subject: `Invoice ${i} — résumé`, body: BODY, from: `Ann Müller <${FROM}>`, to: [`Customer ${i} <customer${i}@example.org>`] });
}

interface Run {
  perSecond: number;
  cpuMsPerMessage: number;
}

async function raw(sink: Sink, message: Buffer, count: number, mode: RoundTrips, connections = 1): Promise<Run> {
  const options = { host: sink.host, port: sink.port, from: FROM, to: TO, message, count, mode };
  const t = await timed(() => (connections === 1 ? rawSend(options) : rawSendParallel(options, connections)));
  return { perSecond: (count / t.wallMs) * 1000, cpuMsPerMessage: t.cpuMs / count };
}

async function missive(sink: Sink, count: number, pool?: { maxConnections: number }): Promise<Run> {
  const backend = new SmtpBackend({ host: sink.host, port: sink.port, tls: "none", ...(pool ? { pool } : {}) });
  await backend.open();
  try {
    const t = await timed(async () => {
      const messages = Array.from({ length: count }, (_, i) => composeMessage(i));
      const sent = await backend.sendMessages(messages);
      if (sent !== count) throw new Error(`missive sent ${sent} of ${count} messages`);
    });
    return { perSecond: (count / t.wallMs) * 1000, cpuMsPerMessage: t.cpuMs / count };
  } finally {
    await backend.close();
  }
}

/** The socket client alone, fed prebuilt bytes (no composing): where the loss is, above or below it. */
async function clientOnly(sink: Sink, message: Buffer, count: number): Promise<Run> {
  const client = new SmtpClient({ host: sink.host, port: sink.port, tls: "none" });
  await client.connect();
  try {
    const t = await timed(async () => {
      for (let i = 0; i < count; i++) await client.sendMail({ from: FROM, to: TO, size: message.length, eightBit: true }, message);
    });
    return { perSecond: (count / t.wallMs) * 1000, cpuMsPerMessage: t.cpuMs / count };
  } finally {
    await client.quit();
  }
}

interface Pairing {
  ours: Run[];
  reference: Run[];
}

async function pairs(rounds: number, reference: () => Promise<Run>, ours: () => Promise<Run>): Promise<Pairing> {
  const result: Pairing = { ours: [], reference: [] };
  for (let r = 0; r < rounds; r++) {
    result.reference.push(await reference());
    result.ours.push(await ours());
  }
  return result;
}

const ratio = (p: Pairing) => median(p.ours.map((o, i) => o.perSecond / p.reference[i]!.perSecond));
const rate = (runs: Run[]) => median(runs.map((r) => r.perSecond));
const cpu = (runs: Run[]) => median(runs.map((r) => r.cpuMsPerMessage));
const show = (label: string, runs: Run[]) => `${label.padEnd(44)} ${rate(runs).toFixed(0).padStart(6)} msg/s  ${(cpu(runs) * 1000).toFixed(0).padStart(5)} µs CPU/msg`;

export async function run(): Promise<void> {
  const rounds = Number(process.env["BENCH_ROUNDS"] ?? 5);
  const count = Number(process.env["BENCH_MESSAGES"] ?? 2000);
  const slowCount = Math.max(50, Math.round(count / 8));
  const message = await composeMessage(0).asBytes(policies.eightBit);
  console.log(`# SMTP, ${message.length}-octet messages, medians of ${rounds} (${environment()})`);

  const sink = await startSmtpSink();
  try {
    // Warm-up, not counted: missive's many code paths take a few thousand messages to be
    // optimised by the JIT (the first thousand run at a third of the later speed), the
    // small raw client's a few.
    await raw(sink, message, count, "one");
    for (let i = 0; i < 2; i++) await missive(sink, count);
    await missive(sink, count, { maxConnections: 4 });

    const one = await pairs(rounds, () => raw(sink, message, count, "one"), () => missive(sink, count));
    const two = await pairs(rounds, () => raw(sink, message, count, "two"), () => clientOnly(sink, message, count));
    console.log(show("raw client, 1 round trip per message", one.reference));
    console.log(show("raw client, 2 round trips per message", two.reference));
    console.log(show("missive SmtpBackend, one connection", one.ours));
    console.log(show("missive SmtpClient alone, prebuilt bytes", two.ours));
    console.log(`  missive / raw (1 round trip)      ${ratio(one).toFixed(2)}x`);
    console.log(`  SmtpClient alone / raw (2 trips)  ${ratio(two).toFixed(2)}x`);
    report({ name: "SMTP one connection vs raw, 1 round trip", value: ratio(one), unit: "x", op: ">=", target: 0.6 });
    report({ name: "SMTP CPU per message, composing included", value: cpu(one.ours), unit: "ms", op: "<=", target: 0.25 });

    const pool = await pairs(rounds, () => raw(sink, message, count, "one", 16), () => missive(sink, count, { maxConnections: 4 }));
    console.log(show("raw client, 16 connections", pool.reference));
    console.log(show("missive SmtpBackend, pool of 4", pool.ours));
    console.log(`  missive pool / raw x16            ${ratio(pool).toFixed(2)}x`);
    report({ name: "SMTP pool of 4 vs raw, 16 in flight", value: ratio(pool), unit: "x", op: ">=", target: 0.35 });
  } finally {
    await sink.stop();
  }

  const slow = await startAiosmtpd();
  try {
    await raw(slow, message, slowCount, "lockstep");
    await missive(slow, slowCount);
    const aio = await pairs(rounds, () => raw(slow, message, slowCount, "lockstep"), () => missive(slow, slowCount));
    console.log(show(`raw client to aiosmtpd, lock-step (${slowCount} msgs)`, aio.reference));
    console.log(show("missive SmtpBackend to aiosmtpd", aio.ours));
    console.log(`  missive / raw, same round trips   ${ratio(aio).toFixed(2)}x`);
    report({ name: "SMTP to aiosmtpd vs raw, same round trips", value: ratio(aio), unit: "x", op: ">=", target: 0.95 });
  } finally {
    await slow.stop();
  }
}
