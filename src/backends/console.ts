import type { Readable, Writable } from "node:stream";
import type { EmailMessage } from "../mime/message.js";
import { systemClock } from "../observe/clock.js";
import { BaseEmailBackend, publishSent, reportEach, type BackendOptions } from "./base.js";
import { backendSigning, type Signing, type SigningOptions } from "./dkim.js";
import { finalDotHook } from "./final-dot.js";
import { copyInto, prepareForOutput, serialize, writeAndWait } from "./output.js";
import { acceptedReport, type SendOptions, type SendReport } from "./report.js";

export interface ConsoleBackendOptions extends BackendOptions, SigningOptions {
  /** Where to write; `process.stdout` by default. */
  stream?: Writable | undefined;
}

/** 79 dashes and CRLF, after each message (Django's console backend uses 79 too). */
export const CONSOLE_SEPARATOR = `${"-".repeat(79)}\r\n`;

/**
 * Writes each message's exact bytes (CRLF line endings, as SMTP would send them), then a
 * line of 79 `-`. The message is streamed into the target with backpressure and the
 * target is never ended. Writes of any backends sharing one stream never interleave.
 */
export class ConsoleBackend extends BaseEmailBackend {
  stream: Writable;
  /** DKIM: this backend's `dkim` (else the setting's) and the clock for t=. */
  readonly #signing: Signing;

  constructor(options: ConsoleBackendOptions = {}) {
    super(options);
    this.stream = options.stream ?? process.stdout;
    this.#signing = backendSigning(options);
  }

  async sendMessages(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<number> {
    return (await this.sendMessagesWithReport(messages, options)).sent;
  }

  override async sendMessagesWithReport(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<SendReport> {
    if (messages.length === 0) return { sent: 0, reports: [] };
    const stream = this.stream;
    return serialize(stream, () =>
      reportEach(this, messages, options, { skipWithoutRecipients: false }, async (message, recipients) => {
        const at = systemClock.now();
        const prepared = await prepareForOutput(message, this.#signing);
        // A stream has no commit point: its final dot is before the first byte.
        await finalDotHook(options, message)?.();
        await this.writeMessage(prepared.stream(), stream);
        publishSent({ backend: "console", message, messageId: prepared.messageId, recipients: message.recipients() });
        return acceptedReport(message, prepared.messageId, recipients, at);
      }),
    );
  }

  private async writeMessage(source: Readable, stream: Writable): Promise<void> {
    const { endsWithCrlf } = await copyInto(source, stream, "the console stream");
    // The separator goes on a line of its own; a message not ending in CRLF gets one, as SMTP does.
    await writeAndWait(stream, endsWithCrlf ? CONSOLE_SEPARATOR : `\r\n${CONSOLE_SEPARATOR}`, "the console stream");
  }
}
