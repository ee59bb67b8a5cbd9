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

// `size: "max"`: the lengths declared here are reached (fast-check's default size stops near 10).
const bodyArb = fc
  .array(fc.oneof(fc.constantFrom("\r", "\n", "\r\n", ".", "..", "\r\n.\r\n", "\n.\n", "a", "From "), fc.string({ maxLength: 5 })), { maxLength: 30, size: "max" })
  .map((parts) => Buffer.from(parts.join(""), "latin1"));
const anyBodyArb = fc.oneof(bodyArb, fc.uint8Array({ maxLength: 200, size: "max" }).map((u) => Buffer.from(u)));

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
      fc.property(anyBodyArb, fc.array(fc.nat(), { maxLength: 10, size: "max" }), (body, rawCuts) => {
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

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

/** A body stream that counts the chunks read from it. */
function countingBody(chunks: readonly (Uint8Array | string)[]): { body: AsyncIterable<Uint8Array | string>; read: () => number } {
  let read = 0;
  return {
    body: (async function* () {
      for (const chunk of chunks) {
        read++;
        yield chunk;
      }
    })(),
    read: () => read,
  };
}

describe("DataEncoder state", () => {
  it("reset() forgets a line in progress and a pending CR", () => {
    const enc = new DataEncoder();
    enc.encode(Buffer.from("half a line"));
    enc.reset();
    expect(enc.flush().toString()).toBe(".\r\n");
    enc.encode(Buffer.from("a\r"));
    enc.reset();
    expect(enc.encode(Buffer.from("\nb")).toString()).toBe("\r\nb");
  });

  it("after flush() the next body starts on a fresh line: a leading dot is stuffed, a leading LF is a break", () => {
    const enc = new DataEncoder();
    enc.encode(Buffer.from("a\r"));
    enc.flush();
    expect(Buffer.concat([enc.encode(Buffer.from("\n.x")), enc.flush()]).toString()).toBe("\r\n..x\r\n.\r\n");
    enc.encode(Buffer.from("abc"));
    enc.flush();
    expect(enc.encode(Buffer.from(".y")).toString()).toBe("..y");
  });

  it("an empty chunk changes no state: a CR and the LF after it stay one break, a line in progress stays unfinished", () => {
    const enc = new DataEncoder();
    const out = [enc.encode(Buffer.from("a\r")), enc.encode(Buffer.alloc(0)), enc.encode(Buffer.from("\nb")), enc.encode(Buffer.alloc(0)), enc.encode(Buffer.from(".c")), enc.flush()];
    expect(out.map((b) => b.toString())).toEqual(["a\r\n", "", "b", "", ".c", "\r\n.\r\n"]);
    const fresh = new DataEncoder();
    expect([fresh.encode(Buffer.alloc(0)), fresh.encode(Buffer.from(".x"))].map((b) => b.toString())).toEqual(["", "..x"]);
  });

  it("reads only the bytes a Uint8Array view shows", () => {
    const backing = Buffer.from("XX.a\nbYY");
    expect(encodeData(new Uint8Array(backing.buffer, backing.byteOffset + 2, 4)).toString()).toBe("..a\r\nb\r\n.\r\n");
  });

  it("dataTransform takes strings in the encoding they were written with", async () => {
    const transform = dataTransform();
    const out: Buffer[] = [];
    transform.on("data", (chunk: Buffer) => out.push(chunk));
    transform.write("caf\u00e9\n", "latin1");
    transform.write(".\u00e9", "utf8");
    transform.end();
    await new Promise((resolve) => transform.on("end", resolve));
    expect(Buffer.concat(out).toString("latin1")).toBe("caf\u00e9\r\n..\u00c3\u00a9\r\n.\r\n");
  });

  it("dataTransform emits no empty chunk for input that produces nothing yet", async () => {
    const transform = dataTransform({ dotStuff: false });
    const out: Buffer[] = [];
    transform.on("data", (chunk: Buffer) => out.push(chunk));
    transform.write(Buffer.alloc(0));
    transform.write(Buffer.from("a\n"));
    transform.end();
    await new Promise((resolve) => transform.on("end", resolve));
    expect(out.map((c) => c.toString())).toEqual(["a\r\n"]);
  });
});

describe("bodies of every accepted kind", () => {
  it("a string, a Buffer, a Uint8Array view, a Readable and an async iterable of strings and bytes give the same DATA", async () => {
    const expected = "h\u00e9\r\n..dot\r\nend\r\n.\r\n";
    const text = "h\u00e9\n.dot\nend";
    const bytes = Buffer.from(text, "utf8");
    const backing = Buffer.concat([Buffer.from("junk"), bytes, Buffer.from("junk")]);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 4, bytes.length);
    const mixed = countingBody(["h\u00e9", new Uint8Array(Buffer.from("\n.d")), Buffer.from("ot\nend")]).body;
    for (const body of [text, bytes, view, Readable.from([bytes.subarray(0, 2), bytes.subarray(2)]), mixed]) {
      expect(Buffer.concat(await collect(dataChunks(body))).toString("utf8")).toBe(expected);
    }
    const bdat = await collect(bdatChunks(view, 4));
    expect(Buffer.concat(bdat.map((c) => c.bytes)).toString("utf8")).toBe("h\u00e9\r\n.dot\r\nend\r\n");
  });

  it("a string chunk from a stream is UTF-8", async () => {
    const chunks = await collect(bdatChunks(countingBody(["\u20ac"]).body));
    expect(chunks.map((c) => [...c.bytes])).toEqual([[0xe2, 0x82, 0xac, 0x0d, 0x0a]]);
  });

  it("refuses a body that is not bytes, a string or a stream, and a stream yielding anything else", async () => {
    await expect(collect(dataChunks(42 as unknown as string))).rejects.toThrow(
      new TypeError("The message body must be a Buffer, Uint8Array, string, Readable or AsyncIterable<Uint8Array>"),
    );
    const numbers = (async function* () {
      yield Buffer.from("ok");
      yield 7 as unknown as Uint8Array;
    })();
    await expect(collect(bdatChunks(numbers))).rejects.toThrow(
      new TypeError("The message body stream yielded something other than bytes or a string"),
    );
  });

  it("dataChunks yields no empty chunk, only the terminator, for a stream of empty chunks", async () => {
    const chunks = await collect(dataChunks(countingBody(["", Buffer.alloc(0), ""]).body));
    expect(chunks.map((c) => c.toString())).toEqual([".\r\n"]);
  });
});

describe("bdatChunks bounds", () => {
  it("the default chunk is 64 KiB", async () => {
    const sizes = (await collect(bdatChunks(Buffer.alloc(2 * 65_536 + 1, 0x61)))).map((c) => [c.bytes.length, c.last]);
    expect(sizes).toEqual([
      [65_536, false],
      [65_536, false],
      [3, true],
    ]);
  });

  it.each([0, -1, 1.5, Number.NaN, 2 ** 53])("refuses a chunk size of %s", async (size) => {
    await expect(collect(bdatChunks("x", size))).rejects.toThrow(new RangeError("chunkSize must be a positive integer"));
  });

  it("holds back one chunk only: a chunk goes out as soon as the next one is full", async () => {
    // Body chunks of exactly the BDAT size: chunk k can go out once chunk k+1 is read.
    const { body, read } = countingBody(Array.from({ length: 8 }, (_, i) => Buffer.alloc(1000, 0x61 + i)));
    const seen: number[] = [];
    for await (const chunk of bdatChunks(body, 1000)) {
      seen.push(read());
      if (!chunk.last) expect(chunk.bytes.length).toBe(1000);
    }
    expect(seen).toEqual([2, 3, 4, 5, 6, 7, 8, 8, 8]);
  });

  it("reads a large body lazily: the first chunk comes out before most of the body is read", async () => {
    const { body, read } = countingBody(Array.from({ length: 100 }, () => Buffer.alloc(300, 0x62)));
    const iterator = bdatChunks(body, 1024);
    const first = await iterator.next();
    expect(first.value?.bytes.length).toBe(1024);
    expect(read()).toBeLessThanOrEqual(8);
    await iterator.return(undefined);
  });

  it("a chunk size of 1 gives one byte per chunk, CRLF included", async () => {
    const chunks = await collect(bdatChunks("a\nb", 1));
    expect(chunks.map((c) => [c.bytes.toString("latin1"), c.last])).toEqual([
      ["a", false],
      ["\r", false],
      ["\n", false],
      ["b", false],
      ["\r", false],
      ["\n", true],
    ]);
  });
});

