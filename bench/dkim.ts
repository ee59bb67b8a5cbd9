/**
 * DKIM signing cost per message, RSA-2048 and Ed25519 (relaxed/relaxed), next to the cost
 * of building the message: a typical message (text + HTML, about 3 KiB) and a large one
 * (three 1 MiB attachments, as bench/message.ts). Signing = one pass over the body
 * (canonicalize + SHA-256) plus the header hash and one private-key operation; the body
 * pass is also shown as MB/s beside a bare SHA-256 of the same bytes. Then the integrated
 * cost: the same messages sent through the SMTP backend (one open connection) to a loopback
 * sink (the capture server, which only counts them), without DKIM and with each signer set.
 */
import { createHash, createPrivateKey, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { DkimSigner } from "../src/dkim/options.js";
import { hashBody, signRendered, type HeaderField, type RenderedLike } from "../src/dkim/sign.js";
import { SmtpBackend } from "../src/backends/smtp.js";
import { EmailMultiAlternatives } from "../src/mime/message.js";
import { CaptureServer } from "../src/preview/smtp-server.js";
import { ROOT } from "./env.js";

const MiB = 1024 * 1024;
const keys = join(ROOT, "fixtures", "dkim", "keys") + "/";
const rsa = new DkimSigner({ domain: "example.com", selector: "rsa", privateKey: createPrivateKey(readFileSync(`${keys}test-rsa-2048.pem`)) });
const ed = new DkimSigner({ domain: "example.com", selector: "ed", privateKey: createPrivateKey(readFileSync(`${keys}test-ed25519.pem`)) });

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

/** The built bytes as a RenderedLike: header fields and a body read in 64 KiB chunks. */
function rendered(bytes: Buffer): RenderedLike {
  const split = bytes.indexOf("\r\n\r\n");
  const headers: HeaderField[] = bytes
    .subarray(0, split)
    .toString("utf8")
    .split(/\r\n(?![ \t])/)
    .map((f) => [f.slice(0, f.indexOf(":")), f.slice(f.indexOf(":") + 1)] as const);
  const body = bytes.subarray(split + 4);
  return {
    headers,
    async *body() {
      for (let i = 0; i < body.length; i += 64 * 1024) yield body.subarray(i, i + 64 * 1024);
    },
  };
}

async function time(rounds: number, task: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(5, rounds); i++) await task();
  const started = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) await task();
  return Number(process.hrtime.bigint() - started) / 1e6 / rounds;
}

const ms = (x: number) => `${x.toFixed(3).padStart(8)} ms`;

async function scenario(name: string, attachments: Buffer[], rounds: number): Promise<void> {
  const bytes = await build(attachments).asBytes();
  const buildMs = await time(rounds, () => build(attachments).asBytes());
  const r = rendered(bytes);
  console.log(`${name}: ${(bytes.length / 1024).toFixed(1)} KiB, build ${ms(buildMs)} per message`);
  for (const [label, signers] of [
    ["RSA-2048", [rsa]],
    ["Ed25519", [ed]],
    ["RSA + Ed25519", [rsa, ed]],
  ] as const) {
    const signMs = await time(rounds, () => signRendered(r, signers));
    console.log(`  sign ${label.padEnd(14)} ${ms(signMs)}   ${((signMs / buildMs) * 100).toFixed(1).padStart(6)} % of the build`);
  }
}

/**
 * Per message, through SmtpBackend over one open connection each to a loopback sink:
 * unsigned and with each signer set, taken in turns (one message each, round after round)
 * so that a change in the machine's load touches every variant alike; the median is shown.
 */
async function throughSmtp(name: string, attachments: Buffer[], rounds: number): Promise<void> {
  let received = 0;
  const sink = await CaptureServer.start({ port: 0, hostname: "sink.bench", deliver: async () => `queued as ${++received}` });
  const variants = [
    { label: "no DKIM", dkim: false as const },
    { label: "RSA-2048", dkim: rsa },
    { label: "Ed25519", dkim: ed },
    { label: "RSA + Ed25519", dkim: [rsa, ed] },
  ].map((v) => ({ ...v, backend: new SmtpBackend({ host: "127.0.0.1", port: sink.port, dkim: v.dkim }), times: [] as number[] }));
  try {
    for (const v of variants) await v.backend.open();
    for (let round = -3; round < rounds; round++) {
      for (const v of variants) {
        const message = build(attachments);
        const started = process.hrtime.bigint();
        await v.backend.sendMessages([message]);
        if (round >= 0) v.times.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
    }
  } finally {
    for (const v of variants) await v.backend.close();
    await sink.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const unsigned = median(variants[0]!.times);
  console.log(`sent through SmtpBackend to a loopback sink, ${name}, median per message (build, sign, send):`);
  for (const v of variants) {
    const m = median(v.times);
    const extra = v.dkim === false ? "" : `   ${m >= unsigned ? "+" : "-"}${(Math.abs(m - unsigned)).toFixed(3)} ms (${(((m - unsigned) / unsigned) * 100).toFixed(1)} %)`;
    console.log(`  ${v.label.padEnd(14)} ${ms(m)}${extra}`);
  }
}

export async function run(): Promise<void> {
  console.log(`# DKIM signing (node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"})`);
  await scenario("typical message (text + HTML)", [], 400);
  await scenario("large message (3 x 1 MiB attachments)", [randomBytes(MiB), randomBytes(MiB), randomBytes(MiB)], 20);

  const body = (await build([randomBytes(MiB), randomBytes(MiB), randomBytes(MiB)]).asBytes()).subarray(2000);
  for (const algorithm of ["relaxed", "simple"] as const) {
    const hashMs = await time(10, () => hashBody([body], new Set([algorithm])));
    console.log(`body pass ${algorithm.padEnd(8)} ${((body.length / MiB) / (hashMs / 1000)).toFixed(0).padStart(5)} MB/s`);
  }
  const shaMs = await time(10, async () => createHash("sha256").update(body).digest());
  console.log(`bare SHA-256      ${((body.length / MiB) / (shaMs / 1000)).toFixed(0).padStart(5)} MB/s`);

  await throughSmtp("typical message", [], 300);
  await throughSmtp("large message (3 x 1 MiB)", [randomBytes(MiB), randomBytes(MiB), randomBytes(MiB)], 10);
}
