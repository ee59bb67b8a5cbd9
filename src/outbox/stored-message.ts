/**
 * A stored outbox message as an EmailMessage, so that every backend (smtp, failover with
 * its retries, file, a custom one) sends it through its ordinary path: its freeze is a
 * Frozen of the stored bytes (mime/render.ts `frozenFromStored`), so a backend renders the
 * very bytes that were enqueued — the same Message-ID and Date on every try — and signs
 * them with DKIM as it would a fresh message; its envelope is the stored one. Subject,
 * addresses and extra headers are copied back for routing functions and for people; they
 * do not change a byte of what is sent.
 */
import { EmailMessage } from "../mime/message.js";
import { FREEZE, frozenFromStored, type Frozen } from "../mime/render.js";
import type { OutboxEntry } from "./store.js";
import type { Mailbox } from "../mime/address.js";

export class StoredMessage extends EmailMessage {
  /** The message's id in the outbox. */
  readonly outboxId: string;
  readonly #frozen: Frozen;
  readonly #envelope: { readonly from: string; readonly to: readonly string[] };
  readonly #smtputf8: boolean;

  constructor(entry: OutboxEntry, content: { readonly header: Buffer; body(): AsyncIterable<Uint8Array> }) {
    super();
    this.outboxId = entry.id;
    this.#envelope = entry.envelope;
    this.#smtputf8 = entry.smtputf8;
    // Copies for route(message) and for people; each was valid when the message was enqueued.
    copyField(() => (this.subject = entry.subject));
    copyField(() => (this.from = entry.fields.from as string | Mailbox));
    copyField(() => (this.to = entry.fields.to as (string | Mailbox)[]));
    copyField(() => (this.cc = entry.fields.cc as (string | Mailbox)[]));
    copyField(() => (this.replyTo = entry.fields.replyTo as (string | Mailbox)[]));
    copyField(() => (this.headers = { ...entry.fields.headers }));
    if (entry.unsigned) this.dkim = false;
    this.#frozen = frozenFromStored({
      messageId: entry.messageId,
      date: entry.date,
      header: content.header,
      body: () => content.body(),
      bodySize: entry.size - entry.headerLength - 2,
      eightBit: entry.eightBit,
      smtputf8: entry.smtputf8,
      envelope: () => ({ from: entry.envelope.from, to: [...entry.envelope.to] }),
    });
  }

  /** The stored envelope's recipients, as they are sent. */
  override recipients(): string[] {
    return [...this.#envelope.to];
  }

  override needsSmtpUtf8(): boolean {
    return this.#smtputf8;
  }

  /** The stored envelope (already in the form the message needs). */
  override envelope(): { from: string; to: string[] } {
    return { from: this.#envelope.from, to: [...this.#envelope.to] };
  }

  override async [FREEZE](): Promise<Frozen> {
    return this.#frozen;
  }
}

/** A display copy that a later missive may refuse (a stricter check) is left out, never fatal. */
function copyField(set: () => unknown): void {
  try {
    set();
  } catch {
    // The bytes and the envelope are what is sent; the copies only inform.
  }
}
