/**
 * What a round's report means for an outbox message (src/outbox/outcome.ts), on its own:
 * the next state (sent, partial, failed, held, queued again at the backoff, dead when the
 * policy's attempts or lifetime are used up, each at its exact boundary), the progress a
 * person's release or retry gives, and reports and errors kept as plain data. Times are
 * plain numbers and `random` is given: nothing here reads a clock.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DeliveryReport, RecipientOutcome } from "../../src/backends/report.js";
import type { ResolvedRetryPolicy } from "../../src/delivery/retry.js";
import { MissiveError, SmtpError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import {
  HELD_INTERRUPTED,
  HELD_UNKNOWN,
  heldAfterInterruption,
  initialProgress,
  OUTBOX_RETRY,
  released,
  retriedByHand,
  retryLater,
  settlementOf,
  storedError,
  storedReport,
  unchanged,
} from "../../src/outbox/outcome.js";
import type { OutboxEntry, StoredError, StoredReport } from "../../src/outbox/store.js";

const T0 = Date.UTC(2026, 11, 1, 20);
const NOW = T0 + 3_600_000;
const message = new EmailMessage({ subject: "s", body: "b\n", from: "ann@example.com", to: ["bob@example.org"] });

const ENTRY: OutboxEntry = {
  id: "m-1",
  state: "sending",
  messageId: "<a@example.com>",
  date: "Tue, 01 Dec 2026 20:00:00 +0000",
  subject: "s",
  envelope: { from: "ann@example.com", to: ["bob@example.org", "carol@example.org", "dan@example.org"] },
  fields: { from: undefined, to: [], cc: [], replyTo: [], headers: {} },
  smtputf8: false,
  eightBit: false,
  headerLength: 10,
  size: 20,
  enqueuedAt: T0,
  route: undefined,
  priority: 0,
  notBefore: undefined,
  idempotencyKey: undefined,
  unsigned: false,
  attempts: 1,
  nextAttemptAt: undefined,
  pending: ["bob@example.org", "carol@example.org", "dan@example.org"],
  accepted: [],
  rejected: [],
  lastError: undefined,
  report: undefined,
  heldReason: undefined,
  interrupted: undefined,
  updatedAt: T0,
};

const refused = (address: string, code: number | undefined = 550, text = "no"): RecipientOutcome => ({ address, code, enhancedCode: code === undefined ? undefined : "5.1.1", text });

function report(change: Partial<DeliveryReport>): DeliveryReport {
  return { message, messageId: "<a@example.com>", status: "sent", accepted: [], rejected: [], deferred: [], attempts: [], ...change };
}

/** Waits without jitter: 1 s, 2 s, 4 s, at most 8 s; 4 rounds; no lifetime unless given. */
const POLICY: ResolvedRetryPolicy = { attempts: 4, initialDelay: 1000, factor: 2, maxDelay: 8000, jitter: "none", deadline: undefined, retryUnknown: false };
const never = () => {
  throw new Error("random() called");
};

describe("the next state after a round", () => {
  it("everyone accepted: sent, nothing pending, the last error cleared, the report kept", () => {
    const entry = { ...ENTRY, accepted: ["dan@example.org"], lastError: { name: "SmtpError", code: "ESMTP_REPLY", message: "earlier" } };
    const r = report({ status: "sent", accepted: ["bob@example.org", "carol@example.org", "dan@example.org"] });
    expect(settlementOf(entry, 2, r, POLICY, NOW, never)).toStrictEqual({
      attempts: 2,
      accepted: ["dan@example.org", "bob@example.org", "carol@example.org"],
      rejected: [],
      report: storedReport(r, NOW),
      interrupted: undefined,
      state: "sent",
      nextAttemptAt: undefined,
      pending: [],
      lastError: undefined,
      heldReason: undefined,
    });
  });

  it("some accepted, the others refused for good (in this round or an earlier one): partial, keeping the error", () => {
    const error = new SmtpError("refused", { reply: { code: 550, enhancedCode: "5.1.1", lines: ["5.1.1 no such user"], text: "no such user" } });
    const earlier = { ...ENTRY, rejected: [refused("dan@example.org", 551, "old"), refused("carol@example.org", 552, "older")] };
    const s = settlementOf(earlier, 3, report({ status: "partial", accepted: ["bob@example.org"], rejected: [refused("carol@example.org")], error }), POLICY, NOW, never);
    expect(s.state).toBe("partial");
    // One outcome per address, the newest winning, in the order first seen.
    expect(s.rejected).toStrictEqual([refused("dan@example.org", 551, "old"), refused("carol@example.org")]);
    expect(s.lastError).toStrictEqual({ name: "SmtpError", code: "ESMTP_REPLY", message: "refused", replyCode: 550, enhancedCode: "5.1.1" });
    expect(s.pending).toStrictEqual([]);
    expect(s.nextAttemptAt).toBeUndefined();
    expect(s.heldReason).toBeUndefined();

    const accepted = { ...ENTRY, accepted: ["bob@example.org"], rejected: [refused("carol@example.org")] };
    expect(settlementOf(accepted, 2, report({ status: "failed" }), POLICY, NOW, never).state).toBe("partial");
  });

  it("nobody accepted and nobody left: failed, keeping the last error (the round's, else the entry's)", () => {
    const before: StoredError = { name: "X", code: "E", message: "before" };
    const entry = { ...ENTRY, lastError: before };
    const s = settlementOf(entry, 1, report({ status: "failed", rejected: ENTRY.envelope.to.map((a) => refused(a)) }), POLICY, NOW, never);
    expect(s.state).toBe("failed");
    expect(s.lastError).toBe(before);
    expect(s.rejected.map((r) => r.address)).toStrictEqual(ENTRY.envelope.to);
    const e = settlementOf(entry, 1, report({ status: "failed", error: new MissiveError("ETLS", "no tls") }), POLICY, NOW, never);
    expect(e.state).toBe("failed");
    expect(e.lastError).toStrictEqual({ name: "MissiveError", code: "ETLS", message: "no tls" });
  });

  it("unknown (the final dot left, no reply): held, never queued, the unanswered recipients pending", () => {
    const deferred = [refused("bob@example.org", undefined, "no reply")];
    const s = settlementOf({ ...ENTRY, nextAttemptAt: 5 }, 2, report({ status: "unknown", deferred, accepted: ["carol@example.org"] }), POLICY, NOW, never);
    expect(s).toStrictEqual({
      attempts: 2,
      accepted: ["carol@example.org"],
      rejected: [],
      report: storedReport(report({ status: "unknown", deferred, accepted: ["carol@example.org"] }), NOW),
      interrupted: undefined,
      state: "held",
      nextAttemptAt: undefined,
      pending: ["bob@example.org"],
      lastError: undefined,
      heldReason: HELD_UNKNOWN,
    });
    // Held even when no recipient is left unanswered.
    expect(settlementOf(ENTRY, 2, report({ status: "unknown", accepted: ENTRY.envelope.to }), POLICY, NOW, never).state).toBe("held");
  });

  it("recipients deferred: queued again at the backoff, only for them", () => {
    const deferred = [refused("carol@example.org", 451, "later")];
    const s = settlementOf(ENTRY, 2, report({ status: "partial", accepted: ["bob@example.org"], deferred }), POLICY, NOW, never);
    expect(s).toStrictEqual({
      attempts: 2,
      accepted: ["bob@example.org"],
      rejected: [],
      report: storedReport(report({ status: "partial", accepted: ["bob@example.org"], deferred }), NOW),
      pending: ["carol@example.org"],
      lastError: undefined,
      heldReason: undefined,
      interrupted: undefined,
      state: "queued",
      nextAttemptAt: NOW + 2000,
    });
  });
});

describe("retry later, or dead", () => {
  const progress = (attempts: number) => ({ attempts, accepted: [], rejected: [], pending: ["bob@example.org"], lastError: undefined, report: undefined });

  it("waits initialDelay × factor^(rounds − 1), at most maxDelay", () => {
    expect([1, 2, 3].map((n) => retryLater(ENTRY, progress(n), undefined, POLICY, NOW, never).nextAttemptAt)).toStrictEqual([NOW + 1000, NOW + 2000, NOW + 4000]);
    expect(retryLater(ENTRY, progress(3), undefined, { ...POLICY, attempts: 10, maxDelay: 3000 }, NOW, never).nextAttemptAt).toBe(NOW + 3000);
  });

  it("dead once the rounds reach the policy's attempts (one fewer is queued)", () => {
    const queued = retryLater(ENTRY, progress(3), undefined, POLICY, NOW, never);
    expect(queued).toStrictEqual({ ...progress(3), heldReason: undefined, interrupted: undefined, state: "queued", nextAttemptAt: NOW + 4000 });
    expect(retryLater(ENTRY, progress(4), undefined, POLICY, NOW, never)).toStrictEqual({ ...progress(4), heldReason: undefined, interrupted: undefined, state: "dead", nextAttemptAt: undefined });
    expect(retryLater(ENTRY, progress(5), undefined, POLICY, NOW, never).state).toBe("dead");
  });

  it("dead when the next round would start at or past the lifetime, counted from enqueueing", () => {
    // Round 2 waits 2 s: the lifetime ends at T0 + deadline.
    const lifetime = NOW + 2000 - T0;
    expect(retryLater(ENTRY, progress(2), undefined, { ...POLICY, deadline: lifetime }, NOW, never)).toStrictEqual({ ...progress(2), heldReason: undefined, interrupted: undefined, state: "dead", nextAttemptAt: undefined });
    expect(retryLater(ENTRY, progress(2), undefined, { ...POLICY, deadline: lifetime + 1 }, NOW, never)).toMatchObject({ state: "queued", nextAttemptAt: NOW + 2000 });
    // From enqueueing, not from the epoch or from now.
    expect(retryLater({ ...ENTRY, enqueuedAt: T0 + 1 }, progress(2), undefined, { ...POLICY, deadline: lifetime }, NOW, never).state).toBe("queued");
  });

  it("a server's retryAfter longer than the backoff is waited (rounded up); a shorter one is not", () => {
    const slow = new MissiveError("ESMTP_REPLY", "busy", { retryAfter: 5000.2 });
    expect(retryLater(ENTRY, progress(1), slow, POLICY, NOW, never).nextAttemptAt).toBe(NOW + 5001);
    const quick = new MissiveError("ESMTP_REPLY", "busy", { retryAfter: 10 });
    expect(retryLater(ENTRY, progress(1), quick, POLICY, NOW, never).nextAttemptAt).toBe(NOW + 1000);
    // And through a round's report.
    const s = settlementOf(ENTRY, 1, report({ status: "failed", deferred: [refused("bob@example.org", 421)], error: slow }), POLICY, NOW, never);
    expect(s.nextAttemptAt).toBe(NOW + 5001);
    expect(s.lastError).toStrictEqual({ name: "MissiveError", code: "ESMTP_REPLY", message: "busy" });
  });

  it("jitter draws from the given random()", () => {
    const equal = { ...POLICY, jitter: "equal" as const };
    expect(retryLater(ENTRY, progress(2), undefined, equal, NOW, () => 0).nextAttemptAt).toBe(NOW + 1000);
    expect(retryLater(ENTRY, progress(2), undefined, equal, NOW, () => 0.5).nextAttemptAt).toBe(NOW + 1500);
  });

  it("property: queued exactly when rounds and lifetime are left, never before now, never past the lifetime", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 10 }), fc.option(fc.integer({ min: 1, max: 40_000 }), { nil: undefined }), fc.integer({ min: 0, max: 20_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempts, limit, deadline, elapsed, r) => {
        const policy = { ...POLICY, attempts: limit, deadline, jitter: "full" as const };
        const now = T0 + elapsed;
        const s = retryLater(ENTRY, progress(attempts), undefined, policy, now, () => r);
        const base = Math.min(8000, 1000 * 2 ** (attempts - 1));
        const at = now + Math.floor(r * base);
        const alive = attempts < limit && (deadline === undefined || at - T0 < deadline);
        expect(s.state).toBe(alive ? "queued" : "dead");
        expect(s.nextAttemptAt).toBe(alive ? at : undefined);
      }),
      { numRuns: 300 },
    );
  });

  it("the outbox's own policy: 10 rounds from 1 minute doubling to 1 hour, equal jitter, 5 days, unknown never retried", () => {
    expect(OUTBOX_RETRY).toStrictEqual({ attempts: 10, initialDelay: 60_000, factor: 2, maxDelay: 3_600_000, jitter: "equal", deadline: 432_000_000, retryUnknown: false });
    expect(Object.isFrozen(OUTBOX_RETRY)).toBe(true);
  });
});

describe("progress set by hand or by recovery", () => {
  const held: OutboxEntry = {
    ...ENTRY,
    state: "held",
    attempts: 3,
    nextAttemptAt: 99,
    pending: ["carol@example.org"],
    accepted: ["bob@example.org"],
    rejected: [refused("dan@example.org")],
    lastError: { name: "X", code: "E", message: "m" },
    report: { status: "unknown", at: 1 } as StoredReport,
    heldReason: "why",
    interrupted: "after-final-dot",
  };

  it("the reasons a person reads for a held message say what happened and that it may have been delivered", () => {
    expect(HELD_UNKNOWN).toBe("the server did not answer after the message's final dot: it may have been delivered");
    expect(HELD_INTERRUPTED).toBe("the worker stopped after the message entered its final-dot phase: it may have been delivered");
  });

  it("a lease that ran out after the final-dot phase: held, with the progress as it was", () => {
    expect(heldAfterInterruption(held, 4)).toStrictEqual({
      state: "held",
      attempts: 4,
      nextAttemptAt: undefined,
      pending: held.pending,
      accepted: held.accepted,
      rejected: held.rejected,
      lastError: { name: "OutboxError", code: "EOUTBOX", message: HELD_INTERRUPTED },
      report: held.report,
      heldReason: HELD_INTERRUPTED,
      interrupted: undefined,
    });
  });

  it("unchanged: every field as it is, a message being sent put back as queued", () => {
    const same = { state: "held", attempts: 3, nextAttemptAt: 99, pending: held.pending, accepted: held.accepted, rejected: held.rejected, lastError: held.lastError, report: held.report, heldReason: "why", interrupted: "after-final-dot" };
    expect(unchanged(held)).toStrictEqual(same);
    expect(unchanged({ ...held, state: "sending" })).toStrictEqual({ ...same, state: "queued" });
    for (const state of ["queued", "sent", "partial", "failed", "dead"] as const) expect(unchanged({ ...held, state }).state).toBe(state);
  });

  it("released: queued now, for the recipients still pending, the reason and the interruption cleared", () => {
    expect(released(held)).toStrictEqual({
      state: "queued",
      attempts: 3,
      nextAttemptAt: undefined,
      pending: ["carol@example.org"],
      accepted: ["bob@example.org"],
      rejected: held.rejected,
      lastError: held.lastError,
      report: held.report,
      heldReason: undefined,
      interrupted: undefined,
    });
  });

  it("retried by hand: queued now for everyone not yet accepted, in envelope order, rounds counted afresh", () => {
    expect(retriedByHand({ ...held, state: "dead", pending: [] })).toStrictEqual({
      state: "queued",
      attempts: 0,
      nextAttemptAt: undefined,
      pending: ["carol@example.org", "dan@example.org"],
      accepted: ["bob@example.org"],
      rejected: [],
      lastError: held.lastError,
      report: held.report,
      heldReason: undefined,
      interrupted: undefined,
    });
  });

  it("a new entry: queued, everyone pending (a copy), due at notBefore only when that is later than now", () => {
    const to = ["bob@example.org", "carol@example.org"];
    const p = initialProgress({ envelope: { to }, notBefore: NOW + 1 }, NOW);
    expect(p).toStrictEqual({ state: "queued", attempts: 0, nextAttemptAt: NOW + 1, pending: to, accepted: [], rejected: [], lastError: undefined, report: undefined, heldReason: undefined, interrupted: undefined, updatedAt: NOW });
    expect(p.pending).not.toBe(to);
    expect(initialProgress({ envelope: { to }, notBefore: NOW }, NOW).nextAttemptAt).toBeUndefined();
    expect(initialProgress({ envelope: { to }, notBefore: NOW - 1 }, NOW).nextAttemptAt).toBeUndefined();
    expect(initialProgress({ envelope: { to }, notBefore: undefined }, NOW).nextAttemptAt).toBeUndefined();
  });
});

describe("reports and errors as plain data", () => {
  it("an error: name, code, message and the SMTP details, and nothing else", () => {
    const smtp = new SmtpError("refused", { reply: { code: 554, enhancedCode: "5.7.1", lines: ["5.7.1 secret text"], text: "secret text" }, command: "RCPT TO:<x>" });
    (smtp as { stage: string }).stage = "rcpt";
    expect(storedError(smtp)).toStrictEqual({ name: "SmtpError", code: "ESMTP_REPLY", message: "refused", replyCode: 554, enhancedCode: "5.7.1", stage: "rcpt" });
    expect(storedError(new SmtpError("closed"))).toStrictEqual({ name: "SmtpError", code: "ESMTP_REPLY", message: "closed" });
    expect(storedError(new TypeError("bad"))).toStrictEqual({ name: "TypeError", code: undefined, message: "bad" });
    expect(storedError({ code: 5, replyCode: "550", enhancedCode: 5, stage: 1 })).toStrictEqual({ name: "Error", code: undefined, message: "" });
    expect(storedError({ name: 7, message: 8 })).toStrictEqual({ name: "7", code: undefined, message: "8" });
    expect(storedError("plain")).toStrictEqual({ name: "Error", code: undefined, message: "plain" });
    expect(storedError(null)).toStrictEqual({ name: "Error", code: undefined, message: "null" });
    expect(storedError(undefined)).toStrictEqual({ name: "Error", code: undefined, message: "undefined" });
  });

  it("a report: copies of its lists, errors flattened, optional parts only when present, the time it was recorded", () => {
    const error = new SmtpError("busy", { reply: { code: 451, enhancedCode: undefined, lines: ["later"], text: "later" } });
    const accepted = ["bob@example.org"];
    const rejected = [{ ...refused("dan@example.org"), extra: 1 } as RecipientOutcome];
    const attempt = { route: "a", at: 5, delayMs: 0, status: "failed" as const, recipients: ["carol@example.org"], accepted: [], error };
    const full = report({
      status: "partial",
      route: "a",
      accepted,
      rejected,
      deferred: [refused("carol@example.org", 451)],
      attempts: [attempt, { ...attempt, error: undefined, status: "partial", accepted: ["bob@example.org"] }],
      error,
      reply: { code: 250, enhancedCode: "2.0.0", text: "ok" },
      queueId: "Q1",
      stopped: "attempts",
    });
    const stored = storedReport(full, NOW);
    expect(stored).toStrictEqual({
      status: "partial",
      messageId: "<a@example.com>",
      route: "a",
      accepted: ["bob@example.org"],
      rejected: [refused("dan@example.org")],
      deferred: [refused("carol@example.org", 451)],
      attempts: [
        { route: "a", at: 5, delayMs: 0, status: "failed", recipients: ["carol@example.org"], accepted: [], error: { name: "SmtpError", code: "ESMTP_REPLY", message: "busy", replyCode: 451 } },
        { route: "a", at: 5, delayMs: 0, status: "partial", recipients: ["carol@example.org"], accepted: ["bob@example.org"] },
      ],
      error: { name: "SmtpError", code: "ESMTP_REPLY", message: "busy", replyCode: 451 },
      reply: { code: 250, enhancedCode: "2.0.0", text: "ok" },
      queueId: "Q1",
      stopped: "attempts",
      at: NOW,
    });
    expect(stored.accepted).not.toBe(accepted);
    expect(stored.reply).not.toBe(full.reply);
    expect(stored.attempts[0]?.recipients).not.toBe(attempt.recipients);
    expect(JSON.stringify(stored)).not.toContain("message\":{");

    expect(storedReport(report({ messageId: undefined }), 7)).toStrictEqual({ status: "sent", messageId: undefined, route: undefined, accepted: [], rejected: [], deferred: [], attempts: [], at: 7 });
  });
});
