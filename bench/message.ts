/**
 * Whole-message build: text + HTML alternatives and three 1 MiB attachments, serialised to
 * bytes, next to the minimal fixed-structure composer (bench/reference/composer.ts) building
 * the same message in the same run, and Node's own Buffer#toString("base64") over the
 * attachment bytes. The composer's output is parsed back and checked before it is timed.
 *
 * Copies: each attachment's bytes are read once by the base64 encoder (the encoding itself)
 * and the encoded chunks are concatenated once by asBytes(); nothing else copies them
 * (part.ts hands Buffer attachments to the encoder as they are, without slicing or copying).
 */
import { randomBytes } from "node:crypto";
import { EmailMultiAlternatives } from "../src/mime/message.js";
import { parseMessageSync } from "../src/parse/index.js";
import { environment, median, report } from "./env.js";
import { composeReference, type ComposerInput } from "./reference/composer.js";

const MiB = 1024 * 1024;

function input(attachments: Buffer[]): ComposerInput {
  return {
    subject: "Quarterly report — résumé",
    text: "Hello,\n\nThe quarterly figures are attached.\n\n— Ann\n".repeat(20),
    html: "<p>Hello,</p><p>The quarterly figures are <b>attached</b>.</p>".repeat(20),
    from: { name: "Ann Müller", address: "ann@example.com" },
    to: [
      { name: "", address: "bob@example.org" },
      { name: "Zoë", address: "zoe@example.org" },
    ],
    attachments: attachments.map((content, i) => ({ filename: `file-${i}.bin`, content })),
  };
}

function build(i: ComposerInput): EmailMultiAlternatives {
  const message = new EmailMultiAlternatives({
    subject: i.subject,
    body: i.text,
    from: i.from,
    to: i.to.map((m) => (m.name === "" ? m.address : m)),
  });
  message.attachAlternative(i.html, "text/html");
  for (const a of i.attachments) message.attach(a.filename, a.content, "application/octet-stream");
  return message;
}

/** The composer must build a message that reads back as the input. */
function checkComposer(bytes: Buffer, i: ComposerInput): void {
  const parsed = parseMessageSync(bytes);
  const canonical = (s: string) => s.replace(/\r\n|\r/g, "\n");
  const ok =
    parsed.defects.length === 0 &&
    parsed.subject === i.subject &&
    parsed.text === canonical(i.text) &&
    parsed.html === canonical(i.html) &&
    parsed.attachments.length === i.attachments.length &&
    parsed.attachments.every((a, k) => a.filename === i.attachments[k]!.filename && Buffer.from(a.content!).equals(i.attachments[k]!.content));
  if (!ok) throw new Error("the reference composer's message does not read back as its input");
}

async function seconds(task: () => Promise<unknown> | unknown): Promise<number> {
  const started = process.hrtime.bigint();
  await task();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

export async function run(): Promise<void> {
  console.log(`# whole message (${environment()})`);
  const data = input([randomBytes(MiB), randomBytes(MiB), randomBytes(MiB)]);
  checkComposer(composeReference(data), data);
  for (let i = 0; i < 5; i++) {
    await build(data).asBytes(); // warm-up
    composeReference(data);
  }

  const rounds = 20;
  const pairs = 5;
  let outputBytes = 0;
  const ours: number[] = [];
  const reference: number[] = [];
  const ratios: number[] = [];
  for (let p = 0; p < pairs; p++) {
    const r = await seconds(() => {
      for (let i = 0; i < rounds; i++) composeReference(data);
    });
    const o = await seconds(async () => {
      for (let i = 0; i < rounds; i++) outputBytes = (await build(data).asBytes()).length;
    });
    reference.push(rounds / r);
    ours.push(rounds / o);
    ratios.push(r / o);
  }
  const raw = await seconds(() => {
    for (let i = 0; i < rounds; i++) for (const a of data.attachments) a.content.toString("base64");
  });

  const perSecond = median(ours);
  console.log(`reference composer, messages/s  ${median(reference).toFixed(1)}`);
  console.log(`missive, messages/s             ${perSecond.toFixed(1)}   = ${median(ratios).toFixed(2)}x the reference`);
  console.log(`attachment input MB/s           ${(perSecond * 3).toFixed(1)}   (Buffer#toString("base64") alone: ${((rounds * 3) / raw).toFixed(1)} MB/s)`);
  console.log(`output per message              ${(outputBytes / MiB).toFixed(2)} MiB`);
  report({ name: "whole message build vs fixed composer", value: median(ratios), unit: "x", op: ">=", target: 1.0 });
}
