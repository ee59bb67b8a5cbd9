import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_SEGMENT_LENGTH, formatParameter, parseParameters } from "../../../src/mime/encoding/rfc2231.js";
import { BadHeaderError, EncodingError } from "../../../src/errors.js";
import { POOLS } from "./charset-pools.js";
import { unicodeStringArb } from "./helpers.js";
import { errorOf } from "../../helpers/errors.js";

const roundTrip = (name: string, value: string, charset?: string): string | undefined =>
  parseParameters(`attachment; ${formatParameter(name, value, charset ? { charset } : {}).join(";\r\n ")}`).get(name);

describe("formatParameter", () => {
  it("writes a token plainly and other printable ASCII quoted, escaping \" and \\", () => {
    expect(formatParameter("filename", "report.pdf")).toEqual(["filename=report.pdf"]);
    expect(formatParameter("filename", "my report.pdf")).toEqual(['filename="my report.pdf"']);
    expect(formatParameter("name", 'say "hi" \\o/')).toEqual(['name="say \\"hi\\" \\\\o/"']);
    expect(formatParameter("name", "")).toEqual(['name=""']);
  });

  it("writes non-ASCII as an RFC 2231 extended value", () => {
    expect(formatParameter("filename", "\u20ac rates.txt")).toEqual(["filename*=utf-8''%E2%82%AC%20rates.txt"]);
    expect(formatParameter("filename", "caf\u00e9", { charset: "ISO-8859-1" })).toEqual(["filename*=iso-8859-1''caf%E9"]);
    expect(formatParameter("name", "tab\there")).toEqual(["name*=utf-8''tab%09here"]);
  });

  it("continues a long ASCII value in quoted sections (RFC 2231 §3)", () => {
    const value = `${"a".repeat(60)} ${"b".repeat(60)}`;
    const segments = formatParameter("filename", value);
    expect(segments.length).toBe(3);
    segments.forEach((segment, i) => {
      expect(segment.startsWith(`filename*${i}="`)).toBe(true);
      expect(segment.length).toBeLessThanOrEqual(MAX_SEGMENT_LENGTH);
    });
    expect(roundTrip("filename", value)).toBe(value);
  });

  it("continues a long non-ASCII value in extended sections without splitting a character", () => {
    const value = "\u00e9".repeat(40);
    const segments = formatParameter("filename", value);
    expect(segments[0]).toMatch(/^filename\*0\*=utf-8''(%C3%A9)+$/);
    expect(segments[1]).toMatch(/^filename\*1\*=(%C3%A9)+$/);
    for (const segment of segments) expect(segment.length).toBeLessThanOrEqual(MAX_SEGMENT_LENGTH);
  });

  it("throws BadHeaderError naming the parameter for CR, LF or NUL, and for a bad name", () => {
    for (const bad of ["a\rb", "a\nb", "a\u0000b", "\u00e9\n"]) {
      const error = (() => {
        try {
          formatParameter("filename", bad);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(BadHeaderError);
      expect((error as BadHeaderError).field).toBe("filename");
    }
    expect(() => formatParameter("file name", "x")).toThrow(BadHeaderError);
    expect(() => formatParameter("file*", "x")).toThrow(BadHeaderError);
  });

  it("throws EncodingError for a lone surrogate or a character the charset lacks", () => {
    expect(() => formatParameter("filename", "a\ud800")).toThrow(EncodingError);
    expect(() => formatParameter("filename", "\u20ac", { charset: "iso-8859-1" })).toThrow(EncodingError);
  });

  it("round-trips any value without CR/LF/NUL, in segments of at most 70 characters", () => {
    fc.assert(
      fc.property(unicodeStringArb(150).filter((s) => !/[\r\n\0]/.test(s)), (value) => {
        const segments = formatParameter("filename", value);
        for (const segment of segments) expect(segment.length).toBeLessThanOrEqual(MAX_SEGMENT_LENGTH);
        expect(roundTrip("filename", value)).toBe(value);
      }),
      { numRuns: 200 },
    );
  });

  for (const [charset, pool] of Object.entries(POOLS)) {
    it(`round-trips values in the repertoire of ${charset}`, () => {
      fc.assert(
        fc.property(fc.array(fc.constantFrom(...pool), { maxLength: 80, size: "max" }), (chars) => {
          const value = chars.join("");
          expect(roundTrip("title", value, charset)).toBe(value);
        }),
        { numRuns: 50 },
      );
    });
  }
});

describe("parseParameters", () => {
  it("reads the RFC 2231 examples", () => {
    const external = parseParameters(
      'message/external-body; access-type=URL;\r\n URL*0="ftp://";\r\n URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"',
    );
    expect(external.get("access-type")).toBe("URL");
    expect(external.get("url")).toBe("ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar");
    expect(parseParameters("application/x-stuff;\r\n title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A").get("title")).toBe(
      "This is ***fun***",
    );
    expect(
      parseParameters(
        "application/x-stuff;\r\n title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n title*1*=%2A%2A%2Afun%2A%2A%2A%20;\r\n title*2=\"isn't it!\"",
      ).get("title"),
    ).toBe("This is even more ***fun*** isn't it!");
  });

  it("unquotes, lower-cases names, skips comments and prefers the extended form", () => {
    const params = parseParameters('text/plain (a comment; with a semicolon); CharSet="us-ascii" (Plain text); X="a\\"b;c"');
    expect([...params]).toEqual([
      ["charset", "us-ascii"],
      ["x", 'a"b;c'],
    ]);
    expect(parseParameters("attachment; filename=plain.txt; filename*=utf-8''%E2%82%AC.txt").get("filename")).toBe("\u20ac.txt");
  });

  it("decodes legacy charsets, and guesses for an unknown one", () => {
    expect(parseParameters("a; t*=koi8-r''%F0%D2%C9%D7%C5%D4").get("t")).toBe("\u041f\u0440\u0438\u0432\u0435\u0442");
    expect(parseParameters("a; t*=x-unknown''caf%C3%A9").get("t")).toBe("caf\u00e9");
    expect(parseParameters("a; t*=x-unknown''caf%E9").get("t")).toBe("caf\u00e9");
  });

  it("stops continuations at the first missing section", () => {
    expect(parseParameters('a; n*0="x"; n*2="z"; n*1="y"; m*1="q"').get("n")).toBe("xyz");
    expect(parseParameters('a; n*0="x"; n*2="z"').get("n")).toBe("x");
  });
});

describe("formatParameter at the 70-character bound", () => {
  it("a plain segment of exactly 70 characters stays one; 71 continues", () => {
    expect(formatParameter("filename", "a".repeat(61))).toEqual([`filename=${"a".repeat(61)}`]);
    expect(formatParameter("filename", "a".repeat(62))).toEqual([`filename*0="${"a".repeat(57)}"`, 'filename*1="aaaaa"']);
    expect(formatParameter("filename", `${"a".repeat(58)} `)).toEqual([`filename="${"a".repeat(58)} "`]);
  });

  it("quoted sections count each escaped \" and \\ as two characters", () => {
    const value = `${'"'.repeat(29)}a"${"\\".repeat(30)}`;
    const segments = formatParameter("name", value);
    expect(segments).toEqual([`name*0="${'\\"'.repeat(29)}a\\""`, `name*1="${"\\\\".repeat(30)}"`]);
    expect(segments.map((s) => s.length)).toEqual([70, 69]);
    expect(roundTrip("name", value)).toBe(value);
    expect(formatParameter("name", "\\".repeat(40))).toEqual([`name*0="${"\\\\".repeat(30)}"`, `name*1="${"\\\\".repeat(10)}"`]);
  });

  it("extended sections: the charset only in the first, literal attribute characters one wide", () => {
    const value = `\u20ac${"a".repeat(100)}`;
    const segments = formatParameter("filename", value);
    expect(segments).toEqual([`filename*0*=utf-8''%E2%82%AC${"a".repeat(42)}`, `filename*1*=${"a".repeat(58)}`]);
    expect(segments.map((s) => s.length)).toEqual([70, 70]);
    expect(roundTrip("filename", value)).toBe(value);
  });

  it("a value that fits one extended segment is written without a section number", () => {
    // 51 = 70 - "filename*0*=utf-8''".length: the most the first section holds.
    const value = `\u20ac${"a".repeat(42)}`;
    expect(formatParameter("filename", value)).toEqual([`filename*=utf-8''%E2%82%AC${"a".repeat(42)}`]);
  });

  it("a name too long for any value still puts one character in each section, none empty", () => {
    const name = "x".repeat(68);
    expect(formatParameter(name, "ab")).toEqual([`${name}*0="a"`, `${name}*1="b"`]);
  });
});

describe("formatParameter: which form a value takes", () => {
  it.each([
    ["a~b", "name=a~b"],
    ["a'b", `name="a'b"`],
    ["50%", 'name="50%"'],
    ["a*b", 'name="a*b"'],
    ["a b", 'name="a b"'],
    ["=?x?=", "name*=utf-8''%3D%3Fx%3F%3D"],
    ["a\x7fb", "name*=utf-8''a%7Fb"],
  ])("%j → %s", (value, segment) => {
    expect(formatParameter("name", value)).toEqual([segment]);
  });

  it("says what is wrong with a bad name, a value holding CR, LF or NUL, and one the charset cannot hold", () => {
    expect(errorOf(() => formatParameter("", "x"))).toMatchObject({
      name: "BadHeaderError",
      message: 'Invalid parameter name "": use letters, digits and -_.!#$&+^`|~',
    });
    expect(errorOf(() => formatParameter("na\u00efve", "x"))).toMatchObject({ name: "BadHeaderError", field: "na\u00efve" });
    expect(errorOf(() => formatParameter("filename", "a\nb"))).toMatchObject({
      message: "The filename parameter contains CR, LF or NUL, which could inject headers; remove them",
    });
    const error = errorOf(() => formatParameter("title", "\u20ac", { charset: "iso-8859-1" }));
    expect(error).toBeInstanceOf(EncodingError);
    expect(error.message).toMatch(/^The title parameter cannot be encoded: /);
    expect(error.cause).toBeInstanceOf(EncodingError);
    expect(error.message).toBe(`The title parameter cannot be encoded: ${(error.cause as Error).message}`);
  });
});

describe("parseParameters, item by item", () => {
  it("needs no leading type, and skips items without a name", () => {
    expect([...parseParameters("n=v")]).toEqual([["n", "v"]]);
    expect([...parseParameters("a; =x; *=y; n=v")]).toEqual([["n", "v"]]);
  });

  it("trims around the name and value, and unquotes only a value that starts with a quote", () => {
    expect(parseParameters('a; n = "x y" ').get("n")).toBe("x y");
    expect(parseParameters('a; n=abc"').get("n")).toBe('abc"');
    expect(parseParameters('a; n="abc').get("n")).toBe("abc");
    expect(parseParameters('a; n="abc\\').get("n")).toBe("abc\\");
    expect(parseParameters('a; n="x"y').get("n")).toBe("x");
  });

  it("takes name*N as section N only for 1 to 4 digits after the last star", () => {
    expect(parseParameters("x; a*b=1").get("a*b")).toBe("1");
    expect(parseParameters("x; *0=v").get("*0")).toBe("v");
    expect(parseParameters("x; n*x1=v").get("n*x1")).toBe("v");
    expect(parseParameters("x; n*1x=v").get("n*1x")).toBe("v");
    expect(parseParameters("x; n*12345=v").get("n*12345")).toBe("v");
    const eleven = Array.from({ length: 11 }, (_, i) => `n*${i}=${String.fromCharCode(0x61 + i)}`).join("; ");
    expect(parseParameters(`x; ${eleven}`).get("n")).toBe("abcdefghijk");
  });

  it("keeps the first of two sections with the same number", () => {
    expect(parseParameters('a; n*0="a"; n*0="b"; n*1="c"').get("n")).toBe("ac");
  });

  it("leaves plain sections between extended ones as they are, percent signs included", () => {
    expect(parseParameters("a; n*0*=utf-8''%41; n*1=\"%41\"; n*2*=%42").get("n")).toBe("A%41B");
  });

  it("reads charset'language' from the first section only", () => {
    expect(parseParameters("a; n*0*=utf-8''a; n*1*=x'y'z").get("n")).toBe("ax'y'z");
    expect(parseParameters("a; n*=abc%41").get("n")).toBe("abcA");
    expect(parseParameters("a; n*=koi8-r'%F0").get("n")).toBe("koi8-r'\u00f0");
    expect(parseParameters("a; n*=koi8-r''%F0").get("n")).toBe("\u041f");
    expect(parseParameters("a; n*=''%C3%A9").get("n")).toBe("\u00e9");
    expect(parseParameters("a; n*=x'en'abc").get("n")).toBe("abc");
  });

  it("keeps a % that is not followed by two hex digits, and reads raw non-ASCII as UTF-8", () => {
    expect(parseParameters("a; n*=utf-8''%G1%1G%4").get("n")).toBe("%G1%1G%4");
    expect(parseParameters("a; n*=utf-8''caf\u00e9 \u0080 \u{1f600}").get("n")).toBe("caf\u00e9 \u0080 \u{1f600}");
    // Surrogate pairs at both ends of their range, and a character just above them.
    expect(parseParameters("a; n*=utf-8''\u{10000}\u{10ffff}\ue000x").get("n")).toBe("\u{10000}\u{10ffff}\ue000x");
  });

  it("drops comments, nested and with escaped parentheses, and nothing else", () => {
    expect([...parseParameters("a; n=v (comment=x); m=w")]).toEqual([
      ["n", "v"],
      ["m", "w"],
    ]);
    expect([...parseParameters("a; n=v (x \\) y); m=w")]).toEqual([
      ["n", "v"],
      ["m", "w"],
    ]);
    expect([...parseParameters("a; n=v (x (y) z=1); m=w")]).toEqual([
      ["n", "v"],
      ["m", "w"],
    ]);
    expect(parseParameters('a; n="(not a comment)"').get("n")).toBe("(not a comment)");
  });
});

