/**
 * `BullMQStore`: the outbox on BullMQ and Redis, so that many worker processes on many
 * machines share one queue with the same states and the same rule for unknown outcomes.
 *
 *   const outbox = new Outbox({ store: new BullMQStore({ connection: { host: "redis" }, queueName: "mail" }) });
 *
 * BullMQ's job model is the index: a message is a job (id = the outbox id) that is waiting
 * or delayed (queued), active (sending), completed (sent, partial) or failed (failed,
 * dead, held). Leases are BullMQ's job locks (`getNextJob` with a token, `extendLock`),
 * and a worker that dies is found by BullMQ's stalled-job check, which puts its job back
 * in the wait list. Beside each job, in one Redis hash (`<prefix>:<queue>:missive:<id>`),
 * missive keeps the record (the same JSON as a spool's message.json), the fence (`holder`:
 * the token of the lease that took it; `finalDot`: the round whose final-dot phase began)
 * and the name of the key with the message's bytes. Every write a worker makes to that
 * hash is a Lua script that first checks `holder` is its token, so a worker presumed
 * dead cannot record anything for a message another worker took.
 *
 * The held rule wins over BullMQ's stall retry: a stalled job comes back to "wait" like
 * any other, but the worker that takes it next finds the previous holder's mark (`holder`
 * never cleared) and, when `finalDot` says that round had entered its final-dot phase,
 * holds the message instead of sending it.
 *
 * The bytes live in Redis (every machine can read them), written chunk by chunk with
 * APPEND and read back with GETRANGE, so memory stays bounded by the chunk size; a message
 * larger than `maxMessageSize` (default 50 MiB; Redis strings stop at 512 MiB) is refused
 * before anything is queued. Redis's durability is the deployment's: for the spool's
 * guarantee run it with `appendonly yes` and `appendfsync always`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { Queue, Worker, type ConnectionOptions, type Job } from "bullmq";
import { OutboxError } from "../errors.js";
import { newId } from "../outbox/file-store.js";
import { initialProgress } from "../outbox/outcome.js";
import { decodeEntry, encodeEntry } from "../outbox/record.js";
import type { Lease, ListFilter, NewEntry, OutboxEntry, OutboxState, OutboxStore, Recovered, Settlement } from "../outbox/store.js";

export interface BullMQStoreOptions {
  /** ioredis options or an ioredis instance (as BullMQ takes it). */
  readonly connection: ConnectionOptions;
  /** The BullMQ queue's name. Default "missive". */
  readonly queueName?: string | undefined;
  /** BullMQ's key prefix. Default "bull". */
  readonly prefix?: string | undefined;
  /** The largest message accepted, in octets. Default 50 MiB (at most 512 MiB, Redis's limit for a string). */
  readonly maxMessageSize?: number | undefined;
  /** How often BullMQ looks for stalled jobs (leases of dead workers), in ms. Default: the workers' lease length. */
  readonly stalledInterval?: number | undefined;
  /** Keep the bytes of sent messages (default: deleted once sent; the record stays). */
  readonly keepSent?: boolean | undefined;
}

const DEFAULT_MAX = 50 * 1024 * 1024;
const REDIS_MAX = 512 * 1024 * 1024;
const READ_CHUNK = 256 * 1024;
/** BullMQ moves a stalled job to "failed" after this many stalls; missive decides itself (held or an attempt), so never. */
const NEVER = 1_000_000_000;

/** Takes the fence: returns the previous holder, the final-dot round, the record and the bytes key. */
const TAKE = `
local prev = redis.call("HGET", KEYS[1], "holder")
redis.call("HSET", KEYS[1], "holder", ARGV[1])
return { prev or "", redis.call("HGET", KEYS[1], "finalDot") or "", redis.call("HGET", KEYS[1], "record") or "", redis.call("HGET", KEYS[1], "bytes") or "" }`;
/** Records the final-dot round, only for the lease's holder. */
const MARK = `
if redis.call("HGET", KEYS[1], "holder") ~= ARGV[1] then return 0 end
redis.call("HSET", KEYS[1], "finalDot", ARGV[2])
return 1`;
/** Writes the record and ends the lease, only for the lease's holder. */
const SETTLE = `
if redis.call("HGET", KEYS[1], "holder") ~= ARGV[1] then return 0 end
redis.call("HSET", KEYS[1], "record", ARGV[2])
redis.call("HDEL", KEYS[1], "holder")
return 1`;
/** Replaces the record of a message nobody holds, if it is still `ARGV[1]`. */
const REPLACE = `
if redis.call("HEXISTS", KEYS[1], "holder") == 1 then return 0 end
if redis.call("HGET", KEYS[1], "record") ~= ARGV[1] then return 0 end
redis.call("HSET", KEYS[1], "record", ARGV[2])
return 1`;

interface Leased extends Lease {
  readonly job: Job;
  readonly token: string;
}

interface Redis {
  eval(script: string, keys: number, ...args: (string | number | Buffer)[]): Promise<unknown>;
  hget(key: string, field: string): Promise<string | null>;
  hset(key: string, ...args: (string | Buffer)[]): Promise<number>;
  append(key: string, value: Buffer): Promise<number>;
  rename(from: string, to: string): Promise<unknown>;
  del(...keys: string[]): Promise<number>;
  strlen(key: string): Promise<number>;
  getrangeBuffer(key: string, start: number, end: number): Promise<Buffer>;
  exists(key: string): Promise<number>;
}

export class BullMQStore implements OutboxStore {
  readonly queueName: string;
  readonly prefix: string;
  readonly maxMessageSize: number;
  readonly stalledInterval: number | undefined;
  readonly keepSent: boolean;
  readonly #connection: ConnectionOptions;
  #queue: Queue | undefined;
  #redis: Redis | undefined;
  readonly #workers = new Map<string, { readonly worker: Worker; readonly leaseMs: number; readonly leases: Map<string, Leased> }>();
  /** Jobs whose record is from a newer format (reported once, put off). */
  readonly #unreadable = new Set<string>();
  readonly #problemListeners = new Set<(error: OutboxError) => void>();
  #opened: Promise<void> | undefined;

  constructor(options: BullMQStoreOptions) {
    if (typeof options !== "object" || options === null || options.connection === undefined) {
      throw new OutboxError("unusable", "BullMQStore needs a Redis connection: new BullMQStore({ connection: { host, port }, queueName })");
    }
    this.#connection = options.connection;
    this.queueName = options.queueName ?? "missive";
    if (typeof this.queueName !== "string" || !/^[A-Za-z0-9_.-]{1,100}$/.test(this.queueName)) throw new OutboxError("unusable", `BullMQStore queueName must be letters, digits, "_", "." or "-", not ${JSON.stringify(this.queueName)}`);
    this.prefix = options.prefix ?? "bull";
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX;
    if (!Number.isInteger(this.maxMessageSize) || this.maxMessageSize < 1 || this.maxMessageSize > REDIS_MAX) {
      throw new OutboxError("unusable", `BullMQStore maxMessageSize must be an integer from 1 to ${REDIS_MAX} (Redis's largest string)`);
    }
    this.stalledInterval = options.stalledInterval;
    if (this.stalledInterval !== undefined && (!Number.isInteger(this.stalledInterval) || this.stalledInterval < 10)) throw new OutboxError("unusable", "BullMQStore stalledInterval must be a whole number of ms, at least 10");
    this.keepSent = options.keepSent ?? false;
  }

  toString(): string {
    return `bullmq:${this.prefix}:${this.queueName}`;
  }

  /** Redis key of a message's hash (record, fence, bytes key). */
  #key(id: string): string {
    return `${this.prefix}:${this.queueName}:missive:${id}`;
  }

  open(): Promise<void> {
    this.#opened ??= (async () => {
      const queue = new Queue(this.queueName, { connection: this.#connection, prefix: this.prefix });
      queue.on("error", () => undefined);
      try {
        await queue.waitUntilReady();
        this.#redis = (await queue.client) as unknown as Redis;
      } catch (error) {
        await queue.close().catch(() => undefined);
        throw new OutboxError("unusable", `The outbox cannot use Redis for the BullMQ queue "${this.queueName}": ${(error as Error).message}`, { cause: error });
      }
      this.#queue = queue;
    })().catch((error: unknown) => {
      this.#opened = undefined;
      throw error;
    });
    return this.#opened;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#workers.values()].map((w) => w.worker.close(true).catch(() => undefined)));
    this.#workers.clear();
    await this.#queue?.close().catch(() => undefined);
    this.#queue = undefined;
    this.#redis = undefined;
    this.#opened = undefined;
  }

  onProblem(listener: (error: OutboxError) => void): () => void {
    this.#problemListeners.add(listener);
    return () => this.#problemListeners.delete(listener);
  }

  async #ready(): Promise<{ queue: Queue; redis: Redis }> {
    await this.open();
    return { queue: this.#queue!, redis: this.#redis! };
  }

  // --- adding ----------------------------------------------------------------------------

  async add(entry: NewEntry, bytes: AsyncIterable<Uint8Array>): Promise<{ id: string; duplicate: boolean }> {
    const { queue, redis } = await this.#ready();
    const id = entry.idempotencyKey === undefined ? newId(entry.enqueuedAt) : `k-${entry.idempotencyKey.slice(0, 40)}`;
    if (entry.idempotencyKey !== undefined && (await queue.getJob(id)) !== undefined) return { id, duplicate: true };
    const bytesKey = `${this.prefix}:${this.queueName}:missive:bytes:${id}:${randomBytes(4).toString("hex")}`;
    let size = 0;
    try {
      for await (const chunk of bytes) {
        size += chunk.length;
        if (size > this.maxMessageSize) throw new OutboxError("too-large", `The message is larger than the BullMQ store's maxMessageSize of ${this.maxMessageSize} octets`);
        await redis.append(bytesKey, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
      if (size === 0) throw new OutboxError("corrupt", "The message rendered to no bytes");
      const record: OutboxEntry = { ...entry, id, size, ...initialProgress(entry, entry.enqueuedAt) };
      await redis.hset(this.#key(id), "record", recordJson(record), "bytes", bytesKey);
      const delay = record.nextAttemptAt === undefined ? 0 : Math.max(0, record.nextAttemptAt - entry.enqueuedAt);
      await queue.add("message", { id }, { jobId: id, delay, ...(entry.priority > 0 ? { priority: entry.priority } : {}), attempts: 1, removeOnComplete: false, removeOnFail: false });
    } catch (error) {
      await redis.del(bytesKey).catch(() => undefined);
      if (error instanceof OutboxError) throw error;
      throw new OutboxError("unusable", `The outbox could not store the message in Redis: ${(error as Error).message}`, { cause: error });
    }
    return { id, duplicate: false };
  }

  // --- workers ---------------------------------------------------------------------------

  async join(worker: string, leaseMs: number): Promise<void> {
    await this.#ready();
    const bullWorker = new Worker(this.queueName, null, {
      connection: this.#connection,
      prefix: this.prefix,
      lockDuration: leaseMs,
      stalledInterval: this.stalledInterval ?? leaseMs,
      maxStalledCount: NEVER,
      autorun: false,
      name: worker,
    });
    bullWorker.on("error", () => undefined);
    await bullWorker.waitUntilReady();
    await bullWorker.startStalledCheckTimer();
    this.#workers.set(worker, { worker: bullWorker, leaseMs, leases: new Map() });
  }

  async renew(worker: string): Promise<void> {
    const w = this.#workers.get(worker);
    if (w === undefined) throw new OutboxError("lease-lost", `The worker ${worker} has not joined this queue`);
    // A lock that cannot be extended was taken back; the fence stops whatever the lease would still write.
    await Promise.all([...w.leases.values()].map((l) => l.job.extendLock(l.token, w.leaseMs).catch(() => 0)));
  }

  async leave(worker: string): Promise<void> {
    const w = this.#workers.get(worker);
    this.#workers.delete(worker);
    await w?.worker.close().catch(() => undefined);
  }

  async take(worker: string, limit: number, now: number): Promise<Lease[]> {
    const w = this.#workers.get(worker);
    if (w === undefined) throw new OutboxError("lease-lost", `The worker ${worker} has not joined this queue`);
    const { redis } = await this.#ready();
    const leases: Lease[] = [];
    while (leases.length < limit) {
      const token = `${worker}:${randomUUID()}`;
      const job = await w.worker.getNextJob(token, { block: false });
      if (job === undefined || job.id === undefined) break;
      const id = job.id;
      const [prev, finalDot, json, bytesKey] = (await redis.eval(TAKE, 1, this.#key(id), token)) as [string, string, string, string];
      let entry: OutboxEntry;
      try {
        if (json === "") throw new OutboxError("corrupt", `The job ${id} has no outbox record`, { id });
        entry = decodeEntry(json, `outbox record ${id}`, id);
        const size = await redis.strlen(bytesKey);
        if (size !== entry.size && !(entry.state === "sent" && !this.keepSent)) throw new OutboxError("corrupt", `The bytes of ${id} are ${size} octets, its record says ${entry.size}`, { id });
      } catch (error) {
        if (error instanceof OutboxError && error.reason === "version") {
          // A newer missive's record: left for a newer worker, looked at again in a minute.
          if (!this.#unreadable.has(id)) this.#problem(error);
          this.#unreadable.add(id);
          await redis.eval(SETTLE, 1, this.#key(id), token, json);
          await job.moveToDelayed(now + 60_000, token).catch(() => undefined);
          continue;
        }
        const problem = error instanceof OutboxError ? error : new OutboxError("corrupt", `The record of ${id} could not be read: ${(error as Error).message}`, { id, cause: error });
        // Quarantined: failed, with the reason, never retried by itself.
        await job.moveToFailed(new Error(`corrupt: ${problem.message}`), token, false).catch(() => undefined);
        this.#problem(problem);
        continue;
      }
      // The previous lease never settled: its worker died (BullMQ found the job stalled).
      const round = finalDot === "" ? 0 : Number(finalDot);
      const interrupted = prev === "" ? entry.interrupted : round > entry.attempts ? "after-final-dot" : "before-final-dot";
      entry = { ...entry, state: "sending", interrupted };
      const header = entry.headerLength === 0 ? Buffer.alloc(0) : await redis.getrangeBuffer(bytesKey, 0, entry.headerLength - 1);
      const start = entry.headerLength + 2;
      const end = entry.size;
      const lease: Leased = { entry, header, body: () => readRange(redis, bytesKey, start, end), job, token };
      w.leases.set(id, lease);
      leases.push(lease);
    }
    return leases;
  }

  async markFinalDot(worker: string, lease: Lease, round: number): Promise<void> {
    const { redis } = await this.#ready();
    const { token } = lease as Leased;
    const marked = await redis.eval(MARK, 1, this.#key(lease.entry.id), token, String(round)).catch((error: unknown) => {
      throw new OutboxError("unusable", `Redis did not take the final-dot record: ${(error as Error).message}`, { cause: error });
    });
    if (marked !== 1) throw lost(worker, lease.entry.id);
  }

  async settle(worker: string, lease: Lease, settlement: Settlement, now: number): Promise<OutboxEntry> {
    const { redis } = await this.#ready();
    const { job, token } = lease as Leased;
    const id = lease.entry.id;
    const entry: OutboxEntry = { ...lease.entry, ...settlement, updatedAt: now };
    const settled = await redis.eval(SETTLE, 1, this.#key(id), token, recordJson(entry));
    this.#workers.get(worker)?.leases.delete(id);
    if (settled !== 1) throw lost(worker, id);
    // The record is the commit; BullMQ's move follows. Were it lost (a lock that expired
    // meanwhile), the job comes back and the next worker re-applies the recorded state.
    try {
      if (entry.state === "queued") await job.moveToDelayed(Math.max(now, entry.nextAttemptAt ?? now), token);
      else if (entry.state === "sent" || entry.state === "partial") await job.moveToCompleted({ state: entry.state }, token, false);
      else await job.moveToFailed(new Error(`${entry.state}: ${entry.heldReason ?? entry.lastError?.message ?? ""}`), token, false);
    } catch (error) {
      throw new OutboxError("lease-lost", `BullMQ did not take the outcome of ${id} (${(error as Error).message}); the next worker to take it records it again`, { id, cause: error });
    }
    if (entry.state === "sent" && !this.keepSent) {
      const bytesKey = await redis.hget(this.#key(id), "bytes");
      if (bytesKey) await redis.del(bytesKey).catch(() => undefined);
    }
    return entry;
  }

  /** BullMQ's stalled-job check returns dead workers' jobs (they are held or counted when next taken). */
  async recover(): Promise<Recovered> {
    return { requeued: 0, held: [] };
  }

  // --- reading and managing --------------------------------------------------------------

  async get(id: string): Promise<OutboxEntry | undefined> {
    const { queue, redis } = await this.#ready();
    if (typeof id !== "string" || id === "") return undefined;
    const json = await redis.hget(this.#key(id), "record");
    if (json === null) return undefined;
    const entry = decodeEntry(json, `outbox record ${id}`, id);
    const state = stateOf(await queue.getJobState(id), entry.state);
    return state === undefined ? undefined : { ...entry, state };
  }

  async list(filter: ListFilter = {}): Promise<OutboxEntry[]> {
    const { queue, redis } = await this.#ready();
    const types = filter.state === undefined ? ALL_TYPES : TYPES[filter.state];
    const out: OutboxEntry[] = [];
    for (const type of types) {
      for (const job of await queue.getJobs([type], 0, -1, true)) {
        if (job.id === undefined) continue;
        const json = await redis.hget(this.#key(job.id), "record");
        if (json === null) continue;
        let entry: OutboxEntry;
        try {
          entry = decodeEntry(json, `outbox record ${job.id}`, job.id);
        } catch {
          continue;
        }
        const state = stateOf(type, entry.state);
        if (state !== undefined && (filter.state === undefined || state === filter.state)) out.push({ ...entry, state });
      }
    }
    out.sort((a, b) => a.enqueuedAt - b.enqueuedAt || (a.id < b.id ? -1 : 1));
    return filter.limit === undefined ? out : out.slice(0, filter.limit);
  }

  async update(id: string, from: readonly OutboxState[], change: (entry: OutboxEntry) => Settlement, now: number): Promise<OutboxEntry> {
    const { queue, redis } = await this.#ready();
    const entry = await this.get(id);
    if (entry === undefined) throw new OutboxError("not-found", `No message ${id} in the BullMQ queue "${this.queueName}"`, { id });
    if (!from.includes(entry.state) || entry.state === "sending") throw new OutboxError("state", `The message ${id} is ${entry.state}; this needs it ${from.join(" or ")}`, { id });
    const json = (await redis.hget(this.#key(id), "record"))!;
    const next: OutboxEntry = { ...entry, ...change(entry), updatedAt: now };
    if ((await redis.eval(REPLACE, 1, this.#key(id), json, recordJson(next))) !== 1) throw new OutboxError("state", `The message ${id} was taken by a worker meanwhile`, { id });
    const job = await queue.getJob(id);
    const bullState = await queue.getJobState(id);
    if (job !== undefined) {
      if (bullState === "completed" || bullState === "failed") await job.retry(bullState);
      else if (bullState === "delayed" && next.state === "queued" && (next.nextAttemptAt ?? 0) <= now) await job.promote();
    }
    return next;
  }

  async purge(states: readonly OutboxState[]): Promise<number> {
    const { redis } = await this.#ready();
    if (states.includes("sending")) throw new OutboxError("state", "Messages being sent cannot be purged; stop the workers first");
    let purged = 0;
    for (const state of states) {
      for (const entry of await this.list({ state })) {
        const { queue } = await this.#ready();
        const job = await queue.getJob(entry.id);
        await job?.remove().catch(() => undefined);
        const bytesKey = await redis.hget(this.#key(entry.id), "bytes");
        await redis.del(this.#key(entry.id), ...(bytesKey ? [bytesKey] : []));
        purged++;
      }
    }
    return purged;
  }

  async read(id: string): Promise<AsyncIterable<Uint8Array> | undefined> {
    const { redis } = await this.#ready();
    const bytesKey = await redis.hget(this.#key(id), "bytes");
    if (!bytesKey || (await redis.exists(bytesKey)) === 0) return undefined;
    return readRange(redis, bytesKey, 0, await redis.strlen(bytesKey));
  }

  #problem(error: OutboxError): void {
    for (const listener of this.#problemListeners) listener(error);
  }
}

/** BullMQ's job types for each outbox state. */
const TYPES: Record<OutboxState, readonly ("waiting" | "delayed" | "prioritized" | "paused" | "active" | "completed" | "failed")[]> = {
  queued: ["waiting", "prioritized", "delayed", "paused"],
  sending: ["active"],
  sent: ["completed"],
  partial: ["completed"],
  failed: ["failed"],
  dead: ["failed"],
  held: ["failed"],
};
const ALL_TYPES = ["waiting", "prioritized", "delayed", "paused", "active", "completed", "failed"] as const;

/** The outbox state from BullMQ's job state and the record's. */
function stateOf(bull: string, recorded: OutboxState): OutboxState | undefined {
  switch (bull) {
    case "active":
      return "sending";
    case "waiting":
    case "wait":
    case "delayed":
    case "prioritized":
    case "paused":
    case "waiting-children":
      return "queued";
    case "completed":
    case "failed":
      return recorded === "queued" || recorded === "sending" ? "queued" : recorded;
    default:
      return undefined;
  }
}

async function* readRange(redis: Redis, key: string, start: number, end: number): AsyncGenerator<Uint8Array> {
  for (let at = start; at < end; at += READ_CHUNK) {
    const chunk = await redis.getrangeBuffer(key, at, Math.min(end, at + READ_CHUNK) - 1);
    if (chunk.length === 0) throw new OutboxError("corrupt", `The stored bytes (${key}) end at ${at} octets, before ${end}`);
    yield chunk;
  }
}

function recordJson(entry: OutboxEntry): string {
  return encodeEntry(entry).toString("utf8");
}

function lost(worker: string, id: string): OutboxError {
  return new OutboxError("lease-lost", `The worker ${worker}'s lease on ${id} was taken back (BullMQ found it stalled and another worker took it); it must not send or record it`, { id });
}
