import fc from "fast-check";
import type { ChunkEncoder } from "../../../src/mime/encoding/index.js";

/** Splits `bytes` at the given (unsorted, possibly repeated) offsets. */
export function splitAt(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const cuts = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const cut of cuts) {
    parts.push(bytes.subarray(prev, cut));
    prev = cut;
  }
  parts.push(bytes.subarray(prev));
  return parts;
}

export function runChunks(encoder: ChunkEncoder, chunks: readonly Uint8Array[]): Buffer {
  const out: Buffer[] = chunks.map((c) => encoder.encode(c));
  out.push(encoder.flush());
  return Buffer.concat(out);
}

export function oneByteChunks(bytes: Uint8Array): Uint8Array[] {
  return Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
}

// `size: "max"` on the arbitraries below: the lengths they declare are reached. fast-check's
// default size ("small") stops near 10, so 600 bytes would never make a 76-character line.
export const bytesArb = fc.uint8Array({ maxLength: 600, size: "max" });
export const cutsArb = fc.array(fc.nat(), { maxLength: 8, size: "max" });

/**
 * Well-formed strings over all of Unicode (BMP and astral, no lone surrogates), biased
 * towards ASCII. Cheaper to set up than `fc.string({ unit: "binary" })`.
 */
export const unicodeCharArb = fc
  .oneof(
    { weight: 3, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x1f }) },
    { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0xd7ff }) },
    { weight: 1, arbitrary: fc.integer({ min: 0xe000, max: 0xffff }) },
    { weight: 2, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }) },
  )
  .map((cp) => String.fromCodePoint(cp));

export const unicodeStringArb = (maxLength = 80) => fc.string({ unit: unicodeCharArb, maxLength, size: "max" });
