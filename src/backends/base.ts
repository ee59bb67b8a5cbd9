import { AbortError, BackendError, type MissiveError } from "../errors.js";
import { messageSentChannel, type MessageSentMessage } from "../observe/channels.js";
import { systemClock } from "../observe/clock.js";
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

  constructor(options: BackendOptions = {}) {
    // An own property only: an inherited `failSilently` (a polluted prototype) must not hide failures.
    this.failSilently = Object.hasOwn(options, "failSilently") ? (options.failSilently ?? false) : false;
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
        // Nothing says when inside sendMessages the message leaves: the whole call is its final-dot phase.
        await options.beforeFinalDot?.(message);
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
  const reports: DeliveryReport[] = [];
  for (const message of messages) {
    const recipients = envelopeRecipients(message, options.recipients?.get(message));
    if (how.skipWithoutRecipients && recipients.length === 0) {
      reports.push(skippedReport(message));
      continue;
    }
    const at = systemClock.now();
    try {
      if (options.signal?.aborted) throw new AbortError("The send was aborted before this message", { cause: options.signal.reason });
      await options.beforeEach?.(message, options.signal);
      reports.push(await send(message, recipients));
    } catch (error) {
      if (!isDeliveryError(error) && !(error instanceof AbortError)) throw attachReports(error, reports);
      const report = failedReport(message, undefined, error as MissiveError, recipients, at);
      if (!carryOn) throw attachReports(error, [...reports, report]);
      reports.push(report);
    }
  }
  return { sent: reports.filter(countsAsSent).length, reports };
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
