/**
 * The spool's moves between directories, driven through the store's own methods on a
 * temporary directory, fast and without a server or a worker: where an enqueued message
 * lands (queue/ or deferred/, and its modification time), idempotency keys, the size limit
 * at exactly maxMessageSize and one past it, leases (join, renew, take in order, leave),
 * the final-dot marker, each settlement's directory, recovery of an expired lease, and
 * get/list/update/purge/read.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OutboxError } from "../../src/errors.js";
import { FileStore, keyHash } from "../../src/outbox/file-store.js";
import { released, retriedByHand, unchanged } from "../../src/outbox/outcome.js";
import { nodeSpoolFs } from "../../src/outbox/spool-fs.js";
import type { Lease, NewEntry, OutboxEntry, Settlement } from "../../src/outbox/store.js";

const T0 = Date.UTC(2026, 11, 1, 20, 0, 0);
const MESSAGE = "Subject: s\r\nFrom: ann@example.com\r\n\r\nbody line\r\n";
/** The header block with its last line's CRLF, without the blank line. */
const HEADER_LENGTH = MESSAGE.indexOf("\r\n\r\n") + 2;

let dir: string;
let store: FileStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-spool-moves-"));
  store = new FileStore({ path: dir, host: "this-host" });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function newEntry(changes: Partial<NewEntry> = {}): NewEntry {
  return {
    messageId: "<a@example.com>",
    date: "Tue, 01 Dec 2026 20:00:00 +0000",
    subject: "s",
    envelope: { from: "ann@example.com", to: ["bob@example.org", "cy@example.org"] },
    fields: { from: "ann@example.com", to: ["bob@example.org"], cc: [], replyTo: [], headers: {} },
    smtputf8: false,
    eightBit: false,
    headerLength: HEADER_LENGTH,
    enqueuedAt: T0,
    route: undefined,
    priority: 0,
    notBefore: undefined,
    idempotencyKey: undefined,
    unsigned: false,
    ...changes,
  };
}

async function* bytesOf(text: string): AsyncIterable<Uint8Array> {
  yield Buffer.from(text);
}

async function add(changes: Partial<NewEntry> = {}, text = MESSAGE): Promise<string> {
  const { id, duplicate } = await store.add(newEntry(changes), bytesOf(text));
  expect(duplicate).toBe(false);
  return id;
}

async function ls(sub: string): Promise<string[]> {
  return (await readdir(join(dir, sub))).sort();
}

async function text(iterable: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of iterable) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString();
}

/** A settlement: the entry's progress with `changes`. */
function settlement(entry: OutboxEntry, changes: Partial<Settlement>): Settlement {
  return { ...unchanged(entry), ...changes } as Settlement;
}

async function errorOf(promise: Promise<unknown>): Promise<OutboxError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OutboxError);
  return error as OutboxError;
}

describe("enqueue", () => {
  it("a message due now goes to queue/ with its bytes and record, and wakes the watchers", async () => {
    let woken = 0;
    const stop = store.watch(() => woken++);
    const id = await add();
    stop();
    expect(woken).toBeGreaterThanOrEqual(1);
    expect(await ls("queue")).toEqual([id]);
    expect(await ls(join("queue", id))).toEqual(["message.eml", "message.json"]);
    expect(await readFile(join(dir, "queue", id, "message.eml"), "utf8")).toBe(MESSAGE);
    expect(await ls("incoming")).toEqual([]);
    expect(await store.get(id)).toMatchObject({ id, state: "queued", attempts: 0, size: MESSAGE.length, pending: ["bob@example.org", "cy@example.org"], updatedAt: T0 });
  });

  it("a message not due yet goes to deferred/, its modification time the time it is due, and wakes nobody", async () => {
    let woken = 0;
    const stop = store.watch(() => woken++);
    const id = await add({ notBefore: T0 + 60_000 });
    expect(woken).toBe(0);
    stop();
    expect(await ls("queue")).toEqual([]);
    expect(await ls("deferred")).toEqual([id]);
    expect(Math.floor((await stat(join(dir, "deferred", id))).mtimeMs)).toBe(T0 + 60_000);
    expect((await store.get(id))?.nextAttemptAt).toBe(T0 + 60_000);
    // notBefore in the past: due at once.
    const now = await add({ notBefore: T0 - 1 });
    expect(await ls("queue")).toEqual([now]);
  });

  it("an idempotency key: the second enqueue keeps nothing and gives the first id; a purged message's key is free again", async () => {
    const key = keyHash("order-1");
    const first = await add({ idempotencyKey: key });
    expect(await readFile(join(dir, "keys", key), "utf8")).toBe(`${first}\n`);
    expect(await store.add(newEntry({ idempotencyKey: key }), bytesOf(MESSAGE))).toEqual({ id: first, duplicate: true });
    expect(await ls("queue")).toEqual([first]);
    expect((await ls("keys")).filter((n) => !n.startsWith("."))).toEqual([key]);
    expect(await ls("incoming")).toEqual([]);
    expect(await store.purge(["queued"])).toBe(1);
    expect(await ls("keys")).toEqual([]);
    const again = await add({ idempotencyKey: key });
    expect(again).not.toBe(first);
  });

  it("a key naming a message no longer kept, or holding no id, is stale: removed, and the enqueue goes ahead", async () => {
    const key = keyHash("order-2");
    await mkdir(join(dir, "keys"), { recursive: true });
    await store.open();
    await writeFile(join(dir, "keys", key), "20261201T200000000Z-0000000000\n");
    const id = await add({ idempotencyKey: key });
    expect(await readFile(join(dir, "keys", key), "utf8")).toBe(`${id}\n`);
    const other = keyHash("order-3");
    await writeFile(join(dir, "keys", other), "not an id\n");
    const second = await add({ idempotencyKey: other });
    expect(await readFile(join(dir, "keys", other), "utf8")).toBe(`${second}\n`);
  });

  it("the size limit: exactly maxMessageSize is kept, one octet more is refused and leaves nothing", async () => {
    store = new FileStore({ path: dir, maxMessageSize: MESSAGE.length });
    const id = await add();
    expect((await store.get(id))?.size).toBe(MESSAGE.length);
    const error = await errorOf(store.add(newEntry(), bytesOf(`${MESSAGE}x`)));
    expect(error.reason).toBe("too-large");
    expect(error.message).toBe(`The message is larger than the spool's maxMessageSize of ${MESSAGE.length} octets`);
    expect(await ls("incoming")).toEqual([]);
    expect(await ls("queue")).toEqual([id]);
  });
});

describe("workers and leases", () => {
  it("join writes the lease; renew extends it; a name that is not a worker's is refused", async () => {
    await store.join("w1", 1000, T0);
    expect(JSON.parse(await readFile(join(dir, "active", "w1", "lease"), "utf8"))).toEqual({ format: 1, worker: "w1", host: "this-host", pid: process.pid, until: T0 + 1000 });
    await store.renew("w1", T0 + 500);
    expect(JSON.parse(await readFile(join(dir, "active", "w1", "lease"), "utf8")).until).toBe(T0 + 1500);
    expect(await ls(join("active", "w1"))).toEqual(["lease"]);
    for (const bad of ["", ".hidden", "a/b", "x".repeat(122)]) {
      const error = await errorOf(store.join(bad, 1000, T0));
      expect(error.reason).toBe("unusable");
      expect(error.message).toBe(`A worker name must be letters, digits, ".", "_" or "-", not ${JSON.stringify(bad)}`);
    }
    await store.join("x".repeat(121), 1000, T0);
    const unknown = await errorOf(store.renew("w2", T0));
    expect([unknown.reason, unknown.message]).toEqual(["lease-lost", "The worker w2 has not joined this spool"]);
  });

  it("renew after the lease was taken back: lease-lost", async () => {
    await store.join("w1", 1000, T0);
    await rm(join(dir, "active", "w1"), { recursive: true });
    const error = await errorOf(store.renew("w1", T0));
    expect([error.reason, error.message]).toEqual(["lease-lost", "The worker w1's lease was taken back (it was presumed dead); it must not send or record it"]);
  });

  it("leave removes the worker's directory, or only its lease when it still holds a message", async () => {
    await store.join("w1", 1000, T0);
    await store.leave("w1");
    expect(await ls("active")).toEqual([]);
    await store.leave("w1");
    await add();
    await store.join("w2", 1000, T0);
    const [lease] = await store.take("w2", 1, T0);
    await store.leave("w2");
    expect(await ls(join("active", "w2"))).toEqual([lease!.entry.id]);
    await expect(store.renew("w2", T0)).rejects.toThrow("The worker w2 has not joined this spool");
  });

  it("take: lower priority numbers first, then the oldest; at most `limit`; none for a limit of 0", async () => {
    const late = await add({ enqueuedAt: T0 + 2000 });
    const early = await add({ enqueuedAt: T0 + 1000 });
    const urgent = await add({ enqueuedAt: T0 + 3000, priority: -1 });
    const low = await add({ enqueuedAt: T0, priority: 5 });
    await store.join("w1", 60_000, T0);
    expect(await store.take("w1", 0, T0 + 5000)).toEqual([]);
    const two = await store.take("w1", 2, T0 + 5000);
    expect(two.map((l) => l.entry.id)).toEqual([urgent, early]);
    expect(await ls(join("active", "w1"))).toEqual([early, urgent, "lease"].sort());
    const rest = await store.take("w1", 5, T0 + 5000);
    expect(rest.map((l) => l.entry.id)).toEqual([late, low]);
    expect(await store.take("w1", 5, T0 + 5000)).toEqual([]);
    expect((await store.list({ state: "sending" })).map((e) => e.id)).toEqual([low, early, late, urgent]);
  });

  it("the priority order holds for messages another store enqueued (read from their records)", async () => {
    const normal = await add({ enqueuedAt: T0 });
    const urgent = await add({ enqueuedAt: T0 + 1000, priority: -2 });
    const fresh = new FileStore({ path: dir });
    await fresh.join("w1", 60_000, T0);
    expect((await fresh.take("w1", 2, T0 + 5000)).map((l) => l.entry.id)).toEqual([urgent, normal]);
  });

  it("a deferred message is taken once it is due, not a millisecond before", async () => {
    const id = await add({ notBefore: T0 + 60_000 });
    const queued = await add({ enqueuedAt: T0 + 1 });
    await store.join("w1", 60_000, T0);
    expect((await store.take("w1", 5, T0 + 59_999)).map((l) => l.entry.id)).toEqual([queued]);
    const [lease] = await store.take("w1", 5, T0 + 60_000);
    expect(lease?.entry.id).toBe(id);
    expect(await ls("deferred")).toEqual([]);
  });

  it("a lease carries the record, the header block, and the body, read again on each call", async () => {
    const id = await add({ route: "relay", priority: 3 });
    await store.join("w1", 60_000, T0);
    const [lease] = await store.take("w1", 1, T0);
    expect(lease!.entry).toMatchObject({ id, route: "relay", priority: 3, size: MESSAGE.length, headerLength: HEADER_LENGTH });
    expect(lease!.header.toString()).toBe(MESSAGE.slice(0, HEADER_LENGTH));
    expect(await text(lease!.body())).toBe("body line\r\n");
    expect(await text(lease!.body())).toBe("body line\r\n");
  });

  it("take after the worker's directory was taken back: lease-lost", async () => {
    await add();
    await store.join("w1", 60_000, T0);
    await rm(join(dir, "active", "w1"), { recursive: true });
    const error = await errorOf(store.take("w1", 1, T0));
    expect(error.reason).toBe("lease-lost");
  });
});

describe("unreadable messages", () => {
  async function queueWith(record: string | undefined, bytes: string | undefined): Promise<string> {
    await store.open();
    const id = "20261201T200000000Z-00000000aa";
    await mkdir(join(dir, "queue", id));
    if (record !== undefined) await writeFile(join(dir, "queue", id, "message.json"), record);
    if (bytes !== undefined) await writeFile(join(dir, "queue", id, "message.eml"), bytes);
    return id;
  }

  async function goodRecord(): Promise<string> {
    const id = await add();
    const record = await readFile(join(dir, "queue", id, "message.json"), "utf8");
    await rm(join(dir, "queue", id), { recursive: true });
    return record.replaceAll(id, "20261201T200000000Z-00000000aa");
  }

  it("a record that is not JSON is quarantined in corrupt/ with its reason, reported, and not leased", async () => {
    const problems: OutboxError[] = [];
    store.onProblem((e) => problems.push(e));
    const id = await queueWith("{", MESSAGE);
    await store.join("w1", 60_000, T0);
    expect(await store.take("w1", 1, T0)).toEqual([]);
    const [quarantined] = await ls("corrupt");
    expect(quarantined).toMatch(new RegExp(`^${id}\\.[0-9a-f]{6}$`));
    expect(await readFile(join(dir, "corrupt", quarantined!, "reason"), "utf8")).toMatch(/the record is not valid JSON .*; it may be truncated\n$/);
    expect(problems.map((p) => [p.reason, p.id])).toEqual([["corrupt", id]]);
    expect(await ls("queue")).toEqual([]);
  });

  it("bytes missing or of another size than the record says: quarantined, saying which", async () => {
    const record = await goodRecord();
    const missing = await queueWith(record, undefined);
    await store.join("w1", 60_000, T0);
    expect(await store.take("w1", 1, T0)).toEqual([]);
    const [first] = await ls("corrupt");
    expect(await readFile(join(dir, "corrupt", first!, "reason"), "utf8")).toBe(`${join(dir, "active", "w1", missing)}: message.eml is missing\n`);
    await rm(join(dir, "corrupt"), { recursive: true });
    await mkdir(join(dir, "corrupt"));
    await queueWith(record, MESSAGE.slice(0, 10));
    expect(await store.take("w1", 1, T0)).toEqual([]);
    const [second] = await ls("corrupt");
    expect(await readFile(join(dir, "corrupt", second!, "reason"), "utf8")).toBe(`${join(dir, "active", "w1", missing)}: message.eml has 10 octets, its record says ${MESSAGE.length} (truncated?)\n`);
  });

  it("a record from a newer format goes back where it was, reported once, and is skipped after", async () => {
    const problems: OutboxError[] = [];
    store.onProblem((e) => problems.push(e));
    const record = (await goodRecord()).replace('"format": 1', '"format": 2');
    const id = await queueWith(record, MESSAGE);
    await store.join("w1", 60_000, T0);
    expect(await store.take("w1", 1, T0)).toEqual([]);
    expect(await store.take("w1", 1, T0)).toEqual([]);
    expect(await ls("queue")).toEqual([id]);
    expect(problems.map((p) => p.reason)).toEqual(["version"]);
  });
});

describe("unreadable files other stores or crashes leave", () => {
  it("a lease file that is not JSON counts as no lease: taken back", async () => {
    await store.open();
    const id = "20261201T200000000Z-00000000bb";
    await mkdir(join(dir, "active", "crashed", id), { recursive: true });
    await writeFile(join(dir, "active", "crashed", "lease"), '{"format": 1, "until": 9');
    const record = JSON.parse(await readFile(join(dir, "queue", await add(), "message.json"), "utf8")) as Record<string, unknown>;
    await store.purge(["queued"]);
    await writeFile(join(dir, "active", "crashed", id, "message.json"), JSON.stringify({ ...record, id }));
    await writeFile(join(dir, "active", "crashed", id, "message.eml"), MESSAGE);
    expect(await store.recover(T0)).toEqual({ requeued: 1, held: [] });
    expect(await ls("queue")).toEqual([id]);
  });

  it("an enqueue that crashed while writing its record: the half-written record is removed after the grace period", async () => {
    await store.open();
    const id = "20261201T200000000Z-00000000cc";
    await mkdir(join(dir, "incoming", id));
    await writeFile(join(dir, "incoming", id, "message.eml"), MESSAGE);
    await writeFile(join(dir, "incoming", id, "message.json"), '{"format": 1, "id": "2026');
    await store.recover(T0 + 3_600_000);
    expect(await ls("incoming")).toEqual([id]);
    await store.recover(T0 + 3_600_001);
    expect(await ls("incoming")).toEqual([]);
  });

  it("purge removes a message whose record cannot be read", async () => {
    await store.open();
    const id = "20261201T200000000Z-00000000dd";
    await mkdir(join(dir, "failed", id));
    await writeFile(join(dir, "failed", id, "message.json"), "{");
    expect(await store.purge(["failed"])).toBe(1);
    expect(await ls("failed")).toEqual([]);
  });
});

describe("the final dot and settling", () => {
  async function leased(changes: Partial<NewEntry> = {}): Promise<Lease> {
    await add(changes);
    await store.join("w1", 60_000, T0);
    const [lease] = await store.take("w1", 1, T0);
    return lease!;
  }

  it("markFinalDot writes the round, the time and the worker beside the message", async () => {
    const lease = await leased();
    await store.markFinalDot("w1", lease, 1, T0 + 10);
    expect(JSON.parse(await readFile(join(dir, "active", "w1", lease.entry.id, "final-dot"), "utf8"))).toEqual({ format: 1, round: 1, at: T0 + 10, worker: "w1" });
  });

  it("markFinalDot and settle after the lease was taken back: lease-lost, naming the message", async () => {
    const lease = await leased();
    await rm(join(dir, "active", "w1"), { recursive: true });
    const expected = `The worker w1's lease on ${lease.entry.id} was taken back (it was presumed dead); it must not send or record it`;
    const dot = await errorOf(store.markFinalDot("w1", lease, 1, T0));
    expect([dot.reason, dot.message, dot.id]).toEqual(["lease-lost", expected, lease.entry.id]);
    const settled = await errorOf(store.settle("w1", lease, settlement(lease.entry, { state: "sent" }), T0));
    expect([settled.reason, settled.message]).toEqual(["lease-lost", expected]);
  });

  it("sent: into sent/ without its bytes (kept with keepSent), the record updated", async () => {
    const lease = await leased();
    const entry = await store.settle("w1", lease, settlement(lease.entry, { state: "sent", attempts: 1, pending: [], accepted: ["bob@example.org", "cy@example.org"] }), T0 + 20);
    expect(entry).toMatchObject({ id: lease.entry.id, state: "sent", attempts: 1, updatedAt: T0 + 20 });
    expect(await ls(join("sent", lease.entry.id))).toEqual(["message.json"]);
    expect(await store.get(lease.entry.id)).toMatchObject({ state: "sent", attempts: 1, accepted: ["bob@example.org", "cy@example.org"], updatedAt: T0 + 20 });
    expect(await store.read(lease.entry.id)).toBeUndefined();
    expect(await ls(join("active", "w1"))).toEqual(["lease"]);

    store = new FileStore({ path: dir, keepSent: true });
    const kept = await leased();
    await store.settle("w1", kept, settlement(kept.entry, { state: "sent" }), T0);
    expect(await ls(join("sent", kept.entry.id))).toEqual(["message.eml", "message.json"]);
    expect(await text((await store.read(kept.entry.id))!)).toBe(MESSAGE);
  });

  it.each([
    ["partial", "partial"],
    ["failed", "failed"],
    ["dead", "dead"],
    ["held", "hold"],
  ] as const)("%s: into %s/, bytes kept", async (state, directory) => {
    const lease = await leased();
    await store.markFinalDot("w1", lease, 1, T0);
    await store.settle("w1", lease, settlement(lease.entry, { state }), T0 + 1);
    expect(await ls(directory)).toEqual([lease.entry.id]);
    expect(await ls(join(directory, lease.entry.id))).toEqual(["final-dot", "message.eml", "message.json"]);
    expect((await store.get(lease.entry.id))?.state).toBe(state);
  });

  it("queued again: later into deferred/ (its time as modification time), now into queue/; the final-dot marker removed", async () => {
    const lease = await leased();
    await store.markFinalDot("w1", lease, 1, T0);
    let woken = 0;
    const stop = store.watch(() => woken++);
    await store.settle("w1", lease, settlement(lease.entry, { state: "queued", attempts: 1, nextAttemptAt: T0 + 120_000 }), T0 + 1);
    expect(woken).toBe(0);
    expect(await ls("deferred")).toEqual([lease.entry.id]);
    expect(await ls(join("deferred", lease.entry.id))).toEqual(["message.eml", "message.json"]);
    expect(Math.floor((await stat(join(dir, "deferred", lease.entry.id))).mtimeMs)).toBe(T0 + 120_000);
    const [again] = await store.take("w1", 1, T0 + 120_000);
    await store.settle("w1", again!, settlement(again!.entry, { state: "queued", attempts: 2, nextAttemptAt: T0 + 120_000 }), T0 + 120_000);
    stop();
    expect(woken).toBeGreaterThanOrEqual(1);
    expect(await ls("queue")).toEqual([lease.entry.id]);
  });
});

describe("recovery of an expired lease", () => {
  async function deadWorker(lease: Record<string, unknown> | undefined, ...messages: { changes?: Partial<NewEntry>; finalDot?: number; settled?: Partial<Settlement> }[]): Promise<string[]> {
    const other = new FileStore({ path: dir, host: "this-host" });
    const ids: string[] = [];
    for (const m of messages) ids.push((await other.add(newEntry(m.changes), bytesOf(MESSAGE))).id);
    await other.join("dead", 1000, T0);
    const leases = await other.take("dead", messages.length, T0 + 10_000_000);
    for (const [i, m] of messages.entries()) {
      const l = leases.find((x) => x.entry.id === ids[i])!;
      if (m.finalDot !== undefined) await other.markFinalDot("dead", l, m.finalDot, T0);
      if (m.settled !== undefined) await writeFile(join(dir, "active", "dead", l.entry.id, "message.json"), JSON.stringify({ ...JSON.parse(await readFile(join(dir, "active", "dead", l.entry.id, "message.json"), "utf8")), ...m.settled }));
    }
    if (lease === undefined) await rm(join(dir, "active", "dead", "lease"));
    else await writeFile(join(dir, "active", "dead", "lease"), JSON.stringify({ format: 1, worker: "dead", host: "other-host", pid: 1, ...lease }));
    return ids;
  }

  it("a lease valid until now is left alone; one that ended before now is taken back", async () => {
    await deadWorker({ until: T0 + 5000 }, {});
    expect(await store.recover(T0 + 5000)).toEqual({ requeued: 0, held: [] });
    expect(await ls("active")).toEqual(["dead"]);
    expect(await store.recover(T0 + 5001)).toEqual({ requeued: 1, held: [] });
    expect(await ls("active")).toEqual([]);
    expect(await ls("reclaim")).toEqual([]);
  });

  it("no lease, or one without a time: taken back at once", async () => {
    await deadWorker(undefined, {});
    expect((await store.recover(T0)).requeued).toBe(1);
    await rm(dir, { recursive: true });
    await deadWorker({ until: "later" }, {});
    expect((await store.recover(T0)).requeued).toBe(1);
  });

  it("before the final dot: queued again, marked interrupted; after it: held, and reported", async () => {
    const [before, after] = await deadWorker({ until: T0 }, {}, { finalDot: 1 });
    const recovered = await store.recover(T0 + 1);
    expect(recovered.requeued).toBe(1);
    expect(recovered.held.map((e) => [e.id, e.state, e.attempts])).toEqual([[after, "held", 1]]);
    expect(await ls("queue")).toEqual([before]);
    expect(await ls("hold")).toEqual([after]);
    expect(await store.get(before!)).toMatchObject({ state: "queued", interrupted: "before-final-dot", updatedAt: T0 + 1 });
    expect(await ls(join("queue", before!))).toEqual(["message.eml", "message.json"]);
    expect((await store.get(after!))?.heldReason).toMatch(/./);
  });

  it("a final-dot marker of a round already counted, a retry already recorded, a finished record: each where its record says", async () => {
    const [counted, retry, finished] = await deadWorker(
      { until: T0 },
      { finalDot: 1, settled: { attempts: 1 } },
      { settled: { attempts: 1, nextAttemptAt: T0 + 60_000 } },
      { settled: { state: "failed", attempts: 1 } },
    );
    // Both queued ones count as returned, whether due now or at their recorded retry.
    const recovered = await store.recover(T0 + 1);
    expect(recovered).toEqual({ requeued: 2, held: [] });
    expect(await ls("queue")).toEqual([counted]);
    expect(await ls(join("queue", counted!))).toEqual(["message.eml", "message.json"]);
    expect(await ls("deferred")).toEqual([retry]);
    expect(Math.floor((await stat(join(dir, "deferred", retry!))).mtimeMs)).toBe(T0 + 60_000);
    expect((await store.get(retry!))?.interrupted).toBeUndefined();
    expect(await ls("failed")).toEqual([finished]);
  });

  it("this store's own workers and names that are not workers are left alone", async () => {
    await store.join("mine", 1, T0);
    await mkdir(join(dir, "active", ".not-a-worker"));
    expect(await store.recover(T0 + 10_000)).toEqual({ requeued: 0, held: [] });
    expect(await ls("active")).toEqual([".not-a-worker", "mine"]);
  });

  it("an unreadable record of a dead worker is quarantined", async () => {
    const [id] = await deadWorker({ until: T0 }, {});
    await writeFile(join(dir, "active", "dead", id!, "message.json"), "{");
    expect(await store.recover(T0 + 1)).toEqual({ requeued: 0, held: [] });
    expect((await ls("corrupt"))[0]).toMatch(new RegExp(`^${id}\\.`));
  });
});

describe("reading and managing", () => {
  it("get and read: undefined for an unknown id or one that is not an id", async () => {
    const id = await add();
    expect(await store.get("nope")).toBeUndefined();
    expect(await store.get(5 as never)).toBeUndefined();
    expect(await store.get("20261201T200000000Z-00000000ff")).toBeUndefined();
    expect(await store.read("nope")).toBeUndefined();
    expect(await store.read("20261201T200000000Z-00000000ff")).toBeUndefined();
    expect(await text((await store.read(id))!)).toBe(MESSAGE);
  });

  it("list: every state oldest first, one state, or at most `limit`", async () => {
    const second = await add({ enqueuedAt: T0 + 2000 });
    const first = await add({ enqueuedAt: T0 + 1000 });
    const later = await add({ enqueuedAt: T0 + 3000, notBefore: T0 + 600_000 });
    await store.join("w1", 60_000, T0);
    const [lease] = await store.take("w1", 1, T0 + 5000);
    await store.settle("w1", lease!, settlement(lease!.entry, { state: "failed" }), T0 + 5000);
    expect((await store.list()).map((e) => [e.id, e.state])).toEqual([
      [first, "failed"],
      [second, "queued"],
      [later, "queued"],
    ]);
    expect((await store.list({ state: "queued" })).map((e) => e.id)).toEqual([second, later]);
    expect((await store.list({ limit: 1 })).map((e) => e.id)).toEqual([first]);
    expect(await store.list({ state: "held" })).toEqual([]);
  });

  it("update: releases a held message into the queue; refuses one in another state, one being sent, and an unknown one", async () => {
    await add();
    await store.join("w1", 60_000, T0);
    const [lease] = await store.take("w1", 1, T0);
    const id = lease!.entry.id;
    const sending = await errorOf(store.update(id, ["held", "sending"], released, T0));
    expect([sending.reason, sending.message]).toEqual(["state", `The message ${id} is sending; this needs it held or sending`]);
    await store.settle("w1", lease!, settlement(lease!.entry, { state: "held", heldReason: "unknown outcome" }), T0);
    const wrong = await errorOf(store.update(id, ["failed", "dead"], retriedByHand, T0));
    expect([wrong.reason, wrong.message, wrong.id]).toEqual(["state", `The message ${id} is held; this needs it failed or dead`, id]);
    const entry = await store.update(id, ["held"], released, T0 + 50);
    expect(entry).toMatchObject({ id, state: "queued", heldReason: undefined, updatedAt: T0 + 50 });
    expect(await ls("queue")).toEqual([id]);
    expect(await ls("hold")).toEqual([]);
    expect(await ls("active")).toEqual(["w1"]);
    for (const missing of ["20261201T200000000Z-00000000ff", "nope"]) {
      const error = await errorOf(store.update(missing, ["held"], released, T0));
      expect([error.reason, error.message]).toEqual(["not-found", `No message ${missing} in the outbox ${dir}`]);
    }
  });

  it("update: a retry of a failed message goes to queue/ with a fresh count", async () => {
    const id = await add();
    await store.join("w1", 60_000, T0);
    const [lease] = await store.take("w1", 1, T0);
    await store.settle("w1", lease!, settlement(lease!.entry, { state: "failed", attempts: 3, accepted: ["bob@example.org"] }), T0);
    const entry = await store.update(id, ["failed"], retriedByHand, T0 + 1);
    expect(entry).toMatchObject({ state: "queued", attempts: 0, pending: ["cy@example.org"] });
    expect(await text((await store.read(id))!)).toBe(MESSAGE);
  });

  it("purge: the messages in the states named, with their keys; never those being sent", async () => {
    const keyed = keyHash("k");
    const a = await add({ idempotencyKey: keyed });
    await add({ notBefore: T0 + 60_000 });
    await store.join("w1", 60_000, T0);
    const [lease] = await store.take("w1", 1, T0);
    expect(lease!.entry.id).toBe(a);
    await store.settle("w1", lease!, settlement(lease!.entry, { state: "dead" }), T0);
    // Refused before anything is deleted: the dead message named first is still there.
    const error = await errorOf(store.purge(["dead", "sending"]));
    expect([error.reason, error.message]).toEqual(["state", "Messages being sent cannot be purged; stop the workers first"]);
    expect(await ls("dead")).toEqual([a]);
    expect(await store.purge(["failed"])).toBe(0);
    expect(await ls("keys")).toEqual([keyed]);
    expect(await store.purge(["dead"])).toBe(1);
    expect(await ls("dead")).toEqual([]);
    expect(await ls("keys")).toEqual([]);
    expect(await store.purge(["queued", "held"])).toBe(1);
    expect(await ls("deferred")).toEqual([]);
  });

  it("purge leaves a key that now names another message", async () => {
    const key = keyHash("shared");
    const id = await add({ idempotencyKey: key });
    await writeFile(join(dir, "keys", key), "20261201T200000000Z-00000000ee\n");
    expect(await store.purge(["queued"])).toBe(1);
    expect(await ls("queue")).not.toContain(id);
    expect(await ls("keys")).toEqual([key]);
  });
});

/** node:fs with one call made to fail (or recorded) through the store's file-system seam. */
function faulty(fail: (call: string, path: string) => string | undefined, calls: string[] = []): typeof nodeSpoolFs {
  const wrap =
    <A extends unknown[], R>(name: string, f: (path: string, ...rest: A) => Promise<R>) =>
    async (path: string, ...rest: A): Promise<R> => {
      calls.push(`${name} ${path.slice(dir.length + 1)}`);
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
    store = new FileStore({ path: dir, fs: faulty(() => undefined, calls) });
    await store.open();
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
    store = new FileStore({ path: dir, fs: faulty((call, path) => (call === "create" && path.endsWith("message.json") ? "EIO" : undefined)) });
    const error = await errorOf(store.add(newEntry(), bytesOf(MESSAGE)));
    expect([error.reason, error.message]).toEqual(["unusable", `The outbox cannot use the spool ${dir}: create failed`]);
    expect(await ls("incoming")).toEqual([]);
  });

  it("the rename into queue/ failing after the key was claimed: unusable, the message left in incoming/ for recovery to finish", async () => {
    let fail = true;
    store = new FileStore({ path: dir, fs: faulty((call, path) => (fail && call === "rename" && path.includes("incoming") ? "EIO" : undefined)) });
    const key = keyHash("k2");
    const error = await errorOf(store.add(newEntry({ idempotencyKey: key }), bytesOf(MESSAGE)));
    expect(error.reason).toBe("unusable");
    const [id] = await ls("incoming");
    expect(id).toMatch(/^\d{8}T\d{9}Z-/);
    fail = false;
    await store.recover(T0);
    expect(await ls("incoming")).toEqual([]);
    expect(await ls("queue")).toEqual([id]);
  });

  it("join, renew and take: a file-system error is unusable, never lease-lost", async () => {
    let failing: string | undefined;
    store = new FileStore({ path: dir, fs: faulty((call, path) => (failing !== undefined && path.includes(failing) && (call === "mkdir" || call === "create" || call === "rename" || call === "readFile") ? "EIO" : undefined)) });
    await add();
    failing = "active/w0";
    expect((await errorOf(store.join("w0", 1000, T0))).reason).toBe("unusable");
    failing = undefined;
    await store.join("w1", 1000, T0);
    failing = ".lease.tmp";
    expect((await errorOf(store.renew("w1", T0))).reason).toBe("unusable");
    failing = "queue/";
    expect((await errorOf(store.take("w1", 1, T0))).reason).toBe("unusable");
    failing = "message.json";
    const error = await errorOf(store.take("w1", 1, T0));
    expect([error.reason, error.message]).toEqual(["unusable", `The outbox cannot use the spool ${dir}: readFile failed`]);
  });

  it("markFinalDot and settle: a file-system error is unusable", async () => {
    let failing = false;
    store = new FileStore({ path: dir, fs: faulty((call) => (failing && (call === "create" || call === "rename") ? "EIO" : undefined)) });
    await add();
    await store.join("w1", 1000, T0);
    const [lease] = await store.take("w1", 1, T0);
    failing = true;
    expect((await errorOf(store.markFinalDot("w1", lease!, 1, T0))).reason).toBe("unusable");
    expect((await errorOf(store.settle("w1", lease!, settlement(lease!.entry, { state: "sent" }), T0))).reason).toBe("unusable");
  });

  it("take: a message another worker took meanwhile is skipped, the next one leased", async () => {
    let stolen: string | undefined;
    store = new FileStore({ path: dir, fs: faulty((call, path) => (call === "rename" && stolen !== undefined && path.endsWith(`queue/${stolen}`) ? "ENOENT" : undefined)) });
    const first = await add({ enqueuedAt: T0 });
    const second = await add({ enqueuedAt: T0 + 1 });
    stolen = first;
    await store.join("w1", 1000, T0);
    expect((await store.take("w1", 2, T0 + 10)).map((l) => l.entry.id)).toEqual([second]);
  });
});

describe("races and crashes around idempotency keys", () => {
  it("two enqueues of one key at once: one message, both given its id", async () => {
    const key = keyHash("same");
    const [a, b] = await Promise.all([store.add(newEntry({ idempotencyKey: key }), bytesOf(MESSAGE)), store.add(newEntry({ idempotencyKey: key }), bytesOf(MESSAGE))]);
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
    expect(await store.add(newEntry({ idempotencyKey: key }), unread)).toEqual({ id, duplicate: true });
  });

  /** A keyed message whose process died after claiming the key, before the rename into queue/. */
  async function crashedAfterClaim(changes: Partial<NewEntry> = {}): Promise<{ id: string; key: string }> {
    const key = keyHash(`crashed-${Math.random()}`);
    const id = await add({ idempotencyKey: key, ...changes });
    const from = changes.notBefore !== undefined ? "deferred" : "queue";
    await rm(join(dir, "incoming"), { recursive: true });
    await mkdir(join(dir, "incoming"));
    const { rename } = await import("node:fs/promises");
    await rename(join(dir, from, id), join(dir, "incoming", id));
    return { id, key };
  }

  it("enqueueing the key again finishes the crashed enqueue: the message moves to queue/", async () => {
    const { id, key } = await crashedAfterClaim();
    expect(await store.add(newEntry({ idempotencyKey: key }), bytesOf(MESSAGE))).toEqual({ id, duplicate: true });
    expect(await ls("incoming")).toEqual([]);
    expect(await ls("queue")).toEqual([id]);
  });

  it("recovery finishes it too, into deferred/ when it is not due yet, with its time", async () => {
    const { id } = await crashedAfterClaim({ notBefore: Date.now() + 3_600_000 });
    const due = (await import("node:fs/promises")).readFile;
    const record = JSON.parse(await due(join(dir, "incoming", id, "message.json"), "utf8")) as { nextAttemptAt: number };
    await store.recover(T0);
    expect(await ls("incoming")).toEqual([]);
    expect(await ls("deferred")).toEqual([id]);
    expect(Math.floor((await stat(join(dir, "deferred", id))).mtimeMs)).toBe(record.nextAttemptAt);
  });

  it("get finds a message still in incoming/ as queued; an incoming message whose key names another is removed after the grace period", async () => {
    const { id, key } = await crashedAfterClaim();
    expect((await store.get(id))?.state).toBe("queued");
    await writeFile(join(dir, "keys", key), "20261201T200000000Z-00000000ee\n");
    await store.recover(Date.now() + 3_600_000 + 60_000);
    expect(await ls("incoming")).toEqual([]);
    expect(await ls("queue")).toEqual([]);
  });
});

describe("more of recovery", () => {
  async function deadWith(record: (r: Record<string, unknown>) => Record<string, unknown>, finalDot?: number): Promise<string> {
    const other = new FileStore({ path: dir });
    const { id } = await other.add(newEntry(), bytesOf(MESSAGE));
    await other.join("dead", 1000, T0);
    await other.take("dead", 1, T0 + 10_000_000);
    if (finalDot !== undefined) await writeFile(join(dir, "active", "dead", id, "final-dot"), JSON.stringify({ format: 1, round: finalDot, at: T0, worker: "dead" }));
    const path = join(dir, "active", "dead", id, "message.json");
    await writeFile(path, JSON.stringify(record(JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>)));
    await rm(join(dir, "active", "dead", "lease"));
    return id;
  }

  it("a retry recorded as due exactly now is due: queued again, marked interrupted", async () => {
    const id = await deadWith((r) => ({ ...r, attempts: 1, nextAttemptAt: T0 }));
    expect(await store.recover(T0)).toEqual({ requeued: 1, held: [] });
    expect(await ls("queue")).toEqual([id]);
    expect((await store.get(id))?.interrupted).toBe("before-final-dot");
  });

  it("held after the final dot keeps its marker; a record already held is not reported again", async () => {
    const id = await deadWith((r) => r, 1);
    const { held } = await store.recover(T0);
    expect(held.map((e) => e.id)).toEqual([id]);
    expect(await ls(join("hold", id))).toEqual(["final-dot", "message.eml", "message.json"]);
    await rm(dir, { recursive: true });
    const settled = await deadWith((r) => ({ ...r, state: "held", heldReason: "decided before" }), 1);
    expect(await store.recover(T0)).toEqual({ requeued: 0, held: [] });
    expect(await ls("hold")).toEqual([settled]);
  });

  it("a dead worker's record from a newer format goes back to the queue untouched, reported", async () => {
    const problems: OutboxError[] = [];
    store.onProblem((e) => problems.push(e));
    const id = await deadWith((r) => ({ ...r, format: 2 }));
    expect(await store.recover(T0)).toEqual({ requeued: 0, held: [] });
    expect(await ls("queue")).toEqual([id]);
    expect(problems.map((p) => [p.reason, p.id])).toEqual([["version", id]]);
  });
});

describe("more of take and list", () => {
  it("a newer-format record in deferred/ is reported once, and left there", async () => {
    const problems: OutboxError[] = [];
    store.onProblem((e) => problems.push(e));
    const id = await add({ notBefore: T0 + 1000 });
    const path = join(dir, "deferred", id, "message.json");
    await writeFile(path, (await readFile(path, "utf8")).replace('"format": 1', '"format": 2'));
    const fresh = new FileStore({ path: dir });
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
    await store.join("w1", 60_000, T0);
    const order = (await store.take("w1", 6, T0 + 10)).map((l) => l.entry.id);
    expect(order).toEqual([ids[4], ids[1], ids[2], ids[3], ids[5], ids[0]]);
  });

  it("list: equal enqueue times by id (enqueue order within a millisecond)", async () => {
    const ids = [await add(), await add(), await add()];
    expect((await new FileStore({ path: dir }).list()).map((e) => e.id)).toEqual(ids);
  });

  it("the problems of unreadable bytes name the message", async () => {
    const problems: OutboxError[] = [];
    store.onProblem((e) => problems.push(e));
    const off = store.onProblem(() => {
      throw new Error("an unsubscribed listener was called");
    });
    off();
    const id = await add();
    await rm(join(dir, "queue", id, "message.eml"));
    await store.join("w1", 60_000, T0);
    await store.take("w1", 1, T0);
    const other = await add();
    await writeFile(join(dir, "queue", other, "message.eml"), "short");
    await store.take("w1", 1, T0);
    expect(problems.map((p) => [p.reason, p.id])).toEqual([
      ["corrupt", id],
      ["corrupt", other],
    ]);
  });
});

describe("the rest of the store's answers", () => {
  it("settle refuses 'sending' as a settlement, saying so", async () => {
    await add();
    await store.join("w1", 1000, T0);
    const [lease] = await store.take("w1", 1, T0);
    const error = await errorOf(store.settle("w1", lease!, settlement(lease!.entry, { state: "sending" as never }), T0));
    expect(error.message).toBe(`The outbox cannot use the spool ${dir}: a settled message is never 'sending'`);
  });

  it("update: not-found names the message; one taken by a worker meanwhile is refused", async () => {
    const missing = "20261201T200000000Z-00000000ff";
    expect((await errorOf(store.update(missing, ["held"], released, T0))).id).toBe(missing);
    const id = await add();
    await store.join("w1", 1000, T0);
    const [lease] = await store.take("w1", 1, T0);
    await store.settle("w1", lease!, settlement(lease!.entry, { state: "held" }), T0);
    store = new FileStore({ path: dir, fs: faulty((call, path) => (call === "rename" && path.endsWith(`hold/${id}`) ? "ENOENT" : undefined)) });
    const taken = await errorOf(store.update(id, ["held"], released, T0));
    expect([taken.reason, taken.message, taken.id]).toEqual(["state", `The message ${id} was taken by a worker meanwhile`, id]);
  });

  it("purge only ever removes key files inside keys/", async () => {
    const hex = "a".repeat(64);
    for (const key of [`../${hex}`, `${hex}/../../outside`]) {
      const id = await add();
      const path = join(dir, "queue", id, "message.json");
      await writeFile(path, JSON.stringify({ ...JSON.parse(await readFile(path, "utf8")), idempotencyKey: key }));
      await writeFile(join(dir, `${hex}`), `${id}\n`);
      await writeFile(join(dir, "outside"), `${id}\n`);
      expect(await store.purge(["queued"])).toBe(1);
      expect((await readdir(dir)).filter((n) => n === hex || n === "outside").sort(), key).toEqual([hex, "outside"].sort());
    }
  });

  it("list of the messages being sent looks only in workers' directories", async () => {
    const id = await add();
    await store.join("w1", 60_000, T0);
    await store.take("w1", 1, T0);
    const { cp } = await import("node:fs/promises");
    await cp(join(dir, "active", "w1", id), join(dir, "active", ".stray", id), { recursive: true });
    expect((await store.list({ state: "sending" })).map((e) => e.id)).toEqual([id]);
  });

  it("get finds a message being returned from a dead worker (in reclaim/) as sending", async () => {
    const id = await add();
    const { rename } = await import("node:fs/promises");
    await mkdir(join(dir, "reclaim", "dead.abc123"), { recursive: true });
    await rename(join(dir, "queue", id), join(dir, "reclaim", "dead.abc123", id));
    expect((await store.get(id))?.state).toBe("sending");
  });

  it("deferred messages of another store keep their priority order", async () => {
    const other = new FileStore({ path: dir });
    const normal = (await other.add(newEntry({ enqueuedAt: T0, notBefore: T0 + 1000 }), bytesOf(MESSAGE))).id;
    const urgent = (await other.add(newEntry({ enqueuedAt: T0 + 1, notBefore: T0 + 1000, priority: -1 }), bytesOf(MESSAGE))).id;
    await store.join("w1", 60_000, T0);
    expect((await store.take("w1", 2, T0 + 1000)).map((l) => l.entry.id)).toEqual([urgent, normal]);
  });

  it("a dead worker's message without its record is quarantined", async () => {
    const other = new FileStore({ path: dir });
    const { id } = await other.add(newEntry(), bytesOf(MESSAGE));
    await other.join("dead", 1000, T0);
    await other.take("dead", 1, T0);
    await rm(join(dir, "active", "dead", id, "message.json"));
    await rm(join(dir, "active", "dead", "lease"));
    const problems: OutboxError[] = [];
    store.onProblem((e) => problems.push(e));
    expect(await store.recover(T0)).toEqual({ requeued: 0, held: [] });
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
    store = new FileStore({ path: dir, fs: counting });
    await add({ idempotencyKey: keyHash("closed") });
    await store.join("w1", 1000, T0);
    const [lease] = await store.take("w1", 1, T0);
    await store.markFinalDot("w1", lease!, 1, T0);
    await store.settle("w1", lease!, settlement(lease!.entry, { state: "sent" }), T0);
    expect(open).toBe(0);
  });

  it("watch: an enqueue by another store wakes the listener through the directory; after unsubscribing, nothing does", async () => {
    await store.open();
    const other = new FileStore({ path: dir });
    const woken: string[] = [];
    const stopEarly = store.watch(() => woken.push("early"));
    stopEarly();
    const stop = store.watch(() => woken.push("watching"));
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
    const stopLater = store.watch(() => later.push("later"));
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
