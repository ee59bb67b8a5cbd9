import fc from "fast-check";
import iconv from "iconv-lite";
import { describe, expect, it } from "vitest";
import { EncodingError } from "../../../src/errors.js";
import { BYTE_CLASS, Q_PHRASE, Q_TEXT } from "../../../src/mime/encoding/byte-classes.js";
import { decodeWords, encodeUtf8Text, encodeWords } from "../../../src/mime/encoding/encoded-word.js";

// The cuts of the RFC 2047 encoder checked against a plain model of RFC 2047 §2 and §5:
// characters one by one, each word the longest run of whole characters whose encoded text
// fits (the first word in `firstMaxLength`), B or Q for the whole text (Q on a tie), and a
// short first word given up when a character does not fit it.

const encodeChar = (ch: string, charset: string): Buffer => (charset === "utf-8" ? Buffer.from(ch, "utf8") : iconv.encode(ch, charset));

function qOf(bytes: Uint8Array, safe: number): string {
  let out = "";
  for (const b of bytes) out += (BYTE_CLASS[b]! & safe) !== 0 ? String.fromCharCode(b) : b === 0x20 ? "_" : `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}

function modelWords(text: string, charset: string, safe: number, maxLength: number, firstMaxLength: number): string[] {
  const chars = [...text].map((ch) => encodeChar(ch, charset));
  const all = Buffer.concat(chars);
  const useQ = qOf(all, safe).length <= Math.ceil(all.length / 3) * 4;
  const width = (bytes: Buffer[]): number => {
    const joined = Buffer.concat(bytes);
    return useQ ? qOf(joined, safe).length : Math.ceil(joined.length / 3) * 4;
  };
  const budget = maxLength - charset.length - 7;
  const firstBudget = Math.min(firstMaxLength, maxLength) - charset.length - 7;
  const cut = (first: number): Buffer[][] | undefined => {
    const words: Buffer[][] = [];
    let current: Buffer[] = [];
    for (const ch of chars) {
      const room = words.length === 0 ? first : budget;
      if (width([ch]) > room) return undefined;
      if (width([...current, ch]) > room) {
        words.push(current);
        current = [];
      }
      current.push(ch);
    }
    words.push(current);
    return words;
  };
  const pieces = (firstBudget < budget && firstBudget >= 4 ? cut(firstBudget) : undefined) ?? cut(budget);
  if (pieces === undefined) throw new Error("too wide");
  return pieces.map((piece) => {
    const bytes = Buffer.concat(piece);
    return `=?${charset}?${useQ ? "Q" : "B"}?${useQ ? qOf(bytes, safe) : bytes.toString("base64")}?=`;
  });
}

// Characters at every UTF-8 length boundary: U+007F/U+0080 (1|2 octets), U+07FF/U+0800 (2|3),
// U+D7FF and U+E000 around the surrogates (3), U+10000 and U+10FC00 (first and last high
// surrogate, 4), and ASCII that Q keeps, writes as `_`, or escapes (controls below 0x10 as `=0X`).
const boundaryChars = ["a", " ", "=", "?", "_", "\u0001", "\t", "\u007f", "\u0080", "\u00e9", "\u07ff", "\u0800", "\u65e5", "\ud7ff", "\ue000", "\uffff", "\u{10000}", "\u{1f600}", "\u{10fc00}", "\u{10ffff}"];
// Three shapes: any mix (mostly B), short runs (one B word of at most 24 octets, encoded in
// JavaScript), and mostly ASCII with a few wide characters (Q, cut into several words).
const utf8TextArb = fc.oneof(
  fc.array(fc.constantFrom(...boundaryChars), { minLength: 1, maxLength: 40 }),
  fc.array(fc.constantFrom(...boundaryChars), { minLength: 1, maxLength: 6 }),
  fc.array(fc.oneof({ weight: 12, arbitrary: fc.constantFrom("a", "b", " ", "x") }, { weight: 2, arbitrary: fc.constantFrom(...boundaryChars) }), { minLength: 1, maxLength: 60 }),
).map((chars) => chars.join(""));

function tooWide(run: () => unknown): boolean {
  try {
    run();
    return false;
  } catch (error) {
    if (!(error instanceof EncodingError)) throw error;
    return true;
  }
}

describe("encodeWords and encodeUtf8Text cut UTF-8 as the character-by-character model does", () => {
  it("at every word length and first-word length, in text and phrase context", () => {
    fc.assert(
      fc.property(utf8TextArb, fc.integer({ min: 16, max: 40 }), fc.integer({ min: 0, max: 45 }), fc.boolean(), (text, maxLength, firstMaxLength, phrase) => {
        const safe = phrase ? Q_PHRASE : Q_TEXT;
        const options = { context: phrase ? ("phrase" as const) : ("text" as const), maxLength, firstMaxLength };
        let expected: string[] | undefined;
        try {
          expected = modelWords(text, "utf-8", safe, maxLength, firstMaxLength);
        } catch {
          expected = undefined;
        }
        if (expected === undefined) {
          expect(tooWide(() => encodeWords(text, options))).toBe(true);
          if (!phrase) expect(tooWide(() => encodeUtf8Text(`x${text}y`, 1, 1 + text.length, maxLength, firstMaxLength))).toBe(true);
          return;
        }
        expect(encodeWords(text, options)).toEqual(expected);
        if (!phrase) expect(encodeUtf8Text(`\u00e9${text}\u{1f600}`, 1, 1 + text.length, maxLength, firstMaxLength)).toEqual(expected);
        expect(decodeWords(expected.join(" "))).toBe(text);
      }),
      { numRuns: 800 },
    );
  });

  it("each wide character after 0 to 24 ASCII letters (Q, cut where it falls) and repeated (B), at the limits around it", () => {
    const wide = boundaryChars.filter((ch) => ch.codePointAt(0)! >= 0x80);
    const texts = wide.flatMap((ch) => [
      ...Array.from({ length: 25 }, (_, k) => `${"a".repeat(k)}${ch}${"b ".repeat(12)}`),
      ...Array.from({ length: 8 }, (_, r) => ch.repeat(r + 1)),
      `${ch}\u{10000}${ch}\u{10fc00}`,
    ]);
    for (const text of texts) {
      for (const maxLength of [16, 20, 28, 40]) {
        for (const firstMaxLength of [0, 16, 17, 19, 75]) {
          let expected: string[] | undefined;
          try {
            expected = modelWords(text, "utf-8", Q_TEXT, maxLength, firstMaxLength);
          } catch {
            expected = undefined;
          }
          const options = { context: "text" as const, maxLength, firstMaxLength };
          if (expected === undefined) {
            expect(tooWide(() => encodeWords(text, options))).toBe(true);
            expect(tooWide(() => encodeUtf8Text(text, 0, text.length, maxLength, firstMaxLength))).toBe(true);
          } else {
            expect(encodeWords(text, options)).toEqual(expected);
            expect(encodeUtf8Text(text, 0, text.length, maxLength, firstMaxLength)).toEqual(expected);
          }
        }
      }
    }
  });

  it("in one-byte charsets, cut in the bytes (ISO-8859-1, US-ASCII) or character by character (ISO-8859-2, windows-1251)", () => {
    const alphabets: Record<string, string[]> = {
      "iso-8859-1": ["a", " ", "=", "\u00e9", "\u00ff", "_"],
      "us-ascii": ["a", " ", "=", "?", "\u0001"],
      "iso-8859-2": ["a", " ", "=", "\u0159", "\u00e9", "_"],
      "windows-1251": ["a", " ", "\u0436", "\u0416", "?"],
    };
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(alphabets)).chain((charset) => fc.tuple(fc.constant(charset), fc.array(fc.constantFrom(...alphabets[charset]!), { minLength: 1, maxLength: 40 }))),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 0, max: 50 }),
        ([charset, chars], extra, firstMaxLength) => {
          const text = chars.join("");
          const maxLength = charset.length + 7 + 4 + extra * 3;
          const expected = modelWords(text, charset, Q_TEXT, maxLength, firstMaxLength);
          expect(encodeWords(text, { charset, context: "text", maxLength, firstMaxLength })).toEqual(expected);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe("encoded-word limits, byte-exact", () => {
  it("a Q text of exactly the room is one word; one unit more starts a second", () => {
    // 75 = 12 + 63: sixty-three ASCII letters fill a word; the sixty-fourth goes to the next.
    expect(encodeWords(`\u00e9${"a".repeat(57)}`, { context: "text" })).toEqual([`=?utf-8?Q?=C3=A9${"a".repeat(57)}?=`]);
    expect(encodeWords(`\u00e9${"a".repeat(58)}`, { context: "text" })).toEqual([`=?utf-8?Q?=C3=A9${"a".repeat(57)}?=`, "=?utf-8?Q?a?="]);
    // The first word's room: firstMaxLength 20 leaves 8 units, so "=C3=A9ab" and then the rest.
    expect(encodeWords(`\u00e9${"a".repeat(10)}`, { context: "text", firstMaxLength: 20 })).toEqual(["=?utf-8?Q?=C3=A9aa?=", `=?utf-8?Q?${"a".repeat(8)}?=`]);
    expect(encodeWords(`\u00e9${"a".repeat(10)}`, { context: "text", firstMaxLength: 21 })).toEqual(["=?utf-8?Q?=C3=A9aaa?=", `=?utf-8?Q?${"a".repeat(7)}?=`]);
  });

  it("B words hold whole groups of three octets and never split a 2-, 3- or 4-octet character", () => {
    // maxLength 20 leaves 8 characters: 6 octets a word.
    expect(encodeWords("\u65e5\u65e5\u65e5", { context: "text", maxLength: 20 })).toEqual(["=?utf-8?B?5pel5pel?=", "=?utf-8?B?5pel?="]);
    expect(encodeWords("\u{1f600}\u{1f600}", { context: "text", maxLength: 20 })).toEqual(["=?utf-8?B?8J+YgA==?=", "=?utf-8?B?8J+YgA==?="]);
    expect(encodeWords("\u0436\u0436\u0436\u0436", { context: "text", maxLength: 20 })).toEqual(["=?utf-8?B?0LbQttC2?=", "=?utf-8?B?0LY=?="]);
    // A first word of 16 (4 characters, 3 octets) cannot hold U+1F600: every word is full size.
    expect(encodeWords("\u{1f600}\u{1f600}", { context: "text", maxLength: 20, firstMaxLength: 16 })).toEqual(["=?utf-8?B?8J+YgA==?=", "=?utf-8?B?8J+YgA==?="]);
    // Past 24 octets the B text comes from Node's base64; the words are the same.
    const long = "\u65e5".repeat(9);
    expect(encodeWords(long, { context: "text" })).toEqual([`=?utf-8?B?${Buffer.from(long).toString("base64")}?=`]);
    expect(encodeWords("\u65e5".repeat(8), { context: "text" })).toEqual([`=?utf-8?B?${"5pel".repeat(8)}?=`]);
  });

  it("ISO-8859-2 (cut character by character): the first word has its own room, the others the full one", () => {
    // maxLength 40 leaves 23 characters of Q text, firstMaxLength 30 leaves 13.
    const text = `\u0159${"a".repeat(29)}`;
    const expected = ["=?iso-8859-2?Q?=F8aaaaaaaaaa?=", `=?iso-8859-2?Q?${"a".repeat(19)}?=`];
    expect(modelWords(text, "iso-8859-2", Q_TEXT, 40, 30)).toEqual(expected);
    expect(encodeWords(text, { context: "text", charset: "iso-8859-2", maxLength: 40, firstMaxLength: 30 })).toEqual(expected);
  });

  it("ISO-2022-JP: a first word too short for the first character is as long as the others", () => {
    // Each word is encoded on its own (ESC $ B ... ESC ( B), so one kanji is 8 bytes, 12 of B text:
    // a first word of 29 leaves 11 and cannot hold it; 30 leaves 12 and holds exactly one.
    const full = encodeWords("\u65e5\u672c\u8a9e", { context: "text", charset: "iso-2022-jp", maxLength: 40 });
    expect(full).toEqual(["=?iso-2022-jp?B?GyRCRnxLXDhsGyhC?="]);
    expect(encodeWords("\u65e5\u672c\u8a9e", { context: "text", charset: "iso-2022-jp", maxLength: 40, firstMaxLength: 29 })).toEqual(full);
    expect(encodeWords("\u65e5\u672c\u8a9e", { context: "text", charset: "iso-2022-jp", maxLength: 40, firstMaxLength: 30 })).toEqual([
      "=?iso-2022-jp?B?GyRCRnwbKEI=?=",
      "=?iso-2022-jp?B?GyRCS1w4bBsoQg==?=",
    ]);
  });

  it("a character wider than any word is refused by name, and a lone surrogate names the text", () => {
    expect(() => encodeWords("\u{1f600}", { context: "text", maxLength: 16 })).toThrow("The character U+1F600 \"\u{1f600}\" does not fit in one piece once encoded in utf-8");
    expect(() => encodeWords("\u65e5", { context: "text", charset: "iso-2022-jp", maxLength: 29 })).toThrow(/^The character U\+65E5 "\u65e5" does not fit/);
    // One more character of room (12 of B text) holds the escapes and the character's two bytes.
    expect(encodeWords("\u65e5", { context: "text", charset: "iso-2022-jp", maxLength: 30 })).toEqual(["=?iso-2022-jp?B?GyRCRnwbKEI=?="]);
    expect(() => encodeWords("a\ud800b", { context: "text" })).toThrow(/^Text contains a lone surrogate \(U\+D800 at index 1\)/);
  });
});
