/**
 * What to do after a failure, decided once: `classify(error)` →
 *
 * - "retry-here": nothing was delivered and the same server may take it later (a 4xx to
 *   the message, a 421, a connection lost before the final dot);
 * - "next-route": this server (or the way to it) is the problem: another route may work
 *   (cannot connect, refused at the greeting, TLS, AUTH, an extension the message needs);
 * - "give-up": sending again cannot help (a 5xx to the message or every recipient, bad
 *   input, a cancelled send, a bug);
 * - "unknown": the final dot left and no reply came, so the message may have been
 *   delivered: never resent automatically.
 *
 * One table, first matching row wins, over what an error says about itself: its `code`,
 * the `stage` the SMTP client recorded, the reply code, the TLS or socket error code. Each
 * row also says whether the failure is transient (the same attempt may succeed later);
 * `retryable` on every error is that column. Retry loops, failover and the outbox worker
 * act on this answer and never read reply codes themselves.
 *
 * Ground floor, beside errors.ts (which imports it for `retryable`): it reads errors by
 * their fields and the cross-copy brand, never by class, so it imports nothing at runtime.
 */
import type { ErrorCode, SmtpStage } from "../errors.js";

export type Verdict = "retry-here" | "next-route" | "give-up" | "unknown";

export interface Classification {
  readonly verdict: Verdict;
  /** The same attempt may succeed later (what `retryable` says). */
  readonly transient: boolean;
  /**
   * The route itself failed (cannot connect, greeting, TLS, EHLO, AUTH): counts toward its
   * circuit. A "next-route" verdict about this message only (an extension it needs, a rate
   * limit's wait) does not.
   */
  readonly routeFault: boolean;
  /** The table row that decided, in words. */
  readonly rule: string;
}

/** What the table reads of an error. */
export interface FailureView {
  /** The stable code of a missive error; undefined for anything else (a bug, a TypeError). */
  readonly code: ErrorCode | undefined;
  readonly stage: SmtpStage | undefined;
  readonly replyCode: number | undefined;
  /** Node's TLS error code, or a socket error code seen during the handshake. */
  readonly tlsCode: string | undefined;
  /** The socket error code under a connect failure (ECONNREFUSED, ENOTFOUND, …). */
  readonly osCode: string | undefined;
  /** The TLS handshake ended because the connection closed (no TLS error at all). */
  readonly closedDuringHandshake: boolean;
  /** The reply codes of every refused recipient (ERCPT_REFUSED). */
  readonly refusedCodes: readonly number[];
  /** An explicit retryable given by whoever made the error (custom backends' BackendError). */
  readonly hint: boolean | undefined;
}

/** Socket-level failures: the network or the peer dropped the connection, nothing was decided. */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT", "ENETRESET", "EHOSTUNREACH", "ENETUNREACH"]);

/** Connect failures that another attempt at the same name will not fix: the name does not resolve. */
export const PERMANENT_CONNECT_CODES: ReadonlySet<string> = new Set(["ENOTFOUND", "EAI_NONAME", "EINVAL"]);

const ROUTE_STAGES: ReadonlySet<SmtpStage> = new Set(["connect", "greeting", "tls", "ehlo", "auth"]);
const BAD_INPUT: ReadonlySet<string> = new Set(["EBADHEADER", "EADDRESS", "EENCODING", "EINVALID", "ECONFIG"]);
/** Failures without a reply: the connection broke, timed out or went out of step. */
const NO_REPLY: ReadonlySet<string> = new Set(["ECLOSED", "ETIMEOUT", "EPROTOCOL"]);

interface Rule {
  readonly rule: string;
  readonly when: (f: FailureView) => boolean;
  readonly verdict: Verdict;
  readonly transient: boolean;
  /** For a "next-route" row: false when the failure is about the message, not the route. Default true. */
  readonly routeFault?: false;
}

const is4xx = (code: number | undefined) => code !== undefined && code >= 400 && code < 500;
const is5xx = (code: number | undefined) => code !== undefined && code >= 500;
const route = (f: FailureView) => f.stage !== undefined && ROUTE_STAGES.has(f.stage);

/** The table, in order. Exported for documentation and tests. */
export const CLASSIFICATION_RULES: readonly Rule[] = [
  { rule: "not a missive error (a bug)", when: (f) => f.code === undefined, verdict: "give-up", transient: false },
  { rule: "bad input: header, address, encoding, argument or setting", when: (f) => BAD_INPUT.has(f.code!), verdict: "give-up", transient: false },
  { rule: "cancelled through its AbortSignal", when: (f) => f.code === "EABORTED", verdict: "give-up", transient: false },
  { rule: "final dot sent, no reply", when: (f) => f.code === "EDELIVERY_UNKNOWN", verdict: "unknown", transient: false },
  { rule: "a backend's own failure (retry-here when the backend says it is transient)", when: (f) => f.code === "EBACKEND", verdict: "give-up", transient: false },
  { rule: "the server lacks an extension the message needs (SMTPUTF8, 8BITMIME, SIZE, DSN)", when: (f) => f.code === "ECAPABILITY", verdict: "next-route", transient: false, routeFault: false },
  { rule: "a rate limit had no token within maxWait: nothing sent", when: (f) => f.code === "ERATE_LIMITED", verdict: "next-route", transient: true, routeFault: false },
  { rule: "every route's circuit is open: nothing sent", when: (f) => f.code === "ECIRCUIT_OPEN", verdict: "next-route", transient: true, routeFault: false },
  { rule: "no reply after the final dot", when: (f) => f.stage === "final-dot" && f.replyCode === undefined, verdict: "unknown", transient: false },
  { rule: "host name does not resolve", when: (f) => (f.stage === "connect" || f.code === "ECONNECT") && f.osCode !== undefined && PERMANENT_CONNECT_CODES.has(f.osCode), verdict: "next-route", transient: false },
  { rule: "connect, greeting, TLS, EHLO or AUTH answered 4xx (greeting 421, STARTTLS 454, AUTH 454)", when: (f) => route(f) && is4xx(f.replyCode), verdict: "next-route", transient: true },
  { rule: "connect, greeting, TLS, EHLO or AUTH answered 5xx (greeting 554, EHLO 554, AUTH 535)", when: (f) => route(f) && is5xx(f.replyCode), verdict: "next-route", transient: false },
  {
    rule: "TLS: connection dropped during the handshake",
    when: (f) => f.code === "ETLS" && f.replyCode === undefined && ((f.tlsCode !== undefined && NETWORK_ERROR_CODES.has(f.tlsCode)) || f.closedDuringHandshake),
    verdict: "next-route",
    transient: true,
  },
  { rule: "TLS: certificate, version or STARTTLS not offered", when: (f) => f.code === "ETLS", verdict: "next-route", transient: false },
  { rule: "AUTH impossible (no mechanism in common, plaintext refused)", when: (f) => f.code === "EAUTH" && f.replyCode === undefined, verdict: "next-route", transient: false },
  { rule: "connect, greeting, TLS, EHLO or AUTH: cannot connect, dropped, timed out or out of step", when: (f) => route(f) || f.code === "ECONNECT", verdict: "next-route", transient: true },
  { rule: "421: the server is closing the channel (RFC 5321 §3.8)", when: (f) => f.replyCode === 421, verdict: "retry-here", transient: true },
  { rule: "every recipient refused, all with 4xx", when: (f) => f.code === "ERCPT_REFUSED" && f.refusedCodes.length > 0 && f.refusedCodes.every(is4xx), verdict: "retry-here", transient: true },
  { rule: "every recipient refused, some for good (5xx)", when: (f) => f.code === "ERCPT_REFUSED", verdict: "give-up", transient: false },
  { rule: "4xx to the message before the final dot, or after it", when: (f) => is4xx(f.replyCode), verdict: "retry-here", transient: true },
  { rule: "5xx to the message", when: (f) => is5xx(f.replyCode), verdict: "give-up", transient: false },
  { rule: "an odd 2xx/3xx where another reply was due (250 to DATA): nothing taken", when: (f) => f.replyCode !== undefined, verdict: "retry-here", transient: true },
  { rule: "dropped, timed out or out of step before the final dot", when: (f) => NO_REPLY.has(f.code!), verdict: "retry-here", transient: true },
  { rule: "anything else", when: () => true, verdict: "give-up", transient: false },
];

/** The verdict for `error`: "retry-here" | "next-route" | "give-up" | "unknown". Pure. */
export function classify(error: unknown): Verdict {
  return classification(error).verdict;
}

/** The verdict with whether the failure is transient, and the row that decided. */
export function classification(error: unknown): Classification {
  const view = viewOf(error);
  for (const row of CLASSIFICATION_RULES) {
    if (!row.when(view)) continue;
    // A backend that says its failure is transient (a custom backend's BackendError).
    if (view.code === "EBACKEND" && view.hint === true) return { verdict: "retry-here", transient: true, routeFault: false, rule: "a backend's own failure, transient by its word" };
    return { verdict: row.verdict, transient: row.transient, routeFault: row.verdict === "next-route" && row.routeFault !== false, rule: row.rule };
  }
  throw new Error("unreachable: the last classification rule matches everything");
}

/**
 * What one RCPT reply means for that recipient: "accepted" (2xx), "over-limit" (452 4.5.3:
 * more recipients than the server takes in one transaction, RFC 5321 §4.5.3.1.10 — send
 * the rest in another transaction now), "deferred" (any other 4xx: try that recipient again
 * later) or "rejected" (5xx, or anything else: refused for good).
 */
export type RecipientVerdict = "accepted" | "over-limit" | "deferred" | "rejected";

export function recipientVerdict(reply: { readonly code: number; readonly enhancedCode?: string | undefined }): RecipientVerdict {
  if (reply.code >= 200 && reply.code < 300) return "accepted";
  if (reply.code === 452 && reply.enhancedCode === "4.5.3") return "over-limit";
  if (is4xx(reply.code)) return "deferred";
  return "rejected";
}

/** The cross-copy brand errors.ts puts on every missive error (the class names of its kinds). */
const KINDS = Symbol.for("missive.error.kinds");
/** Where errors.ts keeps an explicit `retryable` given at construction. */
export const RETRY_HINT = Symbol.for("missive.error.retryHint");

/** Reads the fields the table needs; anything not a missive error has no code. */
export function viewOf(error: unknown): FailureView {
  const e = (typeof error === "object" && error !== null ? error : {}) as Record<string | symbol, unknown>;
  const kinds = e[KINDS];
  const missive = Array.isArray(kinds);
  const cause = e["cause"] as Record<string | symbol, unknown> | undefined;
  const causeKinds = typeof cause === "object" && cause !== null ? cause[KINDS] : undefined;
  const rejected = Array.isArray(e["rejected"]) ? (e["rejected"] as { reply?: { code?: unknown } }[]) : [];
  return {
    code: missive && typeof e["code"] === "string" ? (e["code"] as ErrorCode) : undefined,
    stage: typeof e["stage"] === "string" ? (e["stage"] as SmtpStage) : undefined,
    replyCode: typeof e["replyCode"] === "number" ? e["replyCode"] : undefined,
    tlsCode: typeof e["tlsCode"] === "string" ? e["tlsCode"] : undefined,
    osCode: typeof cause === "object" && cause !== null && typeof cause["code"] === "string" && !Array.isArray(causeKinds) ? cause["code"] : undefined,
    closedDuringHandshake: Array.isArray(causeKinds) && causeKinds.includes("SmtpClosedError"),
    refusedCodes: rejected.map((r) => (typeof r.reply?.code === "number" ? r.reply.code : 0)),
    hint: typeof e[RETRY_HINT] === "boolean" ? (e[RETRY_HINT] as boolean) : undefined,
  };
}
