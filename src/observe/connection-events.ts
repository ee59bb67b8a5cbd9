/**
 * The events of one SMTP connection, as the client calls them: `smtp.connect` when the TCP
 * connection is up, `smtp.tls` after each handshake, `smtp.auth` after AUTH succeeded,
 * `smtp.command` / `smtp.reply` for the dialogue (through the transcript) and `smtp.close`
 * once, however it closed. Every record carries the connection's id, host and port.
 *
 * The client holds one per connection and calls it at each step; each call asks its sink
 * first, so with no logger and no subscriber a step costs a level check and a boolean.
 * Durations read the connection's clock only when their event is wanted.
 */
import type { Clock } from "./clock.js";
import { type ConnectionFields, type EventName, type EventSink } from "./events.js";

let connections = 0;

/** A new connection id, unique within the process. */
export function nextConnectionId(): string {
  connections += 1;
  return `c${connections}`;
}

/** What `smtp.tls` needs of the handshake (the SMTP connection's TlsInfo has this shape). */
export interface TlsFacts {
  readonly protocol: string | null;
  readonly cipher: string;
  readonly authorized: boolean;
  readonly authorizationError?: string | undefined;
}

/** What `smtp.reply` needs of a reply. */
export interface ReplyFacts {
  readonly code: number;
  readonly enhancedCode?: string | undefined;
  readonly text: string;
}

export class ConnectionEvents {
  readonly connectionId: string;
  readonly #sink: EventSink<ConnectionFields>;
  readonly #clock: Clock;
  /** When the connection opened, if `smtp.close` was wanted then (for its duration). */
  #openedAt: number | undefined;
  #closed = false;

  constructor(sink: EventSink, host: string, port: number, clock: Clock) {
    this.connectionId = nextConnectionId();
    this.#sink = sink.child({ connectionId: this.connectionId, host, port });
    this.#clock = clock;
  }

  /** The time now if `name` is wanted (the start of a step whose duration it reports), else undefined. */
  startOf(name: EventName): number | undefined {
    return this.#sink.wants(name) ? this.#clock.now() : undefined;
  }

  /** The TCP connection is up; `startedAt` from `startOf("smtp.connect")`. */
  connected(startedAt: number | undefined, localAddress: string | undefined): void {
    if (this.#sink.wants("smtp.close")) this.#openedAt = this.#clock.now();
    if (!this.#sink.wants("smtp.connect")) return;
    this.#sink.emit("smtp.connect", { durationMs: this.#since(startedAt), localAddress });
  }

  tls(info: TlsFacts | undefined, startedAt: number | undefined, starttls: boolean): void {
    if (info === undefined || !this.#sink.wants("smtp.tls")) return;
    this.#sink.emit("smtp.tls", {
      tlsVersion: info.protocol ?? "unknown",
      cipher: info.cipher,
      authorized: info.authorized,
      authorizationError: info.authorizationError,
      starttls,
      durationMs: this.#since(startedAt),
    });
  }

  auth(mechanism: string, startedAt: number | undefined): void {
    if (!this.#sink.wants("smtp.auth")) return;
    this.#sink.emit("smtp.auth", { mechanism, durationMs: this.#since(startedAt) });
  }

  /** A command as the transcript shows it (AUTH payloads already `<redacted>`; addresses as `logRecipients` says). */
  command(display: string): void {
    if (!this.#sink.wants("smtp.command")) return;
    this.#sink.emit("smtp.command", { command: this.#sink.mask(display) });
  }

  reply(reply: ReplyFacts): void {
    if (!this.#sink.wants("smtp.reply")) return;
    this.#sink.emit("smtp.reply", { replyCode: reply.code, enhancedCode: reply.enhancedCode, text: this.#sink.mask(reply.text) });
  }

  /** The connection closed: after QUIT (`quit`), or for `error`'s reason. Once. */
  closed(error: Error | undefined, quit: boolean, messages: number): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#sink.wants("smtp.close")) return;
    this.#sink.emit("smtp.close", {
      reason: quit ? "quit" : "error",
      messages,
      durationMs: this.#since(this.#openedAt),
      ...(quit ? {} : this.#sink.failure(error)),
    });
  }

  #since(startedAt: number | undefined): number | undefined {
    return startedAt === undefined ? undefined : Math.max(0, this.#clock.now() - startedAt);
  }
}
