/**
 * Whole-message build: text + HTML alternatives and three 1 MiB attachments, serialised to
 * bytes. Reports messages/s and MB/s of output, with the ratio to Node's own
 * Buffer#toString("base64") over the same attachment bytes in the same run.
 *
 * Copies: each attachment's bytes are read once by the base64 encoder (the encoding itself)
 * and the encoded chunks are concatenated once by asBytes(); nothing else copies them
 * (part.ts hands Buffer attachments to the encoder as they are, without slicing or copying).
 */
import { randomBytes } from "node:crypto";
import { cpus } from "node:os";
import { EmailMultiAlternatives } from "../src/mime/message.js";

const MiB = 1024 * 1024;

function build(attachments: Buffer[]): EmailMultiAlternatives {
  const message = new EmailMultiAlternatives({
    subject: "Quarterly report — résumé",
    body: "Hello,\n\nThe quarterly figures are attached.\n\n— Ann\n".repeat(20),
    from: "Ann Müller <ann@example.com>",
    to: ["bob@example.org", "Zoë <zoe@example.org>"],
  });
  message.attachAlternative("<p>Hello,</p><p>The quarterly figures are <b>attached</b>.</p>".repeat(20), "text/html");
  attachments.forEach((bytes, i) => message.attach(`file-${i}.bin`, bytes, "application/octet-stream"));
  return message;
}

export async function run(): Promise<void> {
  console.log(`# whole message (node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"})`);
  const attachments = [randomBytes(MiB), randomBytes(MiB), randomBytes(MiB)];
  for (let i = 0; i < 5; i++) await build(attachments).asBytes(); // warm-up

  const rounds = 60;
  let outputBytes = 0;
  const before = process.memoryUsage();
  let started = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) outputBytes += (await build(attachments).asBytes()).length;
  const messageSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const after = process.memoryUsage();

  started = process.hrtime.bigint();
  let raw = 0;
  for (let i = 0; i < rounds; i++) for (const a of attachments) raw += a.toString("base64").length;
  const rawSeconds = Number(process.hrtime.bigint() - started) / 1e9;

  const outMBs = outputBytes / MiB / messageSeconds;
  const inMBs = (rounds * 3) / messageSeconds;
  const rawMBs = (rounds * 3) / rawSeconds;
  console.log(`messages/s                 ${(rounds / messageSeconds).toFixed(1)}`);
  console.log(`attachment input MB/s      ${inMBs.toFixed(1)}   (Buffer#toString("base64"): ${rawMBs.toFixed(1)} MB/s, ratio ${(inMBs / rawMBs).toFixed(2)})`);
  console.log(`message output MB/s        ${outMBs.toFixed(1)}   (raw output ${(raw / MiB / rawSeconds).toFixed(1)} MB/s)`);
  console.log(`output per message         ${(outputBytes / rounds / MiB).toFixed(2)} MiB`);
  const allocated = Math.max(0, after.arrayBuffers - before.arrayBuffers);
  console.log(`external memory retained   ${(allocated / MiB).toFixed(1)} MiB after ${rounds} messages (GC permitting)`);
}
