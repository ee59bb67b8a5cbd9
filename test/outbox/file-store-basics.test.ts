/**
 * The spool store's small parts, fast and without a server: the options it checks, the
 * layout `open` creates and the layout versions it refuses, why a spool is unusable (each
 * errno named), message ids and idempotency-key names, the host in a lease, and the grace
 * period of a message that never finished arriving, at its exact boundary.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OutboxError } from "../../src/errors.js";
import { FileStore, keyHash, newId } from "../../src/outbox/file-store.js";
import type { NewEntry } from "../../src/outbox/store.js";
import { nodeSpoolFs, type SpoolFileSystem } from "../../src/outbox/spool-fs.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-spool-basics-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const LAYOUT = ["active", "corrupt", "dead", "deferred", "failed", "hold", "incoming", "keys", "partial", "queue", "reclaim", "sent", "VERSION"].sort();

function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error("no error");
}

describe("options", () => {
  it("a spool directory is required", () => {
    for (const options of [undefined, {}, { path: "" }, { path: 3 }]) {
      const e = caught(() => new FileStore(options as never));
      expect(e).toBeInstanceOf(OutboxError);
      expect((e as OutboxError).reason).toBe("unusable");
      expect((e as OutboxError).message).toBe('FileStore needs the spool directory: new FileStore({ path: "/var/spool/missive" })');
    }
  });

  it("the path resolved, sent bytes not kept by default, the size limit as given; a file: URL; its own URL", () => {
    const store = new FileStore({ path: "rel/spool" });
    expect(store.path).toBe(resolve("rel/spool"));
    expect(store.keepSent).toBe(false);
    expect(store.maxMessageSize).toBeUndefined();
    const kept = new FileStore({ path: dir, keepSent: true, maxMessageSize: 10 });
    expect(kept.keepSent).toBe(true);
    expect(kept.maxMessageSize).toBe(10);
    const fromUrl = FileStore.fromUrl(`file://${dir}/x`, { keepSent: true });
    expect(fromUrl.path).toBe(join(dir, "x"));
    expect(fromUrl.keepSent).toBe(true);
    expect(FileStore.fromUrl(`file://${dir}`).keepSent).toBe(false);
    expect(String(new FileStore({ path: dir }))).toBe(`file://${dir}`);
  });

  it("the host in a lease: anything but letters, digits, '.' and '-' made '-', at most 64 characters, never empty", async () => {
    const leaseHost = async (host: string | undefined) => {
      const path = await mkdtemp(join(dir, "s-"));
      const store = new FileStore({ path, host });
      await store.join("w1", 1000, 5);
      const lease = JSON.parse(await readFile(join(path, "active", "w1", "lease"), "utf8")) as Record<string, unknown>;
      expect(lease).toStrictEqual({ format: 1, worker: "w1", host: lease["host"], pid: process.pid, until: 1005 });
      return lease["host"];
    };
    expect(await leaseHost("mail_1 host/ä.example-x")).toBe("mail-1-host--.example-x");
    expect(await leaseHost("h".repeat(70))).toBe("h".repeat(64));
    expect(await leaseHost("")).toBe("host");
    expect(typeof (await leaseHost(undefined))).toBe("string");
  });
});

describe("open", () => {
  it("creates the layout and its VERSION; a second open (and one after it) changes nothing", async () => {
    const path = join(dir, "spool");
    const store = new FileStore({ path });
    await store.open();
    await store.open();
    expect((await readdir(path)).sort()).toStrictEqual(LAYOUT);
    expect(await readFile(join(path, "VERSION"), "utf8")).toBe("missive-outbox 1\n");
    for (const d of LAYOUT.filter((n) => n !== "VERSION")) expect((await stat(join(path, d))).isDirectory(), d).toBe(true);
    await new FileStore({ path }).open();
    expect(await readFile(join(path, "VERSION"), "utf8")).toBe("missive-outbox 1\n");
  });

  it("a VERSION with other white space around it is read; another layout is refused as a newer one", async () => {
    await writeFile(join(dir, "VERSION"), "  missive-outbox 1\r\n\n");
    await new FileStore({ path: dir }).open();
    await writeFile(join(dir, "VERSION"), "missive-outbox 2\n");
    const e = await new FileStore({ path: dir }).open().catch((error: unknown) => error);
    expect(e).toBeInstanceOf(OutboxError);
    expect((e as OutboxError).reason).toBe("version");
    expect((e as OutboxError).message).toBe(`The spool ${dir} says "missive-outbox 2"; this missive knows "missive-outbox 1" (a newer missive made it: upgrade to use it)`);
  });

  it("an unusable spool says why (each errno), and open tries again once the cause is gone", async () => {
    const failWith = (code: string | undefined): SpoolFileSystem => ({
      ...nodeSpoolFs,
      mkdir: async () => Promise.reject(Object.assign(new Error(`mkdir failed ${code ?? ""}`), code === undefined ? {} : { code })),
    });
    const why: Record<string, string> = {
      EACCES: "it is not writable",
      EPERM: "it is not writable",
      EROFS: "it is not writable",
      ENOSPC: "the disk is full",
      ENOTDIR: "a part of the path is a file, not a directory",
      EEXIST: "a part of the path is a file, not a directory",
      EIO: "mkdir failed EIO",
    };
    for (const [code, text] of Object.entries(why)) {
      const e = await new FileStore({ path: dir, fs: failWith(code) }).open().catch((error: unknown) => error);
      expect(e, code).toBeInstanceOf(OutboxError);
      expect((e as OutboxError).reason).toBe("unusable");
      expect((e as OutboxError).message).toBe(`The outbox cannot use the spool ${dir}: ${text}`);
      expect((e as OutboxError).cause).toBeInstanceOf(Error);
    }
    const thrown = new OutboxError("unusable", "already explained");
    const passed = await new FileStore({ path: dir, fs: { ...nodeSpoolFs, mkdir: async () => Promise.reject(thrown) } }).open().catch((error: unknown) => error);
    expect(passed).toBe(thrown);
    const odd = await new FileStore({ path: dir, fs: { ...nodeSpoolFs, mkdir: async () => Promise.reject("plain") } }).open().catch((error: unknown) => error);
    expect((odd as OutboxError).message).toBe(`The outbox cannot use the spool ${dir}: plain`);
    const none = await new FileStore({ path: dir, fs: { ...nodeSpoolFs, mkdir: async () => Promise.reject(undefined) } }).open().catch((error: unknown) => error);
    expect((none as OutboxError).message).toBe(`The outbox cannot use the spool ${dir}: undefined`);

    let fail = true;
    const flaky: SpoolFileSystem = { ...nodeSpoolFs, mkdir: async (p) => (fail ? Promise.reject(Object.assign(new Error("x"), { code: "ENOSPC" })) : nodeSpoolFs.mkdir(p)) };
    const store = new FileStore({ path: join(dir, "later"), fs: flaky });
    await expect(store.open()).rejects.toThrow("the disk is full");
    fail = false;
    await store.open();
    expect(await readFile(join(dir, "later", "VERSION"), "utf8")).toBe("missive-outbox 1\n");
  });

  it("a VERSION that cannot be written: unusable", async () => {
    const fs: SpoolFileSystem = { ...nodeSpoolFs, create: async () => Promise.reject(Object.assign(new Error("ro"), { code: "EROFS" })) };
    await expect(new FileStore({ path: dir, fs }).open()).rejects.toThrow(`The outbox cannot use the spool ${dir}: it is not writable`);
  });
});

describe("names", () => {
  it("an id: the enqueue time to the millisecond, then 4 hex digits counting up in this process, then 6 random", () => {
    const now = Date.UTC(2026, 0, 2, 3, 4, 5, 67);
    const a = newId(now);
    const b = newId(now);
    expect(a).toMatch(/^20260102T030405067Z-[0-9a-f]{10}$/);
    expect(b).toMatch(/^20260102T030405067Z-[0-9a-f]{10}$/);
    const count = (id: string) => parseInt(id.slice(20, 24), 16);
    expect(count(b)).toBe((count(a) + 1) & 0xffff);
    const ids = Array.from({ length: 70_000 }, () => newId(now));
    const counts = new Set(ids.map(count));
    expect(counts.size).toBe(65_536);
    expect(Math.max(...counts)).toBe(0xffff);
  });

  it("an idempotency key's name: SHA-256 of its UTF-8, in hex", () => {
    expect(keyHash("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(keyHash("é")).toBe(createHash("sha256").update(Buffer.from([0xc3, 0xa9])).digest("hex"));
  });
});

describe("a message that never finished arriving", () => {
  it("is removed by recovery once its id is more than an hour old, not at exactly an hour", async () => {
    const store = new FileStore({ path: dir });
    await store.open();
    const at = Date.UTC(2026, 10, 12, 13, 14, 15, 167);
    const id = "20261112T131415167Z-00000000ab";
    await mkdir(join(dir, "incoming", id));
    await writeFile(join(dir, "incoming", id, "message.eml"), "half");
    await store.recover(at + 3_600_000);
    expect(await readdir(join(dir, "incoming"))).toStrictEqual([id]);
    await store.recover(at + 3_600_001);
    expect(await readdir(join(dir, "incoming"))).toStrictEqual([]);
  });
});

describe("a lease of another worker on this machine", () => {
  /** Whether recovery at `now` took back worker w9's lease, written with `pid` and `host`, valid until far after `now`. */
  async function takenBack(pid: unknown, host = "this-host"): Promise<boolean> {
    const path = await mkdtemp(join(dir, "s-"));
    const store = new FileStore({ path, host: "this-host" });
    await store.open();
    await mkdir(join(path, "active", "w9"));
    await writeFile(join(path, "active", "w9", "lease"), JSON.stringify({ format: 1, worker: "w9", host, pid, until: 10_000_000 }));
    await store.recover(1000);
    return !(await readdir(join(path, "active"))).includes("w9");
  }

  it("ends at once when its process is gone; stays while it runs, or when it is on another host", async () => {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const gone = child.pid!;
    await new Promise((done) => child.once("exit", done));
    expect(await takenBack(gone)).toBe(true);
    expect(await takenBack(gone, "other-host")).toBe(false);
    // pid 1 always runs; this process's own pid is a worker of this process.
    expect(await takenBack(1)).toBe(false);
    expect(await takenBack(process.pid)).toBe(false);
  });

  it("a pid that cannot be a process (0, negative, fractional, not a number) counts as gone", async () => {
    for (const pid of [0, -1, 1.5, "1"]) expect(await takenBack(pid), String(pid)).toBe(true);
  });
});

describe("an enqueue that fails while writing the bytes", () => {
  const entry: NewEntry = {
    messageId: "<a@example.com>",
    date: "Tue, 01 Dec 2026 20:00:00 +0000",
    subject: "s",
    envelope: { from: "ann@example.com", to: ["bob@example.org"] },
    fields: { from: undefined, to: [], cc: [], replyTo: [], headers: {} },
    smtputf8: false,
    eightBit: false,
    headerLength: 10,
    enqueuedAt: Date.UTC(2026, 11, 1),
    route: undefined,
    priority: 0,
    notBefore: undefined,
    idempotencyKey: undefined,
    unsigned: false,
  };

  it("a file-system error is the spool's (unusable); the message source's own error passes unchanged; nothing is left in incoming/", async () => {
    const fs: SpoolFileSystem = { ...nodeSpoolFs, create: async (p) => (p.endsWith("message.eml") ? Promise.reject(Object.assign(new Error("i/o"), { code: "EIO" })) : nodeSpoolFs.create(p)) };
    const store = new FileStore({ path: dir, fs });
    const e = await store.add(entry, (async function* () {})()).catch((error: unknown) => error);
    expect((e as OutboxError).reason).toBe("unusable");
    expect((e as OutboxError).message).toBe(`The outbox cannot use the spool ${dir}: i/o`);
    const own = new Error("the message could not be rendered");
    const source = (async function* () {
      yield Buffer.from("Subject: s\r\n");
      throw own;
    })();
    await expect(new FileStore({ path: dir }).add(entry, source)).rejects.toBe(own);
    expect(await readdir(join(dir, "incoming"))).toStrictEqual([]);
  });
});
