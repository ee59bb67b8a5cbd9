/**
 * A backend behind a rate limit: what `getConnection(name)` gives for a named connection
 * with `rateLimit`. Each message waits for a token of the name's shared bucket before it
 * starts (the inner backend's `beforeEach` gate), so a batch over a pooled SMTP backend is
 * throttled message by message without losing its pool. A message whose wait would pass
 * `maxWait` fails with ERATE_LIMITED like any delivery failure.
 */
import type { EmailMessage } from "../mime/message.js";
import { sendWithReport, type EmailBackend } from "../backends/base.js";
import type { SendOptions, SendReport } from "../backends/report.js";
import type { TokenBucket } from "./rate-limit.js";

export class RateLimitedBackend implements EmailBackend {
  readonly inner: EmailBackend;
  readonly limiter: TokenBucket;
  /** Called with the milliseconds a message waited for its token (when it waited). */
  onWait: ((ms: number) => void) | undefined;

  constructor(inner: EmailBackend, limiter: TokenBucket) {
    this.inner = inner;
    this.limiter = limiter;
  }

  /** The inner backend's failSilently. */
  get failSilently(): boolean {
    return (this.inner as { failSilently?: boolean }).failSilently === true;
  }

  open(): Promise<boolean> {
    return this.inner.open();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async sendMessages(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<number> {
    return (await this.sendMessagesWithReport(messages, options)).sent;
  }

  sendMessagesWithReport(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<SendReport> {
    const outer = options.beforeEach;
    return sendWithReport(this.inner, messages, {
      ...options,
      beforeEach: async (message, signal) => {
        await outer?.(message, signal);
        const waited = await this.limiter.take(signal);
        if (waited > 0) this.onWait?.(waited);
      },
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
