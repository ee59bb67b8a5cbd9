/**
 * The SMTP dialogue for debugging: every command line the client sends (credentials
 * already replaced by `<redacted>` by the caller) and every reply line the server sends.
 * The message body is not part of the transcript.
 *
 * Also published on `diagnostics_channel` as `missive:smtp:command` and
 * `missive:smtp:reply` (names and payloads in src/observe/channels.ts), only when someone
 * subscribes, so the cost is a boolean check when nobody listens; and, per connection, to
 * its events (`smtp.command` / `smtp.reply`, for a logger at debug level).
 */
import { smtpCommandChannel, smtpReplyChannel, type SmtpCommandMessage, type SmtpReplyMessage } from "../observe/channels.js";
import type { ConnectionEvents } from "../observe/connection-events.js";
import { formatReplyLines, type SmtpReply } from "./reply.js";

export interface TranscriptEntry {
  readonly direction: "client" | "server";
  /** One line without its CRLF. */
  readonly line: string;
}

export type TranscriptHook = (entry: TranscriptEntry) => void;

/** Message published on `missive:smtp:command`. */
export type CommandMessage = SmtpCommandMessage;

/** Message published on `missive:smtp:reply`. */
export type ReplyMessage = SmtpReplyMessage<SmtpReply>;

export const commandChannel = smtpCommandChannel;
export const replyChannel = smtpReplyChannel;

/** What stands for a secret in transcripts, errors, `toJSON` and `util.inspect`. */
export const REDACTED = "<redacted>";

export class Transcript {
  readonly #hook: TranscriptHook | undefined;
  readonly #host: string;
  readonly #port: number;
  readonly #events: ConnectionEvents | undefined;

  constructor(hook: TranscriptHook | undefined, host: string, port: number, events?: ConnectionEvents) {
    this.#hook = hook;
    this.#host = host;
    this.#port = port;
    this.#events = events;
  }

  /** The same transcript for one connection: its lines also go to that connection's events. */
  forConnection(events: ConnectionEvents): Transcript {
    return new Transcript(this.#hook, this.#host, this.#port, events);
  }

  /** Records a command as displayed (no CRLF, secrets already redacted). */
  command(display: string): void {
    if (this.#hook) this.#emit({ direction: "client", line: display });
    if (commandChannel.hasSubscribers) {
      commandChannel.publish({ host: this.#host, port: this.#port, connectionId: this.#events?.connectionId, command: display } satisfies CommandMessage);
    }
    this.#events?.command(display);
  }

  /** Records a reply (server replies hold no client secret; AUTH challenges are not secret). */
  reply(reply: SmtpReply): void {
    if (this.#hook) {
      for (const line of formatReplyLines(reply)) this.#emit({ direction: "server", line });
    }
    if (replyChannel.hasSubscribers) {
      replyChannel.publish({ host: this.#host, port: this.#port, connectionId: this.#events?.connectionId, reply } satisfies ReplyMessage);
    }
    this.#events?.reply(reply);
  }

  #emit(entry: TranscriptEntry): void {
    try {
      this.#hook?.(entry);
    } catch {
      // A failing debug hook must not break the SMTP session.
    }
  }
}
