import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_SEGMENT_LENGTH, formatParameter, parseParameters } from "../../../src/mime/encoding/rfc2231.js";
import { BadHeaderError, EncodingError } from "../../../src/errors.js";
import { POOLS } from "./charset-pools.js";
import { unicodeStringArb } from "./helpers.js";

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
        fc.property(fc.array(fc.constantFrom(...pool), { maxLength: 80 }), (chars) => {
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
