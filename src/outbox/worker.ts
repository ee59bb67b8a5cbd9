/**
 * The outbox worker: leases due messages from a store, sends each through a backend, and
 * records what happened.
 *
 *   const worker = outbox.worker({ backend: getConnection("failover"), concurrency: 4 });
 *   await worker.start();        // … await worker.stop(): in-flight messages finish, the rest stay queued
 *
 * For each leased message, one round: the backend's `sendMessagesWithReport` with the
 * recipients still pending and a `beforeFinalDot` hook that records, durably, that the
 * message entered its final-dot phase (the backend awaits it before the dot leaves). The
 * round's report decides the next state (outcome.ts): sent, partial, failed, held, dead, or
 * queued again after the retry policy's backoff. A message whose worker died is returned
 * by the next recovery (any worker's): to the queue if it never reached its final dot
 * (that round counts as an attempt, so a message that kills its worker ends dead), held
 * and reported if it did — never resent by itself.
 *
 * The loop never dies of a store error: it reports the problem to the observer and tries
 * again after `pollInterval`. Time (polls, lease renewals, backoff) comes from `clock`.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { sendWithReport, type EmailBackend } from "../backends/base.js";
import { isDeliveryError } from "../backends/output.js";
import { failedReport, type DeliveryReport } from "../backends/report.js";
import { resolveRetryPolicy, ownOptions, type ResolvedRetryPolicy, type RetryPolicy } from "../delivery/retry.js";
import { AbortError, BackendError, InvalidArgumentError, OutboxError, type MissiveError } from "../errors.js";
import { isClock, MAX_TIMER_MS, systemClock, type Clock, type TimerHandle } from "../observe/clock.js";
import { heldAfterInterruption, OUTBOX_RETRY, retryLater, settlementOf, storedError, unchanged } from "./outcome.js";
import { StoredMessage } from "./stored-message.js";
import { FINISHED_STATES, type Lease, type OutboxEntry, type OutboxStore, type Recovered, type Settlement } from "./store.js";

/** Told what the worker does; every method optional, exceptions ignored. */
export interface OutboxObserver {
  /** A message was leased and is about to be sent. */
  taken?(entry: OutboxEntry): void;
  /** A round ended; `entry.state` says how (sent, partial, failed, dead, held, or queued again). */
  settled?(entry: OutboxEntry): void;
  /** A message became held: its outcome is unknown (a person decides: release it, or not). */
  held?(entry: OutboxEntry): void;
  /** A recovery returned messages of dead workers. */
  recovered?(result: Recovered): void;
  /** Something went wrong that did not stop the worker: a quarantined file, a store error, a lost lease. */
  problem?(error: Error): void;
}

export interface OutboxWorkerOptions {
  /** What delivers: any backend (`getConnection("failover")`, an SmtpBackend with a pool, …). */
  readonly backend: EmailBackend;
  /** Messages in flight at once. Default 1. Give an SMTP backend a pool at least this large. */
  readonly concurrency?: number | undefined;
  /** How long a lease lasts unless renewed (ms); renewed every third of it. Default 60000. */
  readonly leaseMs?: number | undefined;
  /** How often an idle worker looks for due messages (ms). Default 1000. */
  readonly pollInterval?: number | undefined;
  /** The schedule between rounds (default: 10 rounds, 1 min doubling to 1 h, 5 days' lifetime). */
  readonly retry?: RetryPolicy | undefined;
  /** The backend for a message enqueued with `route` (default: the named connection of that name). */
  readonly routes?: ((name: string) => EmailBackend) | undefined;
  readonly observer?: OutboxObserver | undefined;
  /** Time for polls, leases and backoff. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** Jitter's randomness in [0, 1). */
  readonly random?: (() => number) | undefined;
  /** A prefix for the worker's name in the store (default: the host name). */
  readonly name?: string | undefined;
}

export const WORKER_OPTION_KEYS = ["backend", "concurrency", "leaseMs", "pollInterval", "retry", "routes", "observer", "clock", "random", "name"] as const;

interface InFlight {
  readonly controller: AbortController;
  readonly registration: string;
  done: Promise<void>;
}

export class OutboxWorker {
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly pollInterval: number;
  readonly retry: ResolvedRetryPolicy;
  readonly #store: OutboxStore;
  readonly #backend: EmailBackend;
  readonly #routes: (name: string) => EmailBackend;
  readonly #routeBackends = new Map<string, EmailBackend>();
  readonly #observer: OutboxObserver;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #prefix: string;
  readonly #inflight = new Map<string, InFlight>();
  /** Callers of idle(), with the loop iteration they wait to be past (one that began before the call may not answer it). */
  readonly #idleWaiters: { readonly after: number; readonly resolve: () => void }[] = [];
  #iteration = 0;
  #registration = "";
  #state: "new" | "running" | "stopping" | "stopped" = "new";
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #renewTimer: TimerHandle | undefined;
  #nextRecovery = 0;
  #openedBackend = false;
  #unsubscribe: (() => void)[] = [];
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(store: OutboxStore, options: OutboxWorkerOptions, defaults: { readonly retry?: RetryPolicy | undefined } = {}) {
    const where = { path: "worker options", settings: false };
    const o = ownOptions(options, WORKER_OPTION_KEYS, where, "{ backend, concurrency, leaseMs, pollInterval, retry, routes, observer, clock, random, name }");
    const backend = o["backend"] as EmailBackend | undefined;
    if (typeof backend?.sendMessages !== "function") throw new InvalidArgumentError("worker({ backend }) needs the backend that delivers, e.g. getConnection(\"failover\") or new SmtpBackend({...})");
    if ((backend as { enqueuesIntoOutbox?: unknown }).enqueuesIntoOutbox === true) {
      throw new InvalidArgumentError("The worker's backend is the outbox backend, which would enqueue each message again; give it the backend that delivers (outbox: { deliver: \"failover\" })");
    }
    this.#store = store;
    this.#backend = backend;
    this.concurrency = integer(o["concurrency"], "concurrency", 1, 1000) ?? 1;
    this.leaseMs = integer(o["leaseMs"], "leaseMs", 100, MAX_TIMER_MS) ?? 60_000;
    this.pollInterval = integer(o["pollInterval"], "pollInterval", 1, MAX_TIMER_MS) ?? 1_000;
    const retry = o["retry"] ?? defaults.retry;
    this.retry = retry === undefined ? OUTBOX_RETRY : resolveRetryPolicy({ ...OUTBOX_RETRY, ...(retry as object) }, { path: "worker options.retry", settings: false });
    const routes = o["routes"];
    if (routes !== undefined && typeof routes !== "function") throw new InvalidArgumentError("worker options.routes must be a function (name) => backend");
    this.#routes = (routes as ((name: string) => EmailBackend) | undefined) ?? ((name) => {
      throw new OutboxError("state", `The message was enqueued with route "${name}", and this worker has no routes: give worker({ routes })`);
    });
    const observer = o["observer"] ?? {};
    if (typeof observer !== "object" || observer === null) throw new InvalidArgumentError("worker options.observer must be an object of optional methods");
    this.#observer = observer as OutboxObserver;
    const clock = o["clock"] ?? systemClock;
    if (!isClock(clock)) throw new InvalidArgumentError("worker options.clock must be a Clock: { now(), setTimeout(), clearTimeout() }");
    this.#clock = clock;
    const random = o["random"] ?? Math.random;
    if (typeof random !== "function") throw new InvalidArgumentError("worker options.random must be a function returning a number in [0, 1)");
    this.#random = random as () => number;
    const name = o["name"] ?? hostname();
    if (typeof name !== "string") throw new InvalidArgumentError("worker options.name must be a string");
    this.#prefix = name.replace(/[^A-Za-z0-9.-]/g, "-").slice(0, 48) || "worker";
  }

  /** The worker's current name in the store (`active/NAME/` in a spool). */
  get name(): string {
    return this.#registration;
  }

  get running(): boolean {
    return this.#state === "running";
  }

  /** Messages being sent right now. */
  get inFlight(): number {
    return this.#inflight.size;
  }

  /** Joins the store, returns dead workers' messages, and starts leasing. Resolves once running. */
  start(): Promise<void> {
    if (this.#state === "stopping" || this.#state === "stopped") return Promise.reject(new InvalidArgumentError("A stopped worker cannot start again; make a new one"));
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    await this.#store.open();
    await this.#join();
    try {
      this.#openedBackend = await this.#backend.open();
    } catch (error) {
      // A server down at start is a delivery failure of the first messages, not a reason not to run.
      if (!isDeliveryError(error)) throw error;
    }
    const onProblem = (this.#store as { onProblem?: (listener: (e: OutboxError) => void) => () => void }).onProblem;
    if (typeof onProblem === "function") this.#unsubscribe.push(onProblem.call(this.#store, (e) => this.#tell("problem", e)));
    if (typeof this.#store.watch === "function") this.#unsubscribe.push(this.#store.watch(() => this.#wake?.()));
    this.#state = "running";
    await this.#recover();
    this.#scheduleRenewal();
    this.#loop = this.#run();
  }

  /**
   * Stops leasing. In-flight messages finish (their outcome is recorded); with `abort: true`
   * they are cancelled instead (before their final dot: queued again; after it: held).
   */
  stop(options: { readonly abort?: boolean } = {}): Promise<void> {
    if (options.abort) for (const flight of this.#inflight.values()) flight.controller.abort(new AbortError("The outbox worker was stopped"));
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    if (this.#state === "new") {
      this.#state = "stopped";
      return;
    }
    this.#state = "stopping";
    this.#wake?.();
    await this.#loop;
    await Promise.all([...this.#inflight.values()].map((f) => f.done));
    if (this.#renewTimer !== undefined) this.#clock.clearTimeout(this.#renewTimer);
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    await this.#store.leave(this.#registration).catch((e: unknown) => this.#tell("problem", e as Error));
    if (this.#openedBackend) await this.#backend.close().catch(() => undefined);
    await Promise.all([...this.#routeBackends.values()].map((b) => b.close().catch(() => undefined)));
    this.#state = "stopped";
    for (const waiter of this.#idleWaiters.splice(0)) waiter.resolve();
  }

  /** Resolves when nothing is due and nothing is in flight (or the worker stopped). */
  idle(): Promise<void> {
    if (this.#state === "stopped") return Promise.resolve();
    return new Promise((resolve) => {
      this.#idleWaiters.push({ after: this.#iteration, resolve });
      this.#wake?.();
    });
  }

  async #join(): Promise<void> {
    this.#registration = `${this.#prefix}.${process.pid}.${randomBytes(3).toString("hex")}`;
    await this.#store.join(this.#registration, this.leaseMs, this.#clock.now());
  }

  #scheduleRenewal(): void {
    this.#renewTimer = this.#clock.setTimeout(
      () => {
        if (this.#state !== "running" && this.#inflight.size === 0) return;
        this.#renew().finally(() => {
          if (this.#state !== "stopped") this.#scheduleRenewal();
        });
      },
      Math.max(1, Math.floor(this.leaseMs / 3)),
      { unref: true },
    );
  }

  async #renew(): Promise<void> {
    try {
      await this.#store.renew(this.#registration, this.#clock.now());
    } catch (error) {
      this.#tell("problem", error as Error);
      if (error instanceof OutboxError && error.reason === "lease-lost") await this.#lost();
    }
  }

  /** Our leases were taken back: what we hold is someone else's now. Stop it and join again. */
  async #lost(): Promise<void> {
    const lost = this.#registration;
    for (const flight of this.#inflight.values()) {
      if (flight.registration === lost) flight.controller.abort(new OutboxError("lease-lost", "The worker's lease was taken back"));
    }
    if (this.#state === "running") await this.#join().catch((e: unknown) => this.#tell("problem", e as Error));
  }

  async #recover(): Promise<void> {
    const now = this.#clock.now();
    this.#nextRecovery = now + Math.max(this.pollInterval, Math.floor(this.leaseMs / 2));
    const result = await this.#store.recover(now);
    if (result.requeued > 0 || result.held.length > 0) this.#tell("recovered", result);
    for (const entry of result.held) this.#tell("held", entry);
  }

  async #run(): Promise<void> {
    while (this.#state === "running") {
      const iteration = ++this.#iteration;
      try {
        if (this.#clock.now() >= this.#nextRecovery) await this.#recover();
        const free = this.concurrency - this.#inflight.size;
        let took = 0;
        if (free > 0) {
          const leases = await this.#store.take(this.#registration, free, this.#clock.now());
          took = leases.length;
          for (const lease of leases) this.#begin(lease);
        }
        if (took > 0 && took === free) continue;
        if (took === 0 && this.#inflight.size === 0) {
          this.#answerIdle(iteration);
          // Someone asked during this iteration: look once more rather than sleep (their answer needs a fresh look).
          if (this.#idleWaiters.length > 0) continue;
        }
        await this.#sleep(this.pollInterval);
      } catch (error) {
        this.#tell("problem", error as Error);
        if (error instanceof OutboxError && error.reason === "lease-lost") await this.#lost();
        if (this.#state === "running") await this.#sleep(this.pollInterval);
      }
    }
  }

  /** Resolves the idle() callers that called before this iteration began: it found nothing due and nothing in flight. */
  #answerIdle(iteration: number): void {
    for (let i = this.#idleWaiters.length - 1; i >= 0; i--) {
      const waiter = this.#idleWaiters[i]!;
      if (waiter.after < iteration) {
        this.#idleWaiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  /** Waits `ms`, or less when woken (a message finished, a local enqueue, the store's watch). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#clock.setTimeout(() => done(), ms, { unref: true });
      const done = () => {
        this.#clock.clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
    });
  }

  /** Wakes the loop (a message was enqueued in this process). */
  poke(): void {
    this.#wake?.();
  }

  #begin(lease: Lease): void {
    const flight: InFlight = { controller: new AbortController(), registration: this.#registration, done: Promise.resolve() };
    this.#inflight.set(lease.entry.id, flight);
    flight.done = this.#round(lease, flight)
      .catch((error: unknown) => this.#tell("problem", error as Error))
      .finally(() => {
        this.#inflight.delete(lease.entry.id);
        this.#wake?.();
      });
  }

  /** One round of one message, from its lease to its recorded outcome. */
  async #round(lease: Lease, flight: InFlight): Promise<void> {
    const entry = lease.entry;
    const now = this.#clock.now();
    this.#tell("taken", entry);
    if (entry.interrupted === "after-final-dot") return this.#settle(lease, flight, heldAfterInterruption(entry, entry.attempts + 1));
    // A round cut short by a dead worker counts, so that a message that kills its worker ends dead.
    const attempts = entry.attempts + (entry.interrupted === "before-final-dot" ? 1 : 0);
    const interrupted = entry.interrupted === "before-final-dot" ? { ...unchanged(entry), attempts, lastError: INTERRUPTED, interrupted: undefined } : undefined;
    if ((FINISHED_STATES as readonly string[]).includes(entry.state)) return this.#settle(lease, flight, unchanged(entry));
    if (entry.nextAttemptAt !== undefined && entry.nextAttemptAt > now) return this.#settle(lease, flight, unchanged(entry));
    if (attempts >= this.retry.attempts) return this.#settle(lease, flight, retryLater(entry, interrupted ?? unchanged(entry), undefined, this.retry, now, this.#random));

    const round = attempts + 1;
    const message = new StoredMessage(entry, lease);
    let finalDot = false;
    const beforeFinalDot = async (): Promise<void> => {
      try {
        await this.#store.markFinalDot(flight.registration, lease, round, this.#clock.now());
        finalDot = true;
      } catch (error) {
        flight.controller.abort(error);
        throw new BackendError(`The outbox could not record that the message entered its final-dot phase (${(error as Error).message}); it was not sent`, { cause: error, retryable: true });
      }
    };
    let report: DeliveryReport | undefined;
    let settlement: Settlement | undefined;
    try {
      const backend = entry.route === undefined ? this.#backend : this.#routeBackend(entry.route);
      report = (await sendWithReport(backend, [message], { stopOnError: false, signal: flight.controller.signal, recipients: new Map([[message, entry.pending]]), beforeFinalDot })).reports[0];
    } catch (error) {
      if (isDeliveryError(error) || error instanceof AbortError) report = failedReport(message, entry.messageId, error as MissiveError, entry.pending, this.#clock.now());
      // A programming or configuration error: recorded, never retried by itself (a person fixes it, then retries).
      else settlement = finalDot ? { ...heldAfterInterruption(entry, round), lastError: storedError(error) } : { ...unchanged(entry), state: "failed", attempts: round, lastError: storedError(error), nextAttemptAt: undefined };
    }
    if (settlement === undefined) {
      report ??= failedReport(message, entry.messageId, new BackendError("The backend returned no report"), entry.pending, this.#clock.now());
      settlement = settlementOf(entry, round, report, this.retry, this.#clock.now(), this.#random);
    }
    await this.#settle(lease, flight, settlement);
  }

  async #settle(lease: Lease, flight: InFlight, settlement: Settlement): Promise<void> {
    let entry: OutboxEntry;
    try {
      entry = await this.#store.settle(flight.registration, lease, settlement, this.#clock.now());
    } catch (error) {
      // Lease lost: another worker's recovery has the message now, and records it.
      this.#tell("problem", error as Error);
      return;
    }
    this.#tell("settled", entry);
    if (entry.state === "held") this.#tell("held", entry);
  }

  #routeBackend(name: string): EmailBackend {
    let backend = this.#routeBackends.get(name);
    if (backend === undefined) {
      backend = this.#routes(name);
      this.#routeBackends.set(name, backend);
      // Opened for the worker's life, so that concurrent messages share its connections.
      backend.open().catch(() => undefined);
    }
    return backend;
  }

  #tell<K extends keyof OutboxObserver>(event: K, ...args: Parameters<NonNullable<OutboxObserver[K]>>): void {
    const method = this.#observer[event] as ((...a: unknown[]) => void) | undefined;
    if (typeof method !== "function") return;
    try {
      method.apply(this.#observer, args);
    } catch {
      // An observer's failure is not the worker's.
    }
  }
}

const INTERRUPTED = { name: "OutboxError", code: "EOUTBOX", message: "the worker sending it stopped (its lease expired) before the message's final dot: nothing was delivered" } as const;

function integer(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) throw new InvalidArgumentError(`worker options.${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return value;
}
