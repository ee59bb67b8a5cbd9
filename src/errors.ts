/**
 * Every error missive throws, in one place.
 *
 * Each class carries a stable `code` (documented in ERROR_CODES and, from there, in the
 * README) and `retryable`: whether sending the same thing again later can help. `retryable`
 * is not decided where an error is thrown: it is read from the one classification table
 * (errors/classify.ts), which also says whether to retry here, try another route, give up,
 * or treat the outcome as unknown.
 * `instanceof` works across two copies of the package (a CJS and an ESM build loaded side
 * by side, or two versions in node_modules) because it checks a `Symbol.for` brand listing
 * the class names of the error, not the prototype chain.
 */

import { classification, RETRY_HINT, type Classification } from "./errors/classify.js";

const KINDS = Symbol.for("missive.error.kinds");

/** The stable codes, with what each means. The README's error table is generated from this. */
export const ERROR_CODES = {
  EBADHEADER: "A header name or value (or a filename) contains CR, LF or NUL, or is otherwise unusable in a header.",
  EADDRESS: "An email address or address list could not be parsed or is not allowed where it was given.",
  EENCODING: "Text could not be encoded: an unknown charset, a lone surrogate, or bytes the charset cannot hold.",
  EINVALID: "An argument or option has the wrong type or value; nothing was sent.",
  ECONFIG: "A setting (configure(), EMAIL_URL or an EMAIL_* variable) is invalid; the message names it.",
  ECONNECT: "The TCP connection to the SMTP server could not be made or was refused at the greeting.",
  ETIMEOUT: "A deadline passed; `phase` says which (connect, greeting, tls, command, data, final-dot).",
  ETLS: "TLS could not be set up: certificate not trusted, wrong host name, STARTTLS not offered or refused.",
  EAUTH: "Authentication failed, or was refused because it would have sent credentials in plaintext.",
  ESMTP_REPLY: "The server answered a command with an unexpected reply; `replyCode` and `serverText` say what.",
  ERCPT_REFUSED: "The server refused every recipient; `rejected` lists each address with its reply.",
  EDELIVERY_UNKNOWN: "The message's final dot left the client but no reply came: it may or may not have been delivered.",
  EPROTOCOL: "The server broke the SMTP protocol (malformed or oversized reply); the connection was dropped.",
  ECLOSED: "The connection closed (dropped by the server, or closed by the client) before the step finished.",
  ECAPABILITY: "The message needs something the server did not advertise (SMTPUTF8, 8BITMIME, or a larger SIZE).",
  EABORTED: "The operation was cancelled through its AbortSignal.",
  EBACKEND: "A backend could not do its work (for example, the file backend's directory is not writable).",
  ECATCHER_TIMEOUT: "The mail catcher's waitFor() saw no matching message before its timeout.",
  ERATE_LIMITED: "A backend's rate limit (`rateLimit`) had no token within `maxWait`; nothing was sent, another route may take it.",
  ECIRCUIT_OPEN: "Every route's circuit was open after repeated route failures; nothing was sent (it closes again after its cooldown).",
  EOUTBOX: "The outbox could not do what was asked: the store is not usable (a spool that is not writable, Redis unreachable), a stored message is unreadable or from a newer format, or the message is not in a state that allows it; `reason` says which.",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface MissiveErrorOptions {
  cause?: unknown;
  /**
   * For errors the classification table cannot see into: a custom backend's BackendError
   * may say that its failure is transient. missive's own errors never set it.
   */
  retryable?: boolean;
  /**
   * How long (ms) the failing side asked to be left alone before the next try (a provider's
   * Retry-After, a rate limit's wait). The delivery engine's retry waits at least this long.
   */
  retryAfter?: number;
}

export class MissiveError extends Error {
  readonly code: ErrorCode;
  /** Milliseconds to wait before trying again, when whoever failed said so (see MissiveErrorOptions). */
  declare readonly retryAfter?: number;
  declare readonly [KINDS]: readonly string[];

  constructor(code: ErrorCode, message: string, options: MissiveErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.retryable !== undefined) Object.defineProperty(this, RETRY_HINT, { value: options.retryable, enumerable: false });
    if (options.retryAfter !== undefined && Number.isFinite(options.retryAfter) && options.retryAfter >= 0) {
      Object.defineProperty(this, "retryAfter", { value: options.retryAfter, enumerable: true });
    }
    const kinds: string[] = [];
    for (let proto = Object.getPrototypeOf(this); proto && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {
      kinds.push((proto.constructor as { kindName?: string }).kindName ?? proto.constructor.name);
    }
    Object.defineProperty(this, KINDS, { value: Object.freeze(kinds), enumerable: false });
    Object.defineProperty(this, "name", { value: kinds[0] ?? "MissiveError", enumerable: false, configurable: true });
  }

  /** Whether sending the same thing again later can help: the transient column of classify(). */
  get retryable(): boolean {
    return classification(this).transient;
  }

  /** What to do about it, from the classification table (errors/classify.ts). */
  get classification(): Classification {
    return classification(this);
  }

  /** The class's stable name, used for the cross-copy brand (minifiers may rename classes). */
  static kindName = "MissiveError";

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== "object" || value === null) return false;
    const kinds = (value as { [KINDS]?: unknown })[KINDS];
    return Array.isArray(kinds) && kinds.includes(this.kindName);
  }

  /** A plain object for logs; never holds a secret because no error is ever built from one. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { name: this.name, code: this.code, message: this.message, retryable: this.retryable };
    for (const [key, value] of Object.entries(this)) {
      if (!(key in out) && typeof value !== "function") out[key] = value;
    }
    return out;
  }
}

/** CR/LF/NUL in a header name, value, display name or filename (header injection), or a bad header name. */
export class BadHeaderError extends MissiveError {
  static override kindName = "BadHeaderError";
  /** The header or field that was rejected, e.g. "Subject", "to", "attachment filename". */
  readonly field: string;
  constructor(field: string, message: string) {
    super("EBADHEADER", message);
    this.field = field;
  }
}

export class InvalidAddressError extends MissiveError {
  static override kindName = "InvalidAddressError";
  readonly input: string;
  constructor(input: string, message: string) {
    super("EADDRESS", message);
    this.input = input;
  }
}

export class EncodingError extends MissiveError {
  static override kindName = "EncodingError";
  constructor(message: string, options?: MissiveErrorOptions) {
    super("EENCODING", message, options);
  }
}

export class InvalidArgumentError extends MissiveError {
  static override kindName = "InvalidArgumentError";
  constructor(message: string) {
    super("EINVALID", message);
  }
}

export class ConfigurationError extends MissiveError {
  static override kindName = "ConfigurationError";
  /** The setting that is wrong, e.g. "EMAIL_PORT" or "port". */
  readonly setting: string;
  constructor(setting: string, message: string) {
    super("ECONFIG", message);
    this.setting = setting;
  }
}

export class BackendError extends MissiveError {
  static override kindName = "BackendError";
  constructor(message: string, options?: MissiveErrorOptions) {
    super("EBACKEND", message, options);
  }
}

/** An SMTP reply as the errors carry it (the parser's type is structurally the same). */
export interface ErrorReply {
  readonly code: number;
  readonly enhancedCode?: string | undefined;
  readonly lines: readonly string[];
  readonly text: string;
}

/** How much of a server's reply text an error message quotes; `serverText` keeps all of it. */
export const MAX_QUOTED_REPLY_TEXT = 200;

/**
 * `"550 5.1.1 text"` for an error message: the code and the server's text, cut after
 * MAX_QUOTED_REPLY_TEXT characters (a server may send kilobytes; the message stays readable).
 */
export function quoteReply(reply: ErrorReply): string {
  const text = reply.text;
  if (text.length <= MAX_QUOTED_REPLY_TEXT) return `${reply.code} ${text}`;
  let end = MAX_QUOTED_REPLY_TEXT;
  // Never cut a surrogate pair in half.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${reply.code} ${text.slice(0, end)}… (${text.length - end} more characters)`;
}

export interface SmtpErrorDetails {
  cause?: unknown;
  /** The command that was answered, with any credential replaced by `<redacted>`. */
  command?: string | undefined;
  reply?: ErrorReply | undefined;
}

/**
 * Which step of an SMTP session failed, as the client records it on the error:
 * the TCP `connect`, the `greeting`, `tls` (implicit TLS, STARTTLS and its handshake),
 * `ehlo` (or its HELO fallback), `auth`, then per message `mail`, `rcpt`, `data` (the DATA
 * command), `body` (the message bytes, or BDAT chunks before the last), `final-dot` (the
 * final dot or BDAT LAST, and its reply), `rset`, and `noop`/`quit` outside a message.
 */
export type SmtpStage = "connect" | "greeting" | "tls" | "ehlo" | "auth" | "mail" | "rcpt" | "data" | "body" | "final-dot" | "rset" | "noop" | "quit";

/**
 * Base of every SMTP failure. Whether it is retryable follows from its stage and reply
 * (errors/classify.ts): a 4xx or a dropped connection before the final dot, yes; a 5xx to
 * the message, no.
 */
export class SmtpError extends MissiveError {
  static override kindName = "SmtpError";
  readonly command: string | undefined;
  readonly replyCode: number | undefined;
  readonly enhancedCode: string | undefined;
  readonly serverText: string | undefined;
  /** Where it happened; set by the SMTP client (undefined for an error made elsewhere). */
  readonly stage: SmtpStage | undefined = undefined;
  /** Whether any byte of this message's body had left the client when it happened. */
  readonly bodySent: boolean = false;
  /** The whole reply, when there was one (not in toJSON: code, enhanced code and text are). */
  declare readonly reply: ErrorReply | undefined;
  /**
   * For a failure after the RCPT commands were answered (a refused or unanswered DATA, the
   * body, the final dot): which recipients the server had accepted and refused in that
   * transaction, as the SMTP client records it (not in toJSON).
   */
  declare readonly recipients: TransactionRecipients | undefined;

  constructor(message: string, details: SmtpErrorDetails = {}, code: ErrorCode = "ESMTP_REPLY") {
    const reply = details.reply;
    super(code, message, { cause: details.cause });
    this.command = details.command;
    this.replyCode = reply?.code;
    this.enhancedCode = reply?.enhancedCode;
    this.serverText = reply?.text;
    Object.defineProperty(this, "reply", { value: reply, enumerable: false });
  }
}

/**
 * Records on an SMTP error where it happened (the SMTP client calls this as an error
 * leaves each step). The first record wins: the innermost step is the one that failed, and
 * one connection failure may surface in several steps. Other errors pass unchanged.
 */
export function recordStage<E>(error: E, stage: SmtpStage, bodySent: boolean): E {
  if (error instanceof SmtpError && error.stage === undefined) {
    (error as { stage: SmtpStage | undefined }).stage = stage;
    (error as { bodySent: boolean }).bodySent = bodySent;
  }
  return error;
}

/** The recipients of a transaction as the RCPT replies left them. */
export interface TransactionRecipients {
  readonly accepted: readonly string[];
  readonly rejected: readonly RejectedRecipient[];
}

/**
 * Records on an SMTP error which recipients the server had accepted and refused before the
 * transaction failed (the SMTP client calls this for failures after RCPT). The first
 * record wins; other errors pass unchanged.
 */
export function recordRecipients<E>(error: E, accepted: readonly string[], rejected: readonly RejectedRecipient[]): E {
  if (error instanceof SmtpError && error.recipients === undefined) {
    Object.defineProperty(error, "recipients", { value: Object.freeze({ accepted: [...accepted], rejected: [...rejected] }), enumerable: false });
  }
  return error;
}

export class SmtpConnectError extends SmtpError {
  static override kindName = "SmtpConnectError";
  constructor(message: string, details: SmtpErrorDetails = {}) {
    super(message, details, "ECONNECT");
  }
}

/** Which deadline passed: a step's (connect … final-dot), or the whole message's (`message`, the backend's `deadline`). */
export type TimeoutPhase = "connect" | "greeting" | "tls" | "command" | "data" | "final-dot" | "message";

export class SmtpTimeoutError extends SmtpError {
  static override kindName = "SmtpTimeoutError";
  readonly phase: TimeoutPhase;
  readonly timeoutMs: number;
  /** `hint`: what probably went wrong and which option fixes it, appended to the message. */
  constructor(phase: TimeoutPhase, timeoutMs: number, details: SmtpErrorDetails & { hint?: string | undefined } = {}) {
    const waiting = details.command ? ` (waiting for the reply to ${details.command})` : "";
    super(`SMTP ${phase} timed out after ${timeoutMs} ms${waiting}${details.hint ? `: ${details.hint}` : ""}`, details, "ETIMEOUT");
    this.phase = phase;
    this.timeoutMs = timeoutMs;
  }
}

export class SmtpTlsError extends SmtpError {
  static override kindName = "SmtpTlsError";
  /** Node's TLS error code when there is one, e.g. "DEPTH_ZERO_SELF_SIGNED_CERT", "ERR_TLS_CERT_ALTNAME_INVALID". */
  readonly tlsCode: string | undefined;
  constructor(message: string, details: SmtpErrorDetails & { tlsCode?: string | undefined } = {}) {
    super(message, details, "ETLS");
    this.tlsCode = details.tlsCode;
  }
}

export class SmtpAuthError extends SmtpError {
  static override kindName = "SmtpAuthError";
  constructor(message: string, details: SmtpErrorDetails = {}) {
    super(message, details, "EAUTH");
  }
}

export interface RejectedRecipient {
  readonly address: string;
  readonly reply: ErrorReply;
}

/** Refused recipients named in SmtpRecipientsRefusedError's message; `rejected` lists all. */
const MAX_LISTED_RECIPIENTS = 10;

export class SmtpRecipientsRefusedError extends SmtpError {
  static override kindName = "SmtpRecipientsRefusedError";
  readonly rejected: readonly RejectedRecipient[];
  constructor(rejected: readonly RejectedRecipient[], details: SmtpErrorDetails = {}) {
    const shown = rejected.slice(0, MAX_LISTED_RECIPIENTS).map((r) => `${r.address}: ${quoteReply(r.reply)}`);
    if (rejected.length > MAX_LISTED_RECIPIENTS) shown.push(`and ${rejected.length - MAX_LISTED_RECIPIENTS} more`);
    const summary = shown.join("; ");
    super(`The server refused every recipient (${summary})`, { reply: rejected[0]?.reply, ...details }, "ERCPT_REFUSED");
    this.rejected = rejected;
  }
}

/**
 * The final dot left the client and no reply came. The message may have been delivered:
 * never retried automatically, because a resend may deliver it twice.
 */
export class SmtpDeliveryUnknownError extends SmtpError {
  static override kindName = "SmtpDeliveryUnknownError";
  constructor(message: string, details: SmtpErrorDetails = {}) {
    super(message, details, "EDELIVERY_UNKNOWN");
  }
}

export class SmtpProtocolError extends SmtpError {
  static override kindName = "SmtpProtocolError";
  constructor(message: string, details: SmtpErrorDetails = {}) {
    super(message, details, "EPROTOCOL");
  }
}

export class SmtpClosedError extends SmtpError {
  static override kindName = "SmtpClosedError";
  constructor(message: string, details: SmtpErrorDetails = {}) {
    super(message, details, "ECLOSED");
  }
}

export class SmtpCapabilityError extends SmtpError {
  static override kindName = "SmtpCapabilityError";
  /** The extension that was needed: "SMTPUTF8", "8BITMIME", "SIZE", "DSN", "CHUNKING", "AUTH", "STARTTLS". */
  readonly capability: string;
  constructor(capability: string, message: string, details: SmtpErrorDetails = {}) {
    super(message, details, "ECAPABILITY");
    this.capability = capability;
  }
}

export class AbortError extends MissiveError {
  static override kindName = "AbortError";
  constructor(message = "The operation was aborted", options?: MissiveErrorOptions) {
    super("EABORTED", message, options);
  }
}

/**
 * A rate limit had no token for the message within its `maxWait`: nothing was sent. The
 * delivery engine tries the next route at once (classify: "next-route", not a fault of
 * the route); `retryAfter` says when this route would have had a token.
 */
export class RateLimitedError extends MissiveError {
  static override kindName = "RateLimitedError";
  /** The named backend whose limit it was, when known. */
  readonly route: string | undefined;
  constructor(route: string | undefined, waitMs: number, maxWait: number) {
    super(
      "ERATE_LIMITED",
      `The rate limit${route === undefined ? "" : ` of "${route}"`} has no token for ${Math.ceil(waitMs)} ms, longer than its maxWait of ${maxWait} ms; nothing was sent`,
      { retryAfter: Math.ceil(waitMs) },
    );
    this.route = route;
  }
}

/** Every route the message could take had its circuit open: nothing was sent. */
export class CircuitOpenError extends MissiveError {
  static override kindName = "CircuitOpenError";
  /** The routes skipped, in order. */
  readonly routes: readonly string[];
  constructor(routes: readonly string[], retryAfter: number | undefined) {
    super(
      "ECIRCUIT_OPEN",
      `Every route's circuit is open after repeated failures (${routes.join(", ")}); nothing was sent${retryAfter === undefined ? "" : `; the first closes for a probe in ${retryAfter} ms`}`,
      retryAfter === undefined ? {} : { retryAfter },
    );
    this.routes = Object.freeze([...routes]);
  }
}

/** Why an OutboxError was thrown. */
export type OutboxProblem = "unusable" | "corrupt" | "version" | "not-found" | "state" | "too-large" | "lease-lost";

/**
 * The outbox (missive/outbox, missive/bullmq) could not do what was asked. `reason`:
 * "unusable" (the spool or Redis cannot be used), "corrupt" (a stored message could not be
 * read: it is quarantined), "version" (written by a newer missive: left alone),
 * "not-found" (no such id), "state" (release/retry of a message not in a state that
 * allows it), "too-large" (over the store's size limit), "lease-lost" (another worker
 * took the message back; this one must not send it).
 */
export class OutboxError extends MissiveError {
  static override kindName = "OutboxError";
  readonly reason: OutboxProblem;
  /** The message's outbox id, when the problem is about one. */
  readonly id: string | undefined;
  constructor(reason: OutboxProblem, message: string, options: MissiveErrorOptions & { id?: string | undefined } = {}) {
    super("EOUTBOX", message, options);
    this.reason = reason;
    this.id = options.id;
  }
}

/** `startMailCatcher(...).waitFor()` saw no matching message in time. */
export class MailCatcherTimeoutError extends MissiveError {
  static override kindName = "MailCatcherTimeoutError";
  /** The timeout that passed, in milliseconds. */
  readonly timeout: number;
  constructor(timeout: number, seen: number) {
    super("ECATCHER_TIMEOUT", `No caught message matched within ${timeout} ms (${seen} message${seen === 1 ? "" : "s"} caught so far)`);
    this.timeout = timeout;
  }
}
