import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EncodingError } from "../../../src/errors.js";
import { decodeWords, encodeUtf8Text, encodeWords } from "../../../src/mime/encoding/encoded-word.js";
import { unicodeStringArb } from "./helpers.js";

// encodeUtf8Text encodes a range of unstructured text that the caller has checked, without
// copying it: the words must be those encodeWords makes of the same text sliced out.
const words = (text: string, maxLength: number, firstMaxLength = maxLength) =>
  encodeWords(text, { charset: "utf-8", context: "text", maxLength, firstMaxLength });

/** A string and a range of it that starts and ends between whole characters, not empty. */
const rangeArb = fc
  .tuple(unicodeStringArb(40), fc.oneof(unicodeStringArb(60), fc.constantFrom("x".repeat(80), "\u00e9".repeat(30), "a b_c=d?e".repeat(8))), unicodeStringArb(40))
  .filter(([, middle]) => middle.length > 0);

describe("encodeUtf8Text", () => {
  it("gives the words encodeWords gives for the slice, for Q and B, one word and several", () => {
    const text = "before caf\u00e9 au lait \u65e5\u672c\u8a9e after";
    const from = text.indexOf("caf");
    const to = text.indexOf(" after");
    expect(encodeUtf8Text(text, from, text.indexOf(" \u65e5"), 75, 75)).toEqual(["=?utf-8?Q?caf=C3=A9_au_lait?="]);
    expect(encodeUtf8Text(text, text.indexOf("\u65e5"), to, 75, 75)).toEqual(["=?utf-8?B?5pel5pys6Kqe?="]);
    // A long run: B through Buffer (more than 24 bytes), cut into words of at most 30, the first at most 20.
    const long = `xx${"\u65e5".repeat(20)}yy`;
    const cut = encodeUtf8Text(long, 2, 22, 30, 20);
    expect(cut).toEqual(words("\u65e5".repeat(20), 30, 20));
    expect(cut[0]!.length).toBeLessThanOrEqual(20);
    for (const word of cut) expect(word.length).toBeLessThanOrEqual(30);
    expect(decodeWords(cut.join(" "))).toBe("\u65e5".repeat(20));
  });

  it("reads only its range: the characters around it do not change the words", () => {
    const middle = "\u00e9t\u00e9 \u{1f600} ok";
    for (const [before, after] of [["", ""], ["\u{1f600}", "\u{1f600}"], ["x".repeat(100), "\u00e9".repeat(100)]] as const) {
      const text = before + middle + after;
      expect(encodeUtf8Text(text, before.length, before.length + middle.length, 40, 40)).toEqual(words(middle, 40));
      expect(encodeUtf8Text(text, before.length, before.length + middle.length, 40, 25)).toEqual(words(middle, 40, 25));
    }
  });

  it("throws EncodingError as encodeWords does when a character fits in no word", () => {
    expect(() => encodeUtf8Text("ab\u{1f600}", 2, 4, 16, 16)).toThrow(EncodingError);
    expect(() => encodeUtf8Text("ab\u{1f600}", 2, 4, 16, 16)).toThrow('The character U+1F600 "\u{1f600}" does not fit in one piece once encoded in utf-8');
    expect(() => words("\u{1f600}", 16)).toThrow('The character U+1F600 "\u{1f600}" does not fit in one piece once encoded in utf-8');
  });

  it("property: equals encodeWords of the slice, whatever the widths and the text around the range", () => {
    fc.assert(
      fc.property(rangeArb, fc.integer({ min: 24, max: 75 }), fc.integer({ min: 13, max: 75 }), ([before, middle, after], maxLength, firstMaxLength) => {
        const text = before + middle + after;
        const range = () => encodeUtf8Text(text, before.length, before.length + middle.length, maxLength, firstMaxLength);
        let expected: string[] | Error;
        try {
          expected = words(middle, maxLength, firstMaxLength);
        } catch (e) {
          expected = e as Error;
        }
        if (expected instanceof Error) expect(range).toThrow(expected.message);
        else expect(range()).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});
