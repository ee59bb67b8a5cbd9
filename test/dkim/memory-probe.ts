/**
 * Run as a child process by sign-message.test.ts: signs a large streamed message (made on
 * the fly, 64 KiB at a time) with RSA and Ed25519, streams the signed result into a slow
 * sink, and reports the peak RSS growth. A separate process keeps the measurement free of
 * the test runner's own allocations.
 */
import { readFileSync } from "node:fs";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { signMessage } from "../../src/dkim/sign-message.js";

const bodyBytes = Number(process.argv[2] ?? 128) * 1024 * 1024;
const keys = fileURLToPath(new URL("../../fixtures/dkim/keys/", import.meta.url));
const signers = [
  { domain: "example.com", selector: "rsa", privateKey: readFileSync(`${keys}test-rsa-2048.pem`) },
  { domain: "example.com", selector: "ed", privateKey: readFileSync(`${keys}test-ed25519.pem`), canonicalization: "simple/simple" as const },
];
const line = Buffer.from("Lorem ipsum dolor sit amet,  consectetur \t adipiscing elit, sed do eiusmod.\r\n");
const pattern = Buffer.alloc(64 * 1024);
for (let i = 0; i < pattern.length; i++) pattern[i] = line[i % line.length]!;

function* message(): Generator<Buffer> {
  yield Buffer.from("From: Ann <ann@example.com>\r\nTo: bob@example.org\r\nSubject: big\r\n\r\n");
  for (let sent = 0; sent < bodyBytes; sent += pattern.length) yield Buffer.from(pattern.subarray(0, Math.min(pattern.length, bodyBytes - sent)));
}

(globalThis as { gc?: () => void }).gc?.();
const baseline = process.memoryUsage().rss;
let peak = baseline;
const timer = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 5);

const signed = await signMessage(() => Readable.from(message()), signers);
let bytes = 0;
let writes = 0;
const sink = new Writable({
  highWaterMark: 64 * 1024,
  write(chunk: Buffer, _enc, callback) {
    bytes += chunk.length;
    if (++writes % 8 === 0) setImmediate(callback);
    else callback();
  },
});
await pipeline(signed, sink);
clearInterval(timer);
peak = Math.max(peak, process.memoryUsage().rss);
process.stdout.write(JSON.stringify({ bytes, bodyBytes, peakDelta: peak - baseline }) + "\n");
