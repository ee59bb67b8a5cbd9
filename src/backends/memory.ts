import type { EmailMessage } from "../mime/message.js";
import { policies } from "../mime/policy.js";
import { freeze, render } from "../mime/render.js";
import { systemClock } from "../observe/clock.js";
import { outbox } from "../testing.js";
import { BaseEmailBackend, publishSent, reportEach } from "./base.js";
import { finalDotHook } from "./final-dot.js";
import { acceptedReport, type SendOptions, type SendReport } from "./report.js";

/**
 * Appends a copy of each message (`message.snapshot()`: same class and fields, same
 * Message-ID and Date) to the shared `outbox` from `missive/testing` (Django's locmem
 * backend, which deep-copies). Each message is rendered once first (without I/O), so that a bad
 * header fails here exactly as it would with a real backend. Its reports have the SMTP
 * backend's shape for the same message (Message-ID, envelope recipients accepted), so the
 * code that reads reports is tested as it runs; a message without recipients is kept and
 * counted, as Django's locmem backend does.
 */
export class MemoryBackend extends BaseEmailBackend {
  async sendMessages(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<number> {
    return (await this.sendMessagesWithReport(messages, options)).sent;
  }

  override async sendMessagesWithReport(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<SendReport> {
    return reportEach(this, messages, options, { skipWithoutRecipients: false }, async (message, recipients) => {
      const at = systemClock.now();
      const rendered = await render(await freeze(message), message.needsSmtpUtf8() ? policies.smtputf8 : policies.default);
      await finalDotHook(options, message)?.();
      // A copy, as Django's locmem backend keeps one: what the test reads is what was sent.
      outbox.push(message.snapshot());
      publishSent({ backend: "memory", message, messageId: rendered.messageId, recipients: message.recipients() });
      return acceptedReport(message, rendered.messageId, recipients, at);
    });
  }
}
