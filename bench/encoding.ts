/**
 * Encoder throughput. Figures are printed with Node's own `Buffer#toString("base64")`
 * measured in the same run on the same data, so that ratios compare like with like on
 * whatever machine runs them. Never a pass/fail test.
 */
import { randomBytes } from "node:crypto";
import { cpus } from "node:os";
import { Base64Encoder } from "../src/mime/encoding/base64.js";
import { QuotedPrintableEncoder } from "../src/mime/encoding/quoted-printable.js";
import { encodeWords } from "../src/mime/encoding/encoded-word.js";
import { formatParameter } from "../src/mime/encoding/rfc2231.js";

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

/** Best of `rounds` timings of `fn`, in milliseconds (the best is the least disturbed by the machine). */
function best(rounds: number, fn: () => void): number {
  let min = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    fn();
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

function chunked(data: Buffer, each: (chunk: Buffer) => void): void {
  for (let offset = 0; offset < data.length; offset += CHUNK) each(data.subarray(offset, offset + CHUNK));
}

const mbps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);
const fmt = (n: number): string => n.toFixed(0).padStart(6);

/** Mostly-ASCII prose with some Latin-1 accents (as UTF-8), as a typical QP body. */
function mixedText(size: number): Buffer {
  const words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "café", "naïve", "über", "façade", "élan", "mail", "message", "señor"];
  const parts: string[] = [];
  let length = 0;
  let seed = 42;
  while (length < size) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const word = words[seed % words.length]!;
    const sep = seed % 13 === 0 ? ".\n" : " ";
    parts.push(word, sep);
    length += Buffer.byteLength(word) + sep.length;
  }
  return Buffer.from(parts.join(""), "utf8").subarray(0, size);
}

export async function run(): Promise<void> {
  console.log(`# encoding — node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"} (${cpus().length} cores)`);
  const size = 64 * MiB;
  const random = randomBytes(size);
  let sink = 0;

  const raw = best(5, () => chunked(random, (c) => void (sink += c.toString("base64").length)));
  const encoder = new Base64Encoder();
  const ours = best(5, () => {
    chunked(random, (c) => void (sink += encoder.encode(c).length));
    sink += encoder.flush().length;
  });
  console.log(`base64 raw Buffer#toString         ${fmt(mbps(size, raw))} MB/s  (64 MiB random, 64 KiB chunks)`);
  console.log(`base64 Base64Encoder, 76-col CRLF  ${fmt(mbps(size, ours))} MB/s  = ${((100 * raw) / ours).toFixed(0)}% of raw throughput`);

  const textSize = 16 * MiB;
  const text = mixedText(textSize);
  const rawText = best(5, () => chunked(text, (c) => void (sink += c.toString("base64").length)));
  const qp = new QuotedPrintableEncoder();
  const qpTime = best(3, () => {
    chunked(text, (c) => void (sink += qp.encode(c).length));
    sink += qp.flush().length;
  });
  console.log(`quoted-printable, mixed text       ${fmt(mbps(textSize, qpTime))} MB/s  = ${((100 * rawText) / qpTime).toFixed(1)}% of raw base64 on the same 16 MiB (64 KiB chunks)`);

  const subject = "Réunion trimestrielle : résultats, prévisions et café ☕ 2024";
  const name = "Überweisungsbestätigung für März — Kontoauszug Nr. 42.pdf";
  const n = 20_000;
  const ew = best(3, () => {
    for (let i = 0; i < n; i++) sink += encodeWords(subject, { context: "text" }).length;
  });
  const ewJp = best(3, () => {
    for (let i = 0; i < n / 10; i++) sink += encodeWords("四半期会議の結果と予測についてのお知らせです", { context: "text", charset: "iso-2022-jp" }).length;
  });
  const param = best(3, () => {
    for (let i = 0; i < n; i++) sink += formatParameter("filename", name).length;
  });
  const subjectBytes = Buffer.byteLength(subject);
  const rawSubject = best(3, () => {
    for (let i = 0; i < n; i++) sink += Buffer.from(subject).toString("base64").length;
  });
  const ops = (count: number, ms: number): string => `${((count / ms) * 1000).toFixed(0).padStart(8)} ops/s`;
  console.log(`encodeWords, ${subject.length}-char non-ASCII subject ${ops(n, ew)}  (raw base64 of its ${subjectBytes} bytes: ${ops(n, rawSubject).trim()}, = ${((100 * rawSubject) / ew).toFixed(1)}% of raw)`);
  console.log(`encodeWords, iso-2022-jp subject    ${ops(n / 10, ewJp)}`);
  console.log(`formatParameter, non-ASCII filename ${ops(n, param)}`);
  if (sink === 0) console.log("(nothing encoded)");
}
