/**
 * The outbox's throughput, on the spool directory and on BullMQ (Redis):
 *
 * - enqueue: messages/s (text + HTML, 1.7 KiB) until each is durable (the spool fsyncs the
 *   file, renames it and fsyncs the directory for every message; Redis runs without
 *   persistence here, so its figure is the round trips, not a disk), one caller at a time
 *   and 8 callers at once (a web server's requests);
 * - end to end: a queue filled beforehand, delivered by 1 and by 4 workers (in this process,
 *   one message in flight each, an SMTP connection each) to Postfix's smtp-sink on loopback,
 *   which accepts and discards: messages/s from the workers' start until every message is
 *   recorded as sent.
 *
 * Every phase is bounded in count and time (PHASE_MS): a phase cut short says so and counts
 * what it finished. smtp-sink and redis-server are started on free loopback ports and
 * stopped by pid. Run: `npm run bench:outbox` (BENCH_OUTBOX_MESSAGES=N for another count).
 * The figures move with the machine's load, which the first line prints.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { SmtpBackend } from "../src/backends/smtp.js";
import { BullMQStore } from "../src/bullmq/index.js";
import { EmailMultiAlternatives } from "../src/mime/message.js";
import { Outbox, outboxStore, type OutboxStore, type OutboxWorker } from "../src/outbox/index.js";
import { startRedis } from "../test/helpers/redis.js";
import { startSmtpSink, type SmtpSink } from "../test/helpers/smtp-sink.js";

const MESSAGES = Number(process.env["BENCH_OUTBOX_MESSAGES"] ?? 500);
const PHASE_MS = 120_000;

function message(i: number): EmailMultiAlternatives {
  const m = new EmailMultiAlternatives({
    subject: `Your order #${i} — reçu`,
    body: "Hello,\n\nThank you for your order. It ships tomorrow.\n\n— The shop\n".repeat(8),
    from: "Shop <shop@example.com>",
    to: [`customer${i}@example.org`],
  });
  m.attachAlternative("<p>Hello,</p><p>Thank you for your order. It ships <b>tomorrow</b>.</p>".repeat(8), "text/html");
  return m;
}

const rate = (n: number, ms: number) => `${((n / ms) * 1000).toFixed(0).padStart(6)} msg/s`;
const elapsed = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e6;

/** Enqueues `count` messages with `callers` enqueues in flight at once; resolves to [done, ms]. */
async function enqueue(outbox: Outbox, count: number, callers: number, from = 0): Promise<[number, number]> {
  let next = 0;
  let done = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < count && elapsed(started) < PHASE_MS) {
        const i = from + next++;
        await outbox.enqueue(message(i));
        done++;
      }
    }),
  );
  return [done, elapsed(started)];
}

/** Delivers what is queued with `workers` workers to the sink; resolves to [sent, ms]. */
async function deliver(outbox: Outbox, sink: SmtpSink, workers: number, expected: number): Promise<[number, number]> {
  let sent = 0;
  let allSent: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (allSent = resolve));
  const observer = { settled: (e: { state: string }) => e.state === "sent" && ++sent === expected && allSent() };
  const started = process.hrtime.bigint();
  const running: OutboxWorker[] = [];
  for (let w = 0; w < workers; w++) {
    const worker = outbox.worker({ backend: new SmtpBackend({ host: sink.host, port: sink.port }), pollInterval: 20, observer });
    running.push(worker);
    await worker.start();
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([finished, new Promise((r) => (timer = setTimeout(r, PHASE_MS)))]);
  clearTimeout(timer);
  const ms = elapsed(started);
  await Promise.all(running.map((w) => w.stop()));
  return [sent, ms];
}

interface Row {
  readonly store: string;
  readonly phase: string;
  readonly done: number;
  readonly of: number;
  readonly ms: number;
}

async function measure(name: string, open: () => Promise<{ store: OutboxStore; dispose(): Promise<void> }>, sink: SmtpSink): Promise<Row[]> {
  const rows: Row[] = [];
  const row = (phase: string, [done, ms]: [number, number], of: number) => {
    rows.push({ store: name, phase, done, of, ms });
    console.log(`  ${name.padEnd(6)} ${phase.padEnd(26)} ${rate(done, ms)}   (${done}${done < of ? ` of ${of}, cut at ${PHASE_MS} ms` : ""} in ${ms.toFixed(0)} ms)`);
  };
  for (const callers of [1, 8]) {
    const { store, dispose } = await open();
    const outbox = new Outbox({ store });
    try {
      await enqueue(outbox, 20, callers, 1_000_000); // warm-up
      row(`enqueue, ${callers} caller${callers > 1 ? "s" : ""}`, await enqueue(outbox, MESSAGES, callers), MESSAGES);
    } finally {
      await store.close();
      await dispose();
    }
  }
  for (const workers of [1, 4]) {
    const { store, dispose } = await open();
    const outbox = new Outbox({ store });
    try {
      const [queued] = await enqueue(outbox, MESSAGES, 8);
      row(`end to end, ${workers} worker${workers > 1 ? "s" : ""}`, await deliver(outbox, sink, workers, queued), queued);
    } finally {
      await store.close();
      await dispose();
    }
  }
  return rows;
}

export async function run(): Promise<void> {
  const size = (await message(0).asBytes()).length;
  console.log(`# outbox throughput (node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? "unknown cpu"}, load ${loadavg()[0]!.toFixed(1)}), ${MESSAGES} messages of ${(size / 1024).toFixed(1)} KiB per phase`);
  const sink = await startSmtpSink();
  const redis = await startRedis().catch((error: unknown) => (console.log(`  (no redis-server: ${(error as Error).message}; BullMQ skipped)`), undefined));
  try {
    await measure(
      "spool",
      async () => {
        const dir = await mkdtemp(join(tmpdir(), "missive-bench-outbox-"));
        return { store: outboxStore(`file://${dir}`, "the bench spool"), dispose: () => rm(dir, { recursive: true, force: true }) };
      },
      sink,
    );
    if (redis !== undefined) {
      let queue = 0;
      await measure(
        "bullmq",
        async () => ({ store: new BullMQStore({ connection: { host: redis.host, port: redis.port, maxRetriesPerRequest: null }, queueName: `bench-${++queue}` }), dispose: async () => undefined }),
        sink,
      );
    }
  } finally {
    await redis?.stop();
    await sink.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
