/**
 * Run as a child process by streaming-memory.test.ts: streams a message with a large file
 * attachment into a slow sink and reports the peak RSS growth. A separate process keeps
 * the measurement free of the test runner's own allocations.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { EmailMessage } from "../../src/mime/message.js";

const size = Number(process.argv[2] ?? 256) * 1024 * 1024;
const dir = await mkdtemp(join(tmpdir(), "missive-memory-"));
try {
  const path = join(dir, "big.bin");
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) & 0xff;
  const out = createWriteStream(path);
  for (let written = 0; written < size; written += chunk.length) {
    if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));

  (globalThis as { gc?: () => void }).gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);

  const message = new EmailMessage({ subject: "big", body: "see attachment", from: "a@example.org", to: ["b@example.org"] }).attachFile(path);
  const prepared = await message.prepare();
  let bytes = 0;
  let writes = 0;
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, callback) {
      bytes += chunk.length;
      // A slow consumer: every few chunks, yield to the event loop before taking more.
      if (++writes % 8 === 0) setImmediate(callback);
      else callback();
    },
  });
  await pipeline(prepared.stream(), sink);
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  process.stdout.write(JSON.stringify({ bytes, expected: prepared.size, peakDelta: peak - baseline }) + "\n");
} finally {
  await rm(dir, { recursive: true, force: true });
}
