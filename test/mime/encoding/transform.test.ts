import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { Base64Encoder, encodeBase64 } from "../../../src/mime/encoding/base64.js";
import { QuotedPrintableEncoder, encodeQuotedPrintable } from "../../../src/mime/encoding/quoted-printable.js";
import { encoderTransform } from "../../../src/mime/encoding/transform.js";
import type { ChunkEncoder } from "../../../src/mime/encoding/transform.js";

async function collect(source: Iterable<Uint8Array>, encoder: ChunkEncoder, slow = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, callback) {
      chunks.push(chunk);
      if (slow) setTimeout(callback, 0);
      else callback();
    },
  });
  await pipeline(Readable.from(source), encoderTransform(encoder), sink);
  return Buffer.concat(chunks);
}

describe("encoderTransform", () => {
  it("streams an encoder's output, flush included", async () => {
    const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 31) & 0xff));
    const parts = [data.subarray(0, 1), data.subarray(1, 4000), data.subarray(4000)];
    expect((await collect(parts, new Base64Encoder())).toString("latin1")).toBe(encodeBase64(data));
    const text = Buffer.from("caf\u00e9 \r\n.\nFrom here \n".repeat(200), "latin1");
    expect((await collect([text.subarray(0, 7), text.subarray(7)], new QuotedPrintableEncoder())).toString("latin1")).toBe(
      encodeQuotedPrintable(text),
    );
  });

  it("respects backpressure from a slow consumer", async () => {
    const transform = encoderTransform(new Base64Encoder(), { highWaterMark: 4096 });
    const chunk = Buffer.alloc(4096, 1);
    let refused = 0;
    for (let i = 0; i < 16; i++) if (!transform.write(chunk)) refused++;
    expect(refused).toBeGreaterThan(0);
    transform.end();
    const out: Buffer[] = [];
    for await (const piece of transform) out.push(piece as Buffer);
    expect(Buffer.concat(out).toString("latin1")).toBe(encodeBase64(Buffer.alloc(4096 * 16, 1)));
    const slow = await collect(Array.from({ length: 64 }, () => chunk), new Base64Encoder(), true);
    expect(slow.length).toBe(encodeBase64(Buffer.alloc(4096 * 64, 1)).length);
  });

  it("reports an encoder error as a stream error", async () => {
    const failing: ChunkEncoder = {
      encode() {
        throw new Error("boom");
      },
      flush: () => Buffer.alloc(0),
      reset() {},
    };
    await expect(collect([Buffer.from("x")], failing)).rejects.toThrow("boom");
  });

  it("reports an error thrown by flush as a stream error", async () => {
    const failing: ChunkEncoder = {
      encode: (chunk) => Buffer.from(chunk),
      flush() {
        throw new Error("flush failed");
      },
      reset() {},
    };
    await expect(collect([Buffer.from("x")], failing)).rejects.toThrow("flush failed");
  });

  it("hands the encoder bytes even when strings are written", async () => {
    const seen: unknown[] = [];
    const recording: ChunkEncoder = {
      encode(chunk) {
        seen.push(chunk);
        return Buffer.from(chunk);
      },
      flush: () => Buffer.from("!"),
      reset() {},
    };
    const transform = encoderTransform(recording);
    transform.end("h\u00e9");
    const out: Buffer[] = [];
    for await (const piece of transform) out.push(piece as Buffer);
    expect(seen).toHaveLength(1);
    expect(Buffer.isBuffer(seen[0])).toBe(true);
    expect(Buffer.concat(out).toString("utf8")).toBe("h\u00e9!");
  });

  it("takes the highWaterMark and the abort signal it is given", async () => {
    const transform = encoderTransform(new Base64Encoder(), { highWaterMark: 100 });
    expect(transform.writableHighWaterMark).toBe(100);
    expect(transform.readableHighWaterMark).toBe(100);
    expect(encoderTransform(new Base64Encoder()).writableHighWaterMark).toBe(16 * 1024);
    const controller = new AbortController();
    const aborted = encoderTransform(new Base64Encoder(), { signal: controller.signal });
    const closed = new Promise<unknown>((resolve) => aborted.on("error", resolve));
    controller.abort();
    expect((await closed as Error).name).toBe("AbortError");
    expect(aborted.destroyed).toBe(true);
  });
});
