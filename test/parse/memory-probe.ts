/**
 * Run as a child process by parse.test.ts: parses a message with a large base64 attachment
 * from a stream, asking only for the bodies, and reports the attachment's decoded size and
 * the peak RSS growth. A separate process keeps the measurement free of the test runner.
 */
import { Readable } from "node:stream";
import { parseMessage } from "../../src/parse/index.js";

const megabytes = Number(process.argv[2] ?? 128);
const line = Buffer.from(`${Buffer.alloc(57, 0xa5).toString("base64")}\r\n`);
const block = Buffer.concat(Array.from({ length: 1024 }, () => line)); // 57 KiB decoded per block
const blocks = Math.ceil((megabytes * 1024 * 1024) / (57 * 1024));

async function* message(): AsyncGenerator<Buffer> {
  yield Buffer.from(
    "From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
      "--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\nContent-Type: application/octet-stream\r\n" +
      "Content-Disposition: attachment; filename=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n",
  );
  for (let i = 0; i < blocks; i++) yield block;
  yield Buffer.from("--b--\r\n");
}

(globalThis as { gc?: () => void }).gc?.();
const baseline = process.memoryUsage().rss;
let peak = baseline;
const timer = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 5);
const parsed = await parseMessage(Readable.from(message()), { content: "bodies" });
clearInterval(timer);
peak = Math.max(peak, process.memoryUsage().rss);
const attachment = parsed.attachments[0]!;
process.stdout.write(
  JSON.stringify({ size: attachment.size, expected: blocks * 1024 * 57, kept: attachment.content !== undefined, text: parsed.text, peakDelta: peak - baseline }) + "\n",
);
