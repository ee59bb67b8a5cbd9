import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  assertWellFormed,
  decodeText,
  encodeText,
  isStatelessCharset,
  isUtf8,
  normalizeCharset,
} from "../../../src/mime/encoding/charset.js";
import { EncodingError } from "../../../src/errors.js";
import { POOLS } from "./charset-pools.js";
import { unicodeStringArb } from "./helpers.js";

describe("normalizeCharset", () => {
  it("returns lower-case MIME names for common spellings", () => {
    expect(normalizeCharset("UTF8")).toBe("utf-8");
    expect(normalizeCharset(" Latin1 ")).toBe("iso-8859-1");
    expect(normalizeCharset("ASCII")).toBe("us-ascii");
    expect(normalizeCharset("Shift-JIS")).toBe("shift_jis");
    expect(normalizeCharset("ISO-2022-JP")).toBe("iso-2022-jp");
    expect(normalizeCharset("KOI8-R")).toBe("koi8-r");
    expect(normalizeCharset("windows-1252")).toBe("windows-1252");
  });

  it("throws EncodingError for unknown names and names unusable in a header", () => {
    for (const name of ["klingon", "", "utf-8?Q?", "utf 8", "a\r\nb"]) {
      expect(() => normalizeCharset(name)).toThrow(EncodingError);
    }
  });
});

describe("encodeText / decodeText", () => {
  it("uses UTF-8 and Latin-1 directly", () => {
    expect(encodeText("h\u00e9\u{1f600}", "utf-8")).toEqual(Buffer.from("h\u00e9\u{1f600}", "utf8"));
    expect(encodeText("h\u00e9", "iso-8859-1")).toEqual(Buffer.from([0x68, 0xe9]));
    expect(decodeText(Buffer.from([0x68, 0xe9]), "latin1")).toBe("h\u00e9");
  });

  it("throws EncodingError naming the character a charset cannot hold, instead of writing ?", () => {
    const cases: Array<[string, string]> = [
      ["caf\u00e9", "us-ascii"],
      ["\u20ac", "iso-8859-1"],
      ["\u00e9", "koi8-r"],
      ["\u{1f600}", "big5"],
      ["\u{1f600}", "shift_jis"],
      ["\u0e01", "gb2312"],
      ["\uff71", "iso-2022-jp"], // half-width katakana is not in RFC 1468
      ["\u00e9", "iso-2022-jp"], // JIS X 0212 only
    ];
    for (const [text, charset] of cases) {
      expect(() => encodeText(`a?${text}`, charset), `${text} in ${charset}`).toThrow(EncodingError);
      expect(() => encodeText(text, charset)).toThrow(/U\+[0-9A-F]{4}/);
    }
    expect(encodeText("what?", "koi8-r").toString("latin1")).toBe("what?");
  });

  it("throws EncodingError for a lone surrogate in any charset", () => {
    for (const charset of ["utf-8", "iso-8859-1", "shift_jis", "iso-2022-jp"]) {
      expect(() => encodeText("a\ud800b", charset)).toThrow(EncodingError);
      expect(() => encodeText("\udc00", charset)).toThrow(EncodingError);
    }
    expect(() => assertWellFormed("x\ud83d", "Subject")).toThrow(/Subject.*U\+D83D at index 1/);
    fc.assert(
      fc.property(unicodeStringArb(20), fc.integer({ min: 0xd800, max: 0xdfff }), fc.string(), (a, unit, b) => {
        expect(() => encodeText(a + String.fromCharCode(unit) + "x" + b, "utf-8")).toThrow(EncodingError);
      }),
      { numRuns: 100 },
    );
  });

  it("writes ISO-2022-JP with escape sequences, ending in ASCII (RFC 1468)", () => {
    expect(encodeText("a\u3042b", "iso-2022-jp")).toEqual(Buffer.from("a\x1b$B$\"\x1b(Bb", "latin1"));
    expect(encodeText("\u00a5", "iso-2022-jp")).toEqual(Buffer.from("\x1b(J\\\x1b(B", "latin1"));
    expect(decodeText(Buffer.from("\x1b$@$\"\x1b(I1\x1b(B", "latin1"), "iso-2022-jp")).toBe("\u3042\uff71");
  });

  it("round-trips full Unicode through UTF-8", () => {
    fc.assert(
      fc.property(unicodeStringArb(), (text) => {
        expect(decodeText(encodeText(text, "utf-8"), "utf-8")).toBe(text);
      }),
      { numRuns: 200 },
    );
  });

  for (const [charset, pool] of Object.entries(POOLS)) {
    it(`round-trips text in the repertoire of ${charset}`, () => {
      expect(pool.length).toBeGreaterThan(90);
      fc.assert(
        fc.property(fc.array(fc.constantFrom(...pool), { maxLength: 60 }), (chars) => {
          const text = chars.join("");
          expect(decodeText(encodeText(text, charset), charset)).toBe(text);
        }),
        { numRuns: 150 },
      );
    });
  }
});

describe("isUtf8 / isStatelessCharset", () => {
  it("tells valid UTF-8 from other bytes", () => {
    expect(isUtf8(Buffer.from("h\u00e9", "utf8"))).toBe(true);
    expect(isUtf8(Buffer.from([0x68, 0xe9]))).toBe(false);
  });

  it("knows which charsets can be split between characters after encoding", () => {
    expect(isStatelessCharset("utf-8")).toBe(true);
    expect(isStatelessCharset("koi8-r")).toBe(true);
    expect(isStatelessCharset("shift_jis")).toBe(true);
    expect(isStatelessCharset("iso-2022-jp")).toBe(false);
    expect(isStatelessCharset("utf-7")).toBe(false);
    expect(isStatelessCharset("utf-16")).toBe(false);
  });
});
