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

export const CHANNEL_NAMES = {
  /** Each command line the SMTP client sends (credentials redacted). */
  smtpCommand: "missive:smtp:command",
  /** Each reply the SMTP client reads. */
  smtpReply: "missive:smtp:reply",
  /** Once per message a backend delivered or wrote. */
  messageSent: "missive:message:sent",
} as const;

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
  /** The command line without CRLF, credentials redacted. */
  readonly command: string;
}

/** Published on `missive:smtp:reply`. */
export interface SmtpReplyMessage<R extends ChannelReply = ChannelReply> {
  readonly host: string;
  readonly port: number;
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
