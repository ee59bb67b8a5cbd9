/**
 * Issue 8.8: an attachment built from untrusted data must not read a local file. Only
 * `attachFile(path)` and `fileContent(path)` read files; a plain `{ path }` (what JSON can
 * produce) and any other shape are refused when attached, before anything is sent.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { fileContent, isFileContent } from "../../src/mime/file-content.js";
import { EmailMessage } from "../../src/mime/message.js";
import { MimePart } from "../../src/mime/part.js";
import { errorOf } from "../helpers/errors.js";

let dir: string;
let secret: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-file-content-"));
  secret = join(dir, "secret.txt");
  await writeFile(secret, "top secret\r\n"); // CRLF text goes 7bit, so the bytes show it
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = () => new EmailMessage({ subject: "s", body: "b", from: "a@example.com", to: ["b@example.org"] });

describe("file sources cannot be forged by plain data", () => {
  it("refuses a plain { path } object from JSON as attachment content, naming the safe way", () => {
    const untrusted = JSON.parse(`{ "filename": "x.txt", "content": { "path": ${JSON.stringify(secret)} } }`);
    const error = errorOf(() => base().attach(untrusted));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toMatch(/attachFile\(path\) or fileContent\(path\)/);
    expect(errorOf(() => base().attach("x.txt", untrusted.content))).toBeInstanceOf(InvalidArgumentError);
    expect(errorOf(() => new EmailMessage({ attachments: [untrusted] }))).toBeInstanceOf(InvalidArgumentError);
  });

  it("refuses { path } for message/rfc822 and inside a nested message body", () => {
    expect(errorOf(() => base().attach({ filename: "fwd.eml", content: { path: secret } as never, mimetype: "message/rfc822" }))).toBeInstanceOf(InvalidArgumentError);
    expect(errorOf(() => new MimePart({ contentType: "message/rfc822", body: { message: { path: secret } } as never }))).toBeInstanceOf(InvalidArgumentError);
  });

  it("refuses { path } and other shapes as a MimePart body", () => {
    expect(errorOf(() => new MimePart({ contentType: "text/plain", body: { path: secret } as never }))).toBeInstanceOf(InvalidArgumentError);
    expect(errorOf(() => new MimePart({ contentType: "text/plain", body: 42 as never }))).toBeInstanceOf(InvalidArgumentError);
  });

  it("refuses other content shapes when attached, not at send time ({ href }, numbers, arrays, null)", () => {
    for (const content of [{ href: "https://example.com/a.pdf" }, 42, [1, 2, 3], null, true, {}]) {
      const error = errorOf(() => base().attach("a.bin", content as never));
      expect(error, JSON.stringify(content)).toBeInstanceOf(InvalidArgumentError);
    }
  });

  it("a JSON round trip of fileContent() is no longer a file source", () => {
    const copy = JSON.parse(JSON.stringify(fileContent(secret)));
    expect(copy).toEqual({ path: secret });
    expect(isFileContent(copy)).toBe(false);
    expect(errorOf(() => base().attach("x.txt", copy))).toBeInstanceOf(InvalidArgumentError);
    expect(isFileContent({ ...fileContent(secret) })).toBe(false);
  });

  it("fileContent() and attachFile() read the file when the message is rendered", async () => {
    const viaValue = base().attach("s.txt", fileContent(secret), "text/plain");
    const viaMethod = base().attachFile(secret);
    for (const message of [viaValue, viaMethod]) {
      const bytes = (await message.asBytes()).toString("latin1");
      expect(bytes).toContain("top secret");
    }
    expect(Object.isFrozen(fileContent(secret))).toBe(true);
    expect(errorOf(() => fileContent(""))).toBeInstanceOf(InvalidArgumentError);
    expect(errorOf(() => fileContent("a\0b"))).toBeInstanceOf(InvalidArgumentError);
  });
});
