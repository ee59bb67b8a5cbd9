/**
 * The queue of commands written and not yet answered (src/smtp/pending.ts): replies are
 * taken oldest first, only the oldest entry has a deadline (armed when it becomes the next
 * reply due), and everything left rejects at once when the connection fails.
 */
import { describe, expect, it } from "vitest";
import { CommandQueue, displayOf, type PendingCommand, type Submission } from "../../src/smtp/pending.js";
import type { SmtpReply } from "../../src/smtp/reply.js";
import { VirtualClock } from "../helpers/virtual-clock.js";

const reply = (code: number): SmtpReply => ({ code, lines: [`${code} ok`], text: "ok" }) as unknown as SmtpReply;

const cmd = (line: string, deadline = 1000, extra: Partial<Submission> = {}): Submission => ({ line, expect: [250], phase: "command", deadline, ...extra });

function queue(): { clock: VirtualClock; q: CommandQueue; timedOut: PendingCommand[] } {
  const clock = new VirtualClock();
  const timedOut: PendingCommand[] = [];
  return { clock, q: new CommandQueue(clock, (entry) => timedOut.push(entry)), timedOut };
}

describe("CommandQueue", () => {
  it("counts commands written and replies answered; take() gives the oldest first", () => {
    const { q } = queue();
    expect([q.written, q.answered, q.inFlight, q.head]).toEqual([0, 0, 0, undefined]);
    void q.add(cmd("MAIL FROM:<a@b>\r\n"));
    void q.add(cmd("RCPT TO:<c@d>\r\n"));
    void q.add(cmd("DATA\r\n"));
    expect([q.written, q.answered, q.inFlight]).toEqual([3, 0, 3]);
    expect(q.head?.display).toBe("MAIL FROM:<a@b>");
    expect(q.take()?.display).toBe("MAIL FROM:<a@b>");
    expect([q.written, q.answered, q.inFlight]).toEqual([3, 1, 2]);
    expect(q.head?.display).toBe("RCPT TO:<c@d>");
    expect(q.take()?.display).toBe("RCPT TO:<c@d>");
    expect(q.take()?.display).toBe("DATA");
    expect([q.written, q.answered, q.inFlight, q.head]).toEqual([3, 3, 0, undefined]);
    // Nothing waiting: no entry, and no reply counted.
    expect(q.take()).toBeUndefined();
    expect(q.answered).toBe(3);
  });

  it("an entry's promise settles with what its resolve or reject is given", async () => {
    const { q } = queue();
    const first = q.add(cmd("NOOP\r\n"));
    const second = q.add(cmd("RSET\r\n"));
    q.take()!.resolve(reply(250));
    const error = new Error("refused");
    q.take()!.reject(error);
    expect((await first).code).toBe(250);
    await expect(second).rejects.toBe(error);
  });

  it("only the oldest entry has a deadline; the next one's starts when the reply ahead of it arrives", async () => {
    const { clock, q, timedOut } = queue();
    void q.add(cmd("MAIL FROM:<a@b>\r\n", 1000));
    void q.add(cmd("RCPT TO:<c@d>\r\n", 3000));
    expect(clock.pending.map((t) => t.ms)).toEqual([1000]);
    await clock.advance(999);
    expect(timedOut).toEqual([]);
    q.take();
    // The first deadline is disarmed, the second armed from now for its own length.
    expect(clock.pending).toEqual([{ ms: 3000, due: clock.now() + 3000 }]);
    await clock.advance(2999);
    expect(timedOut).toEqual([]);
    await clock.advance(1);
    expect(timedOut.map((e) => e.display)).toEqual(["RCPT TO:<c@d>"]);
    expect(timedOut[0]!.timer).toBeUndefined();
  });

  it("the oldest entry's deadline passing calls onTimeout with it", async () => {
    const { clock, q, timedOut } = queue();
    void q.add(cmd("DATA\r\n", 500, { phase: "data" }));
    expect(q.head!.timer).toBeDefined();
    await clock.advance(500);
    expect(timedOut).toHaveLength(1);
    expect(timedOut[0]).toMatchObject({ display: "DATA", phase: "data", deadline: 500 });
  });

  it("taking the last entry leaves no timer armed", async () => {
    const { clock, q, timedOut } = queue();
    void q.add(cmd("NOOP\r\n", 100));
    const entry = q.take()!;
    expect(entry.timer).toBeUndefined();
    expect(clock.pending).toEqual([]);
    await clock.advance(1000);
    expect(timedOut).toEqual([]);
  });

  it("rejectAll rejects every entry in order with its own error, disarms the deadline and empties the queue", async () => {
    const { clock, q, timedOut } = queue();
    const promises = [q.add(cmd("MAIL FROM:<a@b>\r\n")), q.add(cmd("RCPT TO:<c@d>\r\n")), q.add(cmd("DATA\r\n"))];
    const order: string[] = [];
    q.rejectAll((entry) => (order.push(entry.display), new Error(`failed: ${entry.display}`)));
    expect(order).toEqual(["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"]);
    expect([q.inFlight, q.head, q.written, q.answered]).toEqual([0, undefined, 3, 0]);
    expect(clock.pending).toEqual([]);
    for (const [i, p] of promises.entries()) await expect(p).rejects.toThrow(`failed: ${order[i]}`);
    await clock.advance(10_000);
    expect(timedOut).toEqual([]);
    // A second call finds nothing to reject.
    q.rejectAll(() => {
      throw new Error("nothing is left to reject");
    });
  });

  it("a command added after the queue emptied gets its own deadline", async () => {
    const { clock, q, timedOut } = queue();
    void q.add(cmd("NOOP\r\n", 100));
    q.take();
    void q.add(cmd("RSET\r\n", 200));
    expect(clock.pending.map((t) => t.ms)).toEqual([200]);
    await clock.advance(200);
    expect(timedOut.map((e) => e.display)).toEqual(["RSET"]);
  });

  it("a rejected entry nobody awaits is no unhandled rejection; whoever awaits it still sees the error", async () => {
    const { q } = queue();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const watched = q.add(cmd("MAIL FROM:<a@b>\r\n"));
      void q.add(cmd("RCPT TO:<c@d>\r\n"));
      q.rejectAll(() => new Error("dropped"));
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
      await expect(watched).rejects.toThrow("dropped");
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("an entry keeps what it was submitted with", () => {
    const { q } = queue();
    const payload = new Uint8Array([1, 2, 3]);
    void q.add({ line: "BDAT 3 LAST\r\n", payload, expect: "any", phase: "data", deadline: 42 });
    expect(q.head).toMatchObject({ line: "BDAT 3 LAST\r\n", payload, expect: "any", phase: "data", deadline: 42, display: "BDAT 3 LAST" });
  });
});

describe("displayOf", () => {
  it("shows the given display, else the line without its CRLF, <greeting> or <bytes>", () => {
    expect(displayOf({ line: "AUTH PLAIN c2VjcmV0\r\n", display: "AUTH PLAIN <credentials>", expect: [235], phase: "command", deadline: 1 })).toBe("AUTH PLAIN <credentials>");
    expect(displayOf({ line: "", display: "", expect: [235], phase: "command", deadline: 1 })).toBe("");
    expect(displayOf({ expect: [220], phase: "greeting", deadline: 1 })).toBe("<greeting>");
    expect(displayOf({ line: new Uint8Array([0x51, 0x55, 0x49, 0x54, 13, 10]), expect: "any", phase: "command", deadline: 1 })).toBe("<bytes>");
    expect(displayOf({ line: "QUIT\r\n", expect: "any", phase: "command", deadline: 1 })).toBe("QUIT");
    // Only a CRLF at the very end goes; one inside (never written by missive) stays.
    expect(displayOf({ line: "NOOP\r\nx", expect: "any", phase: "command", deadline: 1 })).toBe("NOOP\r\nx");
    expect(displayOf({ line: "NOOP\n", expect: "any", phase: "command", deadline: 1 })).toBe("NOOP\n");
    expect(displayOf({ line: "NOOP\r\n\r\n", expect: "any", phase: "command", deadline: 1 })).toBe("NOOP\r\n");
  });
});
