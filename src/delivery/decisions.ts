/**
 * What the delivery engine does with each verdict, in words: the README's decision table
 * is generated from these and classify's rules (test/readme.test.ts), so that the table
 * and the engine (engine.ts) are read side by side.
 */
import { CLASSIFICATION_RULES, type RecipientVerdict, type Verdict } from "../errors/classify.js";

/** After a failed try of the message, by classify()'s verdict. */
export const VERDICT_ACTIONS: Readonly<Record<Verdict, string>> = Object.freeze({
  "retry-here": "wait (backoff with jitter, at least the error's `retryAfter`), then the same route again",
  "next-route": "the next route at once; when every route failed in this round, wait, then the first route again",
  "give-up": "stop: the recipients of that try are rejected (`failed`, or `partial` if others were accepted)",
  unknown: "stop: `unknown`, never resent (with `retryUnknown: true`: as retry-here, same Message-ID)",
});

/** For each recipient of a try that went through, by its RCPT reply (recipientVerdict). */
export const RECIPIENT_ACTIONS: Readonly<Record<RecipientVerdict, string>> = Object.freeze({
  accepted: "accepted: never sent again",
  "over-limit": "sent alone in the next transaction at once (not counted as a retry)",
  deferred: "retried alone after the backoff, on the same route",
  rejected: "rejected for good: never sent again",
});

/** Rows where the engine does something more precise than the verdict's action (keyed by the rule's words). */
export const RULE_ACTIONS: Readonly<Record<string, string>> = Object.freeze({
  "not a missive error (a bug)": "thrown to the caller (a bug is not a delivery outcome)",
  "bad input: header, address, encoding, argument or setting": "thrown to the caller before anything is sent (`deliver` too)",
  "cancelled through its AbortSignal": "stop: `aborted` (or `deadline`); the recipients not delivered stay `deferred`",
  "a backend's own failure (retry-here when the backend says it is transient)":
    "stop, the recipients rejected; a `BackendError` with `retryable: true` is retry-here (its `retryAfter` honoured)",
});

export interface DecisionRow {
  readonly when: string;
  readonly verdict: Verdict;
  readonly action: string;
  /** Counts toward the route's circuit. */
  readonly circuit: boolean;
}

/** One row per classification rule, in the table's order (first match wins). */
export function decisionRows(): DecisionRow[] {
  return CLASSIFICATION_RULES.map((r) => ({
    when: r.rule,
    verdict: r.verdict,
    action: RULE_ACTIONS[r.rule] ?? VERDICT_ACTIONS[r.verdict],
    circuit: r.verdict === "next-route" && r.routeFault !== false,
  }));
}
