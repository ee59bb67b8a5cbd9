/**
 * The commands written to a connection and not yet answered, in order: one array, with
 * counters of how many commands were written and how many replies read (undici's
 * pipelining queue). SMTP answers in order (RFC 5321 §4.1.1; RFC 2920 for pipelining), so
 * the next reply always belongs to the oldest entry.
 *
 * Deadlines are for a whole reply: only the oldest entry has a timer, armed when it becomes
 * the next reply due (when it is written with nothing ahead of it, or when the reply ahead
 * of it arrives). A server trickling bytes cannot stretch it, and a long pipelined batch
 * gives each reply the full time a lone command would get.
 */
import type { TimeoutPhase } from "../errors.js";
import type { Clock, TimerHandle } from "../observe/clock.js";
import type { SmtpReply } from "./reply.js";

/** One command for `SmtpConnection.submit`. */
export interface Submission {
  /** The command line, CRLF included; absent for the greeting (a reply nobody sends a command for). */
  readonly line?: string | Uint8Array | undefined;
  /** Bytes written right after the line (a BDAT chunk, a final dot). */
  readonly payload?: Uint8Array | undefined;
  /**
   * What transcripts, diagnostics and errors show, secrets redacted. Default: the line
   * without its CRLF ("<greeting>" without a line, "<bytes>" for a byte line): give one for
   * anything holding a secret (AUTH).
   */
  readonly display?: string | undefined;
  /**
   * The reply codes that answer it: anything else rejects with an SmtpError holding the
   * reply. "any": every reply is data for the caller (RCPT, QUIT). A 421 not listed closes
   * the connection whatever the caller expected (RFC 5321 §3.8).
   */
  readonly expect: readonly number[] | "any";
  /** The timeout phase named when `deadline` passes. */
  readonly phase: TimeoutPhase;
  /** Milliseconds the whole reply may take, counted from when it is the next reply due. */
  readonly deadline: number;
}

export interface PendingCommand extends Submission {
  readonly display: string;
  resolve(reply: SmtpReply): void;
  reject(error: Error): void;
  timer: TimerHandle | undefined;
}

export class CommandQueue {
  readonly #clock: Clock;
  readonly #onTimeout: (entry: PendingCommand) => void;
  /** Written and unanswered, oldest first. */
  readonly #entries: PendingCommand[] = [];
  #written = 0;
  #answered = 0;

  /** `onTimeout` runs when the oldest entry's deadline passes (the connection then fails). */
  constructor(clock: Clock, onTimeout: (entry: PendingCommand) => void) {
    this.#clock = clock;
    this.#onTimeout = onTimeout;
  }

  /** Commands written on this connection so far (the greeting counts as one). */
  get written(): number {
    return this.#written;
  }

  /** Replies matched to a command so far. */
  get answered(): number {
    return this.#answered;
  }

  /** Commands waiting for their reply. */
  get inFlight(): number {
    return this.#entries.length;
  }

  /** The oldest unanswered command, whose reply comes next. */
  get head(): PendingCommand | undefined {
    return this.#entries[0];
  }

  /**
   * Adds a written command; its promise settles with its reply. The promise is marked as
   * handled, so that commands pipelined behind one that failed (and so fail with it) are
   * never unhandled rejections; whoever awaits it still sees the error.
   */
  add(submission: Submission): Promise<SmtpReply> {
    let entry!: PendingCommand;
    const promise = new Promise<SmtpReply>((resolve, reject) => {
      entry = { ...submission, display: displayOf(submission), resolve, reject, timer: undefined };
    });
    promise.catch(() => undefined);
    this.#entries.push(entry);
    this.#written += 1;
    if (this.#entries.length === 1) this.#arm(entry);
    return promise;
  }

  /** Removes the oldest entry, its reply having arrived, and starts the next one's deadline. */
  take(): PendingCommand | undefined {
    const entry = this.#entries.shift();
    if (entry === undefined) return undefined;
    this.#disarm(entry);
    this.#answered += 1;
    const next = this.#entries[0];
    if (next !== undefined) this.#arm(next);
    return entry;
  }

  /** Empties the queue, rejecting every entry with `errorFor(entry)`. */
  rejectAll(errorFor: (entry: PendingCommand) => Error): void {
    for (const entry of this.#entries.splice(0)) {
      this.#disarm(entry);
      entry.reject(errorFor(entry));
    }
  }

  #arm(entry: PendingCommand): void {
    entry.timer = this.#clock.setTimeout(() => {
      entry.timer = undefined;
      this.#onTimeout(entry);
    }, entry.deadline);
  }

  #disarm(entry: PendingCommand): void {
    if (entry.timer !== undefined) this.#clock.clearTimeout(entry.timer);
    entry.timer = undefined;
  }
}

/** What a submission shows when it names nothing itself. */
export function displayOf(submission: Submission): string {
  if (submission.display !== undefined) return submission.display;
  if (submission.line === undefined) return "<greeting>";
  return typeof submission.line === "string" ? submission.line.replace(/\r\n$/, "") : "<bytes>";
}
