/**
 * One message's delivery by one backend, observed: a `TracingChannel("missive:deliver")`
 * operation (start / end / asyncStart / asyncEnd, and error when it failed), and its
 * outcome event (`message.sent`, `message.partial`, `message.failed`, `message.unknown`;
 * `message.attempt` when the delivery engine drives it and reports the outcome itself).
 *
 * Every backend runs each message through `DeliveryObservation.run`. With no tracing
 * subscriber, no logger at the outcome's levels and no outcome subscriber, `run` calls the
 * delivery and nothing else: no context, no clock read, no record.
 *
 * The context object is the one `tracing:missive:deliver:*` subscribers get (as undici's
 * request context): what is known at the start, connection details as they become known,
 * the outcome at the end, and `error` (the delivery's MissiveError) when it failed or its
 * outcome is unknown. It holds no message object, body or credential. Ground floor: the
 * report is read through the shape it has (`ReportLike`).
 */
import { deliverChannel, deliverTraced } from "./channels.js";
import type { Clock } from "./clock.js";
import { OUTCOME_EVENTS, type EventSink, type OutcomeStatus, type RefusedField } from "./events.js";

/** The TracingChannel context of one delivery. */
export interface DeliveryContext {
  /** "smtp", "console", "file", "memory", "dummy", or a custom backend's class name. */
  readonly backend: string;
  messageId: string | undefined;
  /** The named connection it goes through, when the caller named one (routing, failover). */
  readonly route: string | undefined;
  /** The try's number when the delivery engine drives it. */
  readonly attempt: number | undefined;
  /** How many envelope recipients it is for. */
  readonly recipients: number;
  /** The SMTP connection it went over, once leased. */
  host?: string;
  port?: number;
  connectionId?: string;
  tlsVersion?: string;
  /** At the end: the outcome. */
  status?: OutcomeStatus;
  replyCode?: number;
  enhancedCode?: string;
  queueId?: string;
  accepted?: number;
  rejected?: number;
  deferred?: number;
  durationMs?: number;
  /** The failure (set by the channel for the error event). */
  error?: unknown;
}

/** What a delivery's report says (DeliveryReport has this shape). */
export interface ReportLike {
  readonly status: string;
  readonly messageId: string | undefined;
  readonly accepted: readonly string[];
  readonly rejected: readonly RecipientLike[];
  readonly deferred: readonly RecipientLike[];
  readonly reply?: { readonly code: number; readonly enhancedCode: string | undefined } | undefined;
  readonly queueId?: string | undefined;
  readonly error?: unknown;
}

interface RecipientLike {
  readonly address: string;
  readonly code: number | undefined;
  readonly enhancedCode: string | undefined;
}

/** What is known when a delivery starts. */
export interface DeliveryStart {
  readonly messageId?: string | undefined;
  /** The envelope recipients it is for. */
  readonly recipients: readonly string[];
  readonly route?: string | undefined;
  /** Set by the delivery engine: the try's number (the engine reports the outcome). */
  readonly attempt?: number | undefined;
  /** The message (only as a key: which tries of it were observed, see `observedTry`). */
  readonly message?: object | undefined;
}

/** The last try of each message that a backend observed (under the delivery engine). */
const observedTries = new WeakMap<object, number>();

/**
 * Whether a backend observed try `attempt` of `message`. A try that ended before it reached
 * its backend (the route could not be opened, no rate-limit token in time) was not; the
 * engine's event observer then observes it itself, so that every try has its trace.
 */
export function observedTry(message: object, attempt: number): boolean {
  return observedTries.get(message) === attempt;
}

/** The connection a delivery went over (the SMTP backend sets it once the lease is there). */
export function noteConnection(context: DeliveryContext | undefined, connection: { host: string; port: number; connectionId: string | undefined; tlsVersion: string | null | undefined }): void {
  if (context === undefined) return;
  context.host = connection.host;
  context.port = connection.port;
  if (connection.connectionId !== undefined) context.connectionId = connection.connectionId;
  if (connection.tlsVersion) context.tlsVersion = connection.tlsVersion;
}

const FAILED = new Set(["failed", "unknown"]);

export class DeliveryObservation {
  readonly backend: string;
  readonly sink: EventSink;
  readonly #clock: Clock;
  /** The named connection the backend was made for: the route of its deliveries unless the caller names one. */
  readonly #route: string | undefined;

  constructor(backend: string, sink: EventSink, clock: Clock, route?: string) {
    this.backend = backend;
    this.sink = sink;
    this.#clock = clock;
    this.#route = route;
  }

  /**
   * Runs one delivery. `work` gets the context (undefined when nothing observes) and
   * resolves to the report, or throws what the backend does not report (a stop at the
   * first failure, a programming error); `thrown` says what report a thrown delivery
   * failure stands for (undefined for a programming error: no outcome event).
   */
  async run<R extends ReportLike>(
    start: DeliveryStart,
    work: (context: DeliveryContext | undefined) => Promise<R>,
    thrown: (error: unknown) => ReportLike | undefined,
  ): Promise<R> {
    const traced = deliverTraced();
    if (!traced && !this.#wantsOutcome(start)) return work(undefined);
    if (start.message !== undefined && start.attempt !== undefined) observedTries.set(start.message, start.attempt);
    const context: DeliveryContext = {
      backend: this.backend,
      messageId: start.messageId,
      route: start.route ?? this.#route,
      attempt: start.attempt,
      recipients: start.recipients.length,
    };
    const startedAt = this.#clock.now();
    let report: R | undefined;
    let outcome: ReportLike | undefined;
    const body = async (): Promise<void> => {
      try {
        report = await work(context);
      } catch (error) {
        outcome = thrown(error);
        if (outcome !== undefined) this.#settle(context, outcome, startedAt);
        throw error;
      }
      outcome = report;
      this.#settle(context, report, startedAt);
      // A failed delivery ends the traced operation with its error (the report is still what the backend returns).
      if (FAILED.has(report.status)) throw failureOf(report);
    };
    try {
      if (traced) await deliverChannel.tracePromise(body, context);
      else await body();
    } catch (error) {
      if (outcome !== undefined) this.#emit(start, context, outcome);
      if (report !== undefined && error === failureOf(report)) return report;
      throw error;
    }
    this.#emit(start, context, report!);
    return report!;
  }

  /**
   * Whether `run` would observe a delivery starting now (a tracing subscriber, or a logger or
   * subscriber for its outcome): a caller that must build something to hand `run` its outcome
   * (the SMTP backend's batches) builds it only then.
   */
  wanted(start: DeliveryStart): boolean {
    return deliverTraced() || this.#wantsOutcome(start);
  }

  /** A delivery that ended before it began (the connection could not be opened): observed like any other. */
  reported<R extends ReportLike>(start: DeliveryStart, report: R): Promise<R> {
    return this.run(start, async () => report, () => undefined);
  }

  #wantsOutcome(start: DeliveryStart): boolean {
    const sink = this.sink;
    if (start.attempt !== undefined) return sink.wants("message.attempt");
    return sink.wants("message.sent") || sink.wants("message.partial") || sink.wants("message.failed") || sink.wants("message.unknown");
  }

  #settle(context: DeliveryContext, report: ReportLike, startedAt: number): void {
    if (report.messageId !== undefined) context.messageId = report.messageId;
    if (isOutcome(report.status)) context.status = report.status;
    if (report.reply !== undefined) {
      context.replyCode = report.reply.code;
      if (report.reply.enhancedCode !== undefined) context.enhancedCode = report.reply.enhancedCode;
    }
    if (report.queueId !== undefined) context.queueId = report.queueId;
    context.accepted = report.accepted.length;
    context.rejected = report.rejected.length;
    context.deferred = report.deferred.length;
    context.durationMs = Math.max(0, this.#clock.now() - startedAt);
  }

  #emit(start: DeliveryStart, context: DeliveryContext, report: ReportLike): void {
    const status = report.status;
    if (!isOutcome(status)) return;
    const sink = this.sink;
    const name = start.attempt !== undefined ? "message.attempt" : OUTCOME_EVENTS[status];
    if (!sink.wants(name)) return;
    const refused = refusedFields(report, sink);
    const failure = sink.failure(report.error);
    const fields = {
      messageId: context.messageId,
      backend: this.backend,
      route: context.route,
      attempt: context.attempt,
      host: context.host,
      port: context.port,
      connectionId: context.connectionId,
      tlsVersion: context.tlsVersion,
      recipients: sink.recipients(start.recipients),
      accepted: report.accepted.length,
      rejected: report.rejected.length,
      deferred: report.deferred.length,
      refused,
      queueId: context.queueId,
      durationMs: context.durationMs,
      ...failure,
      replyCode: context.replyCode ?? failure.replyCode,
      enhancedCode: context.enhancedCode ?? failure.enhancedCode,
    };
    if (name === "message.attempt") sink.emit(name, { ...fields, status });
    else sink.emit(name, fields);
  }
}

/**
 * The replies of the recipients not accepted: with `logRecipients` "count", one entry per
 * distinct reply with how many it refused; otherwise one per recipient, shown as the
 * setting says. Undefined when there is none (recipients without a reply are left out).
 */
export function refusedFields(report: ReportLike, sink: EventSink): readonly RefusedField[] | undefined {
  const refusals = [...report.rejected, ...report.deferred].filter((r) => r.code !== undefined);
  if (refusals.length === 0) return undefined;
  if (sink.logRecipients !== "count") {
    return refusals.map((r) => ({ recipient: (sink.recipients([r.address]) as readonly string[])[0]!, replyCode: r.code, ...(r.enhancedCode !== undefined ? { enhancedCode: r.enhancedCode } : {}) }));
  }
  const byReply = new Map<string, { replyCode: number | undefined; enhancedCode?: string; count: number }>();
  for (const r of refusals) {
    const key = `${r.code} ${r.enhancedCode ?? ""}`;
    const entry = byReply.get(key);
    if (entry !== undefined) entry.count += 1;
    else byReply.set(key, { replyCode: r.code, ...(r.enhancedCode !== undefined ? { enhancedCode: r.enhancedCode } : {}), count: 1 });
  }
  return [...byReply.values()];
}

function isOutcome(status: string): status is OutcomeStatus {
  return status === "sent" || status === "partial" || status === "failed" || status === "unknown";
}

/** The value a failed delivery ends its traced operation with: its error, else a stand-in naming the status. */
const standIns = new WeakMap<object, Error>();
function failureOf(report: ReportLike): unknown {
  if (report.error !== undefined) return report.error;
  let standIn = standIns.get(report);
  if (standIn === undefined) {
    standIn = new Error(`The message was not delivered (${report.status})`);
    standIns.set(report, standIn);
  }
  return standIn;
}
