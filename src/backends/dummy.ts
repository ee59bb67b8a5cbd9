import type { EmailMessage } from "../mime/message.js";
import { policies } from "../mime/policy.js";
import { freeze, render } from "../mime/render.js";
import { BaseEmailBackend } from "./base.js";

/**
 * Reports every message as sent and delivers nothing (Django's dummy backend). Each message
 * is still rendered (headers decided, attachments looked at) and the bytes discarded, so
 * that a bad header or a missing file fails here exactly as with a real backend.
 */
export class DummyBackend extends BaseEmailBackend {
  async sendMessages(messages: readonly EmailMessage[]): Promise<number> {
    for (const message of messages) await render(await freeze(message), message.needsSmtpUtf8() ? policies.smtputf8 : policies.default);
    return messages.length;
  }
}
