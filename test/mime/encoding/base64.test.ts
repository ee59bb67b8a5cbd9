import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Base64Encoder, base64EncodedLength, encodeBase64 } from "../../../src/mime/encoding/base64.js";
import { InvalidArgumentError } from "../../../src/errors.js";
import { bytesArb, cutsArb, oneByteChunks, runChunks, splitAt } from "./helpers.js";

const decode = (s: string): Buffer => Buffer.from(s.replaceAll("\r\n", ""), "base64");

describe("base64", () => {
  it("encodes the RFC 4648 §10 vectors, each line ended by CRLF", () => {
    const vectors: Array<[string, string]> = [
      ["", ""],
      ["f", "Zg==\r\n"],
      ["fo", "Zm8=\r\n"],
      ["foo", "Zm9v\r\n"],
      ["foob", "Zm9vYg==\r\n"],
      ["fooba", "Zm9vYmE=\r\n"],
      ["foobar", "Zm9vYmFy\r\n"],
    ];
    for (const [input, output] of vectors) expect(encodeBase64(Buffer.from(input))).toBe(output);
  });

  it("wraps at 76 characters: 57 bytes make exactly one line", () => {
    const bytes = Buffer.alloc(58, 0xff);
    expect(encodeBase64(bytes.subarray(0, 57))).toBe(`${"/".repeat(76)}\r\n`);
    expect(encodeBase64(bytes)).toBe(`${"/".repeat(76)}\r\n/w==\r\n`);
  });

  it("honours another line length and rejects one that is not a multiple of 4", () => {
    expect(encodeBase64(Buffer.from("foobar"), 4)).toBe("Zm9v\r\nYmFy\r\n");
    expect(() => new Base64Encoder(75)).toThrow(InvalidArgumentError);
    expect(() => base64EncodedLength(3, 0)).toThrow(InvalidArgumentError);
    expect(() => encodeBase64(Buffer.from("x"), 2.5)).toThrow(new InvalidArgumentError("base64 line length must be a positive multiple of 4, got 2.5"));
  });

  it("accepts a plain Uint8Array and returns nothing until a group is complete", () => {
    const enc = new Base64Encoder();
    expect(enc.encode(new Uint8Array([0x66])).length).toBe(0);
    expect(enc.encode(new Uint8Array([0x6f])).length).toBe(0);
    expect(enc.encode(new Uint8Array([0x6f])).toString()).toBe("Zm9v");
    expect(enc.flush().toString()).toBe("\r\n");
    expect(enc.flush().length).toBe(0);
  });

  it("inverts with Buffer's decoder, keeps lines <= 76 ending in CRLF, and predicts its length", () => {
    fc.assert(
      fc.property(bytesArb, (bytes) => {
        const out = encodeBase64(bytes);
        expect(decode(out).equals(Buffer.from(bytes))).toBe(true);
        expect(out.length).toBe(base64EncodedLength(bytes.length));
        if (bytes.length > 0) expect(out.endsWith("\r\n")).toBe(true);
        for (const line of out.split("\r\n").slice(0, -1)) {
          expect(line.length).toBeLessThanOrEqual(76);
          expect(line).toMatch(/^[A-Za-z0-9+/=]+$/);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("gives the same output for every chunking, including 1-byte chunks", () => {
    fc.assert(
      fc.property(bytesArb, cutsArb, fc.constantFrom(4, 8, 76), (bytes, cuts, lineLength) => {
        const whole = encodeBase64(bytes, lineLength);
        expect(runChunks(new Base64Encoder(lineLength), splitAt(bytes, cuts)).toString("latin1")).toBe(whole);
        expect(runChunks(new Base64Encoder(lineLength), oneByteChunks(bytes)).toString("latin1")).toBe(whole);
      }),
      { numRuns: 200 },
    );
  });

  it("matches Buffer#toString for a large input fed in uneven chunks", () => {
    const bytes = Buffer.from(Array.from({ length: 300_001 }, (_, i) => (i * 7919) & 0xff));
    const enc = new Base64Encoder();
    const out = runChunks(enc, splitAt(bytes, [65_536, 65_537, 131_075, 200_000]));
    expect(decode(out.toString("latin1")).equals(bytes)).toBe(true);
    expect(out.toString("latin1")).toBe(encodeBase64(bytes));
  });

  it("reset() drops held bytes and the column", () => {
    const enc = new Base64Encoder();
    enc.encode(Buffer.from("abcdefgh"));
    enc.reset();
    expect(runChunks(enc, [Buffer.from("foo")]).toString()).toBe("Zm9v\r\n");
  });
});
