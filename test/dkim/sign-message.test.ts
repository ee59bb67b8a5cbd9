/**
 * signMessage: raw bytes in, signed bytes out, judged by dkimpy; a streamed message read
 * twice through a function that opens it, the second reading proven equal to the first;
 * memory bounded by the chunk size.
 */
import { execFile } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { signMessage } from "../../src/dkim/sign-message.js";
import { signRendered } from "../../src/dkim/sign.js";
import { verifyWithDkimpy } from "../helpers/dkim-oracle.js";
import { asReceived, dkimFixtures, edSigner, prepend, RECORDS, renderedFrom, rsaSigner, SIGNING_TIME } from "./helpers.js";

const signers = [rsaSigner(), edSigner({ canonicalization: "simple/simple" })];
const now = SIGNING_TIME;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-dkim-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function oks(messages: Buffer[]): Promise<boolean[][]> {
  return (await verifyWithDkimpy(messages.map((message) => ({ message, records: RECORDS })))).map((v) => v.map((s) => s.ok));
}

describe("signMessage with bytes", () => {
  it("returns the signature fields and the message, the same bytes signRendered signs; dkimpy verifies", async () => {
    const message = await readFile(`${dkimFixtures}awkward.eml`);
    const signed = await signMessage(message, signers, { now });
    expect(Buffer.isBuffer(signed)).toBe(true);
    const viaRendered = prepend(await signRendered(renderedFrom(message), signers, { now }), message);
    expect(signed.toString("latin1")).toBe(viaRendered.toString("latin1"));
    expect(signed.equals(asReceived(signed))).toBe(true); // already what a receiver stores
    expect(await oks([signed])).toEqual([[true, true]]);
  });

  it("normalises line breaks (a Unix .eml with LF only, a stray CR) and adds the missing final CRLF", async () => {
    const lf = "From: Ann <ann@example.com>\nTo: bob@example.org\nSubject: Unix\n line endings\n\nline one  \nline\rtwo\n\nlast line, no break";
    const signed = await signMessage(lf, signers, { now });
    const text = signed.toString("utf8");
    expect(text.endsWith("From: Ann <ann@example.com>\r\nTo: bob@example.org\r\nSubject: Unix\r\n line endings\r\n\r\nline one  \r\nline\r\ntwo\r\n\r\nlast line, no break\r\n")).toBe(true);
    expect(text.replace(/\r\n/g, "").includes("\n")).toBe(false);
    expect(await oks([signed])).toEqual([[true, true]]);
  });

  it("signs a message that is only a header block (no empty line, empty body)", async () => {
    const signed = await signMessage("From: a@example.com\r\nSubject: headers only", signers, { now });
    expect(signed.toString("latin1").endsWith("\r\nFrom: a@example.com\r\nSubject: headers only\r\n")).toBe(true);
    expect(await oks([signed])).toEqual([[true, true]]);
  });

  it("refuses what is not a message: no From, two From, a line that is not a field, a huge header block", async () => {
    const bad = [
      "To: b@example.org\r\n\r\nbody\r\n",
      "From: a@example.com\r\nfrom: b@example.com\r\n\r\nbody\r\n",
      "From: a@example.com\r\nthis is not a header field\r\n\r\nbody\r\n",
      " continuation first\r\nFrom: a@example.com\r\n\r\n",
      `From: a@example.com\r\nX-Big: ${"x".repeat(1024 * 1024)}\r\n\r\nbody\r\n`,
    ];
    for (const message of bad) await expect(signMessage(message, signers, { now })).rejects.toThrow(InvalidArgumentError);
    await expect(signMessage("To: b@example.org\r\n\r\n", signers)).rejects.toThrow(/no From header field/);
  });
});

describe("signMessage with a stream", () => {
  it("takes a function that opens the message, reads it twice, and gives a Readable of the same bytes as the Buffer form", async () => {
    const message = await readFile(`${dkimFixtures}awkward.eml`);
    const path = join(dir, "awkward.eml");
    await writeFile(path, message);
    let opened = 0;
    const stream = await signMessage(() => {
      opened++;
      return createReadStream(path, { highWaterMark: 16 });
    }, signers, { now });
    expect(stream).toBeInstanceOf(Readable);
    const bytes = await collect(stream);
    expect(opened).toBe(2);
    expect(bytes.toString("latin1")).toBe((await signMessage(message, signers, { now })).toString("latin1"));
    expect(await oks([bytes])).toEqual([[true, true]]);
  });

  it("refuses a one-shot stream, saying what to pass instead", async () => {
    const once = Readable.from([Buffer.from("From: a@example.com\r\n\r\nbody\r\n")]);
    await expect(signMessage(once as never, signers)).rejects.toThrow(/function that opens it/);
  });

  it("fails the stream, before its last chunk, when the second reading differs from the first", async () => {
    let n = 0;
    const stream = await signMessage(() => {
      const body = n++ === 0 ? "first reading\r\n" : "second reading\r\n";
      return Readable.from([Buffer.from("From: a@example.com\r\nSubject: x\r\n\r\n"), Buffer.from(body)]);
    }, signers);
    const seen: Buffer[] = [];
    await expect(
      (async () => {
        for await (const chunk of stream) seen.push(chunk as Buffer);
      })(),
    ).rejects.toThrow(/different bytes the second time/);
    expect(Buffer.concat(seen).toString()).not.toContain("reading");
  });

  it("closes the source when the message is refused halfway", async () => {
    let destroyed = false;
    const refused = signMessage(() => {
      const source = Readable.from(
        (function* () {
          yield Buffer.from("To: b@example.org\r\n\r\n");
          for (let i = 0; i < 1000; i++) yield Buffer.from("body line\r\n");
        })(),
      );
      source.once("close", () => (destroyed = true));
      return source;
    }, signers);
    await expect(refused).rejects.toThrow(/no From/);
    await new Promise((resolve) => setImmediate(resolve));
    expect(destroyed).toBe(true);
  });
});

describe("memory", () => {
  it("stays bounded by the chunk size while a 128 MiB streamed message is signed and sent", async () => {
    const probe = fileURLToPath(new URL("./memory-probe.ts", import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", "--import", "tsx", probe, "128"], { timeout: 240_000, maxBuffer: 1024 * 1024 });
    const result = JSON.parse(stdout.trim().split("\n").pop()!) as { bytes: number; bodyBytes: number; peakDelta: number };
    expect(result.bytes).toBeGreaterThan(result.bodyBytes);
    expect(result.bodyBytes).toBe(128 * 1024 * 1024);
    expect(result.peakDelta).toBeLessThan(64 * 1024 * 1024);
  }, 300_000);
});
