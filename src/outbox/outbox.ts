/**
 * `Outbox`: durable, asynchronous sending.
 *
 *   const outbox = new Outbox({ store: "file:///var/spool/missive" });
 *   const { id } = await outbox.enqueue(message, { idempotencyKey: `welcome-${user.id}` });
 *   const worker = outbox.worker({ backend: getConnection("failover"), concurrency: 4 });
 *   await worker.start();
 *   await outbox.status(id);   // { state: "sent", attempts: 1, report, … }
 *
 * `enqueue` renders the message once, with its Message-ID and Date fixed, as the bytes
 * every server can take (7-bit; the SMTPUTF8 form only when an address needs it), and
 * resolves when those bytes, the envelope and the options are durable in the store. DKIM is
 * not applied here: a signature belongs to the bytes sent to one destination, so the
 * worker's backend signs at send time (its `dkim`, or the settings').
 */
import { createHash } from "node:crypto";
import { envelopeRecipients } from "../backends/report.js";
import { ownOptions, type RetryPolicy } from "../delivery/retry.js";
import { InvalidArgumentError } from "../errors.js";
import { EmailMessage } from "../mime/message.js";
import { policies } from "../mime/policy.js";
import { freeze, render, renderedChunks, renderedHeaderBytes } from "../mime/render.js";
import { isClock, systemClock, type Clock } from "../observe/clock.js";
import { deliveryBackend, routeBackend } from "./deliver.js";
import { FileStore } from "./file-store.js";
import { released, retriedByHand } from "./outcome.js";
import { isOutboxStore, type ListFilter, type OutboxEntry, type OutboxState, type OutboxStore } from "./store.js";
import { OutboxWorker, type OutboxWorkerOptions } from "./worker.js";

export interface OutboxOptions {
  /** `"file:///var/spool/missive"` (a spool directory, the embedded default) or a store (`new BullMQStore(...)`). */
  readonly store: string | OutboxStore;
  /** The schedule between delivery rounds for this outbox's workers (see OutboxWorkerOptions.retry). */
  readonly retry?: RetryPolicy | undefined;
  /** The enqueue time. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

export interface EnqueueOptions {
  /** The same key twice enqueues once: the second call resolves with the first id (`duplicate: true`). */
  readonly idempotencyKey?: string | undefined;
  /** Not sent before this time (a Date or ms since the epoch). */
  readonly notBefore?: Date | number | undefined;
  /** The named connection that delivers it (the worker's `routes`); default: the worker's backend. */
  readonly route?: string | undefined;
  /** Lower numbers are sent first; default 0. An integer from 0 to 1000 (bulk mail takes a higher one). */
  readonly priority?: number | undefined;
}

export interface Enqueued {
  readonly id: string;
  /** True when the idempotency key had already enqueued this id. */
  readonly duplicate: boolean;
}

export type OutboxStatus = OutboxEntry;

const ENQUEUE_KEYS = ["idempotencyKey", "notBefore", "route", "priority"] as const;

export class Outbox {
  readonly store: OutboxStore;
  readonly #retry: RetryPolicy | undefined;
  readonly #clock: Clock;
  readonly #workers = new Set<OutboxWorker>();

  constructor(options: OutboxOptions) {
    const o = ownOptions(options, ["store", "retry", "clock"], { path: "Outbox options", settings: false }, '{ store: "file:///var/spool/missive" }');
    this.store = outboxStore(o["store"], "Outbox options.store");
    this.#retry = o["retry"] as RetryPolicy | undefined;
    const clock = o["clock"] ?? systemClock;
    if (!isClock(clock)) throw new InvalidArgumentError("Outbox options.clock must be a Clock: { now(), setTimeout(), clearTimeout() }");
    this.#clock = clock;
  }

  /**
   * Stores `message` for delivery; resolves once it is durable. Bad input (a bad header or
   * address, no recipient, a message that carries its own DKIM keys) throws before anything
   * is stored.
   */
  async enqueue(message: EmailMessage, options: EnqueueOptions = {}): Promise<Enqueued> {
    if (!(message instanceof EmailMessage)) throw new InvalidArgumentError("enqueue() takes an EmailMessage");
    const o = ownOptions(options, ENQUEUE_KEYS, { path: "enqueue options", settings: false }, "{ idempotencyKey, notBefore, route, priority }");
    const key = o["idempotencyKey"];
    if (key !== undefined && (typeof key !== "string" || key === "" || key.length > 1000)) throw new InvalidArgumentError("enqueue options.idempotencyKey must be a non-empty string (at most 1000 characters)");
    const route = o["route"];
    if (route !== undefined && (typeof route !== "string" || route === "")) throw new InvalidArgumentError("enqueue options.route must be the name of a connection");
    const priority = o["priority"] ?? 0;
    if (typeof priority !== "number" || !Number.isInteger(priority) || priority < 0 || priority > 1000) throw new InvalidArgumentError("enqueue options.priority must be an integer from 0 (first) to 1000");
    const notBefore = timeOf(o["notBefore"]);
    if (message.dkim !== undefined && message.dkim !== false) {
      throw new InvalidArgumentError("A message with its own DKIM signers cannot be enqueued: an outbox does not keep private keys. Give the worker's backend (or the settings) the dkim option; message.dkim = false (unsigned) is kept");
    }
    const smtputf8 = message.needsSmtpUtf8();
    const envelope = message.envelope({ smtputf8 });
    if (envelopeRecipients(message).length === 0) throw new InvalidArgumentError(`enqueue: the message "${message.subject}" has no recipient (to, cc or bcc)`);
    const frozen = await freeze(message);
    // 7-bit bytes pass every server; the SMTPUTF8 form only for a message no other form can carry.
    const rendered = await render(frozen, smtputf8 ? policies.default.with({ utf8: true }) : policies.default);
    const header = renderedHeaderBytes(rendered);
    const result = await this.store.add(
      {
        messageId: frozen.messageId,
        date: frozen.date,
        subject: message.subject,
        envelope: { from: envelope.from, to: envelope.to },
        fields: { from: message.from, to: [...message.to], cc: [...message.cc], replyTo: [...message.replyTo], headers: { ...message.headers } },
        smtputf8: rendered.smtputf8,
        eightBit: rendered.eightBit,
        headerLength: header.length,
        enqueuedAt: this.#clock.now(),
        route: route as string | undefined,
        priority,
        notBefore,
        idempotencyKey: key === undefined ? undefined : createHash("sha256").update(key as string, "utf8").digest("hex"),
        unsigned: message.dkim === false,
      },
      renderedChunks(rendered),
    );
    for (const worker of this.#workers) worker.poke();
    return result;
  }

  /**
   * A worker over this outbox's store. `backend` delivers (default: the `outbox.deliver`
   * setting's); a message enqueued with `route` goes through that named connection. See
   * OutboxWorkerOptions. Start it with `await worker.start()`.
   */
  worker(options: Partial<OutboxWorkerOptions> = {}): OutboxWorker {
    const backend = options.backend ?? deliveryBackend();
    const worker = new OutboxWorker(this.store, { ...options, backend, routes: options.routes ?? routeBackend }, { retry: this.#retry });
    this.#workers.add(worker);
    return worker;
  }

  /** Where a message is: its state, attempts, next attempt, last error and last report; undefined for an unknown id. */
  status(id: string): Promise<OutboxStatus | undefined> {
    return this.store.get(id);
  }

  /** The messages (in a state, when given), oldest first. */
  list(filter: ListFilter = {}): Promise<OutboxStatus[]> {
    return this.store.list(filter);
  }

  /** Sends a held message again, on purpose, to the recipients whose outcome was unknown. */
  release(id: string): Promise<OutboxStatus> {
    return this.#poke(this.store.update(id, ["held"], released, this.#clock.now()));
  }

  /**
   * Sends a failed, dead or partial message again (to every recipient not yet accepted,
   * with a fresh count of rounds), or a queued one now.
   */
  retry(id: string): Promise<OutboxStatus> {
    return this.#poke(this.store.update(id, ["failed", "dead", "partial", "queued"], retriedByHand, this.#clock.now()));
  }

  /** Deletes the messages in the given states (e.g. `["dead"]`); resolves to how many. */
  purge(states: readonly OutboxState[]): Promise<number> {
    if (!Array.isArray(states) || states.length === 0) throw new InvalidArgumentError('purge() takes the states to delete, e.g. ["dead"]');
    return this.store.purge(states);
  }

  /** Stops every worker made here (gracefully) and closes the store. */
  async close(): Promise<void> {
    await Promise.all([...this.#workers].map((w) => w.stop()));
    await this.store.close();
  }

  async #poke(result: Promise<OutboxStatus>): Promise<OutboxStatus> {
    const entry = await result;
    for (const worker of this.#workers) worker.poke();
    return entry;
  }
}

/** A store from a `file:` URL or a store object. */
export function outboxStore(value: unknown, name: string): OutboxStore {
  if (typeof value === "string") {
    if (!value.startsWith("file:")) throw new InvalidArgumentError(`${name} must be a file: URL (file:///var/spool/missive) or a store such as new BullMQStore(...); got ${JSON.stringify(value)}`);
    return FileStore.fromUrl(value);
  }
  if (isOutboxStore(value)) return value;
  throw new InvalidArgumentError(`${name} must be a file: URL (file:///var/spool/missive) or an OutboxStore (new BullMQStore({ connection, queueName }))`);
}

function timeOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== "number" || !Number.isFinite(ms)) throw new InvalidArgumentError("enqueue options.notBefore must be a Date or a number of ms since the epoch");
  return ms;
}
