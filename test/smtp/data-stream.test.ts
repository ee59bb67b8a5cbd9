import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DataEncoder, bdatChunks, dataChunks, dataTransform, encodeData } from "../../src/smtp/data-stream.js";

/** What the body should look like on the wire before stuffing: every line break CRLF. */
function normalise(body: Buffer): Buffer {
  return Buffer.from(body.toString("latin1").replace(/\r\n|\r|\n/g, "\r\n"), "latin1");
}

/** The receiver's side: strip the terminator and un-double leading dots. */
function unstuff(wire: Buffer): Buffer {
  const s = wire.toString("latin1");
  expect(s.endsWith(".\r\n")).toBe(true);
  const body = s.slice(0, -3);
  if (body === "") return Buffer.alloc(0);
  expect(body.endsWith("\r\n")).toBe(true);
  const lines = body.slice(0, -2).split("\r\n");
  return Buffer.from(lines.map((l) => (l.startsWith(".") ? l.slice(1) : l)).join("\r\n") + "\r\n", "latin1");
}

function encodeChunked(body: Buffer, cuts: number[]): Buffer {
  const enc = new DataEncoder();
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, body.length]) {
    out.push(enc.encode(body.subarray(start, cut)));
    start = cut;
  }
  out.push(enc.flush());
  return Buffer.concat(out);
}

const bodyArb = fc
  .array(fc.oneof(fc.constantFrom("\r", "\n", "\r\n", ".", "..", "\r\n.\r\n", "\n.\n", "a", "From "), fc.string({ maxLength: 5 })), { maxLength: 30 })
  .map((parts) => Buffer.from(parts.join(""), "latin1"));
const anyBodyArb = fc.oneof(bodyArb, fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)));

describe("DataEncoder", () => {
  it("normalises line endings and stuffs dots", () => {
    expect(encodeData("a\nb\rc\r\nd").toString()).toBe("a\r\nb\r\nc\r\nd\r\n.\r\n");
    expect(encodeData(".hidden\r\n..two\r\n.\r\nend\r\n").toString()).toBe("..hidden\r\n...two\r\n..\r\nend\r\n.\r\n");
    expect(encodeData("").toString()).toBe(".\r\n");
    expect(encodeData("x\r\n").toString()).toBe("x\r\n.\r\n");
    expect(encodeData("\r\r\n\n").toString()).toBe("\r\n\r\n\r\n.\r\n");
    expect(encodeData(".").toString()).toBe("..\r\n.\r\n");
  });

  it("without dot-stuffing (BDAT) only normalises", () => {
    expect(encodeData(".a\nb", { dotStuff: false }).toString()).toBe(".a\r\nb\r\n");
    expect(encodeData("", { dotStuff: false }).toString()).toBe("");
  });

  it("keeps CR|LF split across chunks as one line break", () => {
    expect(encodeChunked(Buffer.from("a\r\nb"), [2]).toString()).toBe("a\r\nb\r\n.\r\n");
    expect(encodeChunked(Buffer.from("a\r\n.b"), [3]).toString()).toBe("a\r\n..b\r\n.\r\n");
  });

  it("property: un-stuffing gives back the CRLF-normalised body; no early terminator; all lines CRLF", () => {
    fc.assert(
      fc.property(anyBodyArb, (body) => {
        const wire = encodeData(body);
        const expected = normalise(body);
        const expectedWithEnd = expected.length === 0 || expected.subarray(-2).toString() === "\r\n" ? expected : Buffer.concat([expected, Buffer.from("\r\n")]);
        expect(unstuff(wire).equals(expectedWithEnd)).toBe(true);
        const s = wire.toString("latin1");
        const firstEnd = ("\r\n" + s).indexOf("\r\n.\r\n");
        expect(firstEnd).toBe(s.length - 3);
        expect(s.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
      }),
    );
  });

  it("property: the same output for every chunking, including 1-byte chunks", () => {
    fc.assert(
      fc.property(anyBodyArb, fc.array(fc.nat(), { maxLength: 10 }), (body, rawCuts) => {
        const whole = encodeData(body);
        const cuts = [...new Set(rawCuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
        expect(encodeChunked(body, cuts).equals(whole)).toBe(true);
        const ones = Array.from({ length: body.length }, (_, i) => i);
        expect(encodeChunked(body, ones).equals(whole)).toBe(true);
      }),
    );
  });

  it("property: byte for byte what a plain byte-at-a-time encoder writes, however the body is cut", () => {
    // The plain reading: every CR and every LF not after a CR becomes CRLF; a dot at a line start is doubled.
    const plain = (chunks: Buffer[], dotStuff: boolean): Buffer => {
      const out: number[] = [];
      let lineStart = true;
      let lastWasCR = false;
      for (const chunk of chunks) {
        for (const c of chunk) {
          if (c === 0x0d) {
            out.push(0x0d, 0x0a);
            lineStart = true;
            lastWasCR = true;
            continue;
          }
          if (c === 0x0a) {
            if (!lastWasCR) out.push(0x0d, 0x0a);
            lineStart = true;
            lastWasCR = false;
            continue;
          }
          if (lineStart && dotStuff && c === 0x2e) out.push(0x2e);
          out.push(c);
          lineStart = false;
          lastWasCR = false;
        }
      }
      if (!lineStart) out.push(0x0d, 0x0a);
      if (dotStuff) out.push(0x2e, 0x0d, 0x0a);
      return Buffer.from(out);
    };
    fc.assert(
      fc.property(anyBodyArb, fc.array(fc.nat(), { maxLength: 10 }), fc.boolean(), (body, rawCuts, dotStuff) => {
        const cuts = [...new Set(rawCuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let start = 0;
        for (const cut of [...cuts, body.length]) {
          chunks.push(body.subarray(start, cut));
          start = cut;
        }
        const enc = new DataEncoder({ dotStuff });
        const wire = Buffer.concat([...chunks.map((c) => enc.encode(c)), enc.flush()]);
        expect(wire.toString("latin1")).toBe(plain(chunks, dotStuff).toString("latin1"));
      }),
      { numRuns: 1000 },
    );
  });

  it("never hands back the caller's buffer", () => {
    const body = Buffer.from("clean\r\nlines\r\n");
    const out = new DataEncoder().encode(body);
    expect(out.equals(body)).toBe(true);
    body.fill(0x41);
    expect(out.toString()).toBe("clean\r\nlines\r\n");
  });

  it("the Transform and the async generator agree with the core", async () => {
    const body = Buffer.from("line1\n.line2\r\rline3");
    const chunks: Buffer[] = [];
    await pipeline(Readable.from([body.subarray(0, 5), body.subarray(5, 7), body.subarray(7)]), dataTransform(), async function (source) {
      for await (const c of source) chunks.push(c as Buffer);
    });
    expect(Buffer.concat(chunks).equals(encodeData(body))).toBe(true);
    const gen: Buffer[] = [];
    for await (const c of dataChunks(Readable.from([body.subarray(0, 3), body.subarray(3)]))) gen.push(c);
    expect(Buffer.concat(gen).equals(encodeData(body))).toBe(true);
  });
});

describe("bdatChunks", () => {
  it("cuts the normalised body into chunks and marks the last", async () => {
    const out = [];
    for await (const c of bdatChunks("abc\ndefgh", 4)) out.push([c.bytes.toString(), c.last]);
    expect(out).toEqual([["abc\r", false], ["\ndef", false], ["gh\r\n", true]]);
    const empty = [];
    for await (const c of bdatChunks("", 4)) empty.push([c.bytes.length, c.last]);
    expect(empty).toEqual([[0, true]]);
  });

  it("property: chunks concatenate to the normalised body, each at most chunkSize", async () => {
    await fc.assert(
      fc.asyncProperty(anyBodyArb, fc.integer({ min: 1, max: 20 }), async (body, size) => {
        const parts: Buffer[] = [];
        let lasts = 0;
        for await (const c of bdatChunks(Readable.from([body]), size)) {
          expect(c.bytes.length).toBeLessThanOrEqual(size);
          parts.push(c.bytes);
          if (c.last) lasts++;
        }
        expect(lasts).toBe(1);
        expect(Buffer.concat(parts).equals(encodeData(body, { dotStuff: false }))).toBe(true);
      }),
    );
  });
});
