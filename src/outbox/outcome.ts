/**
 * What a round's report means for an outbox message, decided in one place (pure):
 *
 * - "unknown" (the final dot left, no reply): held. Never resent unless a person releases it.
 * - nobody left to deliver to: sent (everyone accepted), partial (some accepted, the others
 *   refused for good) or failed (nobody accepted).
 * - recipients still deferred (a transient failure: classify() said "retry-here" or
 *   "next-route" for them, so the report put them in `deferred`): queued again after the
 *   retry policy's backoff (delivery/retry.ts, the same backoff and `retryAfter` rule the
 *   delivery engine uses), only for those recipients; dead when the policy's attempts or
 *   its deadline (the queue lifetime, counted from enqueueing) are used up.
 *
 * A round is one worker's lease: the backend may try several times inside it (a failover
 * backend with its own retries); `attempts` counts rounds.
 */
import type { DeliveryReport, RecipientOutcome } from "../backends/report.js";
import type { MissiveError } from "../errors.js";
import { retryDelay, type ResolvedRetryPolicy } from "../delivery/retry.js";
import type { EntryProgress, OutboxEntry, Settlement, StoredError, StoredReport } from "./store.js";

/**
 * The outbox's retry policy by default: rounds further apart than the delivery engine's
 * in-process tries (Postfix waits minutes to an hour between queue runs, and bounces after
 * days): 10 rounds, from 1 minute doubling up to 1 hour, "equal" jitter (at least half of
 * each wait), and a lifetime of 5 days.
 */
export const OUTBOX_RETRY: ResolvedRetryPolicy = Object.freeze({
  attempts: 10,
  initialDelay: 60_000,
  factor: 2,
  maxDelay: 3_600_000,
  jitter: "equal",
  deadline: 5 * 24 * 3_600_000,
  retryUnknown: false,
});

export const HELD_UNKNOWN = "the server did not answer after the message's final dot: it may have been delivered";
export const HELD_INTERRUPTED = "the worker stopped after the message entered its final-dot phase: it may have been delivered";

/** The next state of `entry` after round `attempts` ended with `report`. */
export function settlementOf(entry: OutboxEntry, attempts: number, report: DeliveryReport, policy: ResolvedRetryPolicy, now: number, random: () => number): Settlement {
  const stored = storedReport(report, now);
  const accepted = [...new Set([...entry.accepted, ...report.accepted])];
  const rejected = mergeRejected(entry.rejected, report.rejected);
  const pending = report.deferred.map((d) => d.address);
  const lastError = report.error !== undefined ? storedError(report.error) : entry.lastError;
  const base = { attempts, accepted, rejected, report: stored, interrupted: undefined } as const;
  if (report.status === "unknown") return { ...base, state: "held", nextAttemptAt: undefined, pending, lastError, heldReason: HELD_UNKNOWN };
  if (pending.length === 0) {
    const state = accepted.length === 0 ? "failed" : rejected.length === 0 ? "sent" : "partial";
    return { ...base, state, nextAttemptAt: undefined, pending: [], lastError: state === "sent" ? undefined : lastError, heldReason: undefined };
  }
  return retryLater(entry, { ...base, pending, lastError }, report.error, policy, now, random);
}

/**
 * A round that ended without delivering to `pending` for a reason that may pass: queued at
 * the backoff, or dead when the policy is used up.
 */
export function retryLater(
  entry: OutboxEntry,
  progress: Pick<Settlement, "attempts" | "accepted" | "rejected" | "pending" | "lastError" | "report">,
  error: MissiveError | undefined,
  policy: ResolvedRetryPolicy,
  now: number,
  random: () => number,
): Settlement {
  const common = { ...progress, heldReason: undefined, interrupted: undefined } as const;
  if (progress.attempts >= policy.attempts) return { ...common, state: "dead", nextAttemptAt: undefined };
  const delay = retryDelay(policy, progress.attempts, error, random);
  if (policy.deadline !== undefined && now + delay - entry.enqueuedAt >= policy.deadline) return { ...common, state: "dead", nextAttemptAt: undefined };
  return { ...common, state: "queued", nextAttemptAt: now + delay };
}

/** Held without a new report: the worker's lease ran out after the final-dot phase. */
export function heldAfterInterruption(entry: OutboxEntry, attempts: number): Settlement {
  return {
    state: "held",
    attempts,
    nextAttemptAt: undefined,
    pending: entry.pending,
    accepted: entry.accepted,
    rejected: entry.rejected,
    lastError: { name: "OutboxError", code: "EOUTBOX", message: HELD_INTERRUPTED },
    report: entry.report,
    heldReason: HELD_INTERRUPTED,
    interrupted: undefined,
  };
}

/** The progress as it is, as a settlement (to put a message back unchanged, or re-apply a recorded state). */
export function unchanged(entry: OutboxEntry): Settlement {
  const state = entry.state === "sending" ? "queued" : entry.state;
  return {
    state,
    attempts: entry.attempts,
    nextAttemptAt: entry.nextAttemptAt,
    pending: entry.pending,
    accepted: entry.accepted,
    rejected: entry.rejected,
    lastError: entry.lastError,
    report: entry.report,
    heldReason: entry.heldReason,
    interrupted: entry.interrupted,
  };
}

/** A held message released by a person: queued now for the recipients whose outcome was unknown. */
export function released(entry: OutboxEntry): Settlement {
  return { ...unchanged(entry), state: "queued", nextAttemptAt: undefined, heldReason: undefined, interrupted: undefined };
}

/**
 * A finished message retried by a person (failed, dead, partial), or a queued one asked for
 * now: queued now, for every recipient not yet accepted, with a fresh count of rounds.
 */
export function retriedByHand(entry: OutboxEntry): Settlement {
  const accepted = new Set(entry.accepted);
  const pending = entry.envelope.to.filter((address) => !accepted.has(address));
  return { ...unchanged(entry), state: "queued", attempts: 0, nextAttemptAt: undefined, pending, rejected: [], heldReason: undefined, interrupted: undefined };
}

/** The progress of a new entry. */
export function initialProgress(entry: { readonly envelope: { readonly to: readonly string[] }; readonly notBefore: number | undefined }, now: number): EntryProgress {
  return {
    state: "queued",
    attempts: 0,
    nextAttemptAt: entry.notBefore !== undefined && entry.notBefore > now ? entry.notBefore : undefined,
    pending: [...entry.envelope.to],
    accepted: [],
    rejected: [],
    lastError: undefined,
    report: undefined,
    heldReason: undefined,
    interrupted: undefined,
    updatedAt: now,
  };
}

function mergeRejected(before: readonly RecipientOutcome[], now: readonly RecipientOutcome[]): RecipientOutcome[] {
  const byAddress = new Map(before.map((r) => [r.address, r]));
  for (const r of now) byAddress.set(r.address, r);
  return [...byAddress.values()];
}

/** An error as plain data: name, code, message and the SMTP details a person needs. */
export function storedError(error: unknown): StoredError {
  const e = (typeof error === "object" && error !== null ? error : { message: String(error) }) as Partial<MissiveError> & { replyCode?: unknown; enhancedCode?: unknown; stage?: unknown };
  const out: { -readonly [K in keyof StoredError]: StoredError[K] } = { name: String(e.name ?? "Error"), code: typeof e.code === "string" ? e.code : undefined, message: String(e.message ?? "") };
  if (typeof e.replyCode === "number") out.replyCode = e.replyCode;
  if (typeof e.enhancedCode === "string") out.enhancedCode = e.enhancedCode;
  if (typeof e.stage === "string") out.stage = e.stage;
  return out;
}

/** A report as plain data (no message object, errors flattened). */
export function storedReport(report: DeliveryReport, at: number): StoredReport {
  return {
    status: report.status,
    messageId: report.messageId,
    route: report.route,
    accepted: [...report.accepted],
    rejected: report.rejected.map(copyOutcome),
    deferred: report.deferred.map(copyOutcome),
    attempts: report.attempts.map((a) => ({
      route: a.route,
      at: a.at,
      delayMs: a.delayMs,
      status: a.status,
      recipients: [...a.recipients],
      accepted: [...a.accepted],
      ...(a.error !== undefined ? { error: storedError(a.error) } : {}),
    })),
    ...(report.error !== undefined ? { error: storedError(report.error) } : {}),
    ...(report.reply !== undefined ? { reply: { ...report.reply } } : {}),
    ...(report.queueId !== undefined ? { queueId: report.queueId } : {}),
    ...(report.stopped !== undefined ? { stopped: report.stopped } : {}),
    at,
  };
}

function copyOutcome(o: RecipientOutcome): RecipientOutcome {
  return { address: o.address, code: o.code, enhancedCode: o.enhancedCode, text: o.text };
}
