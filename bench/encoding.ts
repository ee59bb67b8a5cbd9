/**
 * Encoder throughput, each next to a yardstick measured in the same run on the same data:
 * - base64 with 76-column lines against Node's own unwrapped `Buffer#toString("base64")`;
 * - quoted-printable against the minimal reference loop (bench/reference/qp.ts), on the
 *   sources and, when `dist/` is built, on the build users run (tsup's chunks);
 * - the RFC 2047 header path (`renderHeader` of a non-ASCII Subject: encoded-words, folding
 *   and the final injection check) against the minimal B-encoder-and-fold
 *   (bench/reference/b-encoder.ts).
 * Every reference's output is checked before it is timed. Never a pass/fail test.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Base64Encoder } from "../src/mime/encoding/base64.js";
import { QuotedPrintableEncoder, decodeQuotedPrintable } from "../src/mime/encoding/quoted-printable.js";
import { decodeWords, encodeWords } from "../src/mime/encoding/encoded-word.js";
import { formatParameter } from "../src/mime/encoding/rfc2231.js";
import { renderHeader, unfold } from "../src/mime/headers.js";
import { ROOT, environment, median, report } from "./env.js";
import { bEncodeHeader } from "./reference/b-encoder.js";
import { ReferenceQpEncoder } from "./reference/qp.js";

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

interface StreamEncoder {
  encode(chunk: Uint8Array): Uint8Array;
  flush(): Uint8Array;
}

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

/** The ratio time(reference) / time(ours): `pairs` pairs of best-of-`rounds` timings, the median ratio. */
function pairedRatio(pairs: number, rounds: number, reference: () => void, ours: () => void): { ratio: number; referenceMs: number; oursMs: number } {
  const ratios: number[] = [];
  const refs: number[] = [];
  const mine: number[] = [];
  for (let p = 0; p < pairs; p++) {
    const r = best(rounds, reference);
    const o = best(rounds, ours);
    refs.push(r);
    mine.push(o);
    ratios.push(r / o);
  }
  return { ratio: median(ratios), referenceMs: median(refs), oursMs: median(mine) };
}

function encodeAll(encoder: StreamEncoder, data: Buffer): Buffer {
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < data.length; offset += CHUNK) out.push(encoder.encode(data.subarray(offset, offset + CHUNK)));
  out.push(encoder.flush());
  return Buffer.concat(out);
}

function countAll(encoder: StreamEncoder, data: Buffer): number {
  let n = 0;
  for (let offset = 0; offset < data.length; offset += CHUNK) n += encoder.encode(data.subarray(offset, offset + CHUNK)).length;
  return n + encoder.flush().length;
}

const mbps = (bytes: number, ms: number): string => (bytes / MiB / (ms / 1000)).toFixed(0).padStart(6);
const ops = (count: number, ms: number): string => `${((count / ms) * 1000).toFixed(0).padStart(8)} ops/s`;

/** Mostly-ASCII prose with some Latin-1 accents (as UTF-8) and LF line breaks, as a typical QP body. */
export function mixedText(size: number): Buffer {
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
  // Cut at a character boundary, so that the text stays UTF-8.
  let end = size;
  const bytes = Buffer.from(parts.join(""), "utf8");
  while ((bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** The reference's output must decode to the input, in lines of at most 76: else the ratio means nothing. */
function checkQp(encoded: Buffer, input: Buffer, what: string): void {
  const canonical = Buffer.from(input.toString("latin1").replace(/\r\n|\r|\n/g, "\r\n"), "latin1");
  if (!decodeQuotedPrintable(encoded.toString("latin1")).equals(canonical)) throw new Error(`${what}: its output does not decode to the input`);
  if (encoded.toString("latin1").split("\r\n").some((line) => line.length > 76)) throw new Error(`${what}: a line is longer than 76`);
}

function checkHeader(rendered: string, name: string, text: string, what: string): void {
  const lines = rendered.slice(0, -2).split("\r\n");
  if (!rendered.endsWith("\r\n") || lines.some((l) => l.length > 76 || /[^\x20-\x7e]/.test(l))) throw new Error(`${what}: not ASCII lines of at most 76`);
  const value = unfold(rendered.slice(name.length + 1, -2)).replace(/^ /, "");
  if (decodeWords(value) !== text) throw new Error(`${what}: ${JSON.stringify(rendered)} does not decode to ${JSON.stringify(text)}`);
}

async function distQuotedPrintable(): Promise<(new () => StreamEncoder) | undefined> {
  const path = join(ROOT, "dist", "mime", "index.js");
  if (!existsSync(path)) return undefined;
  const mod = (await import(pathToFileURL(path).href)) as { encoding: { QuotedPrintableEncoder: new () => StreamEncoder } };
  return mod.encoding.QuotedPrintableEncoder;
}

export async function run(): Promise<void> {
  console.log(`# encoding (${environment()})`);
  let sink = 0;

  // base64: 64 MiB random, 64 KiB chunks.
  const size = 64 * MiB;
  const random = randomBytes(size);
  const b64 = pairedRatio(
    3,
    3,
    () => {
      for (let offset = 0; offset < size; offset += CHUNK) sink += random.toString("base64", offset, Math.min(size, offset + CHUNK)).length;
    },
    () => void (sink += countAll(new Base64Encoder(), random)),
  );
  console.log(`base64 raw Buffer#toString            ${mbps(size, b64.referenceMs)} MB/s  (64 MiB random, 64 KiB chunks)`);
  console.log(`base64 Base64Encoder, 76-col CRLF     ${mbps(size, b64.oursMs)} MB/s  = ${b64.ratio.toFixed(2)}x raw`);
  report({ name: "base64 76-column lines vs native unwrapped", value: b64.ratio, unit: "x", op: "~", target: 0.77 });

  // Quoted-printable: 16 MiB of mostly-ASCII text, 64 KiB chunks.
  const text = mixedText(16 * MiB);
  checkQp(encodeAll(new ReferenceQpEncoder(), text), text, "the reference quoted-printable encoder");
  const qp = pairedRatio(
    5,
    3,
    () => void (sink += countAll(new ReferenceQpEncoder(), text)),
    () => void (sink += countAll(new QuotedPrintableEncoder(), text)),
  );
  console.log(`quoted-printable reference loop       ${mbps(text.length, qp.referenceMs)} MB/s  (16 MiB mixed text)`);
  console.log(`quoted-printable QuotedPrintableEncoder ${mbps(text.length, qp.oursMs)} MB/s  = ${qp.ratio.toFixed(2)}x the reference`);
  report({ name: "quoted-printable vs reference loop", value: qp.ratio, unit: "x", op: ">=", target: 0.95 });
  const Built = await distQuotedPrintable();
  if (Built) {
    const built = pairedRatio(
      5,
      3,
      () => void (sink += countAll(new ReferenceQpEncoder(), text)),
      () => void (sink += countAll(new Built(), text)),
    );
    console.log(`quoted-printable, dist/ build         ${mbps(text.length, built.oursMs)} MB/s  = ${built.ratio.toFixed(2)}x the reference`);
    report({ name: "quoted-printable (dist/ build) vs reference", value: built.ratio, unit: "x", op: ">=", target: 0.95 });
  } else {
    console.log("quoted-printable, dist/ build         (not built: npm run build to measure it)");
  }

  // The RFC 2047 header path: a short non-ASCII Subject, rendered as a whole header.
  const subjects = [
    ["Latin", "Réunion trimestrielle : résultats, prévisions et café ☕"],
    ["Cyrillic", "Квартальный отчёт: итоги и планы"],
  ] as const;
  const opts = { utf8: false, charset: "utf-8" };
  const n = 20_000;
  for (const [label, subject] of subjects) {
    checkHeader(bEncodeHeader("Subject", subject), "Subject", subject, "the reference B-encoder");
    checkHeader(renderHeader("Subject", subject, opts), "Subject", subject, "renderHeader");
    const header = pairedRatio(
      5,
      3,
      () => {
        for (let i = 0; i < n; i++) sink += bEncodeHeader("Subject", subject).length;
      },
      () => {
        for (let i = 0; i < n; i++) sink += renderHeader("Subject", subject, opts).length;
      },
    );
    console.log(`RFC 2047 Subject (${label}), reference   ${ops(n, header.referenceMs)}  (B-encode and fold, ${subject.length} characters)`);
    console.log(`RFC 2047 Subject (${label}), renderHeader ${ops(n, header.oursMs)}  = ${header.ratio.toFixed(2)}x the reference`);
    report({ name: `RFC 2047 Subject (${label}) vs B-encoder`, value: header.ratio, unit: "x", op: ">=", target: 0.4 });
  }

  const name = "Überweisungsbestätigung für März — Kontoauszug Nr. 42.pdf";
  const jp = best(3, () => {
    for (let i = 0; i < n / 10; i++) sink += encodeWords("四半期会議の結果と予測についてのお知らせです", { context: "text", charset: "iso-2022-jp" }).length;
  });
  const param = best(3, () => {
    for (let i = 0; i < n; i++) sink += formatParameter("filename", name).length;
  });
  console.log(`encodeWords, iso-2022-jp subject      ${ops(n / 10, jp)}`);
  console.log(`formatParameter, non-ASCII filename   ${ops(n, param)}`);
  if (sink === 0) console.log("(nothing encoded)");
}
