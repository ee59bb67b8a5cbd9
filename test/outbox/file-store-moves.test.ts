/**
 * The spool's moves between directories, driven through the store's own methods on a
 * temporary directory, fast and without a server or a worker: where an enqueued message
 * lands (queue/ or deferred/, and its modification time), idempotency keys, the size limit
 * at exactly maxMessageSize and one past it, leases (join, renew, take in order, leave),
 * the final-dot marker, each settlement's directory, recovery of an expired lease, and
 * get/list/update/purge/read. The file-system failures, races and crashes are in
 * file-store-faults.test.ts.
 */
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileStore, keyHash } from "../../src/outbox/file-store.js";
import { released, retriedByHand } from "../../src/outbox/outcome.js";
import type { Lease, NewEntry, Settlement } from "../../src/outbox/store.js";
import { OutboxError } from "../../src/errors.js";
import { MESSAGE, HEADER_LENGTH, T0, bytesOf, errorOf, newEntry, settlement, text, useSpool } from "./spool-fixture.js";

const spool = useSpool();
const { add, ls } = spool;

describe("enqueue", () => {
  it("a message due now goes to queue/ with its bytes and record, and wakes the watchers", async () => {
    let woken = 0;
    const stop = spool.store.watch(() => woken++);
    const id = await add();
    stop();
    expect(woken).toBeGreaterThanOrEqual(1);
    expect(await ls("queue")).toEqual([id]);
    expect(await ls(join("queue", id))).toEqual(["message.eml", "message.json"]);
    expect(await readFile(join(spool.dir, "queue", id, "message.eml"), "utf8")).toBe(MESSAGE);
    expect(await ls("incoming")).toEqual([]);
    expect(await spool.store.get(id)).toMatchObject({ id, state: "queued", attempts: 0, size: MESSAGE.length, pending: ["bob@example.org", "cy@example.org"], updatedAt: T0 });
  });

  it("a message not due yet goes to deferred/, its modification time the time it is due, and wakes nobody", async () => {
    let woken = 0;
    const stop = spool.store.watch(() => woken++);
    const id = await add({ notBefore: T0 + 60_000 });
    expect(woken).toBe(0);
    stop();
    expect(await ls("queue")).toEqual([]);
    expect(await ls("deferred")).toEqual([id]);
    expect(Math.floor((await stat(join(spool.dir, "deferred", id))).mtimeMs)).toBe(T0 + 60_000);
    expect((await spool.store.get(id))?.nextAttemptAt).toBe(T0 + 60_000);
    // notBefore in the past: due at once.
    const now = await add({ notBefore: T0 - 1 });
    expect(await ls("queue")).toEqual([now]);
  });

  it("an idempotency key: the second enqueue keeps nothing and gives the first id; a purged message's key is free again", async () => {
    const key = keyHash("order-1");
    const first = await add({ idempotencyKey: key });
    expect(await readFile(join(spool.dir, "keys", key), "utf8")).toBe(`${first}\n`);
    expect(await spool.store.add(newEntry({ idempotencyKey: key }), bytesOf(MESSAGE))).toEqual({ id: first, duplicate: true });
    expect(await ls("queue")).toEqual([first]);
    expect((await ls("keys")).filter((n) => !n.startsWith("."))).toEqual([key]);
    expect(await ls("incoming")).toEqual([]);
    expect(await spool.store.purge(["queued"])).toBe(1);
    expect(await ls("keys")).toEqual([]);
    const again = await add({ idempotencyKey: key });
    expect(again).not.toBe(first);
  });

  it("a key naming a message no longer kept, or holding no id, is stale: removed, and the enqueue goes ahead", async () => {
    const key = keyHash("order-2");
    await mkdir(join(spool.dir, "keys"), { recursive: true });
    await spool.store.open();
    await writeFile(join(spool.dir, "keys", key), "20261201T200000000Z-0000000000\n");
    const id = await add({ idempotencyKey: key });
    expect(await readFile(join(spool.dir, "keys", key), "utf8")).toBe(`${id}\n`);
    const other = keyHash("order-3");
    await writeFile(join(spool.dir, "keys", other), "not an id\n");
    const second = await add({ idempotencyKey: other });
    expect(await readFile(join(spool.dir, "keys", other), "utf8")).toBe(`${second}\n`);
  });

  it("the size limit: exactly maxMessageSize is kept, one octet more is refused and leaves nothing", async () => {
    spool.store = new FileStore({ path: spool.dir, maxMessageSize: MESSAGE.length });
    const id = await add();
    expect((await spool.store.get(id))?.size).toBe(MESSAGE.length);
    const error = await errorOf(spool.store.add(newEntry(), bytesOf(`${MESSAGE}x`)));
    expect(error.reason).toBe("too-large");
    expect(error.message).toBe(`The message is larger than the spool's maxMessageSize of ${MESSAGE.length} octets`);
    expect(await ls("incoming")).toEqual([]);
    expect(await ls("queue")).toEqual([id]);
  });
});

describe("workers and leases", () => {
  it("join writes the lease; renew extends it; a name that is not a worker's is refused", async () => {
    await spool.store.join("w1", 1000, T0);
    expect(JSON.parse(await readFile(join(spool.dir, "active", "w1", "lease"), "utf8"))).toEqual({ format: 1, worker: "w1", host: "this-host", pid: process.pid, until: T0 + 1000 });
    await spool.store.renew("w1", T0 + 500);
    expect(JSON.parse(await readFile(join(spool.dir, "active", "w1", "lease"), "utf8")).until).toBe(T0 + 1500);
    expect(await ls(join("active", "w1"))).toEqual(["lease"]);
    for (const bad of ["", ".hidden", "a/b", "x".repeat(122)]) {
      const error = await errorOf(spool.store.join(bad, 1000, T0));
      expect(error.reason).toBe("unusable");
      expect(error.message).toBe(`A worker name must be letters, digits, ".", "_" or "-", not ${JSON.stringify(bad)}`);
    }
    await spool.store.join("x".repeat(121), 1000, T0);
    const unknown = await errorOf(spool.store.renew("w2", T0));
    expect([unknown.reason, unknown.message]).toEqual(["lease-lost", "The worker w2 has not joined this spool"]);
  });

  it("renew after the lease was taken back: lease-lost", async () => {
    await spool.store.join("w1", 1000, T0);
    await rm(join(spool.dir, "active", "w1"), { recursive: true });
    const error = await errorOf(spool.store.renew("w1", T0));
    expect([error.reason, error.message]).toEqual(["lease-lost", "The worker w1's lease was taken back (it was presumed dead); it must not send or record it"]);
  });

  it("leave removes the worker's directory, or only its lease when it still holds a message", async () => {
    await spool.store.join("w1", 1000, T0);
    await spool.store.leave("w1");
    expect(await ls("active")).toEqual([]);
    await spool.store.leave("w1");
    await add();
    await spool.store.join("w2", 1000, T0);
    const [lease] = await spool.store.take("w2", 1, T0);
    await spool.store.leave("w2");
    expect(await ls(join("active", "w2"))).toEqual([lease!.entry.id]);
    await expect(spool.store.renew("w2", T0)).rejects.toThrow("The worker w2 has not joined this spool");
  });

  it("take: lower priority numbers first, then the oldest; at most `limit`; none for a limit of 0", async () => {
    const late = await add({ enqueuedAt: T0 + 2000 });
    const early = await add({ enqueuedAt: T0 + 1000 });
    const urgent = await add({ enqueuedAt: T0 + 3000, priority: -1 });
    const low = await add({ enqueuedAt: T0, priority: 5 });
    await spool.store.join("w1", 60_000, T0);
    expect(await spool.store.take("w1", 0, T0 + 5000)).toEqual([]);
    const two = await spool.store.take("w1", 2, T0 + 5000);
    expect(two.map((l) => l.entry.id)).toEqual([urgent, early]);
    expect(await ls(join("active", "w1"))).toEqual([early, urgent, "lease"].sort());
    const rest = await spool.store.take("w1", 5, T0 + 5000);
    expect(rest.map((l) => l.entry.id)).toEqual([late, low]);
    expect(await spool.store.take("w1", 5, T0 + 5000)).toEqual([]);
    expect((await spool.store.list({ state: "sending" })).map((e) => e.id)).toEqual([low, early, late, urgent]);
  });

  it("the priority order holds for messages another store enqueued (read from their records)", async () => {
    const normal = await add({ enqueuedAt: T0 });
    const urgent = await add({ enqueuedAt: T0 + 1000, priority: -2 });
    const fresh = new FileStore({ path: spool.dir });
    await fresh.join("w1", 60_000, T0);
    expect((await fresh.take("w1", 2, T0 + 5000)).map((l) => l.entry.id)).toEqual([urgent, normal]);
  });

  it("a deferred message is taken once it is due, not a millisecond before", async () => {
    const id = await add({ notBefore: T0 + 60_000 });
    const queued = await add({ enqueuedAt: T0 + 1 });
    await spool.store.join("w1", 60_000, T0);
    expect((await spool.store.take("w1", 5, T0 + 59_999)).map((l) => l.entry.id)).toEqual([queued]);
    const [lease] = await spool.store.take("w1", 5, T0 + 60_000);
    expect(lease?.entry.id).toBe(id);
    expect(await ls("deferred")).toEqual([]);
  });

  it("a lease carries the record, the header block, and the body, read again on each call", async () => {
    const id = await add({ route: "relay", priority: 3 });
    await spool.store.join("w1", 60_000, T0);
    const [lease] = await spool.store.take("w1", 1, T0);
    expect(lease!.entry).toMatchObject({ id, route: "relay", priority: 3, size: MESSAGE.length, headerLength: HEADER_LENGTH });
    expect(lease!.header.toString()).toBe(MESSAGE.slice(0, HEADER_LENGTH));
    expect(await text(lease!.body())).toBe("body line\r\n");
    expect(await text(lease!.body())).toBe("body line\r\n");
  });

  it("take after the worker's directory was taken back: lease-lost", async () => {
    await add();
    await spool.store.join("w1", 60_000, T0);
    await rm(join(spool.dir, "active", "w1"), { recursive: true });
    const error = await errorOf(spool.store.take("w1", 1, T0));
    expect(error.reason).toBe("lease-lost");
  });
});

describe("unreadable messages", () => {
  async function queueWith(record: string | undefined, bytes: string | undefined): Promise<string> {
    await spool.store.open();
    const id = "20261201T200000000Z-00000000aa";
    await mkdir(join(spool.dir, "queue", id));
    if (record !== undefined) await writeFile(join(spool.dir, "queue", id, "message.json"), record);
    if (bytes !== undefined) await writeFile(join(spool.dir, "queue", id, "message.eml"), bytes);
    return id;
  }

  async function goodRecord(): Promise<string> {
    const id = await add();
    const record = await readFile(join(spool.dir, "queue", id, "message.json"), "utf8");
    await rm(join(spool.dir, "queue", id), { recursive: true });
    return record.replaceAll(id, "20261201T200000000Z-00000000aa");
  }

  it("a record that is not JSON is quarantined in corrupt/ with its reason, reported, and not leased", async () => {
    const problems: OutboxError[] = [];
    spool.store.onProblem((e) => problems.push(e));
    const id = await queueWith("{", MESSAGE);
    await spool.store.join("w1", 60_000, T0);
    expect(await spool.store.take("w1", 1, T0)).toEqual([]);
    const [quarantined] = await ls("corrupt");
    expect(quarantined).toMatch(new RegExp(`^${id}\\.[0-9a-f]{6}$`));
    expect(await readFile(join(spool.dir, "corrupt", quarantined!, "reason"), "utf8")).toMatch(/the record is not valid JSON .*; it may be truncated\n$/);
    expect(problems.map((p) => [p.reason, p.id])).toEqual([["corrupt", id]]);
    expect(await ls("queue")).toEqual([]);
  });

  it("bytes missing or of another size than the record says: quarantined, saying which", async () => {
    const record = await goodRecord();
    const missing = await queueWith(record, undefined);
    await spool.store.join("w1", 60_000, T0);
    expect(await spool.store.take("w1", 1, T0)).toEqual([]);
    const [first] = await ls("corrupt");
    expect(await readFile(join(spool.dir, "corrupt", first!, "reason"), "utf8")).toBe(`${join(spool.dir, "active", "w1", missing)}: message.eml is missing\n`);
    await rm(join(spool.dir, "corrupt"), { recursive: true });
    await mkdir(join(spool.dir, "corrupt"));
    await queueWith(record, MESSAGE.slice(0, 10));
    expect(await spool.store.take("w1", 1, T0)).toEqual([]);
    const [second] = await ls("corrupt");
    expect(await readFile(join(spool.dir, "corrupt", second!, "reason"), "utf8")).toBe(`${join(spool.dir, "active", "w1", missing)}: message.eml has 10 octets, its record says ${MESSAGE.length} (truncated?)\n`);
  });

  it("a record from a newer format goes back where it was, reported once, and is skipped after", async () => {
    const problems: OutboxError[] = [];
    spool.store.onProblem((e) => problems.push(e));
    const record = (await goodRecord()).replace('"format": 1', '"format": 2');
    const id = await queueWith(record, MESSAGE);
    await spool.store.join("w1", 60_000, T0);
    expect(await spool.store.take("w1", 1, T0)).toEqual([]);
    expect(await spool.store.take("w1", 1, T0)).toEqual([]);
    expect(await ls("queue")).toEqual([id]);
    expect(problems.map((p) => p.reason)).toEqual(["version"]);
  });
});

describe("unreadable files other stores or crashes leave", () => {
  it("a lease file that is not JSON counts as no lease: taken back", async () => {
    await spool.store.open();
    const id = "20261201T200000000Z-00000000bb";
    await mkdir(join(spool.dir, "active", "crashed", id), { recursive: true });
    await writeFile(join(spool.dir, "active", "crashed", "lease"), '{"format": 1, "until": 9');
    const record = JSON.parse(await readFile(join(spool.dir, "queue", await add(), "message.json"), "utf8")) as Record<string, unknown>;
    await spool.store.purge(["queued"]);
    await writeFile(join(spool.dir, "active", "crashed", id, "message.json"), JSON.stringify({ ...record, id }));
    await writeFile(join(spool.dir, "active", "crashed", id, "message.eml"), MESSAGE);
    expect(await spool.store.recover(T0)).toEqual({ requeued: 1, held: [] });
    expect(await ls("queue")).toEqual([id]);
  });

  it("an enqueue that crashed while writing its record: the half-written record is removed after the grace period", async () => {
    await spool.store.open();
    const id = "20261201T200000000Z-00000000cc";
    await mkdir(join(spool.dir, "incoming", id));
    await writeFile(join(spool.dir, "incoming", id, "message.eml"), MESSAGE);
    await writeFile(join(spool.dir, "incoming", id, "message.json"), '{"format": 1, "id": "2026');
    await spool.store.recover(T0 + 3_600_000);
    expect(await ls("incoming")).toEqual([id]);
    await spool.store.recover(T0 + 3_600_001);
    expect(await ls("incoming")).toEqual([]);
  });

  it("purge removes a message whose record cannot be read", async () => {
    await spool.store.open();
    const id = "20261201T200000000Z-00000000dd";
    await mkdir(join(spool.dir, "failed", id));
    await writeFile(join(spool.dir, "failed", id, "message.json"), "{");
    expect(await spool.store.purge(["failed"])).toBe(1);
    expect(await ls("failed")).toEqual([]);
  });
});

describe("the final dot and settling", () => {
  async function leased(changes: Partial<NewEntry> = {}): Promise<Lease> {
    await add(changes);
    await spool.store.join("w1", 60_000, T0);
    const [lease] = await spool.store.take("w1", 1, T0);
    return lease!;
  }

  it("markFinalDot writes the round, the time and the worker beside the message", async () => {
    const lease = await leased();
    await spool.store.markFinalDot("w1", lease, 1, T0 + 10);
    expect(JSON.parse(await readFile(join(spool.dir, "active", "w1", lease.entry.id, "final-dot"), "utf8"))).toEqual({ format: 1, round: 1, at: T0 + 10, worker: "w1" });
  });

  it("markFinalDot and settle after the lease was taken back: lease-lost, naming the message", async () => {
    const lease = await leased();
    await rm(join(spool.dir, "active", "w1"), { recursive: true });
    const expected = `The worker w1's lease on ${lease.entry.id} was taken back (it was presumed dead); it must not send or record it`;
    const dot = await errorOf(spool.store.markFinalDot("w1", lease, 1, T0));
    expect([dot.reason, dot.message, dot.id]).toEqual(["lease-lost", expected, lease.entry.id]);
    const settled = await errorOf(spool.store.settle("w1", lease, settlement(lease.entry, { state: "sent" }), T0));
    expect([settled.reason, settled.message]).toEqual(["lease-lost", expected]);
  });

  it("sent: into sent/ without its bytes (kept with keepSent), the record updated", async () => {
    const lease = await leased();
    const entry = await spool.store.settle("w1", lease, settlement(lease.entry, { state: "sent", attempts: 1, pending: [], accepted: ["bob@example.org", "cy@example.org"] }), T0 + 20);
    expect(entry).toMatchObject({ id: lease.entry.id, state: "sent", attempts: 1, updatedAt: T0 + 20 });
    expect(await ls(join("sent", lease.entry.id))).toEqual(["message.json"]);
    expect(await spool.store.get(lease.entry.id)).toMatchObject({ state: "sent", attempts: 1, accepted: ["bob@example.org", "cy@example.org"], updatedAt: T0 + 20 });
    expect(await spool.store.read(lease.entry.id)).toBeUndefined();
    expect(await ls(join("active", "w1"))).toEqual(["lease"]);

    spool.store = new FileStore({ path: spool.dir, keepSent: true });
    const kept = await leased();
    await spool.store.settle("w1", kept, settlement(kept.entry, { state: "sent" }), T0);
    expect(await ls(join("sent", kept.entry.id))).toEqual(["message.eml", "message.json"]);
    expect(await text((await spool.store.read(kept.entry.id))!)).toBe(MESSAGE);
  });

  it.each([
    ["partial", "partial"],
    ["failed", "failed"],
    ["dead", "dead"],
    ["held", "hold"],
  ] as const)("%s: into %s/, bytes kept", async (state, directory) => {
    const lease = await leased();
    await spool.store.markFinalDot("w1", lease, 1, T0);
    await spool.store.settle("w1", lease, settlement(lease.entry, { state }), T0 + 1);
    expect(await ls(directory)).toEqual([lease.entry.id]);
    expect(await ls(join(directory, lease.entry.id))).toEqual(["final-dot", "message.eml", "message.json"]);
    expect((await spool.store.get(lease.entry.id))?.state).toBe(state);
  });

  it("queued again: later into deferred/ (its time as modification time), now into queue/; the final-dot marker removed", async () => {
    const lease = await leased();
    await spool.store.markFinalDot("w1", lease, 1, T0);
    let woken = 0;
    const stop = spool.store.watch(() => woken++);
    await spool.store.settle("w1", lease, settlement(lease.entry, { state: "queued", attempts: 1, nextAttemptAt: T0 + 120_000 }), T0 + 1);
    expect(woken).toBe(0);
    expect(await ls("deferred")).toEqual([lease.entry.id]);
    expect(await ls(join("deferred", lease.entry.id))).toEqual(["message.eml", "message.json"]);
    expect(Math.floor((await stat(join(spool.dir, "deferred", lease.entry.id))).mtimeMs)).toBe(T0 + 120_000);
    const [again] = await spool.store.take("w1", 1, T0 + 120_000);
    await spool.store.settle("w1", again!, settlement(again!.entry, { state: "queued", attempts: 2, nextAttemptAt: T0 + 120_000 }), T0 + 120_000);
    stop();
    expect(woken).toBeGreaterThanOrEqual(1);
    expect(await ls("queue")).toEqual([lease.entry.id]);
  });
});

describe("recovery of an expired lease", () => {
  async function deadWorker(lease: Record<string, unknown> | undefined, ...messages: { changes?: Partial<NewEntry>; finalDot?: number; settled?: Partial<Settlement> }[]): Promise<string[]> {
    const other = new FileStore({ path: spool.dir, host: "this-host" });
    const ids: string[] = [];
    for (const m of messages) ids.push((await other.add(newEntry(m.changes), bytesOf(MESSAGE))).id);
    await other.join("dead", 1000, T0);
    const leases = await other.take("dead", messages.length, T0 + 10_000_000);
    for (const [i, m] of messages.entries()) {
      const l = leases.find((x) => x.entry.id === ids[i])!;
      if (m.finalDot !== undefined) await other.markFinalDot("dead", l, m.finalDot, T0);
      if (m.settled !== undefined) await writeFile(join(spool.dir, "active", "dead", l.entry.id, "message.json"), JSON.stringify({ ...JSON.parse(await readFile(join(spool.dir, "active", "dead", l.entry.id, "message.json"), "utf8")), ...m.settled }));
    }
    if (lease === undefined) await rm(join(spool.dir, "active", "dead", "lease"));
    else await writeFile(join(spool.dir, "active", "dead", "lease"), JSON.stringify({ format: 1, worker: "dead", host: "other-host", pid: 1, ...lease }));
    return ids;
  }

  it("a lease valid until now is left alone; one that ended before now is taken back", async () => {
    await deadWorker({ until: T0 + 5000 }, {});
    expect(await spool.store.recover(T0 + 5000)).toEqual({ requeued: 0, held: [] });
    expect(await ls("active")).toEqual(["dead"]);
    expect(await spool.store.recover(T0 + 5001)).toEqual({ requeued: 1, held: [] });
    expect(await ls("active")).toEqual([]);
    expect(await ls("reclaim")).toEqual([]);
  });

  it("no lease, or one without a time: taken back at once", async () => {
    await deadWorker(undefined, {});
    expect((await spool.store.recover(T0)).requeued).toBe(1);
    await rm(spool.dir, { recursive: true });
    await deadWorker({ until: "later" }, {});
    expect((await spool.store.recover(T0)).requeued).toBe(1);
  });

  it("before the final dot: queued again, marked interrupted; after it: held, and reported", async () => {
    const [before, after] = await deadWorker({ until: T0 }, {}, { finalDot: 1 });
    const recovered = await spool.store.recover(T0 + 1);
    expect(recovered.requeued).toBe(1);
    expect(recovered.held.map((e) => [e.id, e.state, e.attempts])).toEqual([[after, "held", 1]]);
    expect(await ls("queue")).toEqual([before]);
    expect(await ls("hold")).toEqual([after]);
    expect(await spool.store.get(before!)).toMatchObject({ state: "queued", interrupted: "before-final-dot", updatedAt: T0 + 1 });
    expect(await ls(join("queue", before!))).toEqual(["message.eml", "message.json"]);
    expect((await spool.store.get(after!))?.heldReason).toMatch(/./);
  });

  it("a final-dot marker of a round already counted, a retry already recorded, a finished record: each where its record says", async () => {
    const [counted, retry, finished] = await deadWorker(
      { until: T0 },
      { finalDot: 1, settled: { attempts: 1 } },
      { settled: { attempts: 1, nextAttemptAt: T0 + 60_000 } },
      { settled: { state: "failed", attempts: 1 } },
    );
    // Both queued ones count as returned, whether due now or at their recorded retry.
    const recovered = await spool.store.recover(T0 + 1);
    expect(recovered).toEqual({ requeued: 2, held: [] });
    expect(await ls("queue")).toEqual([counted]);
    expect(await ls(join("queue", counted!))).toEqual(["message.eml", "message.json"]);
    expect(await ls("deferred")).toEqual([retry]);
    expect(Math.floor((await stat(join(spool.dir, "deferred", retry!))).mtimeMs)).toBe(T0 + 60_000);
    expect((await spool.store.get(retry!))?.interrupted).toBeUndefined();
    expect(await ls("failed")).toEqual([finished]);
  });

  it("this store's own workers and names that are not workers are left alone", async () => {
    await spool.store.join("mine", 1, T0);
    await mkdir(join(spool.dir, "active", ".not-a-worker"));
    expect(await spool.store.recover(T0 + 10_000)).toEqual({ requeued: 0, held: [] });
    expect(await ls("active")).toEqual([".not-a-worker", "mine"]);
  });

  it("an unreadable record of a dead worker is quarantined", async () => {
    const [id] = await deadWorker({ until: T0 }, {});
    await writeFile(join(spool.dir, "active", "dead", id!, "message.json"), "{");
    expect(await spool.store.recover(T0 + 1)).toEqual({ requeued: 0, held: [] });
    expect((await ls("corrupt"))[0]).toMatch(new RegExp(`^${id}\\.`));
  });
});

describe("reading and managing", () => {
  it("get and read: undefined for an unknown id or one that is not an id", async () => {
    const id = await add();
    expect(await spool.store.get("nope")).toBeUndefined();
    expect(await spool.store.get(5 as never)).toBeUndefined();
    expect(await spool.store.get("20261201T200000000Z-00000000ff")).toBeUndefined();
    expect(await spool.store.read("nope")).toBeUndefined();
    expect(await spool.store.read("20261201T200000000Z-00000000ff")).toBeUndefined();
    expect(await text((await spool.store.read(id))!)).toBe(MESSAGE);
  });

  it("list: every state oldest first, one state, or at most `limit`", async () => {
    const second = await add({ enqueuedAt: T0 + 2000 });
    const first = await add({ enqueuedAt: T0 + 1000 });
    const later = await add({ enqueuedAt: T0 + 3000, notBefore: T0 + 600_000 });
    await spool.store.join("w1", 60_000, T0);
    const [lease] = await spool.store.take("w1", 1, T0 + 5000);
    await spool.store.settle("w1", lease!, settlement(lease!.entry, { state: "failed" }), T0 + 5000);
    expect((await spool.store.list()).map((e) => [e.id, e.state])).toEqual([
      [first, "failed"],
      [second, "queued"],
      [later, "queued"],
    ]);
    expect((await spool.store.list({ state: "queued" })).map((e) => e.id)).toEqual([second, later]);
    expect((await spool.store.list({ limit: 1 })).map((e) => e.id)).toEqual([first]);
    expect(await spool.store.list({ state: "held" })).toEqual([]);
  });

  it("update: releases a held message into the queue; refuses one in another state, one being sent, and an unknown one", async () => {
    await add();
    await spool.store.join("w1", 60_000, T0);
    const [lease] = await spool.store.take("w1", 1, T0);
    const id = lease!.entry.id;
    const sending = await errorOf(spool.store.update(id, ["held", "sending"], released, T0));
    expect([sending.reason, sending.message]).toEqual(["state", `The message ${id} is sending; this needs it held or sending`]);
    await spool.store.settle("w1", lease!, settlement(lease!.entry, { state: "held", heldReason: "unknown outcome" }), T0);
    const wrong = await errorOf(spool.store.update(id, ["failed", "dead"], retriedByHand, T0));
    expect([wrong.reason, wrong.message, wrong.id]).toEqual(["state", `The message ${id} is held; this needs it failed or dead`, id]);
    const entry = await spool.store.update(id, ["held"], released, T0 + 50);
    expect(entry).toMatchObject({ id, state: "queued", heldReason: undefined, updatedAt: T0 + 50 });
    expect(await ls("queue")).toEqual([id]);
    expect(await ls("hold")).toEqual([]);
    expect(await ls("active")).toEqual(["w1"]);
    for (const missing of ["20261201T200000000Z-00000000ff", "nope"]) {
      const error = await errorOf(spool.store.update(missing, ["held"], released, T0));
      expect([error.reason, error.message]).toEqual(["not-found", `No message ${missing} in the outbox ${spool.dir}`]);
    }
  });

  it("update: a retry of a failed message goes to queue/ with a fresh count", async () => {
    const id = await add();
    await spool.store.join("w1", 60_000, T0);
    const [lease] = await spool.store.take("w1", 1, T0);
    await spool.store.settle("w1", lease!, settlement(lease!.entry, { state: "failed", attempts: 3, accepted: ["bob@example.org"] }), T0);
    const entry = await spool.store.update(id, ["failed"], retriedByHand, T0 + 1);
    expect(entry).toMatchObject({ state: "queued", attempts: 0, pending: ["cy@example.org"] });
    expect(await text((await spool.store.read(id))!)).toBe(MESSAGE);
  });

  it("purge: the messages in the states named, with their keys; never those being sent", async () => {
    const keyed = keyHash("k");
    const a = await add({ idempotencyKey: keyed });
    await add({ notBefore: T0 + 60_000 });
    await spool.store.join("w1", 60_000, T0);
    const [lease] = await spool.store.take("w1", 1, T0);
    expect(lease!.entry.id).toBe(a);
    await spool.store.settle("w1", lease!, settlement(lease!.entry, { state: "dead" }), T0);
    // Refused before anything is deleted: the dead message named first is still there.
    const error = await errorOf(spool.store.purge(["dead", "sending"]));
    expect([error.reason, error.message]).toEqual(["state", "Messages being sent cannot be purged; stop the workers first"]);
    expect(await ls("dead")).toEqual([a]);
    expect(await spool.store.purge(["failed"])).toBe(0);
    expect(await ls("keys")).toEqual([keyed]);
    expect(await spool.store.purge(["dead"])).toBe(1);
    expect(await ls("dead")).toEqual([]);
    expect(await ls("keys")).toEqual([]);
    expect(await spool.store.purge(["queued", "held"])).toBe(1);
    expect(await ls("deferred")).toEqual([]);
  });

  it("purge leaves a key that now names another message", async () => {
    const key = keyHash("shared");
    const id = await add({ idempotencyKey: key });
    await writeFile(join(spool.dir, "keys", key), "20261201T200000000Z-00000000ee\n");
    expect(await spool.store.purge(["queued"])).toBe(1);
    expect(await ls("queue")).not.toContain(id);
    expect(await ls("keys")).toEqual([key]);
  });
});
