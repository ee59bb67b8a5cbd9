import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeInPieces, encodeText } from "../../../src/mime/encoding/charset.js";
import { BYTE_CLASS, Q_COMMENT, Q_PHRASE, Q_TEXT } from "../../../src/mime/encoding/byte-classes.js";
import { decodeWords, encodeWords, needsEncoding } from "../../../src/mime/encoding/encoded-word.js";
import type { EncodedWordContext } from "../../../src/mime/encoding/encoded-word.js";
import { EncodingError } from "../../../src/errors.js";
import { POOLS } from "./charset-pools.js";
import { unicodeCharArb, unicodeStringArb } from "./helpers.js";

const contextArb = fc.constantFrom<EncodedWordContext>("text", "phrase", "comment");
const WORD = /^=\?([^?\s]+)\?([BQ])\?([^?\s]*)\?=$/;

function checkWords(words: string[], text: string, maxLength: number, context: EncodedWordContext): void {
  for (const word of words) {
    expect(word.length).toBeLessThanOrEqual(maxLength);
    const m = WORD.exec(word);
    expect(m, word).not.toBeNull();
    if (m![2] === "Q") {
      const allowed = context === "phrase" ? /^[A-Za-z0-9!*+\-/=_]*$/ : context === "comment" ? /^[!#-'*-<>@-[\]-~=_]*$/ : /^[!-<>@-^`-~=_]*$/;
      expect(m![3]).toMatch(allowed);
    }
  }
  // Together they decode to the text, and each word decodes on its own.
  expect(decodeWords(words.join(" "))).toBe(text);
  expect(words.map((w) => decodeWords(w)).join("")).toBe(text);
}

describe("encodeWords", () => {
  it("uses Q when it is shorter, with _ for space and only safe characters raw", () => {
    expect(encodeWords("Keld J\u00f8rn Simonsen", { charset: "iso-8859-1", context: "phrase" })).toEqual([
      "=?iso-8859-1?Q?Keld_J=F8rn_Simonsen?=",
    ]);
    expect(encodeWords("Andr\u00e9", { charset: "ISO-8859-1", context: "text" })).toEqual(["=?iso-8859-1?Q?Andr=E9?="]);
    expect(encodeWords("a.b(c)? x", { context: "text" })).toEqual(["=?utf-8?Q?a.b(c)=3F_x?="]);
    expect(encodeWords("a=b_c d", { context: "text" })).toEqual(["=?utf-8?Q?a=3Db=5Fc_d?="]);
    expect(encodeWords("Dr. (Mr) Smith", { context: "comment" })).toEqual(["=?utf-8?Q?Dr._=28Mr=29_Smith?="]);
    expect(encodeWords("Dr. (Mr) Smith", { context: "phrase" })).toEqual(["=?utf-8?Q?Dr=2E_=28Mr=29_Smith?="]);
  });

  it("uses B when it is shorter", () => {
    expect(encodeWords("\u65e5\u672c\u8a9e", { context: "text" })).toEqual(["=?utf-8?B?5pel5pys6Kqe?="]);
  });

  it("gives no words for empty text", () => {
    expect(encodeWords("", { context: "text" })).toEqual([]);
  });

  it("splits long text into words of at most 75 characters without splitting a character", () => {
    const text = "\u{1f600}".repeat(40);
    const words = encodeWords(text, { context: "text" });
    expect(words.length).toBeGreaterThan(1);
    checkWords(words, text, 75, "text");
  });

  it("makes each ISO-2022-JP word self-contained, starting and ending in ASCII", () => {
    const text = "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002".repeat(4);
    const words = encodeWords(text, { charset: "iso-2022-jp", context: "text" });
    expect(words.length).toBeGreaterThan(1);
    for (const word of words) {
      expect(word.startsWith("=?iso-2022-jp?B?")).toBe(true);
      const bytes = Buffer.from(WORD.exec(word)![3]!, "base64").toString("latin1");
      expect(bytes.startsWith("\x1b$B")).toBe(true);
      expect(bytes.endsWith("\x1b(B")).toBe(true);
    }
    checkWords(words, text, 75, "text");
  });

  it("throws EncodingError for a lone surrogate, an unrepresentable character or a tiny maxLength", () => {
    expect(() => encodeWords("a\ud800", { context: "text" })).toThrow(EncodingError);
    expect(() => encodeWords("\u20ac", { context: "text", charset: "iso-8859-1" })).toThrow(EncodingError);
    expect(() => encodeWords("abc", { context: "text", maxLength: 12 })).toThrow(EncodingError);
    expect(() => encodeWords("\u{1f600}", { context: "text", maxLength: 19 })).toThrow(EncodingError);
  });

  it("produces words of at most maxLength that decode back, for any Unicode text", () => {
    fc.assert(
      fc.property(unicodeStringArb(120), contextArb, fc.integer({ min: 26, max: 75 }), (text, context, maxLength) => {
        checkWords(encodeWords(text, { context, maxLength }), text, maxLength, context);
      }),
      { numRuns: 200 },
    );
  });

  for (const [charset, pool] of Object.entries(POOLS)) {
    it(`round-trips text in the repertoire of ${charset}`, () => {
      fc.assert(
        fc.property(fc.array(fc.constantFrom(...pool), { maxLength: 60, size: "max" }), contextArb, (chars, context) => {
          const text = chars.join("");
          const words = encodeWords(text, { charset, context });
          expect(words.every((w) => w.startsWith(`=?${charset}?`))).toBe(true);
          checkWords(words, text, 75, context);
        }),
        { numRuns: 60 },
      );
    });
  }
});

describe("decodeWords", () => {
  it("decodes the RFC 2047 §8 examples", () => {
    const cases: Array<[string, string]> = [
      ["=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>"],
      ["=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>", "Keld J\u00f8rn Simonsen <keld@dkuug.dk>"],
      ["=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>", "Andr\u00e9 Pirard <PIRARD@vm1.ulg.ac.be>"],
      [
        "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
        "If you can read this you understand the example.",
      ],
      ["(=?ISO-8859-1?Q?a?=)", "(a)"],
      ["(=?ISO-8859-1?Q?a?= b)", "(a b)"],
      ["(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"],
      ["(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"],
      ["(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"],
      ["(=?ISO-8859-1?Q?a_b?=)", "(a b)"],
      ["(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"],
    ];
    for (const [encoded, decoded] of cases) expect(decodeWords(encoded)).toBe(decoded);
  });

  it("is tolerant: lower-case b/q, language suffix, no padding, split characters, unknown charsets", () => {
    expect(decodeWords("=?utf-8?b?w6k?=")).toBe("\u00e9");
    expect(decodeWords("=?UTF-8*en?q?caf=c3=a9?=")).toBe("caf\u00e9");
    expect(decodeWords("=?utf-8?Q?=C3?= =?utf-8?Q?=A9?=")).toBe("\u00e9");
    expect(decodeWords("=?x-unknown?Q?abc?= =?utf-8?Q?d?=")).toBe("=?x-unknown?Q?abc?= d");
    expect(decodeWords("not =? an ?= encoded word =?utf-8?Q?a b?=")).toBe("not =? an ?= encoded word =?utf-8?Q?a b?=");
    expect(decodeWords("plain text")).toBe("plain text");
    expect(decodeWords("x=?utf-8?Q?y?=z")).toBe("xyz");
  });
});

describe("needsEncoding", () => {
  it("flags non-ASCII, control characters and encoded-word look-alikes", () => {
    expect(needsEncoding("hello")).toBe(false);
    expect(needsEncoding("a=b?c")).toBe(false);
    expect(needsEncoding("caf\u00e9")).toBe(true);
    expect(needsEncoding("bell\u0007")).toBe(true);
    expect(needsEncoding("=?utf-8?Q?x?=")).toBe(true);
  });
});

describe("encodeWords cuts UTF-8, US-ASCII and Latin-1 in the bytes as character by character", () => {
  // The character-by-character cut (encodeInPieces), as encodeWords made it for every charset.
  const SAFE = { text: Q_TEXT, phrase: Q_PHRASE, comment: Q_COMMENT };
  const qWidth = (bytes: Uint8Array, safe: number) => bytes.reduce((w, b) => w + ((BYTE_CLASS[b]! & safe) !== 0 || b === 0x20 ? 1 : 3), 0);
  const b64 = (n: number) => Math.ceil(n / 3) * 4;
  function byCharacter(text: string, charset: string, context: EncodedWordContext, maxLength: number, firstMaxLength: number | undefined): string[] | string {
    try {
      if (text === "") return [];
      const safe = SAFE[context];
      const budget = maxLength - charset.length - 7;
      const whole = encodeText(text, charset);
      const useQ = qWidth(whole, safe) <= b64(whole.length);
      const split = (first: number) =>
        useQ
          ? encodeInPieces(text, charset, (b) => qWidth(b, safe), (w, i) => w <= (i === 0 ? first : budget))
          : encodeInPieces(text, charset, (b) => b.length, (c, i) => b64(c) <= (i === 0 ? first : budget));
      const firstBudget = Math.min(firstMaxLength ?? maxLength, maxLength) - charset.length - 7;
      let pieces: Buffer[] | undefined;
      if (firstBudget < budget && firstBudget >= 4) {
        try {
          pieces = split(firstBudget);
        } catch (error) {
          if (!(error instanceof EncodingError)) throw error;
        }
      }
      pieces ??= split(budget);
      return pieces.map((p) => {
        if (!useQ) return `=?${charset}?B?${p.toString("base64")}?=`;
        let q = "";
        for (const b of p) q += (BYTE_CLASS[b]! & safe) !== 0 ? String.fromCharCode(b) : b === 0x20 ? "_" : `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
        return `=?${charset}?Q?${q}?=`;
      });
    } catch (error) {
      return (error as Error).message;
    }
  }
  const run = (text: string, charset: string, context: EncodedWordContext, maxLength: number, firstMaxLength: number | undefined): string[] | string => {
    try {
      return encodeWords(text, { charset, context, maxLength, firstMaxLength });
    } catch (error) {
      return (error as Error).message;
    }
  };
  // From the shortest word that holds any text in these charsets.
  it("a long word (a caller's maxLength past RFC 2047's) is encoded whole", () => {
    const text = "Квартальный отчёт ".repeat(12);
    expect(run(text, "utf-8", "text", 800, undefined)).toEqual(byCharacter(text, "utf-8", "text", 800, undefined));
    expect(decodeWords((run(text, "utf-8", "text", 800, undefined) as string[]).join(" "))).toBe(text);
  });

  const lengths = fc.tuple(fc.oneof(fc.integer({ min: 21, max: 80 }), fc.integer({ min: 21, max: 800 })), fc.option(fc.integer({ min: 0, max: 800 }), { nil: undefined }));

  it.each([
    ["utf-8", fc.oneof(unicodeStringArb(80), fc.string({ unit: unicodeCharArb, minLength: 60, maxLength: 200 }))],
    ["us-ascii", fc.string({ unit: "binary-ascii", maxLength: 120 })],
    ["iso-8859-1", fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 120 })],
  ] as const)("%s", (charset, texts) => {
    fc.assert(
      fc.property(texts, contextArb, lengths, (text, context, [maxLength, first]) => {
        expect(run(text, charset, context, maxLength, first)).toEqual(byCharacter(text, charset, context, maxLength, first));
      }),
      { numRuns: 500 },
    );
  });
});

describe("encodeWords at the length bounds (RFC 2047 §2: 75 characters)", () => {
  it("fills Q words to exactly maxLength, never past it", () => {
    // "=?utf-8?Q?" and "?=" take 12 characters: 63 are left for the text.
    const words = encodeWords(`${"a".repeat(130)}\u00e9`, { context: "text" });
    expect(words).toEqual([`=?utf-8?Q?${"a".repeat(63)}?=`, `=?utf-8?Q?${"a".repeat(63)}?=`, "=?utf-8?Q?aaaa=C3=A9?="]);
    expect(words.map((w) => w.length)).toEqual([75, 75, 22]);
  });

  it("keeps an escape whole: it goes to the next word when only part of it would fit", () => {
    expect(encodeWords(`${"a".repeat(61)}\u00e9`, { context: "text" })).toEqual([`=?utf-8?Q?${"a".repeat(61)}?=`, "=?utf-8?Q?=C3=A9?="]);
  });

  it("fills B words with as many whole characters as fit", () => {
    // At maxLength 72 the text may take 60 base64 characters: 45 bytes, so 11 four-byte characters.
    const words = encodeWords("\u{1f600}".repeat(23), { context: "text", maxLength: 72 });
    expect(words.map((w) => Buffer.from(WORD.exec(w)![3]!, "base64").length)).toEqual([44, 44, 4]);
    expect(words[0]).toHaveLength(72);
  });

  it("the smallest maxLength that holds a character works; one less throws", () => {
    expect(encodeWords("a", { context: "text", maxLength: 16 })).toEqual(["=?utf-8?Q?a?="]);
    expect(encodeWords("\u65e5", { context: "text", maxLength: 16 })).toEqual(["=?utf-8?B?5pel?="]);
    expect(() => encodeWords("a", { context: "text", maxLength: 15 })).toThrow(
      new EncodingError("An encoded-word of at most 15 characters cannot hold any text in utf-8"),
    );
    expect(() => encodeWords("a", { context: "text", maxLength: 17, charset: "iso-8859-15" })).toThrow(
      new EncodingError("An encoded-word of at most 17 characters cannot hold any text in iso-8859-15"),
    );
  });

  it("empty text gives no words whatever the maxLength", () => {
    expect(encodeWords("", { context: "phrase", maxLength: 5 })).toEqual([]);
  });
});

describe("needsEncoding, character by character", () => {
  it.each([
    ["a b", false],
    ["a\tb", false],
    ["~", false],
    ["a\x7f", true],
    ["\x1f", true],
    ["\x80", true],
    ["a\rb", true],
  ])("%j → %s", (word, expected) => {
    expect(needsEncoding(word)).toBe(expected);
  });

  it.each([
    ["=?", false],
    ["=?=", false],
    ["?==?", false],
    ["a?=b", false],
    ["=?abc", false],
    ["x=?y?=", true],
    ["=??=", true],
    ["ab?=", false],
  ])("an encoded-word look-alike %j → %s", (word, expected) => {
    expect(needsEncoding(word)).toBe(expected);
  });
});

describe("decodeWords: what is a word", () => {
  it.each([
    ["no second ?", "=?utf-8"],
    ["an empty charset", "=??Q?a?="],
    ["an unknown encoding", "=?utf-8?X?a?="],
    ["no ? after the encoding", "=?utf-8?Qa?="],
    ["no end", "=?utf-8?Q?abc"],
    ["a ? inside the text", "=?utf-8?Q?a?b?="],
    ["a tab in the text", "=?utf-8?Q?a\tb?="],
    ["a CR in the text", "=?utf-8?Q?a\rb?="],
    ["a bare LF in the text", "=?utf-8?Q?a\nb?="],
    ["a space after the charset", "=?utf-8 ?Q?a?="],
    ["a tab before the charset", "=?\tutf-8?Q?a?="],
    ["no =? before the charset", "xyutf-8?Q?a?="],
    ["an unterminated =? after text that starts like an encoding", "Q??= =?utf-8"],
  ])("%s is not one", (_name, value) => {
    expect(decodeWords(value)).toBe(value);
  });

  it("a malformed start does not hide a word that begins inside it", () => {
    expect(decodeWords("=??Q?x?=?utf-8?Q?a?=")).toBe("=??Q?x?a");
    expect(decodeWords("=?a b?Q?x?=?utf-8?Q?c?=")).toBe("=?a b?Q?x?c");
    // A charset label of up to 78 characters is read (and, unknown, kept as it is); a longer one is not a word at all.
    const label78 = "x".repeat(78);
    expect(decodeWords(`=?${label78}?Q?x?=?utf-8?Q?a?=`)).toBe(`=?${label78}?Q?x?=?utf-8?Q?a?=`);
    const label79 = "x".repeat(79);
    expect(decodeWords(`=?${label79}?Q?x?=?utf-8?Q?a?=`)).toBe(`=?${label79}?Q?x?a`);
  });

  it("keeps an = in Q text that is not followed by two hex digits", () => {
    expect(decodeWords("=?utf-8?Q?=G1=1G=4?=")).toBe("=G1=1G=4");
    expect(decodeWords("=?utf-8?Q?=41=4a=09=0A?=")).toBe("AJ\t\n");
  });

  it("reads raw 8-bit characters in Q text as bytes of the word's charset, and others as UTF-8", () => {
    expect(decodeWords("=?iso-8859-1?Q?caf\u00e9_\u00ff?=")).toBe("caf\u00e9 \u00ff");
    expect(decodeWords("=?utf-8?Q?\u20ac?=")).toBe("\u20ac");
  });
});

describe("decodeWords: between words", () => {
  it("keeps text and white space before the first word and between words that are not adjacent", () => {
    expect(decodeWords("  =?utf-8?Q?a?=")).toBe("  a");
    expect(decodeWords("=?utf-8?Q?a?= and =?utf-8?Q?b?=")).toBe("a and b");
    expect(decodeWords("=?utf-8?Q?a?= \t =?utf-8?Q?b?= c")).toBe("ab c");
  });

  it("decodes each run of adjacent words in its own charset", () => {
    expect(decodeWords("=?iso-8859-1?Q?=E9?= =?koi8-r?Q?=F0?=")).toBe("\u00e9\u041f");
    expect(decodeWords("=?koi8-r?Q?=F0?= =?iso-8859-1?Q?=E9?= =?iso-8859-1?Q?=E9?=")).toBe("\u041f\u00e9\u00e9");
  });

  it("unfolds first: a CRLF or bare LF before white space goes, any other line break stays", () => {
    expect(decodeWords("=?utf-8?Q?a?=\r\n b")).toBe("a b");
    expect(decodeWords("=?utf-8?Q?a?=\r\n\tb")).toBe("a\tb");
    expect(decodeWords("=?utf-8?Q?a?=\n b")).toBe("a b");
    expect(decodeWords("=?utf-8?Q?a?=\n\tb")).toBe("a\tb");
    expect(decodeWords("=?utf-8?Q?a?=\r\nb")).toBe("a\r\nb");
    expect(decodeWords("=?utf-8?Q?a?=\nb")).toBe("a\nb");
    expect(decodeWords("=?utf-8?Q?a?=\r b")).toBe("a\r b");
    expect(decodeWords("x\n\r\n y")).toBe("x\n y");
    expect(decodeWords("x\r\r\n y")).toBe("x\r y");
    expect(decodeWords("x\r  y\n z")).toBe("x\r  y z");
    expect(decodeWords("a b\n c")).toBe("a b c");
  });
});


// B text longer than one word is cut in its UTF-8 bytes: each word's room is whole groups of
// 3 bytes, moved back to the first byte of a character. A word of 3 bytes (the first, given a
// first word of 16 to 19 characters) cannot hold a character of 4, and then the first word
// is as long as the others, exactly when the character-by-character cut gave up on it.
describe("B cut in the bytes", () => {
  const text = (s: string, options: Partial<{ maxLength: number; firstMaxLength: number }>): string[] => encodeWords(s, { context: "text", ...options });

  it("a short first word of 3 bytes keeps what fits, up to a character of 3 bytes after it", () => {
    expect(text("a中", { firstMaxLength: 16 })).toEqual(["=?utf-8?B?YQ==?=", "=?utf-8?B?5Lit?="]);
    expect(text("a中", { firstMaxLength: 15 })).toEqual(["=?utf-8?B?YeS4rQ==?="]);
  });

  it("falls back to full size when a character of 4 bytes comes first or right after the first word", () => {
    expect(text("a😀", { firstMaxLength: 16 })).toEqual(["=?utf-8?B?YfCfmIA=?="]);
    expect(text("a😀", { firstMaxLength: 19 })).toEqual(["=?utf-8?B?YfCfmIA=?="]);
    expect(text("😀a", { firstMaxLength: 16 })).toEqual(["=?utf-8?B?8J+YgGE=?="]);
  });

  it("a first word of 6 bytes or more holds a character of 4 in the next word", () => {
    expect(text("abcd😀", { firstMaxLength: 20 })).toEqual(["=?utf-8?B?YWJjZA==?=", "=?utf-8?B?8J+YgA==?="]);
  });

  it("words of 3 bytes refuse a character of 4", () => {
    const error = (() => {
      try {
        text("a😀", { maxLength: 19 });
      } catch (e) {
        return e as Error;
      }
      throw new Error("no error");
    })();
    expect(error).toBeInstanceOf(EncodingError);
    expect(error.message).toBe('The character U+1F600 "😀" does not fit in one piece once encoded in utf-8');
  });

  it("Q of a character of two bytes, at both ends of their range", () => {
    expect(text("abcdefghijklmnop\u0080\u07ff", {})).toEqual(["=?utf-8?Q?abcdefghijklmnop=C2=80=DF=BF?="]);
    expect(text("abcdefghijklmnopqrst\u0800", {})).toEqual(["=?utf-8?Q?abcdefghijklmnopqrst=E0=A0=80?="]);
    expect(text("abcdefghijklmnopqr?_ \u007f", {})).toEqual(["=?utf-8?Q?abcdefghijklmnopqr=3F=5F_=7F?="]);
  });
});
