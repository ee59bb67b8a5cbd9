import type { EmailMessage } from "../mime/message.js";
import { BaseEmailBackend } from "./base.js";

/** Does nothing and reports every message as sent (Django's dummy backend). */
export class DummyBackend extends BaseEmailBackend {
  async sendMessages(messages: readonly EmailMessage[]): Promise<number> {
    return messages.length;
  }
}
