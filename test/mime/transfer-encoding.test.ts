// TextScan (with countQpEscapes) decides every leaf's transfer encoding (7bit, 8bit, quoted-printable, base64)
// and whether text/* bytes are UTF-8: whatever its implementation, it must learn exactly
// what a plain byte-by-byte reading learns, however the bytes are cut into chunks.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isAscii } from "node:buffer";
import { canonicalLineBreaks, canonicalTextFitsLines, countQpEscapes, scanBytes, sendableAsLines, TextScan } from "../../src/mime/transfer-encoding.js";

/** The plain reading: one byte at a time, a strict streaming UTF-8 decoder. */
function plainScan(chunks: readonly Uint8Array[]) {
  const facts = { length: 0, highBytes: 0, qpEscapes: 0, nul: false, bareLineBreak: false, bareLineBreaks: 0, longestLine: 0, utf8: true };
  const summary = () => {
    const { highBytes, qpEscapes, ...rest } = facts;
    return { ...rest, hasHighBytes: highBytes > 0, qpEscapes };
  };
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let line = 0;
  let pendingCr = false;
  const endLine = () => {
    facts.longestLine = Math.max(facts.longestLine, line);
    line = 0;
  };
  const bare = () => {
    facts.bareLineBreak = true;
    facts.bareLineBreaks++;
  };
  for (const chunk of chunks) {
    facts.length += chunk.length;
    try {
      decoder.decode(chunk, { stream: true });
    } catch {
      facts.utf8 = false;
    }
    for (const b of chunk) {
      if (pendingCr) {
        pendingCr = false;
        endLine();
        if (b === 0x0a) continue;
        bare();
      }
      if (b === 0x0d) pendingCr = true;
      else if (b === 0x0a) {
        bare();
        endLine();
      } else {
        line++;
        if (b >= 0x80) {
          facts.highBytes++;
          facts.qpEscapes++;
        } else if (b === 0x3d || (b < 0x20 && b !== 0x09) || b === 0x7f) {
          facts.qpEscapes++;
          if (b === 0) facts.nul = true;
        }
      }
    }
  }
  if (pendingCr) bare();
  endLine();
  try {
    decoder.decode();
  } catch {
    facts.utf8 = false;
  }
  return summary();
}

function scanChunks(chunks: readonly Uint8Array[]) {
  const scan = new TextScan();
  for (const chunk of chunks) scan.push(chunk);
  scan.finish();
  const { length, hasHighBytes, nul, bareLineBreak, bareLineBreaks, longestLine, utf8 } = scan;
  return { length, hasHighBytes, nul, bareLineBreak, bareLineBreaks, longestLine, utf8, qpEscapes: countQpEscapes(Buffer.concat(chunks)) };
}

function cut(bytes: Uint8Array, at: readonly number[]): Uint8Array[] {
  const points = [...new Set(at.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  return out;
}

// Text-like bytes: line breaks of every kind, controls, '=', NUL, and UTF-8 of every length,
// also broken (a lone continuation byte, a lead without its continuation, overlong, surrogate).
const piece = fc.oneof(
  fc.constantFrom("\r\n", "\r", "\n", "\r\r\n", "=", "\t", "\0", "\x7f", "\x01", " ", "a"),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.string({ unit: "grapheme-ascii", maxLength: 100 }),
);
const textBytes = fc.array(piece, { maxLength: 40 }).map((parts) => Buffer.from(parts.join(""), "utf8"));
const broken = fc.constantFrom([0x80], [0xe2, 0x82], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98], [0xff], [0xf5, 0x80, 0x80, 0x80]).map((b) => Buffer.from(b));
const mixed = fc.array(fc.oneof(textBytes, broken), { maxLength: 6 }).map((parts) => Buffer.concat(parts));

describe("TextScan", () => {
  it("learns what a byte-by-byte reading learns, cut anywhere", () => {
    fc.assert(
      fc.property(fc.oneof(textBytes, mixed, fc.uint8Array({ maxLength: 300 })), fc.array(fc.nat(), { maxLength: 6 }), (bytes, at) => {
        const chunks = cut(bytes, at);
        expect(scanChunks(chunks)).toEqual(plainScan(chunks));
      }),
      { numRuns: 2000 },
    );
  });

  it("learns the same from one byte at a time", () => {
    fc.assert(
      fc.property(fc.oneof(textBytes, mixed), (bytes) => {
        const ones = Array.from(bytes, (b) => Uint8Array.of(b));
        expect(scanChunks(ones)).toEqual(plainScan([bytes]));
      }),
    );
  });

  it("scanBytes is one chunk", () => {
    const bytes = Buffer.from("caf\xc3\xa9 =\r\nline\nlast\r", "latin1");
    const { length, hasHighBytes, nul, bareLineBreak, bareLineBreaks, longestLine, utf8 } = scanBytes(bytes);
    expect({ length, hasHighBytes, nul, bareLineBreak, bareLineBreaks, longestLine, utf8, qpEscapes: countQpEscapes(bytes) }).toEqual(plainScan([bytes]));
    expect(utf8).toBe(true);
    expect(bareLineBreaks).toBe(2);
  });
});

describe("canonicalLineBreaks", () => {
  it("turns every CRLF, CR and LF into CRLF, whatever the mix", () => {
    const text = fc.array(fc.oneof(fc.constantFrom("\r\n", "\r", "\n", "\n\r", "\r\r\n"), fc.string({ maxLength: 5 })), { maxLength: 30 }).map((p) => p.join(""));
    fc.assert(
      fc.property(text, (t) => {
        expect(canonicalLineBreaks(t)).toBe(t.replace(/\r\n|\r|\n/g, "\r\n"));
      }),
      { numRuns: 1000 },
    );
  });
});

describe("canonicalTextFitsLines", () => {
  // Lines around the 998-octet limit in characters of every UTF-8 width, NULs, and line breaks of every kind.
  const run = fc.tuple(fc.constantFrom("a", "é", "€", "😀", "\0", " "), fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 240, max: 520 }), fc.integer({ min: 990, max: 1000 })));
  const text = fc
    .array(fc.oneof(run.map(([ch, n]) => ch.repeat(n)), fc.constantFrom("\r\n", "\r", "\n", "x")), { maxLength: 8 })
    .map((parts) => canonicalLineBreaks(parts.join("")) + "\r\n");

  it("says a text fits only when its UTF-8 bytes are sendable as lines, and for ASCII text exactly when they are", () => {
    fc.assert(
      fc.property(text, (t) => {
        const bytes = Buffer.from(t, "utf8");
        const ascii = isAscii(bytes);
        const sendable = sendableAsLines(scanBytes(bytes));
        const fits = canonicalTextFitsLines(t, ascii ? 1 : 3);
        if (fits) expect(sendable).toBe(true);
        if (ascii) expect(fits).toBe(sendable);
      }),
      { numRuns: 1000 },
    );
  });

  it("counts a line without its CRLF, up to 998 octets", () => {
    expect(canonicalTextFitsLines(`${"a".repeat(998)}\r\nb\r\n`, 1)).toBe(true);
    expect(canonicalTextFitsLines(`b\r\n${"a".repeat(999)}\r\n`, 1)).toBe(false);
    expect(canonicalTextFitsLines("a".repeat(998), 1)).toBe(true);
    expect(canonicalTextFitsLines("a".repeat(999), 1)).toBe(false);
    expect(canonicalTextFitsLines(`${"é".repeat(332)}\r\n`, 3)).toBe(true);
    expect(canonicalTextFitsLines(`${"é".repeat(333)}\r\n`, 3)).toBe(false);
    expect(canonicalTextFitsLines("line\r\n\0\r\n", 1)).toBe(false);
    expect(canonicalTextFitsLines("", 1)).toBe(true);
  });
});
