/**
 * The spool's file-system seam and its durable-write helpers (src/outbox/spool-fs.ts), on a
 * temporary directory: files created once and private, the first bytes of a file read
 * whole, a body read from an offset in bounded chunks, writes that appear whole or not at
 * all (temp file, fsync, rename, fsync of the directory, in that order), and the size limit
 * of a streamed write at its exact boundary.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { errno, nodeSpoolFs, writeDurably, writeStream, type SpoolFileSystem } from "../../src/outbox/spool-fs.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-spoolfs-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function* chunks(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield Buffer.from(p, "latin1");
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of source) out.push(Buffer.from(c));
  return out;
}

/** nodeSpoolFs with every call recorded (names relative to the test directory). */
function recording(): { fs: SpoolFileSystem; calls: string[] } {
  const calls: string[] = [];
  const rel = (p: string) => p.slice(dir.length + 1) || ".";
  const fs: SpoolFileSystem = {
    ...nodeSpoolFs,
    async create(path) {
      calls.push(`create ${rel(path)}`);
      const h = await nodeSpoolFs.create(path);
      return {
        write: async (b) => {
          calls.push(`write ${rel(path)} ${b.length}`);
          await h.write(b);
        },
        sync: async () => {
          calls.push(`fsync ${rel(path)}`);
          await h.sync();
        },
        close: async () => {
          calls.push(`close ${rel(path)}`);
          await h.close();
        },
      };
    },
    unlink: async (p) => {
      calls.push(`unlink ${rel(p)}`);
      await nodeSpoolFs.unlink(p);
    },
    rename: async (a, b) => {
      calls.push(`rename ${rel(a)} -> ${rel(b)}`);
      await nodeSpoolFs.rename(a, b);
    },
    syncDirectory: async (p) => {
      calls.push(`fsync-dir ${rel(p)}`);
      await nodeSpoolFs.syncDirectory(p);
    },
  };
  return { fs, calls };
}

describe("the node file system seam", () => {
  it("create: a new private file, refused when the name exists; every byte of a large write lands", async () => {
    const path = join(dir, "a");
    const h = await nodeSpoolFs.create(path);
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
    big[big.length - 1] = 0x7a;
    await h.write(big);
    await h.write(new Uint8Array(0));
    await h.sync();
    await h.close();
    expect((await readFile(path)).equals(big)).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const again = await nodeSpoolFs.create(path).catch((e: unknown) => e);
    expect(errno(again)).toBe("EEXIST");
  });

  it("mkdir: private, with its parents, and no error when it exists", async () => {
    const path = join(dir, "x", "y");
    await nodeSpoolFs.mkdir(path);
    await nodeSpoolFs.mkdir(path);
    expect((await stat(path)).isDirectory()).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o700);
    expect(await nodeSpoolFs.mkdir(join(dir, "z"))).toBeUndefined();
  });

  it("syncDirectory opens and closes the directory; a missing one is an error", async () => {
    await nodeSpoolFs.syncDirectory(dir);
    expect(errno(await nodeSpoolFs.syncDirectory(join(dir, "missing")).catch((e: unknown) => e))).toBe("ENOENT");
  });

  it("link claims a name atomically (EEXIST when taken); rename, unlink, rmdir, remove, readdir, readFile, stat, setMtime", async () => {
    await writeFile(join(dir, "a"), "A");
    await nodeSpoolFs.link(join(dir, "a"), join(dir, "b"));
    expect(errno(await nodeSpoolFs.link(join(dir, "a"), join(dir, "b")).catch((e: unknown) => e))).toBe("EEXIST");
    await nodeSpoolFs.rename(join(dir, "b"), join(dir, "c"));
    expect((await nodeSpoolFs.readdir(dir)).sort()).toStrictEqual(["a", "c"]);
    expect((await nodeSpoolFs.readFile(join(dir, "c"))).toString()).toBe("A");
    await nodeSpoolFs.unlink(join(dir, "c"));
    expect(await nodeSpoolFs.readdir(dir)).toStrictEqual(["a"]);
    const s = await nodeSpoolFs.stat(join(dir, "a"));
    expect(s.size).toBe(1);
    expect(s.isDirectory()).toBe(false);
    await nodeSpoolFs.setMtime(join(dir, "a"), 1_000_000_000_000);
    expect((await nodeSpoolFs.stat(join(dir, "a"))).mtimeMs).toBe(1_000_000_000_000);
    await nodeSpoolFs.mkdir(join(dir, "d"));
    await nodeSpoolFs.rmdir(join(dir, "d"));
    await nodeSpoolFs.mkdir(join(dir, "e", "f"));
    await writeFile(join(dir, "e", "f", "g"), "G");
    await nodeSpoolFs.remove(join(dir, "e"));
    await nodeSpoolFs.remove(join(dir, "never"));
    expect(await nodeSpoolFs.readdir(dir)).toStrictEqual(["a"]);
  });

  it("readStart: the first bytes, all of a shorter file, none of an empty one", async () => {
    const path = join(dir, "m");
    await writeFile(path, "Subject: x\r\n\r\nbody");
    expect((await nodeSpoolFs.readStart(path, 10)).toString()).toBe("Subject: x");
    expect((await nodeSpoolFs.readStart(path, 100)).toString()).toBe("Subject: x\r\n\r\nbody");
    expect((await nodeSpoolFs.readStart(path, 18)).toString()).toBe("Subject: x\r\n\r\nbody");
    expect((await nodeSpoolFs.readStart(path, 0)).length).toBe(0);
    await writeFile(join(dir, "empty"), "");
    expect((await nodeSpoolFs.readStart(join(dir, "empty"), 5)).length).toBe(0);
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    await writeFile(join(dir, "big"), big);
    expect((await nodeSpoolFs.readStart(join(dir, "big"), 299_999)).equals(big.subarray(0, 299_999))).toBe(true);
  });

  it("readFrom: the bytes from an offset, in chunks of at most the size asked", async () => {
    const path = join(dir, "m");
    await writeFile(path, "0123456789abcdef");
    const got = await collect(nodeSpoolFs.readFrom(path, 4, 5));
    expect(got.map((c) => c.toString())).toStrictEqual(["45678", "9abcd", "ef"]);
  });

  it("every handle it opens is closed: create's close, syncDirectory and readStart leave no descriptor open", async () => {
    // This process's open descriptors (Linux); each test file runs in its own process.
    const open = async () => (await readdir("/proc/self/fd")).length;
    await writeFile(join(dir, "m"), "abc");
    const before = await open();
    for (let i = 0; i < 20; i++) {
      const h = await nodeSpoolFs.create(join(dir, `f${i}`));
      await h.close();
      await nodeSpoolFs.syncDirectory(dir);
      await nodeSpoolFs.readStart(join(dir, "m"), 2);
    }
    // A leak of any one of the three leaves 20 more; a little slack for the runner's own.
    expect(await open()).toBeLessThan(before + 5);
  });
});

describe("durable writes", () => {
  it("writeDurably: a temp file written, fsynced and closed, renamed over the name, then the directory fsynced", async () => {
    const { fs, calls } = recording();
    await writeFile(join(dir, "rec.json"), "old");
    await writeDurably(fs, dir, "rec.json", Buffer.from("new!"));
    expect(calls).toStrictEqual(["unlink .rec.json.tmp", "create .rec.json.tmp", "write .rec.json.tmp 4", "fsync .rec.json.tmp", "close .rec.json.tmp", "rename .rec.json.tmp -> rec.json", "fsync-dir ."]);
    expect(await readFile(join(dir, "rec.json"), "utf8")).toBe("new!");
    expect(await readdir(dir)).toStrictEqual(["rec.json"]);
  });

  it("writeDurably: a temp file left by a crash is replaced; a failed write leaves the old file and closes the handle", async () => {
    await writeFile(join(dir, ".rec.json.tmp"), "half");
    await writeDurably(nodeSpoolFs, dir, "rec.json", Buffer.from("whole"));
    expect(await readFile(join(dir, "rec.json"), "utf8")).toBe("whole");

    const { fs, calls } = recording();
    const failing: SpoolFileSystem = {
      ...fs,
      async create(path) {
        const h = await fs.create(path);
        return { ...h, write: async () => Promise.reject(new Error("disk full")) };
      },
    };
    await expect(writeDurably(failing, dir, "rec.json", Buffer.from("newer"))).rejects.toThrow("disk full");
    expect(calls).toStrictEqual(["unlink .rec.json.tmp", "create .rec.json.tmp", "close .rec.json.tmp"]);
    expect(await readFile(join(dir, "rec.json"), "utf8")).toBe("whole");
  });

  it("writeStream: each chunk written in turn, fsynced, closed; resolves to the size", async () => {
    const { fs, calls } = recording();
    const path = join(dir, "body");
    expect(await writeStream(fs, path, chunks("abc", "", "defg"), undefined, () => new Error("never"))).toBe(7);
    expect(calls).toStrictEqual(["create body", "write body 3", "write body 0", "write body 4", "fsync body", "close body"]);
    expect(await readFile(path, "latin1")).toBe("abcdefg");
  });

  it("writeStream: a size of exactly maxSize is kept; one byte more fails with the caller's error before that chunk is written", async () => {
    expect(await writeStream(nodeSpoolFs, join(dir, "exact"), chunks("abc", "de"), 5, () => new Error("too large"))).toBe(5);
    const { fs, calls } = recording();
    const tooLarge = new Error("too large");
    await expect(writeStream(fs, join(dir, "over"), chunks("abc", "def"), 5, () => tooLarge)).rejects.toBe(tooLarge);
    expect(calls).toStrictEqual(["create over", "write over 3", "close over"]);
    expect(await writeStream(nodeSpoolFs, join(dir, "none"), chunks(), 0, () => tooLarge)).toBe(0);
  });

  it("errno: the code of a file-system error, undefined for anything else", () => {
    expect(errno(Object.assign(new Error("x"), { code: "ENOSPC" }))).toBe("ENOSPC");
    expect(errno(new Error("x"))).toBeUndefined();
    expect(errno(undefined)).toBeUndefined();
  });
});
