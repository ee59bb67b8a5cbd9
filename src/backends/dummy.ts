import type { EmailMessage } from "../mime/message.js";
import { policies } from "../mime/policy.js";
import { freeze, render } from "../mime/render.js";
import { systemClock } from "../observe/clock.js";
import { BaseEmailBackend, reportEach } from "./base.js";
import { finalDotHook } from "./final-dot.js";
import { acceptedReport, type SendOptions, type SendReport } from "./report.js";

/**
 * Reports every message as sent and delivers nothing (Django's dummy backend). Each message
 * is still rendered (headers decided, attachments looked at) and the bytes discarded, so
 * that a bad header or a missing file fails here exactly as with a real backend.
 */
export class DummyBackend extends BaseEmailBackend {
  async sendMessages(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<number> {
    return (await this.sendMessagesWithReport(messages, options)).sent;
  }

  override async sendMessagesWithReport(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<SendReport> {
    return reportEach(this, messages, options, { skipWithoutRecipients: false }, async (message, recipients) => {
      const at = systemClock.now();
      const rendered = await render(await freeze(message), message.needsSmtpUtf8() ? policies.smtputf8 : policies.default);
      await finalDotHook(options, message)?.();
      return acceptedReport(message, rendered.messageId, recipients, at);
    });
  }
}
