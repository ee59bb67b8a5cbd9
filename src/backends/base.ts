import { messageSentChannel, type MessageSentMessage } from "../observe/channels.js";
import type { EmailMessage } from "../mime/message.js";

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
  sendMessages(messages: readonly EmailMessage[]): Promise<number>;
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

  abstract sendMessages(messages: readonly EmailMessage[]): Promise<number>;

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
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
