/**
 * Run as a child process by streaming-memory.test.ts: enqueues a message with a large
 * sparse file attached into a spool, then delivers it with a worker to Postfix's smtp-sink
 * on loopback (which discards what it gets), and reports the peak RSS growth of each phase.
 * A separate process keeps the measurement free of the test runner's own allocations.
 */
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { EmailMessage } from "../../src/mime/message.js";
import { Outbox } from "../../src/outbox/index.js";
import { startSmtpSink } from "../helpers/smtp-sink.js";

const size = Number(process.argv[2] ?? 1024) * 1024 * 1024;
const dir = await mkdtemp(join(tmpdir(), "missive-outbox-memory-"));
const sink = await startSmtpSink();
const port = sink.port;
try {
  // A sparse file: its size without its blocks.
  const path = join(dir, "big.bin");
  const handle = await open(path, "w");
  await handle.truncate(size);
  await handle.close();

  (globalThis as { gc?: () => void }).gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);

  const outbox = new Outbox({ store: `file://${join(dir, "spool")}` });
  const message = new EmailMessage({ subject: "big", body: "see attachment", from: "a@example.org", to: ["b@example.org"] }).attachFile(path, "application/octet-stream");
  const { id } = await outbox.enqueue(message);
  const enqueuedPeak = Math.max(peak, process.memoryUsage().rss) - baseline;
  const stored = (await outbox.status(id))!.size;

  const worker = outbox.worker({ backend: new SmtpBackend({ host: "127.0.0.1", port, timeout: 120_000 }) });
  await worker.start();
  await worker.idle();
  await worker.stop();
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  const state = (await outbox.status(id))!.state;
  process.stdout.write(JSON.stringify({ stored, state, enqueuedPeak, peakDelta: peak - baseline }) + "\n");
} finally {
  await sink.stop();
  await rm(dir, { recursive: true, force: true });
}
