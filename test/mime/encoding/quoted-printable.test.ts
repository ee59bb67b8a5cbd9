import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  QuotedPrintableEncoder,
  decodeQuotedPrintable,
  encodeQuotedPrintable,
} from "../../../src/mime/encoding/quoted-printable.js";
import { cutsArb, oneByteChunks, runChunks, splitAt } from "./helpers.js";

const qp = (text: string, encoding: BufferEncoding = "latin1"): string => encodeQuotedPrintable(Buffer.from(text, encoding));

/** Bytes biased towards what QP treats specially, up to 500 of them (`size: "max"`: fast-check's default size stops near 10). */
const shortLinesArb = fc
  .array(
    fc.oneof(
      fc.constantFrom(0x20, 0x09, 0x0d, 0x0a, 0x2e, 0x3d, 0x46, 0x72, 0x6f, 0x6d, 0x78),
      fc.integer({ min: 0, max: 255 }),
    ),
    { maxLength: 500, size: "max" },
  )
  .map((a) => Uint8Array.from(a));

/**
 * Lines long enough to need soft breaks, mixing literals, escapes and white space so that
 * every kind of byte meets the 76-character bound; a line break is rare.
 */
const longLinesArb = fc
  .array(
    fc.oneof(
      { weight: 30, arbitrary: fc.constantFrom(0x78, 0x2e, 0x46, 0x20) },
      { weight: 10, arbitrary: fc.constantFrom(0x3d, 0xe9, 0x00, 0x09) },
      { weight: 1, arbitrary: fc.constantFrom(0x0a, 0x0d) },
    ),
    { minLength: 70, maxLength: 1000, size: "max" },
  )
  .map((a) => Uint8Array.from(a));

const qpBytesArb = fc.oneof(shortLinesArb, longLinesArb);

/** What the encoder promises to preserve: the bytes, with CRLF, CR and LF all as CRLF. */
function normalizeBreaks(bytes: Uint8Array): Buffer {
  return Buffer.from(Buffer.from(bytes).toString("latin1").replace(/\r\n|\r|\n/g, "\r\n"), "latin1");
}

describe("quoted-printable encoding", () => {
  it("escapes =, non-printables and 8-bit bytes as =XX with upper-case hex", () => {
    expect(qp("a=b")).toBe("a=3Db");
    expect(qp("caf\u00e9")).toBe("caf=E9");
    expect(qp("caf\u00e9", "utf8")).toBe("caf=C3=A9");
    expect(qp("\u0000\u007f\u00ff")).toBe("=00=7F=FF");
    expect(qp("plain ASCII text, 100% safe!")).toBe("plain ASCII text, 100% safe!");
  });

  it("turns CRLF, LF and CR into CRLF hard breaks (RFC 2045 §6.7 rule 4)", () => {
    expect(qp("a\r\nb\nc\rd")).toBe("a\r\nb\r\nc\r\nd");
    expect(qp("\r\n\r\n")).toBe("\r\n\r\n");
    expect(qp("a\n\rb")).toBe("a\r\n\r\nb");
  });

  it("encodes white space before a break or at the end, and keeps it elsewhere (rule 3)", () => {
    expect(qp("a b\n")).toBe("a b\r\n");
    expect(qp("a \nb\t\r\nc  ")).toBe("a=20\r\nb=09\r\nc =20");
    expect(qp(" ")).toBe("=20");
  });

  it("keeps lines <= 76 with soft breaks and never splits an escape (rule 5)", () => {
    expect(qp("x".repeat(75))).toBe("x".repeat(75));
    expect(qp("x".repeat(76))).toBe(`${"x".repeat(75)}=\r\nx`);
    expect(qp(`${"x".repeat(73)}=`)).toBe(`${"x".repeat(73)}=\r\n=3D`);
    expect(qp(`${"x".repeat(72)}=`)).toBe(`${"x".repeat(72)}=3D`);
  });

  it("encodes a line-initial dot, also after a soft break, so no line is a lone dot", () => {
    expect(qp(".\n..\nx.")).toBe("=2E\r\n=2E.\r\nx.");
    expect(qp(`${"x".repeat(75)}.`)).toBe(`${"x".repeat(75)}=\r\n=2E`);
  });

  it("encodes the F of a line-initial \"From \" (mbox) and nothing else", () => {
    expect(qp("From me\nFrom\nFromage\nA From b\nFrom\tx")).toBe("=46rom me\r\nFrom\r\nFromage\r\nA From b\r\nFrom\tx");
    expect(qp("From \n")).toBe("=46rom=20\r\n");
    expect(qp("Fro")).toBe("Fro");
    expect(qp(`${"x".repeat(75)}From x`)).toBe(`${"x".repeat(75)}=\r\n=46rom x`);
  });

  it("treats a CR at the end of one chunk and an LF at the start of the next as one break", () => {
    const enc = new QuotedPrintableEncoder();
    const out = runChunks(enc, [Buffer.from("a \r"), Buffer.from("\nb")]).toString("latin1");
    expect(out).toBe("a=20\r\nb");
  });

  it("holds a trailing space until it knows what follows", () => {
    const enc = new QuotedPrintableEncoder();
    expect(enc.encode(Buffer.from("a ")).toString()).toBe("a");
    expect(enc.encode(Buffer.from("b")).toString()).toBe(" b");
    expect(enc.encode(Buffer.from(" ")).toString()).toBe("");
    expect(enc.flush().toString()).toBe("=20");
  });

  it("produces 7-bit lines of at most 76 characters, never a lone dot or trailing white space", () => {
    fc.assert(
      fc.property(qpBytesArb, (bytes) => {
        const out = encodeQuotedPrintable(bytes);
        expect(out).toMatch(/^[\x21-\x7e \t\r\n]*$/);
        // One expect per input (not per line) keeps 300 inputs of up to 1000 bytes quick.
        const bad = out
          .split("\r\n")
          .filter(
            (line) =>
              line.length > 76 ||
              line.startsWith(".") ||
              line.startsWith("From ") ||
              /[ \t]$/.test(line) ||
              /[\r\n]/.test(line) ||
              /=(?![0-9A-F]{2}|$)/.test(line),
          );
        expect(bad).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("inverts with its decoder (line breaks normalised to CRLF)", () => {
    fc.assert(
      fc.property(qpBytesArb, (bytes) => {
        expect(decodeQuotedPrintable(encodeQuotedPrintable(bytes)).equals(normalizeBreaks(bytes))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("gives the same output for every chunking, including 1-byte chunks", () => {
    fc.assert(
      fc.property(qpBytesArb, cutsArb, (bytes, cuts) => {
        const whole = encodeQuotedPrintable(bytes);
        expect(runChunks(new QuotedPrintableEncoder(), splitAt(bytes, cuts)).toString("latin1")).toBe(whole);
        expect(runChunks(new QuotedPrintableEncoder(), oneByteChunks(bytes)).toString("latin1")).toBe(whole);
      }),
      { numRuns: 200 },
    );
  });
});

describe("quoted-printable decoding", () => {
  it("removes soft breaks (RFC 2045 §6.7 rule 5 example)", () => {
    const encoded = "Now's the time =\r\nfor all folk to come=\r\n to the aid of their country.";
    expect(decodeQuotedPrintable(encoded).toString()).toBe("Now's the time for all folk to come to the aid of their country.");
  });

  it("is tolerant: lower-case hex, bare LF soft breaks, stray = and transport-added trailing space", () => {
    expect(decodeQuotedPrintable("caf=e9").toString("latin1")).toBe("caf\u00e9");
    expect(decodeQuotedPrintable("a=\nb").toString()).toBe("ab");
    expect(decodeQuotedPrintable("a=  \r\nb").toString()).toBe("ab");
    expect(decodeQuotedPrintable("1=2 =Z").toString()).toBe("1=2 =Z");
    expect(decodeQuotedPrintable("a  \r\nb \t").toString()).toBe("a\r\nb");
    expect(decodeQuotedPrintable("a=").toString()).toBe("a");
  });

  it("drops white space before a bare LF or CR too", () => {
    expect(decodeQuotedPrintable("a  \nb").toString()).toBe("a\nb");
    expect(decodeQuotedPrintable("a\t\rb").toString()).toBe("a\rb");
  });

  it("keeps an = with one hex digit at the end as it is", () => {
    expect(decodeQuotedPrintable("x=A").toString()).toBe("x=A");
    expect(decodeQuotedPrintable("x=4").toString()).toBe("x=4");
    expect(decodeQuotedPrintable("x=41").toString()).toBe("xA");
  });

  it("a soft break takes one line break only: CRLF, a bare LF or a bare CR", () => {
    expect(decodeQuotedPrintable("a=\n\nb").toString()).toBe("a\nb");
    expect(decodeQuotedPrintable("a=\r\n\r\nb").toString()).toBe("a\r\nb");
    expect(decodeQuotedPrintable("a=\rb").toString()).toBe("ab");
    expect(decodeQuotedPrintable("a=\r\rb").toString()).toBe("a\rb");
  });

  it("takes a raw 8-bit character (a sender that broke the rules) as its Latin-1 byte", () => {
    expect([...decodeQuotedPrintable("caf\u00e9")]).toEqual([0x63, 0x61, 0x66, 0xe9]);
  });
});

describe("quoted-printable encoding, byte for byte as a plain byte-at-a-time loop", () => {
  // Every byte through the whole rule set in turn: a CR's LF, a held line-initial "From",
  // line breaks (held white space escaped before them), held white space written, then the
  // byte itself (held if white space; literal, "=2E" at a line start, or "=XX"), with soft
  // breaks keeping lines within 76.
  function plain(bytes: Uint8Array): string {
    const hex = (b: number) => `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
    const literal = (b: number) => b >= 0x21 && b <= 0x7e && b !== 0x3d;
    let out = "";
    let column = 0;
    let held = -1;
    let afterCr = false;
    let from = 0;
    const soft = () => {
      out += "=\r\n";
      column = 0;
    };
    for (const b of bytes) {
      if (afterCr) {
        afterCr = false;
        if (b === 0x0a) continue;
      }
      if (from > 0) {
        if (from < 4 && b === "From".charCodeAt(from)) {
          from++;
          continue;
        }
        const count = from;
        from = 0;
        if (b === 0x20 && count === 4) {
          out += "=46rom";
          column = 6;
          held = 0x20;
          continue;
        }
        out += "From".slice(0, count);
        column = count;
      }
      if (b === 0x0d || b === 0x0a) {
        if (held !== -1) {
          if (column > 72) soft();
          out += hex(held);
          held = -1;
        }
        out += "\r\n";
        column = 0;
        afterCr = b === 0x0d;
        continue;
      }
      if (held !== -1) {
        if (column >= 75) soft();
        out += String.fromCharCode(held);
        column++;
        held = -1;
      }
      if (b === 0x20 || b === 0x09) {
        held = b;
      } else if (literal(b)) {
        if (column >= 75) soft();
        if (column === 0 && b === 0x46) {
          from = 1;
        } else if (column === 0 && b === 0x2e) {
          out += "=2E";
          column = 3;
        } else {
          out += String.fromCharCode(b);
          column++;
        }
      } else {
        if (column > 72) soft();
        out += hex(b);
        column += 3;
      }
    }
    out += "From".slice(0, from);
    column += from;
    if (held !== -1) {
      if (column > 72) soft();
      out += hex(held);
    }
    return out;
  }

  const texts = fc.oneof(
    qpBytesArb,
    fc.array(fc.constantFrom("From ", "Fro", ".", " ", "\t", "  \r\n", "word ", "=", "é", "x".repeat(70), "\r", "\n"), { maxLength: 40 }).map((p) => Buffer.from(p.join(""), "utf8")),
  );

  it("whatever the bytes and however they are cut", () => {
    fc.assert(
      fc.property(texts, cutsArb, (bytes, cuts) => {
        const encoded = runChunks(new QuotedPrintableEncoder(), splitAt(bytes, cuts)).toString("latin1");
        expect(encoded).toBe(plain(bytes));
      }),
      { numRuns: 1000 },
    );
  });
});

describe("quoted-printable line length at the 76-character bound (RFC 2045 §6.7 rule 5)", () => {
  const x = (n: number) => "x".repeat(n);
  const linesOf = (out: string) => out.split("\r\n").map((line) => line.length);

  it("escapes advance the column: 25 escapes fill a line, the 26th goes after a soft break", () => {
    expect(qp("\u00e9".repeat(25))).toBe("=E9".repeat(25));
    expect(qp("\u00e9".repeat(26))).toBe(`${"=E9".repeat(25)}=\r\n=E9`);
    expect(qp("\u00e9".repeat(60))).toBe(`${"=E9".repeat(25)}=\r\n${"=E9".repeat(25)}=\r\n${"=E9".repeat(10)}`);
    expect(qp(`${x(50)}${"\u00e9".repeat(10)}`)).toBe(`${x(50)}${"=E9".repeat(8)}=\r\n=E9=E9`);
  });

  it("a space before a hard break is escaped on its line when it fits, else after a soft break", () => {
    expect(qp(`${x(72)} \n`)).toBe(`${x(72)}=20\r\n`);
    expect(qp(`${x(73)} \n`)).toBe(`${x(73)}=\r\n=20\r\n`);
    expect(qp(`${x(75)}\t\r\ny`)).toBe(`${x(75)}=\r\n=09\r\ny`);
    expect(linesOf(qp(`${x(73)} \n`))).toEqual([74, 3, 0]);
  });

  it("a space at the very end is escaped on its line when it fits, else after a soft break", () => {
    expect(qp(`${x(72)} `)).toBe(`${x(72)}=20`);
    expect(qp(`${x(73)} `)).toBe(`${x(73)}=\r\n=20`);
    expect(qp(`${x(75)} `)).toBe(`${x(75)}=\r\n=20`);
  });

  it("a space followed by text stays literal, after a soft break when the line is full", () => {
    expect(qp(`${x(74)} y`)).toBe(`${x(74)} =\r\ny`);
    expect(qp(`${x(75)} y`)).toBe(`${x(75)}=\r\n y`);
    expect(qp(`${x(75)}  y`)).toBe(`${x(75)}=\r\n  y`);
  });

  it("a literal fills a line to 75 characters and the soft break's = makes 76", () => {
    expect(linesOf(qp(x(75 * 3 + 1)))).toEqual([76, 76, 76, 1]);
    expect(linesOf(qp(`${x(72)}==`))).toEqual([76, 3]);
    expect(linesOf(qp(`${x(74)}=`))).toEqual([75, 3]);
  });
});

describe("quoted-printable encoder state", () => {
  it("reset() drops a held space, the column, a pending CR and a held From", () => {
    const enc = new QuotedPrintableEncoder();
    enc.encode(Buffer.from("a "));
    enc.reset();
    expect(runChunks(enc, [Buffer.from("b")]).toString("latin1")).toBe("b");

    enc.encode(Buffer.from("x".repeat(70)));
    enc.reset();
    expect(runChunks(enc, [Buffer.from("y".repeat(10))]).toString("latin1")).toBe("y".repeat(10));

    enc.encode(Buffer.from("a\r"));
    enc.reset();
    expect(runChunks(enc, [Buffer.from("\nb")]).toString("latin1")).toBe("\r\nb");

    enc.encode(Buffer.from("\nFro"));
    enc.reset();
    expect(runChunks(enc, [Buffer.from("m x")]).toString("latin1")).toBe("m x");
  });

  it("a fresh or flushed encoder takes a leading LF as a line break", () => {
    const enc = new QuotedPrintableEncoder();
    expect(runChunks(enc, [Buffer.from("\na")]).toString("latin1")).toBe("\r\na");
    enc.encode(Buffer.from("b\r"));
    enc.flush();
    expect(runChunks(enc, [Buffer.from("\nc")]).toString("latin1")).toBe("\r\nc");
  });

  it("one chunk of the worst case for its size comes out whole", () => {
    // Every byte escaped, 25 to a line: the most output per input byte.
    for (const n of [1, 25, 26, 85, 86, 100, 101, 1000, 4099, 65_536]) {
      const out = encodeQuotedPrintable(Buffer.alloc(n, 0xff));
      const lines = Math.ceil(n / 25);
      expect(out.length, `${n} bytes`).toBe(3 * n + 3 * (lines - 1));
      expect(out.endsWith("=FF")).toBe(true);
    }
    // After a held "From" and a held space (the state a chunk may start with).
    const enc = new QuotedPrintableEncoder();
    const parts = [Buffer.from("From"), Buffer.from(" "), Buffer.alloc(3000, 0x00)];
    expect(runChunks(enc, parts).toString("latin1")).toBe(encodeQuotedPrintable(Buffer.concat(parts)));
  });

  it("works in memory proportional to the chunk", () => {
    const chunk = Buffer.alloc(1 << 20, 0xff);
    const enc = new QuotedPrintableEncoder();
    const before = process.memoryUsage().arrayBuffers;
    const out = enc.encode(chunk);
    const grown = process.memoryUsage().arrayBuffers - before;
    // The output (3.1 MiB) and the encoder's working buffer, each a small multiple of the chunk.
    expect(out.length).toBe(3 * chunk.length + 3 * (Math.ceil(chunk.length / 25) - 1));
    expect(grown).toBeLessThan(16 * chunk.length);
  });
});

