/**
 * Pipelining across messages (RFC 2920 §3.1): the commands of the next message may follow
 * a message's final dot in the same write, before the dot's reply is in. "The actual
 * transfer of message content is explicitly allowed to be the first 'command' in a
 * group", and MAIL and RCPT may appear anywhere in one; DATA ends a group. So with the
 * next envelope known in time, each message costs one write and one wait:
 *
 *   C: <body of message 1> . MAIL FROM RCPT TO DATA
 *   S: 250 (message 1)  250  250  354
 *   C: <body of message 2> . MAIL FROM RCPT TO DATA
 *
 * A caller that sends messages one after another announces the next envelope
 * (`client[ANNOUNCE](envelope)`) while the current message is in flight, then calls
 * `sendMail` with that very envelope object. This module keeps the announced envelopes in
 * order and the one whose commands are already written ("ahead"); the client (client.ts)
 * writes and reads them. Internal: the SMTP backend's batches use it; the symbol is not
 * exported from `missive/smtp`.
 *
 * The server takes the commands after the dot as a new transaction whatever it answers to
 * the dot: the reply to the end of data completes the transaction (RFC 5321 §4.1.1.4), so
 * no RSET is needed (nor possible: it would land after the next DATA) when the message was
 * refused. An announcement given up after its commands were written (`withdraw()`) leaves
 * the server waiting for a message after 354, or about to: the only way out is to drop the
 * connection, which the client then does; nothing was delivered.
 */
import type { Capabilities } from "./capabilities.js";
import { renderEnvelope, validateEnvelope, type Envelope } from "./envelope.js";
import type { Submission } from "./pending.js";
import type { SmtpReply } from "./reply.js";

/** `client[ANNOUNCE](envelope)`: the envelope of the sendMail that will follow the current one. */
export const ANNOUNCE: unique symbol = Symbol("missive.smtp.announce");

/**
 * `client[DATA_WRITTEN]()`: resolves when the client next writes a message's end of data
 * (its final dot or BDAT LAST), or has nothing left to do. A caller that prepares the next
 * message meanwhile does that CPU work while the server reads and judges the message,
 * the longest wait of a transaction, rather than while a short command reply is due.
 */
export const DATA_WRITTEN: unique symbol = Symbol("missive.smtp.dataWritten");

export interface Announcement {
  /**
   * sendMail will not be called with this envelope after all. Call it between messages
   * (when no sendMail is in progress): if the commands were already written, the
   * connection is dropped.
   */
  withdraw(): void;
}

/** The pipelined commands of one transaction, and the replies they got, once written. */
export interface WrittenEnvelope {
  readonly mail: Submission;
  readonly rcpts: readonly Submission[];
  readonly data: Submission;
  /** MAIL, each RCPT, DATA: in order. */
  readonly replies: readonly Promise<SmtpReply>[];
}

interface Announced {
  readonly envelope: Envelope;
  written: WrittenEnvelope | undefined;
}

export class Announcements {
  readonly #queue: Announced[] = [];
  #ahead: Announced | undefined;

  /** `onDropAhead` runs when the withdrawn envelope's commands were already written. */
  add(envelope: Envelope, onDropAhead: () => void): Announcement {
    const entry: Announced = { envelope, written: undefined };
    this.#queue.push(entry);
    return {
      withdraw: () => {
        const i = this.#queue.indexOf(entry);
        if (i !== -1) this.#queue.splice(i, 1);
        if (this.#ahead === entry) {
          this.#ahead = undefined;
          onDropAhead();
        }
      },
    };
  }

  /** Commands of a transaction are written ahead of its sendMail (at most one at a time). */
  get ahead(): boolean {
    return this.#ahead !== undefined;
  }

  /** The envelope whose commands may be written now: the first announced, when none is ahead. */
  next(): Envelope | undefined {
    return this.#ahead === undefined ? this.#queue[0]?.envelope : undefined;
  }

  /** Records that `next()`'s commands were written. */
  written(written: WrittenEnvelope): void {
    const entry = this.#queue[0];
    if (entry === undefined || this.#ahead !== undefined) throw new Error("Internal error: no announced envelope to write");
    entry.written = written;
    this.#ahead = entry;
  }

  /**
   * The transaction for `envelope` starts: its written commands if they are ahead, else
   * undefined (it runs as usual). The announcement is used up either way. Another envelope
   * while one is ahead is a bug in the caller.
   */
  take(envelope: Envelope): WrittenEnvelope | undefined {
    const ahead = this.#ahead;
    if (ahead !== undefined && ahead.envelope !== envelope) {
      throw new Error("Internal error: sendMail called with another envelope than the one announced and already written");
    }
    const i = this.#queue.findIndex((e) => e.envelope === envelope);
    if (i !== -1) this.#queue.splice(i, 1);
    this.#ahead = undefined;
    return ahead?.written;
  }

  /** The connection is gone: what was written on it is lost; envelopes not yet written stay announced. */
  connectionLost(): void {
    if (this.#ahead === undefined) return;
    this.#ahead.written = undefined;
    this.#ahead = undefined;
  }
}

/**
 * The MAIL, RCPT and DATA to write behind a final dot for `envelope`, on a connection that
 * pipelines and sends with DATA (the caller checks): undefined when the envelope does not
 * suit the server, and then its sendMail runs as usual and reports why.
 */
export function pipelinedCommands(
  envelope: Envelope,
  caps: Capabilities,
  host: string,
  command: (line: string, expect: Submission["expect"]) => Submission,
  data: Submission,
): { mail: Submission; rcpts: Submission[]; data: Submission } | undefined {
  try {
    validateEnvelope(envelope);
    const { mail, rcpts } = renderEnvelope(envelope, caps, host);
    return { mail: command(mail, [250]), rcpts: rcpts.map((line) => command(line, "any")), data };
  } catch {
    return undefined;
  }
}
