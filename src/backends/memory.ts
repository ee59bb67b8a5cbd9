import type { EmailMessage } from "../mime/message.js";
import { policies } from "../mime/policy.js";
import { outbox } from "../testing.js";
import { BaseEmailBackend, publishSent } from "./base.js";

/**
 * Appends each message object to the shared `outbox` from `missive/testing` (Django's
 * locmem backend). Each message is rendered once first (without I/O), so that a bad
 * header fails here exactly as it would with a real backend.
 */
export class MemoryBackend extends BaseEmailBackend {
  async sendMessages(messages: readonly EmailMessage[]): Promise<number> {
    let sent = 0;
    for (const message of messages) {
      const prepared = await message.prepare(message.needsSmtpUtf8() ? policies.smtputf8 : policies.default);
      outbox.push(message);
      sent++;
      publishSent({ backend: "memory", message, messageId: prepared.messageId, recipients: message.recipients() });
    }
    return sent;
  }
}
