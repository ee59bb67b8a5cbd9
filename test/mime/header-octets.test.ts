import { describe, expect, it } from "vitest";
import { decodeWords } from "../../src/mime/encoding/encoded-word.js";
import { renderHeader, unfold } from "../../src/mime/headers.js";

// Lines are measured in octets (RFC 5322 §2.1.1, RFC 6532 §3.4 for UTF-8 headers): each
// width of UTF-8 character at the 78 and 998 boundaries, and the limits on plain words in
// unstructured text. Byte-exact.
const ascii = { utf8: false, charset: "utf-8" };
const utf8 = { utf8: true, charset: "utf-8" };
const x = (n: number) => "x".repeat(n);
const lineOctets = (rendered: string) => rendered.slice(0, -2).split("\r\n").map((l) => Buffer.byteLength(l));

/** Characters at each end of each UTF-8 width (U+0080..U+009F are controls, encoded in unstructured text). */
const WIDTHS: [string, number][] = [
  ["\u0080", 2],
  ["\u00a0", 2],
  ["\u07ff", 2],
  ["\u0800", 3],
  ["\ud7ff", 3],
  ["\ue000", 3],
  ["\uffff", 3],
  ["\u{10000}", 4],
  ["\u{10ffff}", 4],
];

describe("UTF-8 headers count each character's octets", () => {
  it("a structured line of exactly 78 octets stays whole; 79 folds", () => {
    // "References: " is 12, "xxxxxxxxxx " 11: the second word has 55 octets to fill.
    for (const [ch, width] of WIDTHS) {
      const count = Math.floor(54 / width);
      const word = ch.repeat(count) + x(55 - count * width);
      expect(Buffer.byteLength(word)).toBe(55);
      expect(renderHeader("References", `${x(10)} ${word}`, utf8), `U+${ch.codePointAt(0)!.toString(16)}`).toBe(`References: ${x(10)} ${word}\r\n`);
      expect(renderHeader("References", `${x(10)} ${word}y`, utf8), `U+${ch.codePointAt(0)!.toString(16)}`).toBe(`References: ${x(10)}\r\n ${word}y\r\n`);
    }
  });

  it("an unstructured line of exactly 78 octets stays whole; 79 folds", () => {
    // "Subject: " is 9, "xxxxxxxxxx " 11: 58 octets to fill.
    for (const [ch, width] of WIDTHS.slice(1)) {
      const count = Math.floor(57 / width);
      const word = ch.repeat(count) + x(58 - count * width);
      expect(renderHeader("Subject", `${x(10)} ${word}`, utf8), `U+${ch.codePointAt(0)!.toString(16)}`).toBe(`Subject: ${x(10)} ${word}\r\n`);
      expect(renderHeader("Subject", `${x(10)} ${word}y`, utf8), `U+${ch.codePointAt(0)!.toString(16)}`).toBe(`Subject: ${x(10)}\r\n ${word}y\r\n`);
    }
  });

  it("a structured word of 997 octets fits a continuation line; 998 is refused, whatever the characters' widths", () => {
    for (const [ch, width] of WIDTHS) {
      const count = Math.floor(990 / width);
      const word = ch.repeat(count) + x(997 - count * width);
      const rendered = renderHeader("References", `<a> ${word}`, utf8);
      expect(rendered).toBe(`References: <a>\r\n ${word}\r\n`);
      expect(lineOctets(rendered)).toEqual([15, 998]);
      expect(() => renderHeader("References", `<a> ${word}y`, utf8), `U+${ch.codePointAt(0)!.toString(16)}`).toThrow(
        "References cannot be folded into lines of at most 998 octets: it has a word of 999 octets with no white space to fold at",
      );
    }
  });

  it("names the octets of a word that does not fit on the name's line either", () => {
    expect(() => renderHeader("References", `${"\u{10000}".repeat(250)}`, utf8)).toThrow("it has a word of 1001 octets");
    expect(() => renderHeader("References", x(1000), ascii)).toThrow("it has a word of 1001 octets");
  });
});

describe("plain words in unstructured text", () => {
  it("a first word of 996 characters gets a line of its own; 997 is encoded", () => {
    const own = renderHeader("Subject", x(996), ascii);
    expect(own).toBe(`Subject:\r\n ${x(996)}\r\n`);
    const encoded = renderHeader("Subject", x(997), ascii);
    expect(encoded.startsWith("Subject: =?utf-8?Q?")).toBe(true);
    expect(Math.max(...lineOctets(encoded))).toBe(76);
    expect(decodeWords(unfold(encoded.slice(9, -2)))).toBe(x(997));
  });

  it("in UTF-8 headers the limit is in octets: 498 two-octet characters stay plain, 499 are encoded", () => {
    expect(renderHeader("Subject", `a ${"\u00e9".repeat(498)}`, utf8)).toBe(`Subject: a\r\n ${"\u00e9".repeat(498)}\r\n`);
    const encoded = renderHeader("Subject", `a ${"\u00e9".repeat(499)}`, utf8);
    expect(encoded.startsWith("Subject: a\r\n =?utf-8?")).toBe(true);
    expect(decodeWords(unfold(encoded.slice(9, -2)))).toBe(`a ${"\u00e9".repeat(499)}`);
    // 332 three-octet characters are 996 octets; 333 are 999.
    expect(renderHeader("Subject", `a ${"\u3042".repeat(332)}`, utf8)).toBe(`Subject: a\r\n ${"\u3042".repeat(332)}\r\n`);
    expect(renderHeader("Subject", `a ${"\u3042".repeat(333)}`, utf8).startsWith("Subject: a\r\n =?utf-8?")).toBe(true);
  });

  it("the white space before a long word counts: a word of 995 after two spaces stays plain, 996 is encoded", () => {
    expect(renderHeader("Subject", `a  ${x(995)}`, ascii)).toBe(`Subject: a\r\n  ${x(995)}\r\n`);
    const encoded = renderHeader("Subject", `a  ${x(996)}`, ascii);
    expect(encoded.startsWith("Subject: a\r\n =?utf-8?Q?")).toBe(true);
    expect(decodeWords(unfold(encoded.slice(9, -2)))).toBe(`a  ${x(996)}`);
  });

  it('only "=?" makes a word look like an encoded-word: "=", "?" and "?=" stay plain', () => {
    expect(renderHeader("Subject", "Really? Yes=no ?= =x = ? x=", ascii)).toBe("Subject: Really? Yes=no ?= =x = ? x=\r\n");
    for (const word of ["a=?b", "=?", "a=?", "==?", "?=?"]) {
      const rendered = renderHeader("Subject", `ok ${word} ok`, ascii);
      expect(rendered, word).toMatch(/^Subject: ok =\?utf-8\?[BQ]\?[^ ]+\?= ok\r\n$/);
      expect(decodeWords(unfold(rendered.slice(9, -2))), word).toBe(`ok ${word} ok`);
    }
  });

  it("an empty value is an empty header; white space only travels encoded", () => {
    expect(renderHeader("Subject", "", ascii)).toBe("Subject: \r\n");
    expect(renderHeader("Subject", "", utf8)).toBe("Subject: \r\n");
    expect(renderHeader("Subject", "\t", ascii)).toBe("Subject: =?utf-8?Q?=09?=\r\n");
  });

  it("a charset other than UTF-8 is used for the encoded-words, UTF-8 only where it cannot hold the text", () => {
    const latin1 = { utf8: false, charset: "ISO-8859-1" };
    expect(renderHeader("Subject", "caf\u00e9 ok", latin1)).toBe("Subject: =?iso-8859-1?Q?caf=E9?= ok\r\n");
    expect(renderHeader("Subject", "plain", { utf8: false, charset: "no-such-charset" })).toBe("Subject: plain\r\n");
    expect(() => renderHeader("Subject", "caf\u00e9", { utf8: false, charset: "no-such-charset" })).toThrow(/Unknown charset/);
  });
});
