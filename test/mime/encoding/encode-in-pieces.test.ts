import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EncodingError } from "../../../src/errors.js";
import { decodeText, encodeInPieces, encodeText } from "../../../src/mime/encoding/charset.js";
import { errorOf } from "../../helpers/errors.js";
import { POOLS } from "./charset-pools.js";

const byteCount = (bytes: Uint8Array) => bytes.length;
const atMost = (n: number) => (units: number) => units <= n;
/** The pieces as text, each decoded on its own. */
const texts = (pieces: Buffer[], charset: string) => pieces.map((p) => decodeText(p, charset));

describe("encodeInPieces", () => {
  it("gives no piece for empty text", () => {
    for (const charset of ["utf-8", "iso-8859-1", "shift_jis", "iso-2022-jp", "utf-16le"]) {
      expect(encodeInPieces("", charset, byteCount, atMost(10)), charset).toEqual([]);
    }
  });

  it("cuts UTF-8 between characters at each width boundary (1, 2, 3 and 4 octets)", () => {
    const text = "\x7f\x80\u07ff\u0800\uffff\u{10000}\u{10ffff}";
    const pieces = encodeInPieces(text, "utf-8", byteCount, atMost(4));
    expect(texts(pieces, "utf-8")).toEqual(["\x7f\x80", "\u07ff", "\u0800", "\uffff", "\u{10000}", "\u{10ffff}"]);
    expect(pieces.map((p) => p.length)).toEqual([3, 2, 3, 3, 4, 4]);
    expect(Buffer.concat(pieces)).toEqual(Buffer.from(text, "utf8"));
  });

  it("fills each piece exactly to the limit, and starts a new one a byte past it", () => {
    expect(texts(encodeInPieces("abcdef", "utf-8", byteCount, atMost(3)), "utf-8")).toEqual(["abc", "def"]);
    expect(texts(encodeInPieces("abcdefg", "utf-8", byteCount, atMost(3)), "utf-8")).toEqual(["abc", "def", "g"]);
    expect(texts(encodeInPieces("ab\u00e9", "utf-8", byteCount, atMost(3)), "utf-8")).toEqual(["ab", "\u00e9"]);
    expect(texts(encodeInPieces("ab\u00e9", "utf-8", byteCount, atMost(4)), "utf-8")).toEqual(["ab\u00e9"]);
  });

  it("passes each piece's index to fits, so the first may be smaller than the rest", () => {
    const seen = new Set<number>();
    const first2 = (units: number, index: number) => {
      seen.add(index);
      return units <= (index === 0 ? 2 : 4);
    };
    for (const charset of ["utf-8", "iso-8859-1", "koi8-r", "iso-2022-jp", "utf-16le"]) {
      seen.clear();
      const pieces = encodeInPieces("abcdefghij", charset, charset === "utf-16le" ? (b) => b.length / 2 : byteCount, first2);
      expect(texts(pieces, charset), charset).toEqual(["ab", "cdef", "ghij"]);
      expect([...seen].sort(), charset).toEqual([0, 1, 2]);
    }
  });

  it("measures with the caller's measure, additive over the bytes", () => {
    // A cost of 3 for each byte that is not a letter, 1 for a letter.
    const cost = (bytes: Uint8Array) => bytes.reduce((sum, b) => sum + (/[a-z]/.test(String.fromCharCode(b)) ? 1 : 3), 0);
    expect(texts(encodeInPieces("ab c\u00e9d", "utf-8", cost, atMost(6)), "utf-8")).toEqual(["ab c", "\u00e9", "d"]);
    expect(texts(encodeInPieces("ab c\u00e9d", "iso-8859-1", cost, atMost(6)), "iso-8859-1")).toEqual(["ab c", "\u00e9d"]);
  });

  it("takes a character's own width in Latin-1, US-ASCII and double-byte charsets", () => {
    expect(encodeInPieces("\u00e9\u00e9\u00e9", "iso-8859-1", byteCount, atMost(2)).map((p) => p.toString("latin1"))).toEqual(["\xe9\xe9", "\xe9"]);
    expect(encodeInPieces("abc", "us-ascii", byteCount, atMost(2)).map((p) => p.toString("latin1"))).toEqual(["ab", "c"]);
    // Shift_JIS: ASCII is one byte, kana and kanji two.
    const sjis = encodeInPieces("a\u3042\u3044b\u65e5", "shift_jis", byteCount, atMost(3));
    expect(texts(sjis, "shift_jis")).toEqual(["a\u3042", "\u3044b", "\u65e5"]);
    expect(sjis.map((p) => p.length)).toEqual([3, 3, 2]);
  });

  it("encodes each piece of a stateful charset on its own, so that each ends in ASCII", () => {
    const pieces = encodeInPieces("a\u3042\u3044\u3046b", "iso-2022-jp", byteCount, atMost(11));
    expect(pieces.map((p) => p.toString("latin1"))).toEqual(['a\x1b$B$"$$\x1b(B', "\x1b$B$&\x1b(Bb"]);
    const utf16 = encodeInPieces("abc", "utf-16", byteCount, atMost(6));
    // Each UTF-16 piece carries its own byte-order mark.
    expect(utf16.map((p) => p.toString("hex"))).toEqual(["fffe61006200", "fffe6300"]);
  });

  it("throws EncodingError naming the character that fits in no piece, first or later, in every kind of charset", () => {
    const message = (text: string, charset: string, n: number) => errorOf(() => encodeInPieces(text, charset, byteCount, atMost(n))).message;
    expect(message("\u00e9", "utf-8", 1)).toBe('The character U+00E9 "\u00e9" does not fit in one piece once encoded in utf-8');
    expect(message("ab\u{1f600}", "utf-8", 3)).toBe('The character U+1F600 "\u{1f600}" does not fit in one piece once encoded in utf-8');
    expect(message("\u3042", "iso-2022-jp", 7)).toBe('The character U+3042 "\u3042" does not fit in one piece once encoded in iso-2022-jp');
    expect(message("a\u3042", "iso-2022-jp", 7)).toBe('The character U+3042 "\u3042" does not fit in one piece once encoded in iso-2022-jp');
    expect(encodeInPieces("a\u3042", "iso-2022-jp", byteCount, atMost(8)).map((p) => p.toString("latin1"))).toEqual(["a", '\x1b$B$"\x1b(B']);
    expect(errorOf(() => encodeInPieces("a\u3042", "iso-2022-jp", byteCount, atMost(7)))).toBeInstanceOf(EncodingError);
    expect(errorOf(() => encodeInPieces("x\u00e9", "koi8-r", byteCount, atMost(5)))).toBeInstanceOf(EncodingError);
    expect(message("\u00e9", "UTF8", 1)).toContain("once encoded in utf-8");
  });

  it("property: the pieces decode to the text, each within the limit, none could take the next character", () => {
    const charsets = ["utf-8", "iso-8859-1", "shift_jis", "iso-2022-jp", "koi8-r"] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...charsets).chain((charset) =>
          fc.tuple(
            fc.constant(charset),
            fc.array(fc.constantFrom(...(charset === "utf-8" ? ["a", " ", "\u00e9", "\u3042", "\u{1f600}"] : POOLS[charset]!)), { maxLength: 60, size: "max" }),
            fc.integer({ min: 8, max: 30 }),
          ),
        ),
        ([charset, chars, limit]) => {
          const text = chars.join("");
          const pieces = encodeInPieces(text, charset, byteCount, atMost(limit));
          expect(texts(pieces, charset).join("")).toBe(text);
          for (const piece of pieces) expect(piece.length).toBeLessThanOrEqual(limit);
          let at = 0;
          pieces.forEach((piece, i) => {
            const own = [...decodeText(piece, charset)];
            at += own.length;
            if (i < pieces.length - 1) {
              const next = chars.slice(at - own.length, at + 1).join("");
              expect(encodeText(next, charset).length).toBeGreaterThan(limit);
            }
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
