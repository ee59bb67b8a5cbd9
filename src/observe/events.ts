/**
 * What missive tells a logger and `diagnostics_channel`: every event's name, its level and
 * its record. Records are flat objects with stable keys (`event`, `connectionId`, `host`,
 * `port`, `messageId`, `route`, `attempt`, `durationMs`, `replyCode`, `enhancedCode`,
 * `queueId`, `recipients`, ...), the same for the logger and for the event's channel
 * (`missive:event:<name>`, src/observe/channels.ts).
 *
 * Levels: `info` is the production log (each connection's connect, TLS, AUTH and close,
 * each message's outcome, circuits closing and probing); `warn` what needs an eye (a
 * partial delivery, a retry, a failover, a circuit opening); `error` a message that failed
 * or whose outcome is unknown; `debug` adds the SMTP dialogue (AUTH redacted), each try
 * of an engine-driven delivery, skipped routes and rate-limit waits.
 *
 * A new area adds its events here: a line in `EVENTS`, a record type in `MissiveEvents`
 * and a channel name in channels.ts (the outbox will add `outbox.*`).
 *
 * Nothing is built unless someone wants it: `sink.wants(name)` is a level check and a
 * `hasSubscribers`, and callers ask it before they compute a record. Ground floor.
 */
import { eventChannels } from "./channels.js";
import { LogTarget, recipientsField, type Logger, type LogLevel, type LogRecipients, type RecipientsField } from "./log.js";

/**
 * Each event's level, the message a log line carries with it, and what it means (the
 * README's table of events is generated from `about`).
 */
export const EVENTS = {
  "smtp.connect": { level: "info", msg: "SMTP connection open", about: "The TCP connection to the server is up. `durationMs`: the TCP connect; `localAddress`." },
  "smtp.tls": { level: "info", msg: "TLS established", about: "A TLS handshake finished (implicit TLS, or after STARTTLS: `starttls`). `tlsVersion`, `cipher`, `authorized` (certificate and name verified), `durationMs`." },
  "smtp.auth": { level: "info", msg: "authenticated", about: "AUTH succeeded. `mechanism` (PLAIN, LOGIN, CRAM-MD5, XOAUTH2), `durationMs`; never the user name or the secret." },
  "smtp.command": { level: "debug", msg: "SMTP command", about: "A command line sent (`command`): the dialogue, AUTH payloads `<redacted>`." },
  "smtp.reply": { level: "debug", msg: "SMTP reply", about: "A reply read: `replyCode`, `enhancedCode`, `text`." },
  "smtp.close": { level: "info", msg: "SMTP connection closed", about: "The connection closed, once: `reason` \"quit\" (after QUIT) or \"error\" (`errorCode`, `error`: dropped, timed out, refused, aborted); `messages` it carried, `durationMs` it was open." },
  "message.sent": { level: "info", msg: "message sent", about: "Every recipient accepted. `messageId`, `backend`, `route`, `host`, `port`, `connectionId`, `tlsVersion`, `recipients`, `accepted` / `rejected` / `deferred` (counts), `replyCode`, `enhancedCode`, `queueId`, `durationMs`; under failover `attempts` and `stopped`." },
  "message.partial": { level: "warn", msg: "message sent to some recipients only", about: "Some recipients accepted, others refused or deferred: the keys of message.sent, and `refused` (the replies of the others)." },
  "message.failed": { level: "error", msg: "message not delivered", about: "No recipient accepted (after every retry, under failover): the keys of message.sent, `errorCode`, `error`, `stage`." },
  "message.unknown": { level: "error", msg: "message sent, outcome unknown (no reply after the data)", about: "The data went out and no reply came: it may have been delivered. Never resent by itself (`retryUnknown`)." },
  "message.attempt": { level: "debug", msg: "delivery attempt ended", about: "One try of a delivery the failover engine drives, from the route's backend: `attempt`, `status`, and the keys of message.sent. The engine logs the outcome." },
  "message.retry": { level: "warn", msg: "message will be retried", about: "A try failed and the engine waits `delayMs` before the next, on `route`. `attempt` (the try that failed), `errorCode`, `error`, `stage`, `recipients` still to deliver." },
  "message.failover": { level: "warn", msg: "message moves to the next route", about: "`route` failed at the route level (connect, TLS, AUTH, greeting): `nextRoute` is tried at once, as `attempt`." },
  "route.skip": { level: "debug", msg: "route skipped: its circuit is open", about: "`route` was passed over for this message: its circuit is open." },
  "route.circuit_open": { level: "warn", msg: "route circuit opened: the route is skipped for its cooldown", about: "`route` failed at the route level too many times in a row: skipped for its cooldown." },
  "route.circuit_probe": { level: "info", msg: "route circuit half-open: one probe goes through", about: "The cooldown passed: one try goes through `route`." },
  "route.circuit_close": { level: "info", msg: "route circuit closed: the route is in use again", about: "A try through `route` succeeded: in use again." },
  "ratelimit.wait": { level: "debug", msg: "waited for the rate limit", about: "A try waited `delayMs` for `route`'s rate-limit token." },
} as const satisfies Record<string, { readonly level: LogLevel; readonly msg: string; readonly about: string }>;

export type EventName = keyof typeof EVENTS;

/** A message delivery's final status as events name it. */
export type OutcomeStatus = "sent" | "partial" | "failed" | "unknown";

/** What a record says about a failure: the error's stable code, its message, and where it happened. */
export interface ErrorFields {
  /** The error's `code` (ECONNECTION, EAUTH, ...: the README's error table). */
  readonly errorCode?: string;
  /** The error's message (missive's messages hold no secret; a server's reply text is quoted as sent). */
  readonly error?: string;
  /** The SMTP step it happened at (connect, greeting, tls, ehlo, auth, mail, rcpt, data, body, final-dot, ...). */
  readonly stage?: string;
  readonly replyCode?: number;
  readonly enhancedCode?: string;
}

/** Keys every record of one connection carries. */
export interface ConnectionFields {
  /** Unique within the process: "c1", "c2", ... (with pino's pid, unique in a log). */
  readonly connectionId: string;
  readonly host: string;
  readonly port: number;
}

export interface SmtpConnectEvent extends ConnectionFields {
  readonly event: "smtp.connect";
  /** The TCP connect. */
  readonly durationMs?: number;
  readonly localAddress?: string;
}

export interface SmtpTlsEvent extends ConnectionFields {
  readonly event: "smtp.tls";
  /** "TLSv1.3", ... */
  readonly tlsVersion: string;
  readonly cipher: string;
  /** The certificate chain and host name were verified. */
  readonly authorized: boolean;
  readonly authorizationError?: string;
  /** Upgraded with STARTTLS (else implicit TLS). */
  readonly starttls: boolean;
  /** From the TLS step's start (STARTTLS sent, or the handshake) to the handshake's end. */
  readonly durationMs?: number;
}

export interface SmtpAuthEvent extends ConnectionFields {
  readonly event: "smtp.auth";
  /** PLAIN, LOGIN, CRAM-MD5, XOAUTH2. Never the user name or the secret. */
  readonly mechanism: string;
  readonly durationMs?: number;
}

export interface SmtpCommandEvent extends ConnectionFields {
  readonly event: "smtp.command";
  /** The command line as the transcript shows it: AUTH payloads are `<redacted>`. */
  readonly command: string;
}

export interface SmtpReplyEvent extends ConnectionFields {
  readonly event: "smtp.reply";
  readonly replyCode: number;
  readonly enhancedCode?: string;
  /** The reply's text, lines joined with a space. */
  readonly text: string;
}

export interface SmtpCloseEvent extends ConnectionFields, ErrorFields {
  readonly event: "smtp.close";
  /** "quit": after QUIT; "error": dropped, timed out, refused, aborted or destroyed (errorCode, error say which). */
  readonly reason: "quit" | "error";
  /** Messages started on the connection. */
  readonly messages: number;
  /** How long the connection was open. */
  readonly durationMs?: number;
}

/**
 * The reply of recipients not accepted. With `logRecipients` "count": one per distinct
 * reply, with how many recipients got it; otherwise one per recipient, shown as the
 * setting says.
 */
export interface RefusedField {
  readonly recipient?: string;
  readonly replyCode: number | undefined;
  readonly enhancedCode?: string;
  readonly count?: number;
}

/** A message's delivery by one backend (the outcome, or, under the delivery engine, one try). */
export interface DeliveryFields extends ErrorFields {
  readonly messageId?: string;
  /** "smtp", "console", "file", "memory", "dummy", "failover", or a custom backend's class name. */
  readonly backend: string;
  /** The named connection (route) it went through, when it has one. */
  readonly route?: string;
  /** The try's number under the delivery engine (1 for the first). */
  readonly attempt?: number;
  readonly host?: string;
  readonly port?: number;
  readonly connectionId?: string;
  readonly tlsVersion?: string;
  /** The envelope recipients it was for, as `logRecipients` says (a count by default). */
  readonly recipients: RecipientsField;
  readonly accepted: number;
  readonly rejected: number;
  readonly deferred: number;
  /** The refused and deferred recipients' replies. */
  readonly refused?: readonly RefusedField[];
  readonly queueId?: string;
  readonly durationMs?: number;
}

export interface MessageOutcomeEvent extends DeliveryFields {
  readonly event: "message.sent" | "message.partial" | "message.failed" | "message.unknown";
  /** Under the delivery engine: how many tries it took, and why it stopped. */
  readonly attempts?: number;
  readonly stopped?: string;
}

export interface MessageAttemptEvent extends DeliveryFields {
  readonly event: "message.attempt";
  readonly status: OutcomeStatus;
}

export interface MessageRetryEvent extends ErrorFields {
  readonly event: "message.retry";
  readonly messageId?: string;
  /** The route the next try goes to. */
  readonly route?: string;
  /** The try that failed. */
  readonly attempt: number;
  /** The wait before the next try. */
  readonly delayMs: number;
  /** The recipients still to deliver to. */
  readonly recipients: RecipientsField;
}

export interface MessageFailoverEvent extends ErrorFields {
  readonly event: "message.failover";
  readonly messageId?: string;
  /** The route that failed. */
  readonly route: string;
  readonly nextRoute: string;
  /** The try about to start. */
  readonly attempt: number;
}

export interface RouteSkipEvent {
  readonly event: "route.skip";
  readonly route: string;
  readonly reason: "circuit-open";
  readonly messageId?: string;
}

export interface RouteCircuitEvent {
  readonly event: "route.circuit_open" | "route.circuit_probe" | "route.circuit_close";
  readonly route: string;
}

export interface RateLimitWaitEvent {
  readonly event: "ratelimit.wait";
  readonly route: string;
  readonly delayMs: number;
  readonly messageId?: string;
}

/** Every event's record, by name. */
export interface MissiveEvents {
  "smtp.connect": SmtpConnectEvent;
  "smtp.tls": SmtpTlsEvent;
  "smtp.auth": SmtpAuthEvent;
  "smtp.command": SmtpCommandEvent;
  "smtp.reply": SmtpReplyEvent;
  "smtp.close": SmtpCloseEvent;
  "message.sent": MessageOutcomeEvent & { readonly event: "message.sent" };
  "message.partial": MessageOutcomeEvent & { readonly event: "message.partial" };
  "message.failed": MessageOutcomeEvent & { readonly event: "message.failed" };
  "message.unknown": MessageOutcomeEvent & { readonly event: "message.unknown" };
  "message.attempt": MessageAttemptEvent;
  "message.retry": MessageRetryEvent;
  "message.failover": MessageFailoverEvent;
  "route.skip": RouteSkipEvent;
  "route.circuit_open": RouteCircuitEvent & { readonly event: "route.circuit_open" };
  "route.circuit_probe": RouteCircuitEvent & { readonly event: "route.circuit_probe" };
  "route.circuit_close": RouteCircuitEvent & { readonly event: "route.circuit_close" };
  "ratelimit.wait": RateLimitWaitEvent;
}

/** Any record missive logs or publishes. */
export type MissiveEvent = MissiveEvents[EventName];

/** The events of a message's outcome, by status. */
export const OUTCOME_EVENTS = {
  sent: "message.sent",
  partial: "message.partial",
  failed: "message.failed",
  unknown: "message.unknown",
} as const satisfies Record<OutcomeStatus, EventName>;

/** A record's fields, without `event` and the keys its sink binds. */
export type EventFields<N extends EventName, B = object> = Omit<MissiveEvents[N], "event" | keyof B>;

/**
 * Where events go: a logger (or none) and the events' channels, with bindings every record
 * carries (a connection's id, host and port). `wants` first, then `emit`.
 */
export class EventSink<B extends object = object> {
  readonly #log: LogTarget | undefined;
  readonly #bindings: B | undefined;
  /** How recipients appear in this sink's records. */
  readonly logRecipients: LogRecipients;

  constructor(logger: Logger | LogTarget | undefined, logRecipients: LogRecipients = "count", bindings?: B) {
    this.#log = logger === undefined || logger instanceof LogTarget ? logger : new LogTarget(logger);
    this.logRecipients = logRecipients;
    this.#bindings = bindings;
  }

  /** Whether a logger is attached (whatever its level). */
  get logging(): boolean {
    return this.#log !== undefined;
  }

  /** Whether the event would be logged at its level or has a channel subscriber: a record is worth building. */
  wants(name: EventName): boolean {
    return eventChannels[name].hasSubscribers || (this.#log !== undefined && this.#log.enabled(EVENTS[name].level));
  }

  /** Logs and publishes the event (undefined fields left out). Call `wants` first. */
  emit<N extends EventName>(name: N, fields: EventFields<N, B>): void {
    const record: Record<string, unknown> = { event: name };
    for (const key in fields) {
      const value = (fields as Record<string, unknown>)[key];
      if (value !== undefined) record[key] = value;
    }
    const { level, msg } = EVENTS[name];
    if (this.#log !== undefined && this.#log.enabled(level)) this.#log.write(level, record, msg);
    const channel = eventChannels[name];
    if (channel.hasSubscribers) channel.publish(this.#bindings === undefined ? record : { event: name, ...this.#bindings, ...record });
  }

  /** A sink whose records all carry `bindings` (through the logger's `child` when it has one). */
  child<C extends object>(bindings: C): EventSink<B & C> {
    return new EventSink<B & C>(this.#log?.child(bindings as Record<string, unknown>), this.logRecipients, { ...this.#bindings, ...bindings } as B & C);
  }

  /** `addresses` as this sink's `logRecipients` shows them. */
  recipients(addresses: readonly string[]): RecipientsField {
    return recipientsField(addresses, this.logRecipients);
  }

  /**
   * The error fields of a record. An error's message may name addresses (every refused
   * recipient, or a server's "<bob@example.org>: User unknown"): unless `logRecipients` is
   * "full", each address in it is shown as the setting shows recipients (`[address]` for a
   * count, `[address]@domain`, or its hash). The dialogue's records are masked the same way.
   */
  failure(error: unknown): ErrorFields {
    const fields = errorFields(error);
    return fields.error === undefined ? fields : { ...fields, error: this.mask(fields.error) };
  }

  /** Free text (an error message, a command line, a reply) with each address shown as `logRecipients` says. */
  mask(text: string): string {
    return this.logRecipients === "full" ? text : text.replace(ADDRESS, (address) => this.#address(address));
  }

  #address(address: string): string {
    switch (this.logRecipients) {
      case "domain":
        return `[address]@${address.slice(address.lastIndexOf("@") + 1).toLowerCase()}`;
      case "hash":
        return `[address ${(recipientsField([address], "hash") as readonly string[])[0]!}]`;
      default:
        return "[address]";
    }
  }
}

/** Something shaped like an address in free text (a server's reply, an error message). */
const ADDRESS = /[^\s<>()[\],;:"'@]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?/g;

/** A sink with no logger: the channels only. */
export const channelSink = new EventSink(undefined);

/**
 * The error fields of a record, read from the error's own properties (MissiveError's
 * `code`, `stage`, `replyCode`, `enhancedCode`; the observe layer imports no error class).
 */
export function errorFields(error: unknown): ErrorFields {
  if (typeof error !== "object" || error === null) return error === undefined ? {} : { error: String(error) };
  const e = error as { code?: unknown; message?: unknown; stage?: unknown; replyCode?: unknown; enhancedCode?: unknown };
  const out: { -readonly [K in keyof ErrorFields]: ErrorFields[K] } = {};
  if (typeof e.code === "string") out.errorCode = e.code;
  if (typeof e.message === "string") out.error = e.message;
  if (typeof e.stage === "string") out.stage = e.stage;
  if (typeof e.replyCode === "number") out.replyCode = e.replyCode;
  if (typeof e.enhancedCode === "string") out.enhancedCode = e.enhancedCode;
  return out;
}
