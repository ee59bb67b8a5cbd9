/**
 * What can cut one message of an SMTP batch short, and what a cut means (backends/smtp.ts).
 *
 * A message is cut by the caller's signal (`sendMessagesWithReport(…, { signal })`), by the
 * backend's own `signal`, or by the backend's whole-message `deadline`. A cut ends the
 * message's waits (its `beforeEach` gate, the wait for a connection) and, while the message
 * is on the wire, drops the connection: after MAIL FROM there is no other way to take a
 * transaction back in time (an RSET would wait behind the command in flight).
 *
 * The deadline counts the message's own time: its gate, its wait for a connection, its
 * render and its transaction. It does not count the time a message already rendered waits
 * behind the messages before it on the same connection (its commands may be pipelined
 * behind their final dot): that is their time, and cutting it would drop the connection
 * under them. The budget is paused there and resumed when its own transaction starts.
 *
 * The signals are listened to once per batch (`BatchSignals`), not once per message: a pool
 * of several lanes holds many messages at once, and a listener each on the caller's signal
 * would pile up past Node's MaxListeners warning.
 */
import { AbortError, SmtpTimeoutError, recordStage, type SmtpError } from "../errors.js";
import { classify } from "../errors/classify.js";
import type { Clock, TimerHandle } from "../observe/clock.js";

/** The signals that cut every message of one batch, each listened to once for the whole batch. */
export class BatchSignals {
  /** The batch's stop: it ends every message's waits (not the messages on the wire). */
  readonly stop: AbortSignal;
  /** The caller's and the backend's signals: each cuts every message of the batch. */
  readonly sources: readonly AbortSignal[];
  readonly #live = new Set<MessageCut>();
  readonly #onStop = () => {
    for (const cut of [...this.#live]) cut.stopWaits();
  };
  readonly #onSource = (event: Event) => {
    const reason: unknown = (event.target as AbortSignal).reason;
    for (const cut of [...this.#live]) cut.cutBy(reason);
  };

  constructor(stop: AbortSignal, sources: readonly (AbortSignal | undefined)[]) {
    this.stop = stop;
    this.sources = sources.filter((s): s is AbortSignal => s !== undefined);
    if (!stop.aborted) stop.addEventListener("abort", this.#onStop, { once: true });
    for (const source of this.sources) if (!source.aborted) source.addEventListener("abort", this.#onSource, { once: true });
  }

  /** A message of the batch, told of every abort until it leaves. */
  join(cut: MessageCut): void {
    this.#live.add(cut);
  }

  leave(cut: MessageCut): void {
    this.#live.delete(cut);
  }

  /** The batch is over: no more listening. */
  dispose(): void {
    this.stop.removeEventListener("abort", this.#onStop);
    for (const source of this.sources) source.removeEventListener("abort", this.#onSource);
    this.#live.clear();
  }
}

export class MessageCut {
  // Booleans, and a signal only when something listens: an AbortController costs a few
  // microseconds to make, as much as a small message's rendering, and most messages never
  // need one (only a `beforeEach` gate or a wait for a connection does).
  #cut = false;
  /** The batch stopped or the message was cut: its waits are over. */
  #waitsEnded = false;
  #waits: AbortController | undefined;
  readonly #batch: BatchSignals;
  readonly #clock: Clock;
  readonly #deadline: number | undefined;
  /** What the signal that cut the message gave as its reason. */
  #reason: unknown;
  #timedOut = false;
  /** The deadline's budget left (ms) when not running; undefined without a deadline. */
  #left: number | undefined;
  /** When the budget last started running; undefined while paused. */
  #since: number | undefined;
  #timer: TimerHandle | undefined;
  /** Drops the connection while the message is on the wire. */
  #onWire: (() => void) | undefined;

  constructor(batch: BatchSignals, deadline: number | undefined, clock: Clock) {
    this.#batch = batch;
    this.#clock = clock;
    this.#deadline = deadline;
    this.#left = deadline;
    if (batch.stop.aborted) this.#waitsEnded = true;
    const aborted = batch.sources.find((source) => source.aborted);
    if (aborted !== undefined) this.#fire(aborted.reason, false);
    batch.join(this);
    this.resume();
  }

  get cut(): boolean {
    return this.#cut;
  }

  /** The batch's stop or this message's cut: what the gate and the wait for a connection listen to. */
  get waits(): AbortSignal {
    if (this.#waits === undefined) {
      this.#waits = new AbortController();
      if (this.#waitsEnded) this.#waits.abort();
    }
    return this.#waits.signal;
  }

  /** `waits.aborted`, without making the signal. */
  get waitsEnded(): boolean {
    return this.#waitsEnded;
  }

  /** The deadline counts again (after `pause`). */
  resume(): void {
    if (this.#left === undefined || this.#since !== undefined || this.cut) return;
    this.#since = this.#clock.now();
    this.#timer = this.#clock.setTimeout(() => this.#fire(undefined, true), Math.max(0, this.#left));
  }

  /** The deadline stops counting: the message waits, rendered, behind another on its connection. */
  pause(): void {
    if (this.#since === undefined) return;
    this.#left! -= this.#clock.now() - this.#since;
    this.#since = undefined;
    this.#clearTimer();
  }

  /** From now until `dispose`, a cut drops the message's connection (`drop`). */
  onWire(drop: () => void): void {
    this.#onWire = drop;
    if (this.cut) drop();
  }

  /**
   * The error a failure of the message stands for: a cut says that it was cut (a timeout at
   * the step it had reached, or an AbortError), unless the message may already be delivered
   * (the final dot had left: "unknown" stays unknown).
   */
  explain(caught: unknown): unknown {
    if (!this.cut || classify(caught) === "unknown") return caught;
    if (this.#timedOut) return messageTimeout(this.#deadline!, caught);
    return new AbortError("The send was aborted", { cause: this.#reason ?? caught });
  }

  /** An AbortError for a message cut before it started (mapped by `explain`). */
  notStarted(): AbortError {
    return new AbortError("The send was aborted before this message", { cause: this.#reason });
  }

  /** The message is settled: no more timer, listeners or connection to drop. */
  dispose(): void {
    this.#clearTimer();
    this.#since = undefined;
    this.#onWire = undefined;
    this.#batch.leave(this);
  }

  /** The batch stopped (BatchSignals): the message's waits end. */
  stopWaits(): void {
    this.#endWaits();
  }

  /** The caller's or the backend's signal aborted (BatchSignals): the message is cut. */
  cutBy(reason: unknown): void {
    this.#fire(reason, false);
  }

  #fire(reason: unknown, timedOut: boolean): void {
    if (this.cut) return;
    this.#reason = reason;
    this.#timedOut = timedOut;
    this.#clearTimer();
    this.#cut = true;
    this.#endWaits();
    this.#onWire?.();
  }

  #endWaits(): void {
    this.#waitsEnded = true;
    this.#waits?.abort();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** The deadline passed while the message was on its way: a timeout at the step it had reached. */
function messageTimeout(deadline: number, cause: unknown): SmtpTimeoutError {
  const e = cause as Partial<SmtpError>;
  const error = new SmtpTimeoutError("message", deadline, { command: e.command, cause, hint: "the message took longer than the backend's deadline, and the connection was dropped" });
  return recordStage(error, e.stage ?? "connect", e.bodySent ?? false);
}
