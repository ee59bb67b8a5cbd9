/**
 * Regression tests for the part serializer: forced transfer encodings are checked,
 * serializer-owned headers cannot be duplicated, message/rfc822 in every form stays 7bit or
 * 8bit with canonical line breaks, one-shot streams are never sent empty, and a failure
 * while preparing never escapes as an unhandled rejection.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadHeaderError, EncodingError, InvalidArgumentError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { MimePart } from "../../src/mime/part.js";
import { fileContent } from "../../src/mime/file-content.js";
import { policies } from "../../src/mime/policy.js";
import { errorOf } from "../helpers/errors.js";
import { parseOneWithPython } from "../helpers/python-oracle.js";
import { FIXED_DATE, seededRandom } from "./fixture-cases.js";

const base = () => ({ subject: "s", body: "b", from: "ann@example.com", to: ["bob@example.org"], clock: () => FIXED_DATE, random: seededRandom("part") });
const headerLines = (bytes: Buffer) => bytes.toString("latin1").slice(0, bytes.indexOf("\r\n\r\n")).split("\r\n");

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-part-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("forced transfer encodings are checked against the bytes", () => {
  const withPart = (options: ConstructorParameters<typeof MimePart>[0]) => new EmailMessage(base()).attach(new MimePart(options));

  it("refuses 7bit for 8-bit data, over-long lines or bare line breaks", async () => {
    await expect(withPart({ contentType: "text/plain", body: "é\n", transferEncoding: "7bit" }).asBytes()).rejects.toThrow(/8-bit bytes/);
    await expect(withPart({ contentType: "text/plain", body: `${"x".repeat(1200)}\n`, transferEncoding: "7bit" }).asBytes()).rejects.toThrow(/998/);
    await expect(withPart({ contentType: "application/json", body: new Uint8Array([0x7b, 0x0a, 0x7d]), transferEncoding: "7bit" }).asBytes()).rejects.toThrow(/bare CR or LF/);
  });

  it("refuses binary, and 8bit under the 7-bit policy, but allows 8bit where the policy does", async () => {
    await expect(withPart({ contentType: "application/octet-stream", body: new Uint8Array([0, 255]), transferEncoding: "binary" }).asBytes()).rejects.toThrow(InvalidArgumentError);
    const eight = () => withPart({ contentType: "text/plain", body: "Grüße\n", transferEncoding: "8bit" });
    await expect(eight().asBytes()).rejects.toThrow(/policy/);
    expect((await eight().prepare(policies.eightBit)).eightBit).toBe(true);
  });

  it("refuses 7bit/8bit for a stream it cannot check, and allows quoted-printable", async () => {
    const stream = (encoding: "7bit" | "quoted-printable") => withPart({ contentType: "text/plain", body: () => Readable.from([Buffer.from("a=b\r\n")]), transferEncoding: encoding });
    await expect(stream("7bit").asBytes()).rejects.toThrow(/cannot be checked/);
    expect((await stream("quoted-printable").asBytes()).toString()).toContain("a=3Db");
  });

  it("does not claim a size for a file sent as forced quoted-printable", async () => {
    const path = join(dir, "qp.txt");
    await writeFile(path, "é=".repeat(500));
    const message = withPart({ contentType: "text/plain", body: fileContent(path), transferEncoding: "quoted-printable" });
    const prepared = await message.prepare();
    expect(prepared.size).toBeUndefined();
  });
});

describe("MimePart headers", () => {
  it("refuses headers the part writes itself, and a disposition that is not inline/attachment", () => {
    expect(() => new MimePart({ contentType: "text/plain", body: "x", headers: { "Content-Transfer-Encoding": "base64" } })).toThrow(BadHeaderError);
    expect(() => new MimePart({ contentType: "text/plain", body: "x", headers: [["content-type", "text/html"]] })).toThrow(BadHeaderError);
    expect(() => new MimePart({ contentType: "text/plain", body: "x", disposition: "attachment; filename=evil.exe" as "attachment" })).toThrow(BadHeaderError);
    expect(() => new EmailMessage(base()).attach({ filename: "a.txt", content: "x", disposition: "inline; x=y" as "inline" })).toThrow(BadHeaderError);
  });
});

describe("message/rfc822 in every form", () => {
  it("a MimePart of type message/rfc822 with a string body is 7bit, never base64", async () => {
    const bytes = await new EmailMessage(base()).attach(new MimePart({ contentType: "message/rfc822", body: "Subject: inner\n\nhello\n" })).asBytes();
    expect(bytes.toString("latin1")).toContain("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n");
    expect((await parseOneWithPython(bytes)).attachments[0]?.message?.subject).toBe("inner");
  });

  it("attachFile of an .eml with LF line endings: canonical CRLF, exact size, readable by Python", async () => {
    const path = join(dir, "forwarded.eml");
    await writeFile(path, "Subject: Forwarded\nFrom: x@example.org\n\nCafé\r\nline two\rend\n");
    const message = new EmailMessage(base()).attachFile(path);
    const prepared = await message.prepare();
    const bytes = await message.asBytes();
    expect(prepared.size).toBe(bytes.length);
    expect(prepared.eightBit).toBe(true);
    expect(bytes.toString("latin1")).toContain("Content-Transfer-Encoding: 8bit");
    expect(bytes.toString("utf8")).toContain("Subject: Forwarded\r\nFrom: x@example.org\r\n\r\nCafé\r\nline two\r\nend\r\n");
    const py = await parseOneWithPython(bytes);
    expect(py.attachments[0]?.message?.subject).toBe("Forwarded");
  });

  it("a lone surrogate in a serialized message is an EncodingError, not U+FFFD", async () => {
    await expect(new EmailMessage(base()).attach("f.eml", "Subject: a\ud800b\r\n\r\nx\r\n", "message/rfc822").asBytes()).rejects.toThrow(EncodingError);
  });

  it("a nested message with UTF-8 headers is 8bit, and the whole message needs SMTPUTF8", async () => {
    const inner = new EmailMessage({ ...base(), subject: "Grüße", to: ["zoë@example.org"] });
    const outer = new EmailMessage(base()).attach(inner);
    const prepared = await outer.prepare(policies.smtputf8);
    expect(prepared.eightBit).toBe(true);
    expect(prepared.smtputf8).toBe(true);
    const bytes = await outer.asBytes(policies.smtputf8);
    expect(bytes.toString("latin1")).toContain("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit");
  });

  it("refuses a message attached inside itself, directly or through another", async () => {
    const a = new EmailMessage(base());
    expect(() => a.attach(a)).toThrow(InvalidArgumentError);
    const b = new EmailMessage(base()).attach(a);
    a.attach(b);
    await expect(a.asBytes()).rejects.toThrow(/inside itself/);
  });
});

describe("extra headers", () => {
  it("a Subject given in headers replaces the subject instead of adding a second one", async () => {
    const lines = headerLines(await new EmailMessage({ ...base(), headers: { Subject: "from headers" } }).asBytes());
    expect(lines.filter((l) => /^subject:/i.test(l))).toEqual(["Subject: from headers"]);
  });

  it.each([
    [{ Sender: "a@example.org", SENDER: "b@example.org" }],
    [{ "In-Reply-To": "<a@example.org>", "in-reply-to": "<b@example.org>" }],
    [{ References: "<a@example.org>", references: "<b@example.org>" }],
    [{ Subject: "one", SUBJECT: "two" }],
    [{ "message-id": "<a@example.org>", "Message-ID": "<b@example.org>" }],
    [{ "X-Campaign": "q3", "x-campaign": "q4" }],
  ])("refuses two headers whose names differ only in case: %j", async (headers) => {
    const err = errorOf(() => new EmailMessage({ ...base(), headers }));
    expect(err).toBeInstanceOf(BadHeaderError);
    expect(err.message).toMatch(/case-insensitive/);
    // Added after construction, the second spelling is caught when the message is rendered.
    const [[first, value], [second, other]] = Object.entries(headers) as [[string, string], [string, string]];
    const msg = new EmailMessage({ ...base(), headers: { [first]: value } });
    msg.headers[second] = other;
    await expect(msg.asBytes()).rejects.toBeInstanceOf(BadHeaderError);
  });

  it("writes a header given in any case once, under the name as given", async () => {
    const lines = headerLines(await new EmailMessage({ ...base(), headers: { SENDER: "s@example.org", "x-campaign": "q3", "IN-REPLY-TO": "<p@example.org>" } }).asBytes());
    expect(lines.filter((l) => /^(sender|x-campaign|in-reply-to):/i.test(l))).toEqual(["SENDER: s@example.org", "x-campaign: q3", "IN-REPLY-TO: <p@example.org>"]);
  });

  it("a MimePart refuses two headers whose names differ only in case", () => {
    const err = errorOf(() => new MimePart({ contentType: "text/plain", body: "x", headers: [["Content-Description", "a"], ["content-description", "b"]] }));
    expect(err).toBeInstanceOf(BadHeaderError);
    expect(err.message).toMatch(/case-insensitive/);
  });

  it("an empty extra address header is left out; a group in one keeps its syntax", async () => {
    const lines = headerLines(await new EmailMessage({ ...base(), headers: { Sender: "", "Resent-To": "Team: a@example.org, b@example.org;" } }).asBytes());
    expect(lines.some((l) => l.startsWith("Sender:"))).toBe(false);
    expect(lines).toContain("Resent-To: Team: a@example.org, b@example.org;");
  });
});

describe("one-shot sources and late consumers", () => {
  it("a prepared message with a one-shot stream cannot be streamed twice (never silently empty)", async () => {
    const message = new EmailMessage(base()).attach("a.bin", Readable.from([Buffer.from("abc")]), "application/octet-stream");
    const prepared = await message.prepare();
    for await (const _ of prepared.chunks()) void _;
    await expect(async () => {
      for await (const _ of prepared.chunks()) void _;
    }).rejects.toThrow(/only once/);
  });

  it("two messages sharing one Readable: the second fails instead of going out without it", async () => {
    const shared = Readable.from([Buffer.from("abc")]);
    const first = await new EmailMessage(base()).attach("a.bin", shared, "application/octet-stream").prepare();
    const second = await new EmailMessage(base()).attach("a.bin", shared, "application/octet-stream").prepare();
    for await (const _ of first.chunks()) void _;
    await expect(async () => {
      for await (const _ of second.chunks()) void _;
    }).rejects.toThrow(/only once/);
  });

  it("asStream() of a message that fails to prepare errors the stream, with no unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const stream = new EmailMessage(base()).attachFile(join(dir, "missing.bin")).asStream();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await expect(async () => {
        for await (const _ of stream) void _;
      }).rejects.toThrow(/no such file/);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});

describe("policy", () => {
  it("maxLineLength decides where headers fold", async () => {
    const subject = "word ".repeat(30).trim();
    const wide = headerLines(await new EmailMessage({ ...base(), subject }).asBytes(policies.default.with({ maxLineLength: 200 })));
    const narrow = headerLines(await new EmailMessage({ ...base(), subject }).asBytes());
    expect(wide.find((l) => l.startsWith("Subject:"))).toBe(`Subject: ${subject}`);
    expect(narrow.find((l) => l.startsWith("Subject:"))!.length).toBeLessThanOrEqual(78);
  });

  it("refuses unknown options and wrong types", () => {
    expect(() => policies.default.with({ utf8: "no" as unknown as boolean })).toThrow(InvalidArgumentError);
    expect(() => policies.default.with({ linesep: "\n" } as never)).toThrow(/Unknown policy option/);
  });
});
