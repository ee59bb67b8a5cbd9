/**
 * The embedded outbox store: a spool directory laid out like Postfix's queue, one
 * directory per message named by its id, moved between directories (atomic renames) as
 * its state changes, so that `ls` tells what is where:
 *
 *   VERSION              "missive-outbox 1": the layout's version
 *   incoming/ID/         being written; renamed into queue/ (or deferred/) once complete
 *   queue/ID/            ready to send
 *   deferred/ID/         waiting: the directory's modification time is its next attempt
 *   active/WORKER/       one per running worker: its `lease` and the messages it holds
 *   active/WORKER/ID/    being sent; `final-dot` appears when it entered its final-dot phase
 *   hold/ID/             outcome unknown: a person decides (missive outbox release ID)
 *   sent/ partial/ failed/ dead/    finished (a sent message keeps its record, not its bytes)
 *   corrupt/ID/          could not be read: quarantined with a `reason`, never retried
 *   keys/HASH            idempotency keys (SHA-256), each holding the id it enqueued
 *   reclaim/             leases of dead workers while they are returned
 *
 * Each message directory holds `message.eml` (the bytes as they will be sent: a file any
 * mail client or `missive preview SPOOL` opens) and `message.json` (envelope, options,
 * state, attempts, last error and report; a format version in it).
 *
 * Crash safety: a message is durable before `add` resolves (files fsynced, directory
 * fsynced, renamed into queue/, queue/ fsynced). A worker claims a message by renaming it
 * into its own active/WORKER/ directory, which only one rename can do. Before the final
 * dot it writes `final-dot` durably there; a worker whose lease expired (its process is
 * gone, or it stopped renewing) has its whole directory renamed into reclaim/ by whoever
 * notices, so none of its later writes lands (they fail: "lease-lost"), and each of its
 * messages goes back to the queue, or to hold/ when `final-dot` says its outcome is unknown.
 */
import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { OutboxError } from "../errors.js";
import { spoolPath } from "./config.js";
import { heldAfterInterruption, initialProgress } from "./outcome.js";
import { decodeEntry, encodeEntry } from "./record.js";
import { errno, nodeSpoolFs, writeDurably, writeStream, type SpoolFileSystem } from "./spool-fs.js";
import { FINISHED_STATES, type Lease, type ListFilter, type NewEntry, type OutboxEntry, type OutboxState, type OutboxStore, type Recovered, type Settlement } from "./store.js";

export interface FileStoreOptions {
  /** The spool directory; created (with its layout) when missing. */
  readonly path: string;
  /** Keep the bytes of sent messages (default: only their record stays once sent). */
  readonly keepSent?: boolean | undefined;
  /** The largest message accepted, in octets. Default: no limit. */
  readonly maxMessageSize?: number | undefined;
  /** The file-system calls (tests record them). Default: node:fs. */
  readonly fs?: SpoolFileSystem | undefined;
  /** This machine's name in leases (a lease of a dead process on this machine ends at once). Default os.hostname(). */
  readonly host?: string | undefined;
}

const LAYOUT = "missive-outbox 1";
const DIRECTORIES = ["incoming", "queue", "deferred", "active", "hold", "sent", "partial", "failed", "dead", "corrupt", "keys", "reclaim"] as const;
/** Where a message in each state lives ("queued": queue/ or deferred/; "sending": active/WORKER/). */
const STATE_DIRECTORY: Record<Exclude<OutboxState, "queued" | "sending">, string> = { held: "hold", sent: "sent", partial: "partial", failed: "failed", dead: "dead" };
const ID = /^\d{8}T\d{9}Z-[0-9a-f]{10}$/;
const WORKER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$/;
const RECORD = "message.json";
const BYTES = "message.eml";
const MARKER = "final-dot";
const LEASE = "lease";
/** An incoming message that never committed is removed after this long (its enqueue failed or its process died). */
const INCOMING_GRACE_MS = 3_600_000;
/** How long a worker's folder may stay without a lease or messages before recovery clears it. */
const JOIN_GRACE_MS = 3_600_000;
const READ_CHUNK = 64 * 1024;

interface Location {
  readonly dir: string;
  readonly state: OutboxState;
}

interface LeaseRecord {
  readonly format: number;
  readonly worker: string;
  readonly host: string;
  readonly pid: number;
  readonly until: number;
}

export class FileStore implements OutboxStore {
  readonly path: string;
  readonly keepSent: boolean;
  readonly maxMessageSize: number | undefined;
  readonly #fs: SpoolFileSystem;
  readonly #host: string;
  /** Workers joined through this object: their leases and the lease length. */
  readonly #workers = new Map<string, number>();
  /** Priorities of the messages seen in queue/ (they never change). */
  readonly #priority = new Map<string, number>();
  /** Messages left alone because their record is from a newer format (reported once). */
  readonly #unreadable = new Set<string>();
  readonly #listeners = new Set<() => void>();
  readonly #problemListeners = new Set<(error: OutboxError) => void>();
  #opened: Promise<void> | undefined;

  constructor(options: FileStoreOptions) {
    if (typeof options?.path !== "string" || options.path === "") throw new OutboxError("unusable", "FileStore needs the spool directory: new FileStore({ path: \"/var/spool/missive\" })");
    this.path = resolve(options.path);
    this.keepSent = options.keepSent ?? false;
    this.maxMessageSize = options.maxMessageSize;
    this.#fs = options.fs ?? nodeSpoolFs;
    this.#host = (options.host ?? hostname()).replace(/[^A-Za-z0-9.-]/g, "-").slice(0, 64) || "host";
  }

  /** A `file:` URL's directory (`file:///var/spool/missive`). */
  static fromUrl(url: string, options: Omit<FileStoreOptions, "path"> = {}): FileStore {
    return new FileStore({ ...options, path: spoolPath(url) });
  }

  toString(): string {
    return `file://${this.path}`;
  }

  open(): Promise<void> {
    this.#opened ??= this.#open().catch((error: unknown) => {
      this.#opened = undefined;
      throw error;
    });
    return this.#opened;
  }

  async #open(): Promise<void> {
    try {
      await this.#fs.mkdir(this.path);
      for (const dir of DIRECTORIES) await this.#fs.mkdir(join(this.path, dir));
    } catch (error) {
      throw this.#unusable(error);
    }
    const version = await this.#fs.readFile(join(this.path, "VERSION")).then(
      (b) => b.toString("utf8").trim(),
      () => undefined,
    );
    if (version === undefined) {
      await writeDurably(this.#fs, this.path, "VERSION", Buffer.from(`${LAYOUT}\n`)).catch((error: unknown) => {
        throw this.#unusable(error);
      });
    } else if (version !== LAYOUT) {
      throw new OutboxError("version", `The spool ${this.path} says "${version}"; this missive knows "${LAYOUT}" (a newer missive made it: upgrade to use it)`);
    }
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }

  /** Reports a problem found with a stored message (a quarantined file, a newer record) to the workers. */
  onProblem(listener: (error: OutboxError) => void): () => void {
    this.#problemListeners.add(listener);
    return () => this.#problemListeners.delete(listener);
  }

  watch(listener: () => void): () => void {
    this.#listeners.add(listener);
    let watcher: { close(): void } | undefined;
    // Other processes' enqueues: a hint only (the worker polls anyway), so a failure to watch is ignored.
    import("node:fs")
      .then(({ watch }) => {
        if (!this.#listeners.has(listener)) return;
        watcher = watch(join(this.path, "queue"), { persistent: false }, () => listener());
        (watcher as unknown as { on(e: string, f: () => void): void }).on("error", () => undefined);
      })
      .catch(() => undefined);
    return () => {
      this.#listeners.delete(listener);
      watcher?.close();
    };
  }

  // --- adding ----------------------------------------------------------------------------

  async add(entry: NewEntry, bytes: AsyncIterable<Uint8Array>): Promise<{ id: string; duplicate: boolean }> {
    await this.open();
    const keyPath = entry.idempotencyKey === undefined ? undefined : join(this.path, "keys", entry.idempotencyKey);
    if (keyPath !== undefined) {
      const known = await this.#keyed(keyPath, entry.enqueuedAt);
      if (known !== undefined) return { id: known, duplicate: true };
    }
    const id = newId(entry.enqueuedAt);
    const incoming = join(this.path, "incoming", id);
    let committed = false;
    try {
      try {
        await this.#fs.mkdir(incoming);
      } catch (error) {
        throw this.#unusable(error);
      }
      const size = await writeStream(this.#fs, join(incoming, BYTES), bytes, this.maxMessageSize, () => new OutboxError("too-large", `The message is larger than the spool's maxMessageSize of ${this.maxMessageSize} octets`)).catch((error: unknown) => {
        throw error instanceof OutboxError || !isFsError(error) ? error : this.#unusable(error);
      });
      const record: OutboxEntry = { ...entry, id, size, ...initialProgress(entry, entry.enqueuedAt) };
      await this.#writeNew(join(incoming, RECORD), encodeEntry(record));
      await this.#fs.syncDirectory(incoming);
      if (keyPath !== undefined) {
        const winner = await this.#claimKey(keyPath, id, entry.enqueuedAt);
        if (winner !== id) return { id: winner, duplicate: true };
      }
      committed = true;
      const target = this.#queueDirectory(record, entry.enqueuedAt);
      try {
        await this.#fs.rename(incoming, join(this.path, target, id));
      } catch (error) {
        // A keyed message may have been rolled forward by a concurrent enqueue of the same key.
        if (!(errno(error) === "ENOENT" && (await this.#locate(id)) !== undefined)) throw this.#unusable(error);
      }
      if (record.nextAttemptAt !== undefined) await this.#fs.setMtime(join(this.path, target, id), record.nextAttemptAt).catch(() => undefined);
      await this.#fs.syncDirectory(join(this.path, target));
      await this.#fs.syncDirectory(join(this.path, "incoming"));
      this.#priority.set(id, entry.priority);
      if (target === "queue") this.#notify();
      return { id, duplicate: false };
    } catch (error) {
      throw error instanceof OutboxError || !isFsError(error) ? error : this.#unusable(error);
    } finally {
      if (!committed) await this.#fs.remove(incoming).catch(() => undefined);
    }
  }

  /**
   * The id an idempotency key enqueued, when that message is still kept (a stale key is
   * removed); a crashed enqueue of it is finished as at `now`, the new enqueue's time.
   */
  async #keyed(keyPath: string, now: number): Promise<string | undefined> {
    const id = await this.#fs.readFile(keyPath).then(
      (b) => b.toString("utf8").trim(),
      () => undefined,
    );
    if (id === undefined) return undefined;
    if (ID.test(id) && (await this.#locate(id, { rollForwardAt: now })) !== undefined) return id;
    await this.#fs.unlink(keyPath).catch(() => undefined);
    return undefined;
  }

  /**
   * Claims an idempotency key for `id` (link(2): one enqueue wins); resolves to the id that
   * holds it. `now` is the enqueue's time (a crashed enqueue of the key is finished as at it).
   */
  async #claimKey(keyPath: string, id: string, now: number): Promise<string> {
    const keys = join(this.path, "keys");
    const temp = join(keys, `.${id}.tmp`);
    await this.#writeNew(temp, Buffer.from(`${id}\n`));
    try {
      for (let tries = 0; ; tries++) {
        try {
          await this.#fs.link(temp, keyPath);
          await this.#fs.syncDirectory(keys);
          return id;
        } catch (error) {
          if (errno(error) !== "EEXIST" || tries > 2) throw this.#unusable(error);
          const other = await this.#keyed(keyPath, now);
          if (other !== undefined) return other;
        }
      }
    } finally {
      await this.#fs.unlink(temp).catch(() => undefined);
    }
  }

  async #writeNew(path: string, bytes: Buffer): Promise<void> {
    const handle = await this.#fs.create(path);
    try {
      await handle.write(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  // --- workers ---------------------------------------------------------------------------

  async join(worker: string, leaseMs: number, now: number): Promise<void> {
    await this.open();
    if (!WORKER.test(worker)) throw new OutboxError("unusable", `A worker name must be letters, digits, ".", "_" or "-", not ${JSON.stringify(worker)}`);
    try {
      await this.#fs.mkdir(join(this.path, "active", worker));
    } catch (error) {
      throw this.#unusable(error);
    }
    this.#workers.set(worker, leaseMs);
    await this.renew(worker, now);
  }

  async renew(worker: string, now: number): Promise<void> {
    const leaseMs = this.#workers.get(worker);
    if (leaseMs === undefined) throw new OutboxError("lease-lost", `The worker ${worker} has not joined this spool`);
    const record: LeaseRecord = { format: 1, worker, host: this.#host, pid: process.pid, until: now + leaseMs };
    const dir = join(this.path, "active", worker);
    const temp = join(dir, `.${LEASE}.tmp`);
    try {
      await this.#fs.unlink(temp).catch(() => undefined);
      await this.#writeNew(temp, Buffer.from(JSON.stringify(record)));
      await this.#fs.rename(temp, join(dir, LEASE));
    } catch (error) {
      if (errno(error) === "ENOENT") throw this.#leaseLost(worker);
      throw this.#unusable(error);
    }
  }

  async leave(worker: string): Promise<void> {
    this.#workers.delete(worker);
    const dir = join(this.path, "active", worker);
    const names = await this.#fs.readdir(dir).catch(() => undefined);
    if (names === undefined) return;
    if (names.some((n) => ID.test(n))) {
      // Messages still here (a lease lost mid-way): an expired lease hands them to the next recovery.
      await this.#fs.unlink(join(dir, LEASE)).catch(() => undefined);
      return;
    }
    await this.#fs.remove(dir).catch(() => undefined);
  }

  async take(worker: string, limit: number, now: number): Promise<Lease[]> {
    if (limit <= 0) return [];
    const active = join(this.path, "active", worker);
    const leases: Lease[] = [];
    for (const candidate of await this.#candidates(now)) {
      if (leases.length >= limit) break;
      const held = join(active, candidate.id);
      try {
        await this.#fs.rename(join(this.path, candidate.from, candidate.id), held);
      } catch (error) {
        if (errno(error) !== "ENOENT") throw this.#unusable(error);
        // Gone from the queue (another worker took it), or our own directory was reclaimed.
        if (!(await this.#exists(active))) throw this.#leaseLost(worker);
        continue;
      }
      const lease = await this.#leaseOf(held, candidate.id, candidate.from);
      if (lease !== undefined) leases.push(lease);
    }
    return leases;
  }

  /** Reads a message just claimed; quarantines it when unreadable, puts it back when from a newer format. */
  async #leaseOf(dir: string, id: string, from: string): Promise<Lease | undefined> {
    let entry: OutboxEntry;
    try {
      entry = decodeEntry(await this.#fs.readFile(join(dir, RECORD)), join(dir, RECORD), id);
      const size = await this.#fs.stat(join(dir, BYTES)).then(
        (s) => s.size,
        () => undefined,
      );
      if (size === undefined) throw new OutboxError("corrupt", `${dir}: ${BYTES} is missing`, { id });
      if (size !== entry.size) throw new OutboxError("corrupt", `${dir}: ${BYTES} has ${size} octets, its record says ${entry.size} (truncated?)`, { id });
    } catch (error) {
      if (error instanceof OutboxError && error.reason === "version") {
        await this.#fs.rename(dir, join(this.path, from, id)).catch(() => undefined);
        this.#unreadable.add(id);
        this.#problem(error);
        return undefined;
      }
      if (!(error instanceof OutboxError) && isFsError(error) && errno(error) !== "ENOENT") throw this.#unusable(error);
      await this.#quarantine(dir, id, error);
      return undefined;
    }
    const header = await this.#fs.readStart(join(dir, BYTES), entry.headerLength);
    const bytes = join(dir, BYTES);
    const fs = this.#fs;
    return { entry, header, body: () => fs.readFrom(bytes, entry.headerLength + 2, READ_CHUNK) };
  }

  /** Due messages, lower priority numbers first, then the longest waiting. */
  async #candidates(now: number): Promise<{ id: string; from: "queue" | "deferred" }[]> {
    const found: { id: string; from: "queue" | "deferred"; due: number; priority: number }[] = [];
    for (const id of await this.#ids("queue")) {
      if (this.#unreadable.has(id)) continue;
      found.push({ id, from: "queue", due: idTime(id), priority: await this.#priorityOf(id) });
    }
    for (const id of await this.#ids("deferred")) {
      if (this.#unreadable.has(id)) continue;
      // Whole milliseconds: utimes' seconds-as-float can land a fraction past the time set.
      const due = await this.#fs.stat(join(this.path, "deferred", id)).then(
        (s) => Math.floor(s.mtimeMs),
        () => undefined,
      );
      if (due === undefined || due > now) continue;
      found.push({ id, from: "deferred", due, priority: await this.#priorityOf(id, "deferred") });
    }
    found.sort((a, b) => a.priority - b.priority || a.due - b.due || (a.id < b.id ? -1 : 1));
    return found;
  }

  async #priorityOf(id: string, dir: "queue" | "deferred" = "queue"): Promise<number> {
    let priority = this.#priority.get(id);
    if (priority === undefined) {
      priority = await this.#fs
        .readFile(join(this.path, dir, id, RECORD))
        .then((b) => {
          const p = (JSON.parse(b.toString("utf8")) as { priority?: unknown }).priority;
          return typeof p === "number" ? p : 0;
        })
        // Unreadable or not JSON: priority 0 here; taking it quarantines it.
        .catch(() => 0);
      this.#priority.set(id, priority);
    }
    return priority;
  }

  async markFinalDot(worker: string, lease: Lease, round: number, now: number): Promise<void> {
    const dir = join(this.path, "active", worker, lease.entry.id);
    try {
      await writeDurably(this.#fs, dir, MARKER, Buffer.from(JSON.stringify({ format: 1, round, at: now, worker })));
    } catch (error) {
      if (errno(error) === "ENOENT") throw this.#leaseLost(worker, lease.entry.id);
      throw this.#unusable(error);
    }
  }

  async settle(worker: string, lease: Lease, settlement: Settlement, now: number): Promise<OutboxEntry> {
    const id = lease.entry.id;
    const dir = join(this.path, "active", worker, id);
    const entry: OutboxEntry = { ...lease.entry, ...settlement, updatedAt: now };
    try {
      // The record is the commit: after a crash before the rename, recovery moves it where it says.
      await writeDurably(this.#fs, dir, RECORD, encodeEntry(entry));
      if (settlement.state === "queued") await this.#fs.unlink(join(dir, MARKER)).catch(() => undefined);
      const target = this.#directoryFor(entry, now);
      await this.#fs.rename(dir, join(this.path, target, id));
      await this.#afterMove(entry, target);
    } catch (error) {
      if (errno(error) === "ENOENT") throw this.#leaseLost(worker, id);
      throw error instanceof OutboxError ? error : this.#unusable(error);
    }
    return entry;
  }

  async #afterMove(entry: OutboxEntry, target: string): Promise<void> {
    const path = join(this.path, target, entry.id);
    if (target === "deferred" && entry.nextAttemptAt !== undefined) await this.#fs.setMtime(path, entry.nextAttemptAt);
    if (entry.state === "sent" && !this.keepSent) await this.#fs.unlink(join(path, BYTES)).catch(() => undefined);
    if (target === "queue") this.#notify();
  }

  /** The directory a message in `entry`'s state goes to. */
  #directoryFor(entry: OutboxEntry, now: number): string {
    if (entry.state === "queued") return this.#queueDirectory(entry, now);
    if (entry.state === "sending") throw new Error("a settled message is never 'sending'");
    return STATE_DIRECTORY[entry.state];
  }

  #queueDirectory(entry: { readonly nextAttemptAt: number | undefined }, now: number): "queue" | "deferred" {
    return entry.nextAttemptAt !== undefined && entry.nextAttemptAt > now ? "deferred" : "queue";
  }

  // --- recovery --------------------------------------------------------------------------

  async recover(now: number): Promise<Recovered> {
    await this.open();
    const active = join(this.path, "active");
    for (const worker of await this.#fs.readdir(active).catch(() => [] as string[])) {
      if (this.#workers.has(worker) || !WORKER.test(worker)) continue;
      if (!(await this.#expired(worker, now))) continue;
      const reclaimed = join(this.path, "reclaim", `${worker}.${randomBytes(3).toString("hex")}`);
      // After this rename none of that worker's writes can land: its paths are gone.
      await this.#fs.rename(join(active, worker), reclaimed).catch(() => undefined);
    }
    let requeued = 0;
    const held: OutboxEntry[] = [];
    const reclaim = join(this.path, "reclaim");
    for (const name of await this.#fs.readdir(reclaim).catch(() => [] as string[])) {
      const dir = join(reclaim, name);
      for (const id of await this.#ids(join("reclaim", name))) {
        const outcome = await this.#return(join(dir, id), id, now);
        if (outcome === "requeued") requeued++;
        else if (outcome !== undefined) held.push(outcome);
      }
      if ((await this.#ids(join("reclaim", name))).length === 0) await this.#fs.remove(dir).catch(() => undefined);
    }
    await this.#cleanIncoming(now);
    return { requeued, held };
  }

  async #expired(worker: string, now: number): Promise<boolean> {
    const dir = join(this.path, "active", worker);
    const lease = await this.#fs
      .readFile(join(dir, LEASE))
      .then((b) => JSON.parse(b.toString("utf8")) as LeaseRecord)
      .catch(() => undefined);
    if (lease === undefined || typeof lease.until !== "number") {
      // No readable lease, but messages: a worker that left with its lease lost, or died
      // before its first lease was written. No messages either: this may be a worker between
      // the mkdir and the first lease of its join (taking the folder then would fail that
      // join), and there is nothing in it to return, so it is only cleared once it is old.
      if ((await this.#ids(join("active", worker))).length > 0) return true;
      const made = await this.#fs.stat(dir).then(
        (s) => s.mtimeMs,
        () => undefined,
      );
      return made !== undefined && now - made > JOIN_GRACE_MS;
    }
    if (lease.until < now) return true;
    return lease.host === this.#host && lease.pid !== process.pid && !processAlive(lease.pid);
  }

  /** One message of a dead worker: where its record says (settled), held (after the final dot), or queued. */
  async #return(dir: string, id: string, now: number): Promise<OutboxEntry | "requeued" | undefined> {
    let entry: OutboxEntry;
    try {
      entry = decodeEntry(await this.#fs.readFile(join(dir, RECORD)), join(dir, RECORD), id);
    } catch (error) {
      if (errno(error) === "ENOENT" && !(await this.#exists(dir))) return undefined; // another recovery took it
      if (error instanceof OutboxError && error.reason === "version") {
        // A newer missive's worker died: its message goes back to the queue untouched, for a newer worker.
        await this.#fs.rename(dir, join(this.path, "queue", id)).catch(() => undefined);
        this.#problem(error);
        return undefined;
      }
      await this.#quarantine(dir, id, error);
      return undefined;
    }
    const round = await this.#markedRound(dir, entry);
    let next: OutboxEntry;
    if ((FINISHED_STATES as readonly string[]).includes(entry.state)) next = entry;
    else if (round !== undefined && round > entry.attempts) next = { ...entry, ...heldAfterInterruption(entry, round), updatedAt: now };
    else if (entry.nextAttemptAt !== undefined && entry.nextAttemptAt > now) next = entry; // a retry already recorded
    else next = { ...entry, state: "queued", interrupted: "before-final-dot", updatedAt: now };
    try {
      if (next !== entry) await writeDurably(this.#fs, dir, RECORD, encodeEntry(next));
      if (next.state === "queued") await this.#fs.unlink(join(dir, MARKER)).catch(() => undefined);
      const target = this.#directoryFor(next, now);
      await this.#fs.rename(dir, join(this.path, target, id));
      await this.#fs.syncDirectory(join(this.path, target));
      await this.#afterMove(next, target);
    } catch (error) {
      if (errno(error) === "ENOENT") return undefined;
      throw this.#unusable(error);
    }
    return next.state === "held" && next !== entry ? next : next.state === "queued" ? "requeued" : undefined;
  }

  /**
   * The round whose final dot a dead worker was about to send, from its marker. The marker is
   * written whole (a rename), so one that cannot be read was damaged afterwards: the dot may
   * have gone, so it counts as the round in progress, and the message is held, never sent twice.
   */
  async #markedRound(dir: string, entry: OutboxEntry): Promise<number | undefined> {
    let bytes: Buffer;
    try {
      bytes = await this.#fs.readFile(join(dir, MARKER));
    } catch {
      return undefined;
    }
    try {
      const round = (JSON.parse(bytes.toString("utf8")) as { round?: unknown } | null)?.round;
      if (typeof round === "number") return round;
    } catch {
      // Damaged: as below.
    }
    return entry.attempts + 1;
  }

  /** Finishes keyed enqueues whose key was claimed (roll forward), removes old ones that never committed. */
  async #cleanIncoming(now: number): Promise<void> {
    for (const id of await this.#ids("incoming")) {
      const dir = join(this.path, "incoming", id);
      // A record half written when its process died is no record: the grace period applies.
      const record = await this.#fs
        .readFile(join(dir, RECORD))
        .then((b) => decodeEntry(b, join(dir, RECORD), id))
        .catch(() => undefined);
      if (record?.idempotencyKey !== undefined) {
        const owner = await this.#fs.readFile(join(this.path, "keys", record.idempotencyKey)).then(
          (b) => b.toString("utf8").trim(),
          () => undefined,
        );
        if (owner === id) {
          await this.#rollForward(id, now);
          continue;
        }
      }
      if (now - idTime(id) > INCOMING_GRACE_MS) await this.#fs.remove(dir).catch(() => undefined);
    }
  }

  /** Moves a committed keyed enqueue from incoming/ to queue/, or deferred/ when it is not due at `now`. */
  async #rollForward(id: string, now: number): Promise<void> {
    const dir = join(this.path, "incoming", id);
    const record = await this.#fs.readFile(join(dir, RECORD)).then(
      (b) => decodeEntry(b, join(dir, RECORD), id),
      () => undefined,
    );
    if (record === undefined) return;
    const target = this.#queueDirectory(record, now);
    await this.#fs.rename(dir, join(this.path, target, id)).catch(() => undefined);
    if (record.nextAttemptAt !== undefined) await this.#fs.setMtime(join(this.path, target, id), record.nextAttemptAt).catch(() => undefined);
    await this.#fs.syncDirectory(join(this.path, target)).catch(() => undefined);
  }

  async #quarantine(dir: string, id: string, error: unknown): Promise<void> {
    const target = join(this.path, "corrupt", `${id}.${randomBytes(3).toString("hex")}`);
    const reason = error instanceof Error ? error.message : String(error);
    try {
      await this.#fs.rename(dir, target);
      await writeDurably(this.#fs, target, "reason", Buffer.from(`${reason}\n`));
      await this.#fs.syncDirectory(join(this.path, "corrupt"));
    } catch (moveError) {
      if (errno(moveError) === "ENOENT") return;
      throw this.#unusable(moveError);
    }
    this.#problem(error instanceof OutboxError ? error : new OutboxError("corrupt", `${dir}: ${reason}`, { id, cause: error }));
  }

  // --- reading and managing --------------------------------------------------------------

  async get(id: string): Promise<OutboxEntry | undefined> {
    await this.open();
    if (typeof id !== "string" || !ID.test(id)) return undefined;
    const where = await this.#locate(id);
    if (where === undefined) return undefined;
    const entry = decodeEntry(await this.#fs.readFile(join(where.dir, RECORD)), join(where.dir, RECORD), id);
    return { ...entry, state: where.state };
  }

  async list(filter: ListFilter = {}): Promise<OutboxEntry[]> {
    await this.open();
    const states: OutboxState[] = filter.state === undefined ? ["queued", "sending", "held", "sent", "partial", "failed", "dead"] : [filter.state];
    const out: OutboxEntry[] = [];
    for (const state of states) {
      for (const dir of await this.#directoriesOf(state)) {
        for (const id of await this.#ids(dir)) {
          const path = join(this.path, dir, id, RECORD);
          const entry = await this.#fs.readFile(path).then(
            (b) => decodeEntry(b, path, id),
            () => undefined,
          );
          if (entry !== undefined) out.push({ ...entry, state });
        }
      }
    }
    out.sort((a, b) => a.enqueuedAt - b.enqueuedAt || (a.id < b.id ? -1 : 1));
    return filter.limit === undefined ? out : out.slice(0, filter.limit);
  }

  async update(id: string, from: readonly OutboxState[], change: (entry: OutboxEntry) => Settlement, now: number): Promise<OutboxEntry> {
    await this.open();
    const where = ID.test(id) ? await this.#locate(id) : undefined;
    if (where === undefined) throw new OutboxError("not-found", `No message ${id} in the outbox ${this.path}`, { id });
    if (!from.includes(where.state) || where.state === "sending") {
      throw new OutboxError("state", `The message ${id} is ${where.state}; this needs it ${from.join(" or ")}`, { id });
    }
    // Taken like a worker takes a message, so that no worker sends it while it changes.
    const worker = `update.${randomBytes(4).toString("hex")}`;
    await this.join(worker, 60_000, now);
    try {
      const held = join(this.path, "active", worker, id);
      try {
        await this.#fs.rename(where.dir, held);
      } catch (error) {
        if (errno(error) === "ENOENT") throw new OutboxError("state", `The message ${id} was taken by a worker meanwhile`, { id });
        throw this.#unusable(error);
      }
      const entry = { ...decodeEntry(await this.#fs.readFile(join(held, RECORD)), join(held, RECORD), id), state: where.state };
      const header = await this.#fs.readStart(join(held, BYTES), entry.headerLength).catch(() => Buffer.alloc(0));
      return await this.settle(worker, { entry, header, body: () => this.#fs.readFrom(join(held, BYTES), entry.headerLength + 2, READ_CHUNK) }, change(entry), now);
    } finally {
      await this.leave(worker);
    }
  }

  async purge(states: readonly OutboxState[]): Promise<number> {
    await this.open();
    let purged = 0;
    // Refused before anything is deleted.
    if (states.includes("sending")) throw new OutboxError("state", "Messages being sent cannot be purged; stop the workers first");
    for (const state of states) {
      for (const dir of await this.#directoriesOf(state)) {
        for (const id of await this.#ids(dir)) {
          const path = join(this.path, dir, id);
          const key = await this.#fs
            .readFile(join(path, RECORD))
            .then((b) => (JSON.parse(b.toString("utf8")) as { idempotencyKey?: unknown }).idempotencyKey)
            .catch(() => undefined);
          await this.#fs.remove(path);
          if (typeof key === "string" && /^[0-9a-f]{64}$/.test(key)) {
            const keyPath = join(this.path, "keys", key);
            const owner = await this.#fs.readFile(keyPath).then(
              (b) => b.toString("utf8").trim(),
              () => undefined,
            );
            if (owner === id) await this.#fs.unlink(keyPath).catch(() => undefined);
          }
          purged++;
        }
      }
    }
    return purged;
  }

  async read(id: string): Promise<AsyncIterable<Uint8Array> | undefined> {
    await this.open();
    const where = ID.test(id) ? await this.#locate(id) : undefined;
    if (where === undefined) return undefined;
    const path = join(where.dir, BYTES);
    if (!(await this.#exists(path))) return undefined;
    return this.#fs.readFrom(path, 0, READ_CHUNK);
  }

  // --- helpers ---------------------------------------------------------------------------

  async #directoriesOf(state: OutboxState): Promise<string[]> {
    if (state === "queued") return ["queue", "deferred"];
    if (state === "sending") return (await this.#fs.readdir(join(this.path, "active")).catch(() => [] as string[])).filter((w) => WORKER.test(w)).map((w) => join("active", w));
    return [STATE_DIRECTORY[state]];
  }

  /**
   * Where message `id` is, with its state; `rollForwardAt` finishes a keyed enqueue found in
   * incoming/. A message moving while the directories are looked at can be missed by one
   * pass (it left one that was not looked at yet for one that was), so a miss is checked twice.
   */
  async #locate(id: string, options: { rollForwardAt?: number } = {}): Promise<Location | undefined> {
    return (await this.#locateOnce(id, options)) ?? (await this.#locateOnce(id, options));
  }

  async #locateOnce(id: string, options: { rollForwardAt?: number }): Promise<Location | undefined> {
    for (const state of ["queued", "held", "sent", "partial", "failed", "dead", "sending"] as const) {
      for (const dir of await this.#directoriesOf(state)) {
        const path = join(this.path, dir, id);
        if (await this.#exists(path)) return { dir: path, state };
      }
    }
    const incoming = join(this.path, "incoming", id);
    if (await this.#exists(join(incoming, RECORD))) {
      // Looked for again only after a roll forward: without one it is still here.
      if (options.rollForwardAt !== undefined) {
        await this.#rollForward(id, options.rollForwardAt);
        return (await this.#locateOnce(id, {})) ?? { dir: incoming, state: "queued" };
      }
      return { dir: incoming, state: "queued" };
    }
    for (const name of await this.#fs.readdir(join(this.path, "reclaim")).catch(() => [] as string[])) {
      const path = join(this.path, "reclaim", name, id);
      if (await this.#exists(path)) return { dir: path, state: "sending" };
    }
    return undefined;
  }

  /** The message ids in a directory of the spool (anything else there is left alone). */
  async #ids(dir: string): Promise<string[]> {
    const names = await this.#fs.readdir(join(this.path, dir)).catch(() => [] as string[]);
    return names.filter((n) => ID.test(n)).sort();
  }

  async #exists(path: string): Promise<boolean> {
    return this.#fs.stat(path).then(
      () => true,
      () => false,
    );
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  #problem(error: OutboxError): void {
    for (const listener of this.#problemListeners) listener(error);
  }

  #leaseLost(worker: string, id?: string): OutboxError {
    return new OutboxError("lease-lost", `The worker ${worker}'s lease${id === undefined ? "" : ` on ${id}`} was taken back (it was presumed dead); it must not send or record it`, { id });
  }

  #unusable(error: unknown): OutboxError {
    if (error instanceof OutboxError) return error;
    const code = errno(error);
    const why =
      code === "EACCES" || code === "EPERM" || code === "EROFS" ? "it is not writable"
      : code === "ENOSPC" ? "the disk is full"
      : code === "ENOTDIR" || code === "EEXIST" ? "a part of the path is a file, not a directory"
      : (error as Error)?.message ?? String(error);
    return new OutboxError("unusable", `The outbox cannot use the spool ${this.path}: ${why}`, { cause: error });
  }
}

let sequence = randomBytes(2).readUInt16BE(0);

/**
 * `20260101T000000123Z-<10 hex>`: sorts by enqueue time, says when, and is unique. The
 * first 4 hex digits count up in this process, so that messages enqueued in the same
 * millisecond sort in the order they were enqueued; the rest are random.
 */
export function newId(now: number): string {
  sequence = (sequence + 1) & 0xffff;
  return `${new Date(now).toISOString().replace(/[-:]/g, "").replace(".", "")}-${sequence.toString(16).padStart(4, "0")}${randomBytes(3).toString("hex")}`;
}

/** The enqueue time an id carries. */
function idTime(id: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(id);
  return m === null ? 0 : Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!);
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errno(error) === "EPERM";
  }
}

function isFsError(error: unknown): boolean {
  return typeof errno(error) === "string";
}

/** SHA-256 of an idempotency key, as the spool names it. */
export function keyHash(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}
