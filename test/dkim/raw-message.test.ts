/**
 * Reading raw message bytes: line breaks normalised as the SMTP data stream does it, the
 * header block split off at the first empty line and cut into fields with their exact
 * bytes; the same result for every split of the input.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HeaderSplitter, LineBreakNormalizer, parseHeaderFields } from "../../src/dkim/raw-message.js";
import { encodeData } from "../../src/smtp/data-stream.js";

const bytes = (s: string) => Buffer.from(s, "latin1");
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

function read(input: Buffer, cuts: number[]) {
  const normalizer = new LineBreakNormalizer();
  const splitter = new HeaderSplitter();
  const normalized: Buffer[] = [];
  const body: Buffer[] = [];
  let at = 0;
  const pieces = [...new Set(cuts)].sort((a, b) => a - b).map((cut) => {
    const piece = input.subarray(at, cut);
    at = cut;
    return piece;
  });
  pieces.push(input.subarray(at));
  for (const piece of [...pieces.map((p) => normalizer.push(p)), normalizer.end()]) {
    normalized.push(Buffer.from(piece));
    body.push(Buffer.from(splitter.push(piece)));
  }
  return { normalized: text(Buffer.concat(normalized)), head: text(splitter.head()), body: text(Buffer.concat(body)), done: splitter.done };
}

describe("LineBreakNormalizer", () => {
  it("writes what the SMTP data stream writes (bare CR and LF become CRLF, a final CRLF), for any split", () => {
    const piece = fc.constantFrom("a", "From: x", " ", "\r\n", "\r", "\n", "\n\r", "\r\r\n", ".");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 8 }), (parts, cuts) => {
        const input = bytes(parts.join(""));
        const { normalized } = read(input, cuts.map((c) => c % (input.length + 1)));
        expect(normalized).toBe(text(encodeData(input, { dotStuff: false })));
      }),
      { numRuns: 400 },
    );
  });
});

describe("HeaderSplitter and parseHeaderFields", () => {
  const message = "From: Ann <ann@example.com>\r\nSubject: folded\r\n\tover two lines\r\nX-Empty:\r\n\r\nbody\r\n\r\nmore\r\n";

  it("splits at the first empty line, for every split point, one byte at a time too", () => {
    const input = bytes(message);
    for (let cut = 0; cut <= input.length; cut++) {
      const r = read(input, [cut]);
      expect([r.head, r.body, r.done]).toEqual(["From: Ann <ann@example.com>\r\nSubject: folded\r\n\tover two lines\r\nX-Empty:\r\n", "body\r\n\r\nmore\r\n", true]);
    }
    const everyByte = read(input, Array.from({ length: input.length }, (_, i) => i));
    expect(everyByte.body).toBe("body\r\n\r\nmore\r\n");
  });

  it("keeps each field's exact bytes, folding included", () => {
    const { head } = read(bytes(message), []);
    expect(parseHeaderFields(bytes(head)).map((f) => [f.key, text(f.bytes)])).toEqual([
      ["from", "From: Ann <ann@example.com>"],
      ["subject", "Subject: folded\r\n\tover two lines"],
      ["x-empty", "X-Empty:"],
    ]);
  });

  it("an empty header block, and a message without an empty line", () => {
    expect(read(bytes("\r\nbody"), [])).toMatchObject({ head: "", body: "body\r\n", done: true });
    expect(read(bytes("From: a@example.com\r\nSubject: x"), [])).toMatchObject({ head: "From: a@example.com\r\nSubject: x\r\n", body: "", done: false });
  });
});
