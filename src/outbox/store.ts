/**
 * What the outbox keeps per message, and the interface every store implements: the spool
 * directory (file-store.ts, the embedded default) and BullMQ on Redis (missive/bullmq).
 *
 * A message moves through these states:
 *
 *   queued → sending → sent | partial | failed | dead | held
 *              └──────→ queued (a retryable failure: later, with backoff)
 *
 * - queued: waiting for a worker (now, or at `nextAttemptAt`);
 * - sending: leased by a worker;
 * - sent: every recipient accepted; partial: some accepted, the others refused for good;
 * - failed: refused for good (or a failure that sending again cannot fix);
 * - dead: still undelivered to someone when the retry policy gave up (attempts, lifetime);
 * - held: the outcome is unknown (the final dot left and no reply came, or the worker
 *   died after the message entered its final-dot phase): never resent unless released.
 *
 * The store does the durable bookkeeping and the atomic leasing; what a report means for
 * the message (the next state, the backoff) is decided once, in outcome.ts, and the worker
 * (worker.ts) drives both. Nothing here knows SMTP.
 */
import type { RecipientOutcome } from "../backends/report.js";

export const OUTBOX_STATES = ["queued", "sending", "sent", "partial", "failed", "dead", "held"] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];

/** The states a message ends in (until a person releases or retries it). */
export const FINISHED_STATES: readonly OutboxState[] = ["sent", "partial", "failed", "dead", "held"];

/** The version of the stored records. A record with a higher one is refused, never guessed at. */
export const STORE_FORMAT = 1;

/** An error as a record keeps it: what it was and where, no stack, no secret. */
export interface StoredError {
  readonly name: string;
  readonly code: string | undefined;
  readonly message: string;
  readonly replyCode?: number | undefined;
  readonly enhancedCode?: string | undefined;
  readonly stage?: string | undefined;
}

export interface StoredAttempt {
  readonly route: string | undefined;
  readonly at: number;
  readonly delayMs: number;
  readonly status: string;
  readonly recipients: readonly string[];
  readonly accepted: readonly string[];
  readonly error?: StoredError | undefined;
}

/** A DeliveryReport as it is kept: plain data. */
export interface StoredReport {
  readonly status: string;
  readonly messageId: string | undefined;
  readonly route: string | undefined;
  readonly accepted: readonly string[];
  readonly rejected: readonly RecipientOutcome[];
  readonly deferred: readonly RecipientOutcome[];
  readonly attempts: readonly StoredAttempt[];
  readonly error?: StoredError | undefined;
  readonly reply?: { readonly code: number; readonly enhancedCode: string | undefined; readonly text: string } | undefined;
  readonly queueId?: string | undefined;
  readonly stopped?: string | undefined;
  /** When the worker recorded it. */
  readonly at: number;
}

/** The message's fields kept for routing functions and for people (the bytes are the message). */
export interface StoredFields {
  readonly from: unknown;
  readonly to: readonly unknown[];
  readonly cc: readonly unknown[];
  readonly replyTo: readonly unknown[];
  readonly headers: Readonly<Record<string, string>>;
}

/** What `enqueue` hands to a store: everything but the id, the bytes and the progress. */
export interface NewEntry {
  readonly messageId: string;
  /** The Date header as written. */
  readonly date: string;
  readonly subject: string;
  /** MAIL FROM and RCPT TO as they will be sent (IDNA domains unless the message needs SMTPUTF8). */
  readonly envelope: { readonly from: string; readonly to: readonly string[] };
  readonly fields: StoredFields;
  readonly smtputf8: boolean;
  readonly eightBit: boolean;
  /** Octets of the header block (without the blank line): the body starts two octets later. */
  readonly headerLength: number;
  readonly enqueuedAt: number;
  readonly route: string | undefined;
  /** Lower first; 0 is the default. */
  readonly priority: number;
  /** Not sent before this time (ms since the epoch). */
  readonly notBefore: number | undefined;
  /** SHA-256 (hex) of the idempotency key; the key itself is not kept. */
  readonly idempotencyKey: string | undefined;
  /** The message said `dkim: false`: send it unsigned. */
  readonly unsigned: boolean;
}

/** What changes as a message moves through the states. */
export interface EntryProgress {
  readonly state: OutboxState;
  /** Rounds of delivery finished (a round is one worker's lease: one or more tries through the backend). */
  readonly attempts: number;
  readonly nextAttemptAt: number | undefined;
  /** Recipients still to deliver to (envelope form). */
  readonly pending: readonly string[];
  readonly accepted: readonly string[];
  readonly rejected: readonly RecipientOutcome[];
  readonly lastError: StoredError | undefined;
  /** The report of the last round. */
  readonly report: StoredReport | undefined;
  /** Why it is held, for the person who decides. */
  readonly heldReason: string | undefined;
  /** Set when a worker's lease on it expired (the worker died): before or after its final-dot phase. */
  readonly interrupted: "before-final-dot" | "after-final-dot" | undefined;
  readonly updatedAt: number;
}

export interface OutboxEntry extends NewEntry, EntryProgress {
  readonly id: string;
  /** Octets of the stored message (header block, CRLF, body). */
  readonly size: number;
}

/** A message leased by a worker: the record as taken and a way to read the stored bytes. */
export interface Lease {
  readonly entry: OutboxEntry;
  /** The header block (small), read when it was taken. */
  readonly header: Buffer;
  /** The body after the blank line, read again from the store on every call. */
  body(): AsyncIterable<Uint8Array>;
}

/** What a settled round changes; the store writes it and moves the message. */
export type Settlement = Omit<EntryProgress, "updatedAt" | "state"> & { readonly state: Exclude<OutboxState, "sending"> };

export interface ListFilter {
  readonly state?: OutboxState | undefined;
  /** At most this many, oldest first. Default: all. */
  readonly limit?: number | undefined;
}

/** What `recover` did. */
export interface Recovered {
  /** Messages of dead workers returned to the queue (the interrupted round counts as an attempt). */
  readonly requeued: number;
  /** Messages of dead workers that had entered their final-dot phase: now held. */
  readonly held: readonly OutboxEntry[];
}

/**
 * A store of outbox messages. Every method may be called from several workers (and
 * processes, and machines where the store allows) at once: `take` never leases one
 * message to two workers, and `markFinalDot`/`settle` fail with OutboxError "lease-lost"
 * when the lease is no longer the caller's (so a worker that was presumed dead cannot
 * send, or record, what another worker took over).
 */
export interface OutboxStore {
  /** Prepares the store (creates the spool's directories, connects); fails with OutboxError "unusable". */
  open(): Promise<void>;
  close(): Promise<void>;
  /**
   * Keeps the message: resolves only when it is durable. With an idempotency key already
   * known, keeps nothing and resolves with the first message's id (`duplicate: true`).
   */
  add(entry: NewEntry, bytes: AsyncIterable<Uint8Array>): Promise<{ id: string; duplicate: boolean }>;
  /** Registers a worker whose leases last `leaseMs` unless renewed. */
  join(worker: string, leaseMs: number, now: number): Promise<void>;
  /** Extends the worker's leases; OutboxError "lease-lost" when they were taken back. */
  renew(worker: string, now: number): Promise<void>;
  /** Unregisters a worker that holds no lease any more. */
  leave(worker: string): Promise<void>;
  /** Leases up to `limit` messages due at `now`, lower priority numbers first, then the longest waiting. */
  take(worker: string, limit: number, now: number): Promise<Lease[]>;
  /** Records durably that the leased message entered its final-dot phase. */
  markFinalDot(worker: string, lease: Lease, round: number, now: number): Promise<void>;
  /** Records the round's outcome and ends the lease (the message moves to its new state). */
  settle(worker: string, lease: Lease, settlement: Settlement, now: number): Promise<OutboxEntry>;
  /** Returns the leases of workers whose lease expired: held if they had entered the final-dot phase, else queued. */
  recover(now: number): Promise<Recovered>;
  get(id: string): Promise<OutboxEntry | undefined>;
  list(filter?: ListFilter): Promise<OutboxEntry[]>;
  /**
   * Changes a message that no worker holds and that is in one of `from` (release a held
   * message, retry a failed one): `change` gives the new progress. OutboxError "not-found"
   * or "state" otherwise.
   */
  update(id: string, from: readonly OutboxState[], change: (entry: OutboxEntry) => Settlement, now: number): Promise<OutboxEntry>;
  /** Deletes the messages in `states` (and their idempotency keys); resolves to how many. */
  purge(states: readonly OutboxState[]): Promise<number>;
  /** The stored bytes of a message (for `missive outbox show --raw`), when still kept. */
  read(id: string): Promise<AsyncIterable<Uint8Array> | undefined>;
  /** Calls `listener` when new work may be waiting (optional: a worker polls anyway); returns the unsubscribe. */
  watch?(listener: () => void): () => void;
}

/** Whether `value` looks like an OutboxStore (a store given to configure() or new Outbox()). */
export function isOutboxStore(value: unknown): value is OutboxStore {
  if (typeof value !== "object" || value === null) return false;
  const s = value as Record<string, unknown>;
  return ["open", "close", "add", "join", "renew", "leave", "take", "markFinalDot", "settle", "recover", "get", "list", "update", "purge", "read"].every((m) => typeof s[m] === "function");
}
