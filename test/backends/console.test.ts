import { PassThrough, Readable, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { ConsoleBackend, CONSOLE_SEPARATOR } from "../../src/backends/console.js";
import { BackendError, BadHeaderError } from "../../src/errors.js";
import { fixedMessage } from "./helpers.js";

function collector(): { stream: PassThrough; bytes: () => Buffer } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  return { stream, bytes: () => Buffer.concat(chunks) };
}

describe("ConsoleBackend", () => {
  it("writes each message's exact bytes, then a line of 79 dashes (CRLF)", async () => {
    const { stream, bytes } = collector();
    const a = fixedMessage({ subject: "First" });
    const b = fixedMessage({ subject: "Second", body: "ends with a newline\n" });
    const expectedA = await fixedMessage({ subject: "First" }).asBytes();
    const expectedB = await fixedMessage({ subject: "Second", body: "ends with a newline\n" }).asBytes();
    const sent = await new ConsoleBackend({ stream }).sendMessages([a, b]);
    expect(sent).toBe(2);
    expect(CONSOLE_SEPARATOR).toBe("-".repeat(79) + "\r\n");
    const sep = (msg: Buffer) => (msg.subarray(-2).toString() === "\r\n" ? "" : "\r\n") + CONSOLE_SEPARATOR;
    const expected = Buffer.concat([expectedA, Buffer.from(sep(expectedA)), expectedB, Buffer.from(sep(expectedB))]);
    expect(bytes().toString("latin1")).toBe(expected.toString("latin1"));
    // Only CRLF line endings.
    expect(bytes().toString("latin1").replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
  });

  it("returns 0 for no messages and writes nothing", async () => {
    const { stream, bytes } = collector();
    expect(await new ConsoleBackend({ stream }).sendMessages([])).toBe(0);
    expect(bytes().length).toBe(0);
  });

  it("does not end the stream", async () => {
    const { stream } = collector();
    await new ConsoleBackend({ stream }).sendMessages([fixedMessage()]);
    expect(stream.writableEnded).toBe(false);
  });

  it("honours backpressure from a slow stream (no write while a drain is pending)", async () => {
    const received: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        received.push(chunk);
        setTimeout(cb, 1);
      },
    });
    let waitingForDrain = false;
    let violations = 0;
    let writes = 0;
    slow.on("drain", () => {
      waitingForDrain = false;
    });
    const origWrite = slow.write.bind(slow);
    slow.write = ((...args: never[]) => {
      if (waitingForDrain) violations++;
      writes++;
      const ok = (origWrite as (...a: never[]) => boolean)(...args);
      if (!ok) waitingForDrain = true;
      return ok;
    }) as typeof slow.write;
    const msg = fixedMessage();
    const chunk = Buffer.alloc(8192, 7);
    msg.attach("big.bin", () => Readable.from((function* () {
      for (let i = 0; i < 40; i++) yield chunk;
    })()), "application/octet-stream");
    expect(await new ConsoleBackend({ stream: slow }).sendMessages([msg])).toBe(1);
    expect(writes).toBeGreaterThan(3);
    expect(violations).toBe(0);
    expect(Buffer.concat(received).toString("latin1").endsWith(CONSOLE_SEPARATOR)).toBe(true);
  });

  it("never interleaves two backends writing to one stream", async () => {
    const { stream, bytes } = collector();
    const one = new ConsoleBackend({ stream });
    const two = new ConsoleBackend({ stream });
    const m1 = fixedMessage({ subject: "one" });
    m1.attach("a.bin", Buffer.alloc(100_000, 1), "application/octet-stream");
    const m2 = fixedMessage({ subject: "two" });
    await Promise.all([one.sendMessages([m1]), two.sendMessages([m2])]);
    const text = bytes().toString("latin1");
    const parts = text.split(CONSOLE_SEPARATOR).filter((p) => p !== "");
    expect(parts).toHaveLength(2);
    expect(parts[0]).toContain("Subject: one");
    expect(parts[0]).not.toContain("Subject: two");
    expect(parts[1]).toContain("Subject: two");
  });

  it("stream errors become BackendError, hidden by failSilently", async () => {
    const broken = () =>
      new Writable({
        write(_c, _e, cb) {
          cb(new Error("EPIPE: broken pipe"));
        },
      });
    await expect(new ConsoleBackend({ stream: broken() }).sendMessages([fixedMessage()])).rejects.toBeInstanceOf(BackendError);
    expect(await new ConsoleBackend({ stream: broken(), failSilently: true }).sendMessages([fixedMessage()])).toBe(0);
  });

  it("a destroyed or ended stream: BackendError promptly, and the stream's queue is not blocked", async () => {
    const bounded = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("hung")), 2000))]);
    const destroyed = new PassThrough();
    destroyed.destroy();
    await expect(bounded(new ConsoleBackend({ stream: destroyed }).sendMessages([fixedMessage()]))).rejects.toBeInstanceOf(BackendError);
    // A second send to the same stream is queued behind the first: it must settle too.
    await expect(bounded(new ConsoleBackend({ stream: destroyed, failSilently: true }).sendMessages([fixedMessage()]))).resolves.toBe(0);
    const ended = new PassThrough();
    ended.resume();
    ended.end();
    await expect(bounded(new ConsoleBackend({ stream: ended }).sendMessages([fixedMessage()]))).rejects.toBeInstanceOf(BackendError);
  });

  it("a stream closed while waiting for drain: BackendError (close before drain is an error)", async () => {
    const stuck = new Writable({ highWaterMark: 16, write() {} });
    const msg = fixedMessage();
    msg.attach("big.bin", Buffer.alloc(200_000, 3), "application/octet-stream");
    const sending = new ConsoleBackend({ stream: stuck }).sendMessages([msg]);
    setTimeout(() => stuck.destroy(), 20);
    const error = await Promise.race([sending.then(() => undefined, (e: unknown) => e), new Promise((r) => setTimeout(() => r("hung"), 2000))]);
    expect(error).toBeInstanceOf(BackendError);
  });

  it("no drain/close/error listeners left behind after many messages to a slow stream", async () => {
    const slow = new Writable({
      highWaterMark: 256,
      write(_chunk: Buffer, _enc, cb) {
        setImmediate(cb);
      },
    });
    const before = ["drain", "close", "error"].map((e) => slow.listenerCount(e));
    let drains = 0;
    slow.on("drain", () => drains++);
    const messages = Array.from({ length: 20 }, (_, i) => {
      const m = fixedMessage({ subject: `m${i}` });
      m.attach("a.bin", Buffer.alloc(4096, i), "application/octet-stream");
      return m;
    });
    expect(await new ConsoleBackend({ stream: slow }).sendMessages(messages)).toBe(20);
    expect(drains).toBeGreaterThanOrEqual(20);
    slow.removeAllListeners("drain");
    expect(["drain", "close", "error"].map((e) => slow.listenerCount(e))).toEqual([0, before[1], before[2]]);
  });

  it("failSilently never hides a bad header", async () => {
    const { stream, bytes } = collector();
    const bad = fixedMessage();
    bad.headers = { "X-Ok": "fine" };
    (bad as unknown as { headers: Record<string, string> }).headers["X-Evil"] = "a\r\nBcc: victim@example.com";
    await expect(new ConsoleBackend({ stream, failSilently: true }).sendMessages([bad])).rejects.toBeInstanceOf(BadHeaderError);
    expect(bytes().length).toBe(0);
  });

  it("defaults to process.stdout", () => {
    expect(new ConsoleBackend().stream).toBe(process.stdout);
  });
});
