/**
 * The caller's signal under many messages at once: a failover batch listens to it once,
 * however many messages are in flight (Node warns of a listener leak past ten listeners on
 * one signal, which a user would read as a bug of theirs).
 */
import { describe, expect, it } from "vitest";
import { BaseEmailBackend } from "../../src/backends/base.js";
import { FailoverBackend } from "../../src/delivery/failover.js";
import { EmailMessage } from "../../src/mime/message.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";

isolateEmailEnvironment();

const messages = (n: number) => Array.from({ length: n }, (_, i) => new EmailMessage({ subject: `m${i}`, body: "b", from: "ann@example.com", to: [`r${i}@example.org`] }));

/** Counts the listeners added to `signal` while they are live, and the most at once. */
function countListeners(signal: AbortSignal): { most: () => number } {
  let live = 0;
  let most = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<AbortSignal["addEventListener"]>) => {
    if (args[0] === "abort") most = Math.max(most, ++live);
    add(...args);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((...args: Parameters<AbortSignal["removeEventListener"]>) => {
    if (args[0] === "abort") live -= 1;
    remove(...args);
  }) as typeof signal.removeEventListener;
  return { most: () => most };
}

describe("a failover batch and the caller's signal", () => {
  it("24 messages at once, one listener on the caller's signal and no warning", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const controller = new AbortController();
      const counted = countListeners(controller.signal);
      // A backend that holds every message until all 24 are in flight.
      let release!: () => void;
      const allIn = new Promise<void>((r) => (release = r));
      let inFlight = 0;
      class Holding extends BaseEmailBackend {
        async sendMessages(batch: readonly EmailMessage[]): Promise<number> {
          if (++inFlight === 24) release();
          await allIn;
          return batch.length;
        }
      }
      const backend = new FailoverBackend({ routes: [{ name: "held", backend: new Holding() }], concurrency: 24 });
      const { sent } = await backend.sendMessagesWithReport(messages(24), { signal: controller.signal });
      expect(sent).toBe(24);
      expect(counted.most()).toBe(1);
      // Node emits the warning on a later tick.
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});
