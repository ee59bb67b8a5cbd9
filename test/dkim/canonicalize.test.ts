/**
 * Canonicalization (RFC 6376 §3.4): the RFC's own example byte for byte, the corner cases
 * dkimpy and OpenDKIM test for, dkimpy as the oracle on generated input, and the streaming
 * cores giving the same bytes for every split of the input, down to one byte per chunk.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bodyCanonicalizer,
  canonicalizeBody,
  canonicalizeHeader,
  canonicalizeHeaderRelaxed,
  canonicalizeHeaderSimple,
  type CanonicalizationAlgorithm,
} from "../../src/dkim/canonicalize.js";
import { canonicalizeWithDkimpy } from "../helpers/dkim-oracle.js";

const bytes = (s: string) => Buffer.from(s, "latin1");
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");
const ALGORITHMS: CanonicalizationAlgorithm[] = ["simple", "relaxed"];

/** The rules of §3.4.3/§3.4.4 written plainly on a string, line breaks read as the SMTP data stream writes them. */
function reference(algorithm: CanonicalizationAlgorithm, body: string): string {
  let s = body.replace(/\r\n|\r|\n/g, "\r\n");
  if (s !== "" && !s.endsWith("\r\n")) s += "\r\n";
  let lines = s === "" ? [] : s.split("\r\n").slice(0, -1);
  if (algorithm === "relaxed") lines = lines.map((l) => l.replace(/[ \t]+$/, "").replace(/[ \t]+/g, " "));
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const out = lines.map((l) => `${l}\r\n`).join("");
  return algorithm === "simple" && out === "" ? "\r\n" : out;
}

/** Feeds `body` to a streaming core in the pieces `cuts` makes. */
function streamed(algorithm: CanonicalizationAlgorithm, body: Buffer, cuts: number[]): Buffer {
  const out: Buffer[] = [];
  const c = bodyCanonicalizer(algorithm, (b) => out.push(Buffer.from(b)));
  let at = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    c.push(body.subarray(at, cut));
    at = cut;
  }
  c.push(body.subarray(at));
  c.end();
  return Buffer.concat(out);
}

const piece = fc.constantFrom("a", "Hello", ".", "x y", " ", "  ", "\t", " \t ", "\r\n", "\r\n", "\r", "\n", "\r\n\r\n", "\xe9\xff\x80", "\x00", "=", "--b");
const anyBody = fc.array(piece, { maxLength: 30 }).map((p) => bytes(p.join("")));
/** What dkimpy canonicalizes the way the RFC reads: CRLF only, and a final CRLF (or nothing). */
const crlfBody = fc
  .array(fc.constantFrom("a", "Hello", ".", "x y", " ", "  ", "\t", " \t ", "\r\n", "\r\n\r\n", "\xe9\xff\x80", "\x00"), { maxLength: 30 })
  .map((p) => {
    const s = p.join("");
    return bytes(s === "" || s.endsWith("\r\n") ? s : `${s}\r\n`);
  });

describe("RFC 6376 §3.4.5 example", () => {
  const header = [bytes("A: X"), bytes("B : Y\t\r\n\tZ  ")];
  const body = bytes(" C \r\nD \t E\r\n\r\n\r\n");

  it("relaxed: a:X / b:Y Z, and ' C' / 'D E' without the empty lines", () => {
    expect(text(Buffer.concat(header.map(canonicalizeHeaderRelaxed)))).toBe("a:X\r\nb:Y Z\r\n");
    expect(text(canonicalizeBody("relaxed", body))).toBe(" C\r\nD E\r\n");
  });

  it("simple: the header unchanged, the body without its trailing empty lines", () => {
    expect(text(Buffer.concat(header.map(canonicalizeHeaderSimple)))).toBe("A: X\r\nB : Y\t\r\n\tZ  \r\n");
    expect(text(canonicalizeBody("simple", body))).toBe(" C \r\nD \t E\r\n");
  });
});

describe("body canonicalization corner cases", () => {
  const cases: [string, string, string][] = [
    // [body, simple, relaxed]
    ["", "\r\n", ""],
    ["\r\n", "\r\n", ""],
    ["\r\n\r\n\r\n", "\r\n", ""],
    [" \t \r\n", " \t \r\n", ""],
    ["abc", "abc\r\n", "abc\r\n"],
    ["abc  ", "abc  \r\n", "abc\r\n"],
    ["abc\r\n\r\n", "abc\r\n", "abc\r\n"],
    ["abc\r\n \r\n\t\r\n", "abc\r\n \r\n\t\r\n", "abc\r\n"],
    ["\r\n\r\nabc", "\r\n\r\nabc\r\n", "\r\n\r\nabc\r\n"],
    ["a \r\n\r\nb", "a \r\n\r\nb\r\n", "a\r\n\r\nb\r\n"],
    ["  lead\t\tand  inner  ", "  lead\t\tand  inner  \r\n", " lead and inner\r\n"],
    ["bare\nlf\rcr\r\n", "bare\r\nlf\r\ncr\r\n", "bare\r\nlf\r\ncr\r\n"],
    ["\n\n", "\r\n", ""],
    ["x\r", "x\r\n", "x\r\n"],
    ["\xe9 \xff\r\n", "\xe9 \xff\r\n", "\xe9 \xff\r\n"],
  ];
  it.each(cases)("%j", (body, simple, relaxed) => {
    expect(text(canonicalizeBody("simple", bytes(body)))).toBe(simple);
    expect(text(canonicalizeBody("relaxed", bytes(body)))).toBe(relaxed);
    expect(reference("simple", body)).toBe(simple);
    expect(reference("relaxed", body)).toBe(relaxed);
  });

  it("the same for a body far larger than the scratch buffer, in one push", () => {
    const line = "word  word\t \r\n";
    const body = bytes(`${line.repeat(5000)}${"\r\n".repeat(20000)}end${" ".repeat(40000)}\r\n`);
    for (const a of ALGORITHMS) expect(text(canonicalizeBody(a, body))).toBe(reference(a, text(body)));
  });
});

describe("streaming cores", () => {
  it("copy long runs of clean lines and still see the one line in them that changes", () => {
    const base64Line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    const oddities = ["bare\nlf\r\n", "bare\rcr\r\n", "trailing  \r\n", "\r\n", "\r\n\r\n", " lead\r\n", "in\tner\r\n", ""];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: 400 }), fc.constantFrom(...oddities)), { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 6 }), fc.constantFrom(...ALGORITHMS), (parts, cuts, algorithm) => {
        const body = bytes(parts.map(([lines, odd]) => base64Line.repeat(lines) + odd).join(""));
        const expected = reference(algorithm, text(body));
        expect(text(canonicalizeBody(algorithm, body))).toBe(expected);
        expect(text(streamed(algorithm, body, cuts.map((c) => c % (body.length + 1))))).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });

  it("give the same bytes for any split of the input", () => {
    fc.assert(
      fc.property(anyBody, fc.array(fc.nat(), { maxLength: 8 }), fc.constantFrom(...ALGORITHMS), (body, cuts, algorithm) => {
        const whole = canonicalizeBody(algorithm, body);
        const pieces = streamed(algorithm, body, cuts.map((c) => c % (body.length + 1)));
        expect(text(pieces)).toBe(text(whole));
        expect(text(whole)).toBe(reference(algorithm, text(body)));
      }),
      { numRuns: 500 },
    );
  });

  it("give the same bytes fed one byte at a time", () => {
    fc.assert(
      fc.property(anyBody, fc.constantFrom(...ALGORITHMS), (body, algorithm) => {
        const everyByte = Array.from({ length: body.length }, (_, i) => i);
        expect(text(streamed(algorithm, body, everyByte))).toBe(text(canonicalizeBody(algorithm, body)));
      }),
      { numRuns: 300 },
    );
  });

  it("are ready for the next body after end()", () => {
    const out: Buffer[] = [];
    const c = bodyCanonicalizer("relaxed", (b) => out.push(Buffer.from(b)));
    c.push(bytes("one  \r\n\r\n"));
    c.end();
    c.push(bytes(" two"));
    c.end();
    expect(text(Buffer.concat(out))).toBe("one\r\n two\r\n");
  });
});

describe("dkimpy agrees", () => {
  it("on 300 generated bodies and header fields, both algorithms", async () => {
    const ftext = fc.constantFrom("x", "Value", " ", "  ", "\t", "\r\n ", "\r\n\t", "\r\n  \t", "\xe9", ";", ":", "=?utf-8?q?a?=");
    const field = fc.tuple(
      fc.constantFrom("Subject", "X-A", "FROM", "to", "Content-Type", "X-Spaced ", "X-Tab\t"),
      fc.array(ftext, { maxLength: 12 }).map((p) => p.join("")),
    );
    const inputs = fc.sample(fc.record({ body: crlfBody, fields: fc.array(field, { maxLength: 4 }) }), { numRuns: 300, seed: 6376 });
    const forms = await canonicalizeWithDkimpy(inputs.map(({ body, fields }) => ({ body, fields: fields.map(([n, v]) => [bytes(n), bytes(`${v}\r\n`)] as const) })));
    inputs.forEach(({ body, fields }, i) => {
      const py = forms[i]!;
      const context = JSON.stringify({ body: text(body), fields });
      expect(text(canonicalizeBody("simple", body)), context).toBe(text(py.body.simple));
      expect(text(canonicalizeBody("relaxed", body)), context).toBe(text(py.body.relaxed));
      const raw = fields.map(([n, v]) => bytes(`${n}:${v}`));
      expect(raw.map((f) => text(canonicalizeHeaderSimple(f))), context).toEqual(py.fields.simple.map(text));
      expect(raw.map((f) => text(canonicalizeHeaderRelaxed(f))), context).toEqual(py.fields.relaxed.map(text));
    });
  });
});

describe("at the scratch buffer's edges and between bodies", () => {
  const SCRATCH = 16 * 1024;

  it("a line through the byte loop exactly as long as the scratch buffer, and a few bytes either side", () => {
    // A bare LF sends simple's line through the byte loop; a space does the same for relaxed.
    // Bare CRs keep one call of the byte loop going: a line's CRLF can leave the scratch
    // buffer one byte short of full just before the held empty lines are written.
    const tails = ["\n", "\n\n\n", "\n\n\ny z\n", "\r\n", "\r", "  \n", " \t", "\r\ry", "\r\r\ry z", "\r \r y\r"];
    for (let length = SCRATCH - 4; length <= SCRATCH + 4; length++) {
      for (const tail of tails) {
        for (const lead of ["", "a ", "\n\n"]) {
          const body = `${lead}${"x".repeat(length)}${tail}`;
          for (const a of ALGORITHMS) expect(text(canonicalizeBody(a, bytes(body))), `${a} ${length} ${JSON.stringify(lead)} ${JSON.stringify(tail)}`).toBe(reference(a, body));
        }
      }
    }
  });

  it("many empty lines held back, then content: exactly 512 and 513, and more than one block", () => {
    for (const held of [1, 511, 512, 513, 1024, 1025, 9000]) {
      for (const brk of ["\r\n", "\n"]) {
        const body = `a\r\n${brk.repeat(held)}b\r\n`;
        for (const a of ALGORITHMS) expect(text(canonicalizeBody(a, bytes(body))), `${a} ${held}`).toBe(reference(a, body));
      }
    }
    // the empty lines through the byte loop, with the content line long enough to need flushing
    const body = `${"\n".repeat(SCRATCH)}${"y ".repeat(SCRATCH)}\n`;
    for (const a of ALGORITHMS) expect(text(canonicalizeBody(a, bytes(body)))).toBe(reference(a, body));
  });

  it("takes a Uint8Array that is no Buffer, a view into a larger buffer included", () => {
    const backing = new Uint8Array(Buffer.from("JUNKa  b\r\n\r\nJUNK", "latin1"));
    const view = backing.subarray(4, 4 + 8);
    expect(text(canonicalizeBody("relaxed", view))).toBe("a b\r\n");
    expect(text(canonicalizeBody("simple", view))).toBe("a  b\r\n");
  });

  it("an empty chunk between a CR and its LF changes nothing", () => {
    for (const a of ALGORITHMS) {
      const out: Buffer[] = [];
      const c = bodyCanonicalizer(a, (b) => out.push(Buffer.from(b)));
      c.push(bytes("x\r"));
      c.push(bytes(""));
      c.push(bytes("\ny"));
      c.end();
      expect(text(Buffer.concat(out))).toBe("x\r\ny\r\n");
    }
  });

  it("a chunk that ends with a CRLF read by the byte loop, then a chunk that starts with LF: that LF is a line of its own", () => {
    // A bare CR (simple) or white space (relaxed) sends the first line through the byte loop.
    const cases: [CanonicalizationAlgorithm, string[], string][] = [
      ["relaxed", ["a \r\n", "\nb"], "a\r\n\r\nb\r\n"],
      ["simple", ["a\rb\r\n", "\nc"], "a\r\nb\r\n\r\nc\r\n"],
      ["relaxed", ["a \r", "\n\nb"], "a\r\n\r\nb\r\n"],
      ["simple", ["a\rb\r", "\n\nc"], "a\r\nb\r\n\r\nc\r\n"],
    ];
    for (const [a, chunks, expected] of cases) {
      const out: Buffer[] = [];
      const c = bodyCanonicalizer(a, (b) => out.push(Buffer.from(b)));
      for (const chunk of chunks) c.push(bytes(chunk));
      c.end();
      expect(text(Buffer.concat(out)), `${a} ${JSON.stringify(chunks)}`).toBe(expected);
      expect(expected).toBe(reference(a, chunks.join("")));
    }
  });

  it("end() forgets everything: an open line, held empty lines, a CR waiting for its LF, white space, having written", () => {
    const run = (a: CanonicalizationAlgorithm, ...bodies: string[]) => {
      const out: string[] = [];
      const c = bodyCanonicalizer(a, (b) => out.push(text(b)));
      return bodies.map((body) => {
        out.length = 0;
        c.push(bytes(body));
        c.end();
        return out.join("");
      });
    };
    expect(run("simple", "x\r\n\r\n", "y")).toEqual(["x\r\n", "y\r\n"]);
    expect(run("relaxed", "x\r\n\r\n", "y")).toEqual(["x\r\n", "y\r\n"]);
    expect(run("simple", "x\r", "\ny")).toEqual(["x\r\n", "\r\ny\r\n"]);
    expect(run("relaxed", "x\r", "\ny")).toEqual(["x\r\n", "\r\ny\r\n"]);
    expect(run("simple", "a", "")).toEqual(["a\r\n", "\r\n"]);
    expect(run("simple", "a\r\n", "")).toEqual(["a\r\n", "\r\n"]);
    expect(run("relaxed", "a", "")).toEqual(["a\r\n", ""]);
    expect(run("relaxed", "a ", "b")).toEqual(["a\r\n", "b\r\n"]);
    expect(run("simple", "a\n\n", "b")).toEqual(["a\r\n", "b\r\n"]);
  });
});

describe("relaxed header fields, byte by byte", () => {
  /** The canonical field without its CRLF (checked). */
  const relaxed = (s: string) => {
    const out = text(canonicalizeHeaderRelaxed(bytes(s)));
    expect(out.endsWith("\r\n")).toBe(true);
    return out.slice(0, -2);
  };

  it("lowers A to Z only: the bytes around them stay", () => {
    expect(relaxed("@AZ[`az{\xc4:v")).toBe("@az[`az{\xc4:v");
    expect(relaxed("ABCDEFGHIJKLMNOPQRSTUVWXYZ:V")).toBe("abcdefghijklmnopqrstuvwxyz:V");
  });

  it("drops white space before the colon, keeps the name's other bytes, and needs a colon", () => {
    expect(relaxed("X-A \t :  v")).toBe("x-a:v");
    expect(relaxed(": v")).toBe(":v");
    expect(relaxed("a:")).toBe("a:");
    expect(() => canonicalizeHeaderRelaxed(bytes("no colon"))).toThrow(TypeError);
    expect(() => canonicalizeHeaderRelaxed(bytes("no colon"))).toThrow("a header field needs a colon");
  });

  it("unfolds, squeezes white space to one SP and trims both ends of the value; a colon in the value stays", () => {
    expect(relaxed("S: \t a \r\n\t b\t\tc:d \t ")).toBe("s:a b c:d");
    expect(relaxed("S:a\r\nb")).toBe("s:ab");
    expect(relaxed("S:\r\n \r\n ")).toBe("s:");
  });

  it("canonicalizeHeader and bodyCanonicalizer choose by algorithm", () => {
    expect(text(canonicalizeHeader("simple", bytes("A : B ")))).toBe("A : B \r\n");
    expect(text(canonicalizeHeader("relaxed", bytes("A : B ")))).toBe("a:B\r\n");
    expect(text(canonicalizeBody("simple", bytes("a  b")))).toBe("a  b\r\n");
    expect(text(canonicalizeBody("relaxed", bytes("a  b")))).toBe("a b\r\n");
  });
});
