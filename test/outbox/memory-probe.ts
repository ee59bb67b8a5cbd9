/**
 * Run as a child process by streaming-memory.test.ts: enqueues a message with a large
 * sparse file attached into a spool, then delivers it with a worker to Postfix's smtp-sink
 * on loopback (which discards what it gets), and reports the peak RSS growth of each phase.
 * A separate process keeps the measurement free of the test runner's own allocations.
 */
import { spawn } from "node:child_process";
import { mkdtemp, open, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { EmailMessage } from "../../src/mime/message.js";
import { Outbox } from "../../src/outbox/index.js";

const size = Number(process.argv[2] ?? 1024) * 1024 * 1024;
const dir = await mkdtemp(join(tmpdir(), "missive-outbox-memory-"));
const port = await new Promise<number>((resolve) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => {
    const p = (s.address() as net.AddressInfo).port;
    s.close(() => resolve(p));
  });
});
// smtp-sink refuses to run as root without a user to drop to.
const sink = spawn("/usr/sbin/smtp-sink", [...(process.getuid?.() === 0 ? ["-u", "nobody"] : []), `127.0.0.1:${port}`, "100"], { stdio: "ignore" });
try {
  for (let tries = 0; ; tries++) {
    const ok = await new Promise<boolean>((resolve) => net.connect(port, "127.0.0.1").once("connect", function (this: net.Socket) { this.destroy(); resolve(true); }).once("error", () => resolve(false)));
    if (ok) break;
    if (tries > 100) throw new Error("smtp-sink did not start");
    await new Promise((r) => setTimeout(r, 50));
  }
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
  sink.kill("SIGTERM");
  await rm(dir, { recursive: true, force: true });
}
