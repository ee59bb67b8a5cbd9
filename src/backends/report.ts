/**
 * What happened to each message, the same shape from every backend: `DeliveryReport`.
 *
 * A backend makes one attempt per message and reports it; the delivery engine
 * (src/delivery) makes several and merges them into one report of the same shape. Every
 * envelope recipient ends in exactly one of `accepted`, `rejected` (refused for good) and
 * `deferred` (not delivered, for a reason that may pass — or, when the status is
 * "unknown", recipients whose final reply never came).
 *
 * Which list a refused recipient goes to, and what a failed message means for its
 * recipients, is read from classify (errors/classify.ts), never from reply codes here.
 */
import { AbortError, MissiveError, type SmtpError, type TransactionRecipients } from "../errors.js";
import { classify, recipientVerdict } from "../errors/classify.js";
import type { EmailMessage } from "../mime/message.js";

/**
 * "sent": every recipient accepted; "partial": some accepted, others rejected or deferred;
 * "failed": none accepted; "unknown": the message went out and no final reply came (it may
 * have been delivered: do not resend it blindly); "skipped": nobody to send to.
 */
export type DeliveryStatus = "sent" | "partial" | "failed" | "unknown" | "skipped";

/** A recipient that was not accepted, with the reply that said so (code undefined: there was no reply). */
export interface RecipientOutcome {
  readonly address: string;
  readonly code: number | undefined;
  readonly enhancedCode: string | undefined;
  readonly text: string;
}

/** A recipient the server refused, as part one's SMTP report called it. */
export type RefusedRecipient = RecipientOutcome;

/** One try of one message over one route. */
export interface DeliveryAttempt {
  /** The route's name (a named connection); undefined for a backend used on its own. */
  readonly route: string | undefined;
  /** When the attempt started (ms since the epoch, from the clock in use). */
  readonly at: number;
  /** How long was waited before it: backoff, a server's retryAfter, a rate limit's token. */
  readonly delayMs: number;
  /** This attempt's own outcome. */
  readonly status: Exclude<DeliveryStatus, "skipped">;
  /** The recipients it was for (a retry carries only those still deferred). */
  readonly recipients: readonly string[];
  /** Those it delivered to. */
  readonly accepted: readonly string[];
  /** Why it failed, when it did (a message-level failure; refused recipients are in the report's lists). */
  readonly error?: MissiveError | undefined;
}

/** Why the delivery engine stopped trying (only in reports the engine made). */
export type StopReason =
  | "delivered" // nothing left to try: every recipient accepted or refused for good
  | "gave-up" // classify said sending again cannot help
  | "unknown" // the outcome is unknown: never resent unless retryUnknown
  | "attempts" // the retry policy's attempts were used up
  | "deadline" // the retry policy's deadline passed (waiting longer would pass it)
  | "aborted"; // the caller's AbortSignal

export interface DeliveryReport {
  readonly message: EmailMessage;
  /** The Message-ID header as sent (the same in every attempt); undefined when never rendered. */
  readonly messageId: string | undefined;
  readonly status: DeliveryStatus;
  readonly accepted: readonly string[];
  readonly rejected: readonly RecipientOutcome[];
  readonly deferred: readonly RecipientOutcome[];
  /** The route that delivered (or was tried last); undefined for a backend used on its own. */
  readonly route?: string | undefined;
  /** Every attempt, in order. */
  readonly attempts: readonly DeliveryAttempt[];
  /** The last message-level failure, when the message was not delivered to everyone. */
  readonly error?: MissiveError | undefined;
  /** The server's final reply (after the data), or the reply that failed the message (SMTP). */
  readonly reply?: { readonly code: number; readonly enhancedCode: string | undefined; readonly text: string } | undefined;
  /** The server's queue id when its reply named one. */
  readonly queueId?: string | undefined;
  /** Why the delivery engine stopped (engine reports only). */
  readonly stopped?: StopReason | undefined;
}

/** What `sendMessagesWithReport` resolves to: the count Django's `sendMessages` returns, and a report per message. */
export interface SendReport {
  readonly sent: number;
  readonly reports: readonly DeliveryReport[];
}

/** Options of `sendMessagesWithReport` (and `sendMessages`), every backend. */
export interface SendOptions {
  /** Cancels waits and the message in flight (an AbortError, or "unknown" after the final dot). */
  readonly signal?: AbortSignal | undefined;
  /**
   * false: carry on after a failed message and report every one (never throw for a
   * delivery failure). Default: stop at the first failure and throw it (Django), unless
   * the backend's `failSilently` is set. The thrown error carries `reports`.
   */
  readonly stopOnError?: boolean | undefined;
  /** Send a message only to these of its envelope recipients (the engine's retry of deferred ones). */
  readonly recipients?: ReadonlyMap<EmailMessage, readonly string[]> | undefined;
  /** Awaited before each message starts (a rate limit's token); its failure is that message's. */
  readonly beforeEach?: ((message: EmailMessage, signal: AbortSignal | undefined) => Promise<void>) | undefined;
  /** The named connection the messages go through (routing, failover): their events and traces say it. */
  readonly route?: string | undefined;
  /**
   * Set by the delivery engine: this send is that try (1, 2, ...) of a delivery it drives.
   * The engine reports the message's outcome; the backend's own record of the try is the
   * `message.attempt` event.
   */
  readonly attempt?: number | undefined;
}

/** A sent message counts for `sendMessages` whether every recipient took it or only some (Django). */
export function countsAsSent(report: DeliveryReport): boolean {
  return report.status === "sent" || report.status === "partial";
}

/** "sent" or "partial", or "failed" when nobody accepted it: the status of a message the server took. */
export function deliveredStatus(accepted: number, notAccepted: number): "sent" | "partial" | "failed" {
  if (accepted === 0) return "failed";
  return notAccepted === 0 ? "sent" : "partial";
}

/** The envelope recipients of `message` (domains in IDNA unless it needs SMTPUTF8), limited to `only` when given. */
export function envelopeRecipients(message: EmailMessage, only?: readonly string[]): string[] {
  const to = message.envelope({ smtputf8: message.needsSmtpUtf8() }).to;
  if (only === undefined) return to;
  const wanted = new Set(only);
  return to.filter((address) => wanted.has(address));
}

export function skippedReport(message: EmailMessage): DeliveryReport {
  return { message, messageId: undefined, status: "skipped", accepted: [], rejected: [], deferred: [], route: undefined, attempts: [], error: undefined, reply: undefined, queueId: undefined };
}

/** A message the backend took for every recipient it was for. */
export function acceptedReport(message: EmailMessage, messageId: string, recipients: readonly string[], at: number): DeliveryReport {
  const accepted = [...recipients];
  return {
    message,
    messageId,
    status: "sent",
    accepted,
    rejected: [],
    deferred: [],
    route: undefined,
    attempts: [{ route: undefined, at, delayMs: 0, status: "sent", recipients: accepted, accepted }],
    error: undefined,
    reply: undefined,
    queueId: undefined,
  };
}

/** The RCPT refusals of a transaction sorted by what they mean: for good, or for now. */
export function sortRefusals(refusals: readonly { address: string; reply: { code: number; enhancedCode?: string | undefined; text: string } }[]): {
  rejected: RecipientOutcome[];
  deferred: RecipientOutcome[];
} {
  const rejected: RecipientOutcome[] = [];
  const deferred: RecipientOutcome[] = [];
  for (const r of refusals) {
    const outcome = { address: r.address, code: r.reply.code, enhancedCode: r.reply.enhancedCode, text: r.reply.text };
    if (recipientVerdict(r.reply) === "rejected") rejected.push(outcome);
    else deferred.push(outcome);
  }
  return { rejected, deferred };
}

/**
 * The report of a message that failed (or whose outcome is unknown) with `error`, sent to
 * `recipients`. Each recipient goes where the failure puts it: a recipient the RCPT reply
 * refused keeps that reply; the others share the message's fate — rejected when classify
 * says sending again cannot help, else deferred (for "unknown", those the server had
 * accepted: their final reply never came; for an abort, nobody refused them).
 */
export function failedReport(message: EmailMessage, messageId: string | undefined, error: MissiveError, recipients: readonly string[], at: number): DeliveryReport {
  const e = error as Partial<SmtpError> & { rejected?: unknown };
  const verdict = classify(error);
  const transaction = (e as { recipients?: TransactionRecipients }).recipients;
  const refusals = Array.isArray(e.rejected) ? (e.rejected as TransactionRecipients["rejected"]) : (transaction?.rejected ?? []);
  const byAddress = new Map(refusals.map((r) => [r.address, r]));
  const reply = e.replyCode !== undefined ? { code: e.replyCode, enhancedCode: e.enhancedCode, text: e.serverText ?? "" } : undefined;
  const rejected: RecipientOutcome[] = [];
  const deferred: RecipientOutcome[] = [];
  for (const address of recipients) {
    const refusal = byAddress.get(address);
    if (refusal !== undefined) {
      const sorted = sortRefusals([refusal]);
      rejected.push(...sorted.rejected);
      deferred.push(...sorted.deferred);
      continue;
    }
    const outcome: RecipientOutcome = { address, code: reply?.code, enhancedCode: reply?.enhancedCode, text: reply?.text ?? error.message };
    (verdict === "give-up" && !(error instanceof AbortError) ? rejected : deferred).push(outcome);
  }
  const status = verdict === "unknown" ? "unknown" : "failed";
  return {
    message,
    messageId,
    status,
    accepted: [],
    rejected,
    deferred,
    route: undefined,
    attempts: [{ route: undefined, at, delayMs: 0, status, recipients: [...recipients], accepted: [], error }],
    error,
    reply,
    queueId: undefined,
  };
}

const REPORTS = Symbol.for("missive.delivery.reports");

/**
 * Puts on a thrown delivery error the reports of every message whose outcome is known
 * (`error.reports`, not in toJSON). `reportsOf(error)` reads them back.
 */
export function attachReports<E>(error: E, reports: readonly DeliveryReport[]): E {
  if (typeof error === "object" && error !== null && Object.isExtensible(error)) {
    const frozen = Object.freeze([...reports]);
    Object.defineProperty(error, REPORTS, { value: frozen, configurable: true, enumerable: false });
    Object.defineProperty(error, "reports", { value: frozen, configurable: true, enumerable: false });
  }
  return error;
}

/** The reports a failed `sendMessages` left on its error, or undefined. */
export function reportsOf(error: unknown): readonly DeliveryReport[] | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const reports = (error as { [REPORTS]?: unknown })[REPORTS];
  return Array.isArray(reports) ? (reports as readonly DeliveryReport[]) : undefined;
}

/** Whether a delivery error is a MissiveError (what a report can hold). */
export function asMissiveError(error: unknown): MissiveError | undefined {
  return error instanceof MissiveError ? error : undefined;
}
