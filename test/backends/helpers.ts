import { EmailMessage, type EmailMessageOptions } from "../../src/mime/message.js";

/** A message with a fixed clock and id source, so its bytes are reproducible. */
export function fixedMessage(options: EmailMessageOptions = {}): EmailMessage {
  let n = 0;
  return new EmailMessage({
    subject: "Hello",
    body: "Body line\nsecond line",
    from: "Ann <ann@example.com>",
    to: ["bob@example.com"],
    clock: () => new Date(Date.UTC(2025, 0, 2, 3, 4, 5)),
    random: (size) => Buffer.alloc(size, ++n),
    ...options,
  });
}
