import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EncodingError } from "../../../src/errors.js";
import { decodeWords, encodeUtf8Range, encodeWords } from "../../../src/mime/encoding/encoded-word.js";
import type { EncodedWordContext } from "../../../src/mime/encoding/encoded-word.js";
import { unicodeStringArb } from "./helpers.js";

// encodeUtf8Range encodes a range of a string that the caller has checked, without copying
// it: the words must be those encodeWords makes of the same text sliced out.
const contextArb = fc.constantFrom<EncodedWordContext>("text", "phrase", "comment");

/** A string and a range of it that starts and ends between whole characters, not empty. */
const rangeArb = fc
  .tuple(unicodeStringArb(40), fc.oneof(unicodeStringArb(60), fc.constantFrom("x".repeat(80), "\u00e9".repeat(30), "a b_c=d?e".repeat(8))), unicodeStringArb(40))
  .filter(([, middle]) => middle.length > 0);

describe("encodeUtf8Range", () => {
  it("gives the words encodeWords gives for the slice, for Q and B, one word and several", () => {
    const text = "before caf\u00e9 au lait \u65e5\u672c\u8a9e after";
    const from = text.indexOf("caf");
    const to = text.indexOf(" after");
    expect(encodeUtf8Range(text, from, text.indexOf(" \u65e5"), "text", 75)).toEqual(["=?utf-8?Q?caf=C3=A9_au_lait?="]);
    expect(encodeUtf8Range(text, text.indexOf("\u65e5"), to, "text", 75)).toEqual(["=?utf-8?B?5pel5pys6Kqe?="]);
    // A long run: B through Buffer (more than 24 bytes), cut into words of at most 30.
    const long = `xx${"\u65e5".repeat(20)}yy`;
    const words = encodeUtf8Range(long, 2, 22, "text", 30, 20);
    expect(words).toEqual(encodeWords("\u65e5".repeat(20), { charset: "utf-8", context: "text", maxLength: 30, firstMaxLength: 20 }));
    expect(words[0]!.length).toBeLessThanOrEqual(20);
    for (const word of words) expect(word.length).toBeLessThanOrEqual(30);
    expect(decodeWords(words.join(" "))).toBe("\u65e5".repeat(20));
  });

  it("reads only its range: the characters around it do not change the words", () => {
    const middle = "\u00e9t\u00e9 \u{1f600} ok";
    for (const [before, after] of [["", ""], ["\u{1f600}", "\u{1f600}"], ["x".repeat(100), "\u00e9".repeat(100)]] as const) {
      const text = before + middle + after;
      expect(encodeUtf8Range(text, before.length, before.length + middle.length, "phrase", 40)).toEqual(
        encodeWords(middle, { charset: "utf-8", context: "phrase", maxLength: 40 }),
      );
    }
  });

  it("throws EncodingError as encodeWords does when a character fits in no word", () => {
    const error = (() => {
      try {
        encodeUtf8Range("ab\u{1f600}", 2, 4, "text", 16);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(EncodingError);
    expect(() => encodeWords("\u{1f600}", { charset: "utf-8", context: "text", maxLength: 16 })).toThrow((error as Error).message);
  });

  it("property: equals encodeWords of the slice, in every context and width", () => {
    fc.assert(
      fc.property(rangeArb, contextArb, fc.integer({ min: 24, max: 75 }), fc.integer({ min: 13, max: 75 }), ([before, middle, after], context, maxLength, firstMaxLength) => {
        const text = before + middle + after;
        const options = { charset: "utf-8", context, maxLength, firstMaxLength };
        let expected: string[] | Error;
        try {
          expected = encodeWords(middle, options);
        } catch (e) {
          expected = e as Error;
        }
        if (expected instanceof Error) {
          expect(() => encodeUtf8Range(text, before.length, before.length + middle.length, context, maxLength, firstMaxLength)).toThrow(expected.message);
        } else {
          expect(encodeUtf8Range(text, before.length, before.length + middle.length, context, maxLength, firstMaxLength)).toEqual(expected);
        }
      }),
      { numRuns: 300 },
    );
  });
});
