/**
 * Every `diagnostics_channel` name missive publishes on, and the shape of what each
 * carries. Ground floor: anyone may import this, it imports no one (payloads that hold a
 * type from a higher layer take it as a type parameter; that layer re-exports the
 * specialised type).
 *
 * Publishers check `hasSubscribers` first (undici's habit), so a channel nobody listens to
 * costs a boolean check. Names are namespaced `missive:<area>:<event>` and never change
 * once released: tools subscribe by name.
 */
import diagnosticsChannel from "node:diagnostics_channel";
import type { EventName } from "./events.js";

export const CHANNEL_NAMES = {
  /** Each command line the SMTP client sends (credentials redacted). */
  smtpCommand: "missive:smtp:command",
  /** Each reply the SMTP client reads. */
  smtpReply: "missive:smtp:reply",
  /** Once per message a backend delivered or wrote. */
  messageSent: "missive:message:sent",
  /**
   * The TracingChannel of one message's delivery by a backend (one try: a retry or a
   * failover is another delivery): `tracing:missive:deliver:start`, `:end`, `:asyncStart`,
   * `:asyncEnd`, `:error`, each with the same `DeliveryContext` (src/observe/delivery.ts).
   */
  deliver: "missive:deliver",
} as const;

/**
 * Every event of src/observe/events.ts on a channel of its own, named `missive:event:` and
 * the event (`missive:event:smtp.connect`, `missive:event:message.failed`), carrying the
 * flat record a logger gets. One channel per event, so that a subscriber to one (the
 * connection counter of missive/otel) does not make missive build the others.
 */
export const EVENT_CHANNEL_NAMES = {
  "smtp.connect": "missive:event:smtp.connect",
  "smtp.tls": "missive:event:smtp.tls",
  "smtp.auth": "missive:event:smtp.auth",
  "smtp.command": "missive:event:smtp.command",
  "smtp.reply": "missive:event:smtp.reply",
  "smtp.close": "missive:event:smtp.close",
  "message.sent": "missive:event:message.sent",
  "message.partial": "missive:event:message.partial",
  "message.failed": "missive:event:message.failed",
  "message.unknown": "missive:event:message.unknown",
  "message.attempt": "missive:event:message.attempt",
  "message.retry": "missive:event:message.retry",
  "message.failover": "missive:event:message.failover",
  "route.skip": "missive:event:route.skip",
  "route.circuit_open": "missive:event:route.circuit_open",
  "route.circuit_probe": "missive:event:route.circuit_probe",
  "route.circuit_close": "missive:event:route.circuit_close",
  "ratelimit.wait": "missive:event:ratelimit.wait",
} as const satisfies Record<EventName, string>;

export type EventChannelName = (typeof EVENT_CHANNEL_NAMES)[EventName];

export type ChannelName = (typeof CHANNEL_NAMES)[keyof typeof CHANNEL_NAMES];

/** A reply as channels carry it (the SMTP parser's reply has this shape). */
export interface ChannelReply {
  readonly code: number;
  readonly enhancedCode?: string | undefined;
  readonly lines: readonly string[];
  readonly text: string;
}

/** Published on `missive:smtp:command`. */
export interface SmtpCommandMessage {
  readonly host: string;
  readonly port: number;
  /** The connection's id, as every event of it carries (src/observe/events.ts). */
  readonly connectionId?: string | undefined;
  /** The command line without CRLF, credentials redacted. */
  readonly command: string;
}

/** Published on `missive:smtp:reply`. */
export interface SmtpReplyMessage<R extends ChannelReply = ChannelReply> {
  readonly host: string;
  readonly port: number;
  /** The connection's id, as every event of it carries (src/observe/events.ts). */
  readonly connectionId?: string | undefined;
  readonly reply: R;
}

/** Published on `missive:message:sent`; `M` is the message class (EmailMessage). */
export interface MessageSentMessage<M = unknown> {
  /** "smtp", "console", "file", "memory", or a custom backend's class name. */
  readonly backend: string;
  readonly message: M;
  readonly messageId: string | undefined;
  /** The envelope recipients the backend handed the message to (for SMTP: those accepted). */
  readonly recipients: readonly string[];
  /** Where the file backend wrote it. */
  readonly path?: string;
}

export const smtpCommandChannel = diagnosticsChannel.channel(CHANNEL_NAMES.smtpCommand);
export const smtpReplyChannel = diagnosticsChannel.channel(CHANNEL_NAMES.smtpReply);
export const messageSentChannel = diagnosticsChannel.channel(CHANNEL_NAMES.messageSent);
export const deliverChannel = diagnosticsChannel.tracingChannel(CHANNEL_NAMES.deliver);

/** The channel of each event. */
export const eventChannels: { readonly [N in EventName]: diagnosticsChannel.Channel } = Object.freeze(
  Object.fromEntries(Object.entries(EVENT_CHANNEL_NAMES).map(([event, name]) => [event, diagnosticsChannel.channel(name)])) as Record<EventName, diagnosticsChannel.Channel>,
);

/**
 * Whether anyone listens on the delivery TracingChannel. Node 20.13 and later answer with
 * `hasSubscribers`; before that, each of its five channels is asked.
 */
export function deliverTraced(): boolean {
  const traced = (deliverChannel as { hasSubscribers?: boolean }).hasSubscribers;
  if (typeof traced === "boolean") return traced;
  const { start, end, asyncStart, asyncEnd, error } = deliverChannel;
  return start.hasSubscribers || end.hasSubscribers || asyncStart.hasSubscribers || asyncEnd.hasSubscribers || error.hasSubscribers;
}
