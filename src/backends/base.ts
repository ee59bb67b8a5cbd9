import { AbortError, BackendError, InvalidArgumentError, type MissiveError } from "../errors.js";
import { messageSentChannel, type MessageSentMessage } from "../observe/channels.js";
import { isClock, systemClock, type Clock } from "../observe/clock.js";
import { DeliveryObservation } from "../observe/delivery.js";
import { channelSink, EventSink } from "../observe/events.js";
import { loggerProblem, logRecipientsProblem, type Logger, type LogRecipients } from "../observe/log.js";
import { getSettings } from "../settings.js";
import type { EmailMessage } from "../mime/message.js";
import { freeze } from "../mime/render.js";
import { isDeliveryError } from "./output.js";
import {
  acceptedReport,
  attachReports,
  countsAsSent,
  envelopeRecipients,
  failedReport,
  skippedReport,
  type DeliveryReport,
  type SendOptions,
  type SendReport,
} from "./report.js";

/** Published once per message a backend has delivered or written, only when subscribed. */
export { messageSentChannel };

/** What `missive:message:sent` carries (see src/observe/channels.ts). */
export type MessageSentEvent = MessageSentMessage<EmailMessage>;

export function publishSent(event: MessageSentEvent): void {
  if (messageSentChannel.hasSubscribers) messageSentChannel.publish(event);
}

/** Options every backend accepts. */
export interface BackendOptions {
  /** Turn delivery failures (SMTP errors, BackendError) into a lower count instead of throwing. */
  failSilently?: boolean | undefined;
  /**
   * Where this backend's events go: pino, or any object with its level methods
   * (`info(obj, msg)`, ...). Default: the `logger` setting; with neither, nothing is logged.
   */
  logger?: Logger | undefined;
  /** How recipients appear in this backend's records: "count" (default), "domain", "hash" or "full". Default: the setting. */
  logRecipients?: LogRecipients | undefined;
}

const observations = new WeakMap<object, DeliveryObservation>();

/** The backend's name in events: "smtp", "console", ... for the built-in ones, else its class name. */
function backendName(backend: object): string {
  const name = backend.constructor?.name ?? "";
  const builtin = /^(Smtp|Console|File|Memory|Dummy|Failover|Routing)Backend$/.exec(name);
  return builtin ? builtin[1]!.toLowerCase() : name || "backend";
}

/**
 * How `backend` observes its deliveries: its `logger` and `logRecipients` (the options
 * BaseEmailBackend took, else the settings'), and the event channels. A backend not built
 * on BaseEmailBackend publishes on the channels only.
 */
export function observationOf(backend: object): DeliveryObservation {
  let observation = observations.get(backend);
  if (observation === undefined) {
    observation = new DeliveryObservation(backendName(backend), channelSink, systemClock);
    observations.set(backend, observation);
  }
  return observation;
}

/**
 * The `logger` and `logRecipients` of a backend's options (own properties, checked), each
 * falling back to its setting.
 */
export function backendLogging(options: object): { readonly logger: Logger | undefined; readonly logRecipients: LogRecipients } {
  const logger = Object.hasOwn(options, "logger") ? (options as { logger?: unknown }).logger : undefined;
  const recipients = Object.hasOwn(options, "logRecipients") ? (options as { logRecipients?: unknown }).logRecipients : undefined;
  if (logger !== undefined && loggerProblem(logger) !== undefined) throw new InvalidArgumentError(`logger ${loggerProblem(logger)!}`);
  if (recipients !== undefined && logRecipientsProblem(recipients) !== undefined) throw new InvalidArgumentError(`logRecipients ${logRecipientsProblem(recipients)!}`);
  if (logger !== undefined && recipients !== undefined) return { logger: logger as Logger, logRecipients: recipients as LogRecipients };
  const settings = getSettings();
  return { logger: (logger as Logger | undefined) ?? settings.logger, logRecipients: (recipients as LogRecipients | undefined) ?? settings.logRecipients };
}

/** What the rest of missive needs from a backend (Django's `BaseEmailBackend` contract). */
export interface EmailBackend {
  /** Opens a long-lived connection if the backend has one; true if it opened a new one. */
  open(): Promise<boolean>;
  /** Closes what `open()` opened; safe to call when nothing is open. */
  close(): Promise<void>;
  /** Sends the messages and resolves to how many were sent. */
  sendMessages(messages: readonly EmailMessage[], options?: SendOptions): Promise<number>;
  /**
   * As `sendMessages`, with one report per message (status, accepted, rejected, deferred,
   * attempts, error). Every built-in backend and `BaseEmailBackend` have it; a backend
   * written against this interface alone may leave it out (`sendWithReport` then reports
   * from `sendMessages`).
   */
  sendMessagesWithReport?(messages: readonly EmailMessage[], options?: SendOptions): Promise<SendReport>;
  /** `await using conn = getConnection()` closes the connection at the end of the block. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Base class for backends. Subclasses implement `sendMessages`; those that hold a
 * connection override `open()`/`close()`. Unknown options are ignored (Django passes
 * `username`/`password` to every backend), except where a subclass checks them.
 */
export abstract class BaseEmailBackend implements EmailBackend {
  failSilently: boolean;
  readonly #logger: Logger | undefined;
  readonly #logRecipients: LogRecipients;

  constructor(options: BackendOptions = {}) {
    // An own property only: an inherited `failSilently` (a polluted prototype) must not hide failures.
    this.failSilently = Object.hasOwn(options, "failSilently") ? (options.failSilently ?? false) : false;
    const { logger, logRecipients } = backendLogging(options);
    this.#logger = logger;
    this.#logRecipients = logRecipients;
    const clock = Object.hasOwn(options, "clock") ? (options as { clock?: unknown }).clock : undefined;
    const sink = logger === undefined && logRecipients === "count" ? channelSink : new EventSink(logger, logRecipients);
    const name = (options as { [CONNECTION_NAME]?: unknown })[CONNECTION_NAME];
    observations.set(this, new DeliveryObservation(backendName(this), sink, isClock(clock) ? (clock as Clock) : systemClock, typeof name === "string" ? name : undefined));
  }

  /** The logger this backend's events go to (its option, else the setting), if any. */
  get logger(): Logger | undefined {
    return this.#logger;
  }

  /** How recipients appear in this backend's records (its option, else the setting). */
  get logRecipients(): LogRecipients {
    return this.#logRecipients;
  }

  async open(): Promise<boolean> {
    return false;
  }

  async close(): Promise<void> {}

  abstract sendMessages(messages: readonly EmailMessage[], options?: SendOptions): Promise<number>;

  /**
   * One report per message, from `sendMessages` (a custom backend gets this for free): the
   * connection is opened once, then each message goes alone through `sendMessages([m])`;
   * 1 is "sent" to every envelope recipient, 0 (with `failSilently`) or a delivery error
   * is "failed". Built-in backends report more precisely (refused recipients, replies).
   */
  async sendMessagesWithReport(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<SendReport> {
    if (messages.length === 0) return { sent: 0, reports: [] };
    const opened = await this.open();
    try {
      return await reportEach(this, messages, options, { skipWithoutRecipients: true }, async (message, recipients) => {
        const messageId = (await freeze(message)).messageId;
        const at = systemClock.now();
        const sent = await this.sendMessages([message]);
        if (sent === 1) return acceptedReport(message, messageId, recipients, at);
        return failedReport(message, messageId, new BackendError("The backend's sendMessages() reported the message as not sent (failSilently hides why)"), recipients, at);
      });
    } finally {
      if (opened) await this.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Reports from any backend: its own `sendMessagesWithReport`, or, for a backend that only
 * has `sendMessages`, the same per-message reporting BaseEmailBackend does.
 */
export function sendWithReport(backend: EmailBackend, messages: readonly EmailMessage[], options: SendOptions = {}): Promise<SendReport> {
  if (typeof backend.sendMessagesWithReport === "function") return backend.sendMessagesWithReport(messages, options);
  return BaseEmailBackend.prototype.sendMessagesWithReport.call(backend as BaseEmailBackend, messages, options);
}

/**
 * The loop the simple backends share: for each message, its envelope (limited to
 * `options.recipients`), the `beforeEach` gate, then `send`. A delivery failure becomes
 * the message's "failed" report and, unless the backend carries on (`failSilently`, or
 * `stopOnError: false`), is thrown with the reports so far attached. Programming errors
 * (a bad header, an invalid address) are always thrown.
 */
export async function reportEach(
  backend: { readonly failSilently: boolean },
  messages: readonly EmailMessage[],
  options: SendOptions,
  how: { readonly skipWithoutRecipients: boolean },
  send: (message: EmailMessage, recipients: readonly string[]) => Promise<DeliveryReport>,
): Promise<SendReport> {
  const carryOn = backend.failSilently || options.stopOnError === false;
  const observation = observationOf(backend);
  const reports: DeliveryReport[] = [];
  for (const message of messages) {
    const recipients = envelopeRecipients(message, options.recipients?.get(message));
    if (how.skipWithoutRecipients && recipients.length === 0) {
      reports.push(skippedReport(message));
      continue;
    }
    const at = systemClock.now();
    try {
      const deliver = async (): Promise<DeliveryReport> => {
        if (options.signal?.aborted) throw new AbortError("The send was aborted before this message", { cause: options.signal.reason });
        await options.beforeEach?.(message, options.signal);
        return send(message, recipients);
      };
      const failure = (error: unknown) => (reportable(error) ? failedReport(message, undefined, error as MissiveError, recipients, at) : undefined);
      reports.push(await observation.run({ recipients, route: options.route, attempt: options.attempt, message }, deliver, failure));
    } catch (error) {
      if (!reportable(error)) throw attachReports(error, reports);
      const report = failedReport(message, undefined, error as MissiveError, recipients, at);
      if (!carryOn) throw attachReports(error, [...reports, report]);
      reports.push(report);
    }
  }
  return { sent: reports.filter(countsAsSent).length, reports };
}

/** A failure a report can hold (a delivery error or an abort), rather than a programming error that is thrown. */
function reportable(error: unknown): boolean {
  return isDeliveryError(error) || error instanceof AbortError;
}

/** A backend class as `getConnection` and `registerBackend` take it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type BackendClass = new (options?: any) => EmailBackend;

/**
 * Internal option: the settings a built-in backend falls back to for options not given.
 * Named connections pass the defaults here, so that a connection configured for one
 * server never inherits the top-level connection's credentials or host.
 */
export const SETTINGS_FALLBACK: unique symbol = Symbol.for("missive.backend.settingsFallback");

/**
 * Internal option: the name of the named connection a backend was made for
 * (`getConnection("bulk")`, a failover route). Its events and traces carry it as `route`.
 */
export const CONNECTION_NAME: unique symbol = Symbol.for("missive.backend.connectionName");
