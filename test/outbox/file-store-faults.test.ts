/**
 * The spool when things go wrong, on a temporary directory: each file-system call failing
 * (through the store's file-system seam), races and crashes around idempotency keys, and
 * the rarer paths of recovery, take, list and the store's other answers. The ordinary
 * moves are in file-store-moves.test.ts.
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileStore, keyHash } from "../../src/outbox/file-store.js";
import { released } from "../../src/outbox/outcome.js";
import { nodeSpoolFs } from "../../src/outbox/spool-fs.js";
import type { NewEntry } from "../../src/outbox/store.js";
import { OutboxError } from "../../src/errors.js";
import { MESSAGE, T0, bytesOf, errorOf, newEntry, settlement, useSpool } from "./spool-fixture.js";

const spool = useSpool();
const { add, ls } = spool;

/** node:fs with one call made to fail (or recorded) through the store's file-system seam. */
function faulty(fail: (call: string, path: string) => string | undefined, calls: string[] = []): typeof nodeSpoolFs {
  const wrap =
    <A extends unknown[], R>(name: string, f: (path: string, ...rest: A) => Promise<R>) =>
    async (path: string, ...rest: A): Promise<R> => {
      calls.push(`${name} ${path.slice(spool.dir.length + 1)}`);
      const code = fail(name, path);
      if (code !== undefined) throw Object.assign(new Error(`${name} failed`), { code });
      return f(path, ...rest);
    };
  return {
    ...nodeSpoolFs,
    create: wrap("create", nodeSpoolFs.create),
    syncDirectory: wrap("syncDirectory", nodeSpoolFs.syncDirectory),
    rename: wrap("rename", nodeSpoolFs.rename),
    mkdir: wrap("mkdir", nodeSpoolFs.mkdir),
    readFile: wrap("readFile", nodeSpoolFs.readFile),
  };
}

describe("the file-system calls, and each failing", () => {
  it("an enqueue writes in incoming/, claims the key in keys/, then renames into queue/ and syncs both", async () => {
    const calls: string[] = [];
    spool.store = new FileStore({ path: spool.dir, fs: faulty(() => undefined, calls) });
    await spool.store.open();
    calls.length = 0;
    const key = keyHash("k1");
    const id = await add({ idempotencyKey: key });
    expect(calls).toEqual([
      `readFile keys/${key}`,
      `mkdir incoming/${id}`,
      `create incoming/${id}/message.eml`,
      `create incoming/${id}/message.json`,
      `syncDirectory incoming/${id}`,
      `create keys/.${id}.tmp`,
      `syncDirectory keys`,
      `rename incoming/${id}`,
      `syncDirectory queue`,
      `syncDirectory incoming`,
    ]);
  });

  it("a record that cannot be written: unusable, and nothing left in incoming/", async () => {
    spool.store = new FileStore({ path: spool.dir, fs: faulty((call, path) => (call === "create" && path.endsWith("message.json") ? "EIO" : undefined)) });
    const error = await errorOf(spool.store.add(newEntry(), bytesOf(MESSAGE)));
    expect([error.reason, error.message]).toEqual(["unusable", `The outbox cannot use the spool ${spool.dir}: create failed`]);
    expect(await ls("incoming")).toEqual([]);
  });

  it("the rename into queue/ failing after the key was claimed: unusable, the message left in incoming/ for recovery to finish", async () => {
    let fail = true;
    spool.store = new FileStore({ path: spool.dir, fs: faulty((call, path) => (fail && call === "rename" && path.includes("incoming") ? "EIO" : undefined)) });
    const key = keyHash("k2");
    const error = await errorOf(spool.store.add(newEntry({ idempotencyKey: key }), bytesOf(MESSAGE)));
    expect(error.reason).toBe("unusable");
    const [id] = await ls("incoming");
    expect(id).toMatch(/^\d{8}T\d{9}Z-/);
    fail = false;
    await spool.store.recover(T0);
    expect(await ls("incoming")).toEqual([]);
    expect(await ls("queue")).toEqual([id]);
  });

  it("join, renew and take: a file-system error is unusable, never lease-lost", async () => {
    let failing: string | undefined;
    spool.store = new FileStore({ path: spool.dir, fs: faulty((call, path) => (failing !== undefined && path.includes(failing) && (call === "mkdir" || call === "create" || call === "rename" || call === "readFile") ? "EIO" : undefined)) });
    await add();
    failing = "active/w0";
    expect((await errorOf(spool.store.join("w0", 1000, T0))).reason).toBe("unusable");
    failing = undefined;
    await spool.store.join("w1", 1000, T0);
    failing = ".lease.tmp";
    expect((await errorOf(spool.store.renew("w1", T0))).reason).toBe("unusable");
    failing = "queue/";
    expect((await errorOf(spool.store.take("w1", 1, T0))).reason).toBe("unusable");
    failing = "message.json";
    const error = await errorOf(spool.store.take("w1", 1, T0));
    expect([error.reason, error.message]).toEqual(["unusable", `The outbox cannot use the spool ${spool.dir}: readFile failed`]);
  });

  it("markFinalDot and settle: a file-system error is unusable", async () => {
    let failing = false;
    spool.store = new FileStore({ path: spool.dir, fs: faulty((call) => (failing && (call === "create" || call === "rename") ? "EIO" : undefined)) });
    await add();
    await spool.store.join("w1", 1000, T0);
    const [lease] = await spool.store.take("w1", 1, T0);
    failing = true;
    expect((await errorOf(spool.store.markFinalDot("w1", lease!, 1, T0))).reason).toBe("unusable");
    expect((await errorOf(spool.store.settle("w1", lease!, settlement(lease!.entry, { state: "sent" }), T0))).reason).toBe("unusable");
  });

  it("take: a message another worker took meanwhile is skipped, the next one leased", async () => {
    let stolen: string | undefined;
    spool.store = new FileStore({ path: spool.dir, fs: faulty((call, path) => (call === "rename" && stolen !== undefined && path.endsWith(`queue/${stolen}`) ? "ENOENT" : undefined)) });
    const first = await add({ enqueuedAt: T0 });
    const second = await add({ enqueuedAt: T0 + 1 });
    stolen = first;
    await spool.store.join("w1", 1000, T0);
    expect((await spool.store.take("w1", 2, T0 + 10)).map((l) => l.entry.id)).toEqual([second]);
  });
});

describe("races and crashes around idempotency keys", () => {
  it("two enqueues of one key at once: one message, both given its id", async () => {
    const key = keyHash("same");
    const [a, b] = await Promise.all([spool.store.add(newEntry({ idempotencyKey: key }), bytesOf(MESSAGE)), spool.store.add(newEntry({ idempotencyKey: key }), bytesOf(MESSAGE))]);
    expect(a.id).toBe(b.id);
    expect([a.duplicate, b.duplicate].sort()).toEqual([false, true]);
    expect(await ls("queue")).toEqual([a.id]);
    expect(await ls("incoming")).toEqual([]);
  });

  it("a known key is answered before the message is read", async () => {
    const key = keyHash("known");
    const id = await add({ idempotencyKey: key });
    const unread = (async function* () {
      throw new Error("the message was read");
    })();
    expect(await spool.store.add(newEntry({ idempotencyKey: key }), unread)).toEqual({ id, duplicate: true });
  });

  /** A keyed message whose process died after claiming the key, before the rename into queue/. */
  async function crashedAfterClaim(changes: Partial<NewEntry> = {}): Promise<{ id: string; key: string }> {
    const key = keyHash(`crashed-${Math.random()}`);
    const id = await add({ idempotencyKey: key, ...changes });
    const from = changes.notBefore !== undefined ? "deferred" : "queue";
    await rm(join(spool.dir, "incoming"), { recursive: true });
    await mkdir(join(spool.dir, "incoming"));
    const { rename } = await import("node:fs/promises");
    await rename(join(spool.dir, from, id), join(spool.dir, "incoming", id));
    return { id, key };
  }

  it("enqueueing the key again finishes the crashed enqueue: the message moves to queue/", async () => {
    const { id, key } = await crashedAfterClaim();
    expect(await spool.store.add(newEntry({ idempotencyKey: key }), bytesOf(MESSAGE))).toEqual({ id, duplicate: true });
    expect(await ls("incoming")).toEqual([]);
    expect(await ls("queue")).toEqual([id]);
  });

  it("recovery finishes it too, into deferred/ when it is not due yet, with its time", async () => {
    // A due time in whole seconds: a modification time set through utimes() keeps only about
    // a microsecond of a millisecond value, so 1796169116748 can read back as ...747.99.
    const { id } = await crashedAfterClaim({ notBefore: T0 + 3_600_000 });
    const record = JSON.parse(await readFile(join(spool.dir, "incoming", id, "message.json"), "utf8")) as { nextAttemptAt: number };
    await spool.store.recover(T0);
    expect(await ls("incoming")).toEqual([]);
    expect(await ls("deferred")).toEqual([id]);
    expect(Math.floor((await stat(join(spool.dir, "deferred", id))).mtimeMs)).toBe(record.nextAttemptAt);
  });

  it("get finds a message still in incoming/ as queued; an incoming message whose key names another is removed after the grace period", async () => {
    const { id, key } = await crashedAfterClaim();
    expect((await spool.store.get(id))?.state).toBe("queued");
    await writeFile(join(spool.dir, "keys", key), "20261201T200000000Z-00000000ee\n");
    await spool.store.recover(Date.now() + 3_600_000 + 60_000);
    expect(await ls("incoming")).toEqual([]);
    expect(await ls("queue")).toEqual([]);
  });
});

describe("more of recovery", () => {
  async function deadWith(record: (r: Record<string, unknown>) => Record<string, unknown>, finalDot?: number): Promise<string> {
    const other = new FileStore({ path: spool.dir });
    const { id } = await other.add(newEntry(), bytesOf(MESSAGE));
    await other.join("dead", 1000, T0);
    await other.take("dead", 1, T0 + 10_000_000);
    if (finalDot !== undefined) await writeFile(join(spool.dir, "active", "dead", id, "final-dot"), JSON.stringify({ format: 1, round: finalDot, at: T0, worker: "dead" }));
    const path = join(spool.dir, "active", "dead", id, "message.json");
    await writeFile(path, JSON.stringify(record(JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>)));
    await rm(join(spool.dir, "active", "dead", "lease"));
    return id;
  }

  it("a retry recorded as due exactly now is due: queued again, marked interrupted", async () => {
    const id = await deadWith((r) => ({ ...r, attempts: 1, nextAttemptAt: T0 }));
    expect(await spool.store.recover(T0)).toEqual({ requeued: 1, held: [] });
    expect(await ls("queue")).toEqual([id]);
    expect((await spool.store.get(id))?.interrupted).toBe("before-final-dot");
  });

  it("held after the final dot keeps its marker; a record already held is not reported again", async () => {
    const id = await deadWith((r) => r, 1);
    const { held } = await spool.store.recover(T0);
    expect(held.map((e) => e.id)).toEqual([id]);
    expect(await ls(join("hold", id))).toEqual(["final-dot", "message.eml", "message.json"]);
    await rm(spool.dir, { recursive: true });
    const settled = await deadWith((r) => ({ ...r, state: "held", heldReason: "decided before" }), 1);
    expect(await spool.store.recover(T0)).toEqual({ requeued: 0, held: [] });
    expect(await ls("hold")).toEqual([settled]);
  });

  it("a final-dot marker that cannot be read counts as the round in progress: held, not sent again", async () => {
    for (const damaged of ['{"format": 1, "rou', "null", '{"format": 1}']) {
      const id = await deadWith((r) => r, 1);
      await writeFile(join(spool.dir, "active", "dead", id, "final-dot"), damaged);
      const { held } = await spool.store.recover(T0);
      expect(held.map((e) => [e.id, e.state, e.attempts]), damaged).toEqual([[id, "held", 1]]);
      expect(await ls("hold")).toEqual([id]);
      expect(await ls("queue")).toEqual([]);
      await rm(spool.dir, { recursive: true });
    }
  });

  it("a dead worker's record from a newer format goes back to the queue untouched, reported", async () => {
    const problems: OutboxError[] = [];
    spool.store.onProblem((e) => problems.push(e));
    const id = await deadWith((r) => ({ ...r, format: 2 }));
    expect(await spool.store.recover(T0)).toEqual({ requeued: 0, held: [] });
    expect(await ls("queue")).toEqual([id]);
    expect(problems.map((p) => [p.reason, p.id])).toEqual([["version", id]]);
  });
});

describe("more of take and list", () => {
  it("a newer-format record in deferred/ is reported once, and left there", async () => {
    const problems: OutboxError[] = [];
    spool.store.onProblem((e) => problems.push(e));
    const id = await add({ notBefore: T0 + 1000 });
    const path = join(spool.dir, "deferred", id, "message.json");
    await writeFile(path, (await readFile(path, "utf8")).replace('"format": 1', '"format": 2'));
    const fresh = new FileStore({ path: spool.dir });
    fresh.onProblem((e) => problems.push(e));
    await fresh.join("w1", 60_000, T0);
    expect(await fresh.take("w1", 1, T0 + 2000)).toEqual([]);
    expect(await fresh.take("w1", 1, T0 + 2000)).toEqual([]);
    expect(await ls("deferred")).toEqual([id]);
    expect(problems.map((p) => p.reason)).toEqual(["version"]);
  });

  it("equal priority: the earliest due first, then by id (enqueue order within a millisecond)", async () => {
    const ids: string[] = [];
    for (const at of [T0 + 5, T0 + 3, T0 + 3, T0 + 3, T0 + 1, T0 + 4]) ids.push(await add({ enqueuedAt: at }));
    await spool.store.join("w1", 60_000, T0);
    const order = (await spool.store.take("w1", 6, T0 + 10)).map((l) => l.entry.id);
    expect(order).toEqual([ids[4], ids[1], ids[2], ids[3], ids[5], ids[0]]);
  });

  it("list: equal enqueue times by id (enqueue order within a millisecond)", async () => {
    const ids = [await add(), await add(), await add()];
    expect((await new FileStore({ path: spool.dir }).list()).map((e) => e.id)).toEqual(ids);
  });

  it("the problems of unreadable bytes name the message", async () => {
    const problems: OutboxError[] = [];
    spool.store.onProblem((e) => problems.push(e));
    const off = spool.store.onProblem(() => {
      throw new Error("an unsubscribed listener was called");
    });
    off();
    const id = await add();
    await rm(join(spool.dir, "queue", id, "message.eml"));
    await spool.store.join("w1", 60_000, T0);
    await spool.store.take("w1", 1, T0);
    const other = await add();
    await writeFile(join(spool.dir, "queue", other, "message.eml"), "short");
    await spool.store.take("w1", 1, T0);
    expect(problems.map((p) => [p.reason, p.id])).toEqual([
      ["corrupt", id],
      ["corrupt", other],
    ]);
  });
});

describe("the rest of the store's answers", () => {
  it("settle refuses 'sending' as a settlement, saying so", async () => {
    await add();
    await spool.store.join("w1", 1000, T0);
    const [lease] = await spool.store.take("w1", 1, T0);
    const error = await errorOf(spool.store.settle("w1", lease!, settlement(lease!.entry, { state: "sending" as never }), T0));
    expect(error.message).toBe(`The outbox cannot use the spool ${spool.dir}: a settled message is never 'sending'`);
  });

  it("update: not-found names the message; one taken by a worker meanwhile is refused", async () => {
    const missing = "20261201T200000000Z-00000000ff";
    expect((await errorOf(spool.store.update(missing, ["held"], released, T0))).id).toBe(missing);
    const id = await add();
    await spool.store.join("w1", 1000, T0);
    const [lease] = await spool.store.take("w1", 1, T0);
    await spool.store.settle("w1", lease!, settlement(lease!.entry, { state: "held" }), T0);
    spool.store = new FileStore({ path: spool.dir, fs: faulty((call, path) => (call === "rename" && path.endsWith(`hold/${id}`) ? "ENOENT" : undefined)) });
    const taken = await errorOf(spool.store.update(id, ["held"], released, T0));
    expect([taken.reason, taken.message, taken.id]).toEqual(["state", `The message ${id} was taken by a worker meanwhile`, id]);
  });

  it("purge only ever removes key files inside keys/", async () => {
    const hex = "a".repeat(64);
    for (const key of [`../${hex}`, `${hex}/../../outside`]) {
      const id = await add();
      const path = join(spool.dir, "queue", id, "message.json");
      await writeFile(path, JSON.stringify({ ...JSON.parse(await readFile(path, "utf8")), idempotencyKey: key }));
      await writeFile(join(spool.dir, `${hex}`), `${id}\n`);
      await writeFile(join(spool.dir, "outside"), `${id}\n`);
      expect(await spool.store.purge(["queued"])).toBe(1);
      expect((await readdir(spool.dir)).filter((n) => n === hex || n === "outside").sort(), key).toEqual([hex, "outside"].sort());
    }
  });

  it("list of the messages being sent looks only in workers' directories", async () => {
    const id = await add();
    await spool.store.join("w1", 60_000, T0);
    await spool.store.take("w1", 1, T0);
    const { cp } = await import("node:fs/promises");
    await cp(join(spool.dir, "active", "w1", id), join(spool.dir, "active", ".stray", id), { recursive: true });
    expect((await spool.store.list({ state: "sending" })).map((e) => e.id)).toEqual([id]);
  });

  it("get finds a message being returned from a dead worker (in reclaim/) as sending", async () => {
    const id = await add();
    const { rename } = await import("node:fs/promises");
    await mkdir(join(spool.dir, "reclaim", "dead.abc123"), { recursive: true });
    await rename(join(spool.dir, "queue", id), join(spool.dir, "reclaim", "dead.abc123", id));
    expect((await spool.store.get(id))?.state).toBe("sending");
  });

  it("deferred messages of another store keep their priority order", async () => {
    const other = new FileStore({ path: spool.dir });
    const normal = (await other.add(newEntry({ enqueuedAt: T0, notBefore: T0 + 1000 }), bytesOf(MESSAGE))).id;
    const urgent = (await other.add(newEntry({ enqueuedAt: T0 + 1, notBefore: T0 + 1000, priority: -1 }), bytesOf(MESSAGE))).id;
    await spool.store.join("w1", 60_000, T0);
    expect((await spool.store.take("w1", 2, T0 + 1000)).map((l) => l.entry.id)).toEqual([urgent, normal]);
  });

  it("a dead worker's message without its record is quarantined", async () => {
    const other = new FileStore({ path: spool.dir });
    const { id } = await other.add(newEntry(), bytesOf(MESSAGE));
    await other.join("dead", 1000, T0);
    await other.take("dead", 1, T0);
    await rm(join(spool.dir, "active", "dead", id, "message.json"));
    await rm(join(spool.dir, "active", "dead", "lease"));
    const problems: OutboxError[] = [];
    spool.store.onProblem((e) => problems.push(e));
    expect(await spool.store.recover(T0)).toEqual({ requeued: 0, held: [] });
    expect((await ls("corrupt"))[0]).toMatch(new RegExp(`^${id}\\.`));
    expect(problems.map((p) => [p.reason, p.id])).toEqual([["corrupt", id]]);
  });

  it("every file the store opens is closed", async () => {
    let open = 0;
    const counting: typeof nodeSpoolFs = {
      ...nodeSpoolFs,
      async create(path) {
        const handle = await nodeSpoolFs.create(path);
        open++;
        return { ...handle, close: async () => (open--, handle.close()) };
      },
    };
    spool.store = new FileStore({ path: spool.dir, fs: counting });
    await add({ idempotencyKey: keyHash("closed") });
    await spool.store.join("w1", 1000, T0);
    const [lease] = await spool.store.take("w1", 1, T0);
    await spool.store.markFinalDot("w1", lease!, 1, T0);
    await spool.store.settle("w1", lease!, settlement(lease!.entry, { state: "sent" }), T0);
    expect(open).toBe(0);
  });

  it("watch: an enqueue by another store wakes the listener through the directory; after unsubscribing, nothing does", async () => {
    await spool.store.open();
    const other = new FileStore({ path: spool.dir });
    const woken: string[] = [];
    const stopEarly = spool.store.watch(() => woken.push("early"));
    stopEarly();
    const stop = spool.store.watch(() => woken.push("watching"));
    const until = async (predicate: () => boolean) => {
      for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 25));
    };
    // The directory watch starts shortly after watch() returns: enqueue until it has seen one.
    for (let i = 0; i < 20 && !woken.includes("watching"); i++) {
      await other.add(newEntry(), bytesOf(MESSAGE));
      await until(() => woken.includes("watching"));
    }
    expect(woken).toContain("watching");
    stop();
    woken.length = 0;
    const later: string[] = [];
    const stopLater = spool.store.watch(() => later.push("later"));
    for (let i = 0; i < 20 && later.length === 0; i++) {
      await other.add(newEntry(), bytesOf(MESSAGE));
      await until(() => later.length > 0);
    }
    stopLater();
    expect(later.length).toBeGreaterThan(0);
    // The later listener saw an enqueue; the unsubscribed ones would have seen it too.
    expect(woken).toEqual([]);
  });
});
