import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileBackend } from "../../src/backends/file.js";
import { BackendError, BadHeaderError, ConfigurationError } from "../../src/errors.js";
import { configure, resetSettings } from "../../src/settings.js";
import { fixedMessage } from "./helpers.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-file-"));
  delete process.env["EMAIL_FILE_PATH"];
  resetSettings();
});
afterEach(async () => {
  resetSettings();
  await rm(dir, { recursive: true, force: true });
});

describe("FileBackend", () => {
  it("writes one .eml per message with the exact bytes, and no temporary file remains", async () => {
    const backend = new FileBackend({ filePath: dir });
    const sent = await backend.sendMessages([fixedMessage({ subject: "one" }), fixedMessage({ subject: "two" })]);
    expect(sent).toBe(2);
    const names = (await readdir(dir)).sort();
    expect(names).toHaveLength(2);
    for (const name of names) expect(name).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{16}\.eml$/);
    expect(backend.written.map((p) => p.slice(dir.length + 1)).sort()).toEqual(names);
    const contents = await Promise.all(backend.written.map((p) => readFile(p)));
    expect(contents[0]!.equals(await fixedMessage({ subject: "one" }).asBytes())).toBe(true);
    expect(contents[1]!.equals(await fixedMessage({ subject: "two" }).asBytes())).toBe(true);
  });

  it("creates the directory, recursively", async () => {
    const nested = join(dir, "a", "b", "c");
    expect(await new FileBackend({ filePath: nested }).sendMessages([fixedMessage()])).toBe(1);
    expect(await readdir(nested)).toHaveLength(1);
  });

  it("takes filePath from the settings and from EMAIL_FILE_PATH", async () => {
    configure({ filePath: join(dir, "configured") });
    expect(new FileBackend().filePath).toBe(join(dir, "configured"));
    resetSettings();
    process.env["EMAIL_FILE_PATH"] = join(dir, "env");
    try {
      resetSettings();
      expect(new FileBackend().filePath).toBe(join(dir, "env"));
    } finally {
      delete process.env["EMAIL_FILE_PATH"];
    }
  });

  it("without a filePath is a ConfigurationError naming filePath", () => {
    expect(() => new FileBackend()).toThrow(ConfigurationError);
    try {
      new FileBackend();
    } catch (err) {
      expect((err as ConfigurationError).setting).toBe("filePath");
    }
  });

  it("a path that is a file, or lies under a file, is a clear BackendError", async () => {
    const file = join(dir, "plain-file");
    await writeFile(file, "x");
    for (const filePath of [file, join(file, "sub")]) {
      const backend = new FileBackend({ filePath });
      await expect(backend.open()).rejects.toBeInstanceOf(BackendError);
      await expect(backend.sendMessages([fixedMessage()])).rejects.toThrow(/file backend cannot use|not a directory/);
      expect(await new FileBackend({ filePath, failSilently: true }).sendMessages([fixedMessage()])).toBe(0);
    }
  });

  it("open() checks the directory and returns false (no connection to keep)", async () => {
    expect(await new FileBackend({ filePath: join(dir, "x") }).open()).toBe(false);
    expect(await readdir(join(dir, "x"))).toEqual([]);
  });

  it("leaves no temporary file when the message stream fails", async () => {
    const msg = fixedMessage();
    msg.attach("boom.bin", () => new Readable({
      read() {
        this.destroy(new Error("attachment source failed"));
      },
    }), "application/octet-stream");
    await expect(new FileBackend({ filePath: dir }).sendMessages([msg])).rejects.toThrow(/attachment source failed/);
    expect(await readdir(dir)).toEqual([]);
  });

  it("a missing attachment file is not hidden by failSilently and leaves nothing behind", async () => {
    const msg = fixedMessage();
    msg.attachFile(join(dir, "does-not-exist.pdf"));
    await expect(new FileBackend({ filePath: dir, failSilently: true }).sendMessages([msg])).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
  });

  it("failSilently never hides a bad header", async () => {
    const msg = fixedMessage();
    msg.headers["X-Evil"] = "a\nb";
    await expect(new FileBackend({ filePath: dir, failSilently: true }).sendMessages([msg])).rejects.toBeInstanceOf(BadHeaderError);
    expect(await readdir(dir)).toEqual([]);
  });

  it("returns 0 for no messages without touching the disk", async () => {
    const path = join(dir, "never-created");
    expect(await new FileBackend({ filePath: path }).sendMessages([])).toBe(0);
    await expect(readdir(path)).rejects.toThrow();
  });

  it("streams a file attachment and can fsync", async () => {
    const src = join(dir, "attachment.bin");
    const bytes = Buffer.alloc(300_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
    await writeFile(src, bytes);
    const out = join(dir, "out");
    const msg = fixedMessage();
    msg.attachFile(src, "application/octet-stream");
    const backend = new FileBackend({ filePath: out, fsync: true });
    expect(await backend.sendMessages([msg])).toBe(1);
    const eml = await readFile(backend.written[0]!, "latin1");
    const b64 = bytes.toString("base64");
    expect(eml.replace(/\r\n/g, "")).toContain(b64);
  });

  it("unique names even within one millisecond", async () => {
    const backend = new FileBackend({ filePath: dir });
    const messages = Array.from({ length: 20 }, (_, i) => fixedMessage({ subject: `m${i}` }));
    expect(await backend.sendMessages(messages)).toBe(20);
    expect(new Set(await readdir(dir)).size).toBe(20);
  });
});
