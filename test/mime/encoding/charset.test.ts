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
import { errorOf } from "../../helpers/errors.js";
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

describe("normalizeCharset, every spelling and character", () => {
  it("maps each common spelling to its MIME name, in any case and with white space around", () => {
    const spellings: Record<string, string> = {
      utf8: "utf-8", "utf-8": "utf-8",
      ascii: "us-ascii", "us-ascii": "us-ascii", usascii: "us-ascii",
      latin1: "iso-8859-1", l1: "iso-8859-1", "iso8859-1": "iso-8859-1", iso88591: "iso-8859-1", "iso_8859-1": "iso-8859-1", "iso-8859-1": "iso-8859-1",
      sjis: "shift_jis", shiftjis: "shift_jis", "shift-jis": "shift_jis", shift_jis: "shift_jis",
      eucjp: "euc-jp", euckr: "euc-kr", koi8r: "koi8-r", big5: "big5", gb2312: "gb2312",
      "iso-2022-jp": "iso-2022-jp", iso2022jp: "iso-2022-jp", csiso2022jp: "iso-2022-jp",
    };
    for (const [spelling, name] of Object.entries(spellings)) {
      expect(normalizeCharset(spelling), spelling).toBe(name);
      expect(normalizeCharset(` ${spelling.toUpperCase()}\t`), spelling).toBe(name);
    }
    // Names iconv-lite knows but that have no preferred spelling are lower-cased as given.
    expect(normalizeCharset("Windows-1250")).toBe("windows-1250");
    expect(normalizeCharset("CP949")).toBe("cp949");
    expect(normalizeCharset("ISO-8859-9")).toBe("iso-8859-9");
    expect(normalizeCharset("MacRoman")).toBe("macroman");
  });

  it("allows only RFC 2978 mime-charset characters, though iconv-lite would ignore the others", () => {
    // iconv-lite drops everything but letters and digits from a name: "utf(8" would be UTF-8.
    const allowed = "!#$%&+-.:^_`{}~";
    for (let b = 0x20; b < 0x80; b++) {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9]/.test(c)) continue;
      const name = `utf${c}8`;
      if (allowed.includes(c)) expect(normalizeCharset(name), name).toBe(name);
      else expect(() => normalizeCharset(name), JSON.stringify(name)).toThrow(EncodingError);
    }
    expect(() => normalizeCharset("utf\u00e98")).toThrow(EncodingError);
    expect(() => normalizeCharset("utf-8\u0130")).toThrow(EncodingError);
    expect(errorOf(() => normalizeCharset("utf 8")).message).toBe('Unknown charset "utf 8": use a charset name iconv-lite knows, such as "utf-8"');
  });

  it("takes names of up to 40 characters", () => {
    expect(normalizeCharset(`utf${"-".repeat(36)}8`)).toBe(`utf${"-".repeat(36)}8`);
    expect(() => normalizeCharset(`utf${"-".repeat(37)}8`)).toThrow(EncodingError);
    expect(() => normalizeCharset("  ")).toThrow(EncodingError);
  });
});

describe("lone surrogates", () => {
  it("are named with their unit and index, pairs skipped, at each end of both ranges", () => {
    const cases: [string, string, number][] = [
      ["\ud800", "D800", 0],
      ["\udbff", "DBFF", 0],
      ["\udc00", "DC00", 0],
      ["\udfff", "DFFF", 0],
      ["\ud800a", "D800", 0],
      ["\ud800\ud800\udc00", "D800", 0],
      ["a\ud83d\ude00\ud800", "D800", 3],
      ["\udbff\udc00x\udc00", "DC00", 3],
      ["\ud800\udfff\udc00", "DC00", 2],
      ["\ud800\udc00\udc00", "DC00", 2],
      ["\ud7ff\ue000\udbff\udfff\udfff", "DFFF", 4],
    ];
    for (const [text, unit, at] of cases) {
      expect(errorOf(() => assertWellFormed(text, "Subject")).message, JSON.stringify(text)).toBe(
        `Subject contains a lone surrogate (U+${unit} at index ${at}); it cannot be encoded in any charset`,
      );
    }
    expect(() => assertWellFormed("\ud7ff\ue000\ud800\udc00\udbff\udfff", "Subject")).not.toThrow();
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

  it("US-ASCII takes U+007F and refuses U+0080; Latin-1 takes U+00FF and refuses U+0100, naming the whole code point", () => {
    expect(encodeText("a\x7f", "us-ascii")).toEqual(Buffer.from([0x61, 0x7f]));
    expect(errorOf(() => encodeText("a\x80", "us-ascii")).message).toBe('The character U+0080 "\x80" cannot be represented in us-ascii; use utf-8 or remove it');
    expect(encodeText("a\xff", "latin1")).toEqual(Buffer.from([0x61, 0xff]));
    expect(errorOf(() => encodeText("\xff\u0100", "latin1")).message).toBe('The character U+0100 "\u0100" cannot be represented in iso-8859-1; use utf-8 or remove it');
    expect(errorOf(() => encodeText("a\u{10400}", "us-ascii")).message).toBe('The character U+10400 "\u{10400}" cannot be represented in us-ascii; use utf-8 or remove it');
  });

  it("refuses a character outside the Basic Multilingual Plane in a single-byte charset (iconv-lite writes one ? per UTF-16 unit)", () => {
    for (const charset of ["koi8-r", "windows-1252", "iso-8859-2"]) {
      expect(errorOf(() => encodeText("a\u{1f600}b", charset)).message, charset).toBe(
        `The character U+1F600 "\u{1f600}" cannot be represented in ${charset}; use utf-8 or remove it`,
      );
      expect(errorOf(() => encodeText("a?\u{1f600}", charset))).toBeInstanceOf(EncodingError);
    }
  });

  it("keeps a character whose bytes hold 0x3F in a charset where they are not a substitution (UTF-16)", () => {
    expect(encodeText("\u4f3f?a", "utf-16le")).toEqual(Buffer.from([0x3f, 0x4f, 0x3f, 0x00, 0x61, 0x00]));
    expect(encodeText("\u3f3f", "utf-16be")).toEqual(Buffer.from([0x3f, 0x3f]));
    expect(decodeText(encodeText("\u3f3f\u4f3f?", "utf-16le"), "utf-16le")).toBe("\u3f3f\u4f3f?");
  });

  it("decodes UTF-8 with U+FFFD for malformed bytes, and Latin-1 byte for byte", () => {
    expect(decodeText(Buffer.from([0x61, 0xe9, 0x62]), "utf-8")).toBe("a\ufffdb");
    expect(decodeText(Buffer.from([0x61, 0xe9]), "iso-8859-1")).toBe("a\u00e9");
    expect(decodeText(Buffer.from([0xd0, 0xd4]), "koi8-r")).toBe("\u043f\u0442");
    // A view into a larger buffer decodes only its own bytes.
    const big = Buffer.from("xx\u00e9yy", "utf8");
    expect(decodeText(big.subarray(2, 4), "utf-8")).toBe("\u00e9");
    expect(decodeText(big.subarray(2, 4), "latin1")).toBe("\u00c3\u00a9");
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
