/**
 * The retry policy: how many tries, how long to wait between them, when to stop.
 *
 *   retry: { attempts: 5, initialDelay: 1_000, factor: 2, maxDelay: 60_000, jitter: "full", deadline: 600_000, retryUnknown: false }
 *
 * It knows nothing of SMTP: what may be retried is classify()'s verdict on the failure
 * (errors/classify.ts), read here once (`verdictOf`), and the waits are exponential backoff
 * with jitter (AWS's "full" and "equal" jitter; "none" for a fixed schedule), never shorter
 * than a `retryAfter` the failing side asked for.
 */
import { ConfigurationError, InvalidArgumentError, type MissiveError } from "../errors.js";
import { classify, type Verdict } from "../errors/classify.js";
import { MAX_TIMER_MS } from "../observe/clock.js";

export type Jitter = "full" | "equal" | "none";

export interface RetryPolicy {
  /** Tries per message in all, the first included, over every route. Default 3; 1: no retry. */
  attempts?: number | undefined;
  /** The first wait (ms). Default 1000. */
  initialDelay?: number | undefined;
  /** Each wait is this many times the one before. Default 2. */
  factor?: number | undefined;
  /** No wait is longer (ms), except one a server asked for (`retryAfter`). Default 60000. */
  maxDelay?: number | undefined;
  /** "full": a random wait up to the backoff; "equal": half of it plus a random half; "none": exactly it. Default "full". */
  jitter?: Jitter | undefined;
  /** The most a message may take in all (ms), waits included; when a wait would pass it, the engine stops with the last error. */
  deadline?: number | undefined;
  /**
   * Resend a message whose outcome is unknown (the final dot left, no reply came). Off by
   * default: the resend may deliver it twice (it keeps its Message-ID, so a receiver can
   * tell). Only for mail where a duplicate is better than a loss.
   */
  retryUnknown?: boolean | undefined;
}

export interface ResolvedRetryPolicy {
  readonly attempts: number;
  readonly initialDelay: number;
  readonly factor: number;
  readonly maxDelay: number;
  readonly jitter: Jitter;
  readonly deadline: number | undefined;
  readonly retryUnknown: boolean;
}

export const DEFAULT_RETRY: ResolvedRetryPolicy = Object.freeze({
  attempts: 3,
  initialDelay: 1_000,
  factor: 2,
  maxDelay: 60_000,
  jitter: "full",
  deadline: undefined,
  retryUnknown: false,
});

/** One try only: what a backend used on its own does. */
export const NO_RETRY: ResolvedRetryPolicy = Object.freeze({ ...DEFAULT_RETRY, attempts: 1 });

const KEYS = ["attempts", "initialDelay", "factor", "maxDelay", "jitter", "deadline", "retryUnknown"] as const;
const MAX_ATTEMPTS = 1000;

/** Where options come from, for the error: settings (ConfigurationError naming `path`) or code (InvalidArgumentError). */
export interface OptionSource {
  readonly path: string;
  readonly settings: boolean;
}

export function optionError(where: OptionSource, key: string, message: string): never {
  const name = key === "" ? where.path : `${where.path}.${key}`;
  if (where.settings) throw new ConfigurationError(name, `${name} ${message}`);
  throw new InvalidArgumentError(`${name} ${message}`);
}

/** Checks own keys only, refusing unknown ones (a typo must not silently mean the default). */
export function ownOptions(value: unknown, keys: readonly string[], where: OptionSource, shape: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) optionError(where, "", `must be ${shape}`);
  const out: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) optionError(where, "", `has an unknown option "${key}"; known: ${keys.join(", ")}`);
    out[key] = (value as Record<string, unknown>)[key];
  }
  return out;
}

function milliseconds(o: Record<string, unknown>, key: string, where: OptionSource, min: number): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > MAX_TIMER_MS) optionError(where, key, `must be a number of milliseconds from ${min} to ${MAX_TIMER_MS}, got ${String(v)}`);
  return v;
}

/** The policy with every default filled in; refuses unknown keys and values out of range. */
export function resolveRetryPolicy(input: unknown, where: OptionSource): ResolvedRetryPolicy {
  if (input === undefined) return DEFAULT_RETRY;
  const o = ownOptions(input, KEYS, where, "{ attempts, initialDelay, factor, maxDelay, jitter, deadline, retryUnknown }");
  const attempts = o["attempts"];
  if (attempts !== undefined && (typeof attempts !== "number" || !Number.isInteger(attempts) || attempts < 1 || attempts > MAX_ATTEMPTS)) {
    optionError(where, "attempts", `must be an integer from 1 to ${MAX_ATTEMPTS} (the first try included), got ${String(attempts)}`);
  }
  const factor = o["factor"];
  if (factor !== undefined && (typeof factor !== "number" || !Number.isFinite(factor) || factor < 1 || factor > 100)) {
    optionError(where, "factor", `must be a number from 1 to 100, got ${String(factor)}`);
  }
  const jitter = o["jitter"];
  if (jitter !== undefined && jitter !== "full" && jitter !== "equal" && jitter !== "none") optionError(where, "jitter", `must be "full", "equal" or "none", got ${JSON.stringify(jitter)}`);
  const retryUnknown = o["retryUnknown"];
  if (retryUnknown !== undefined && typeof retryUnknown !== "boolean") optionError(where, "retryUnknown", "must be true or false");
  const initialDelay = milliseconds(o, "initialDelay", where, 0) ?? DEFAULT_RETRY.initialDelay;
  const maxDelay = milliseconds(o, "maxDelay", where, 0) ?? Math.max(DEFAULT_RETRY.maxDelay, initialDelay);
  if (maxDelay < initialDelay) optionError(where, "maxDelay", `(${maxDelay} ms) must not be less than initialDelay (${initialDelay} ms)`);
  return Object.freeze({
    attempts: (attempts as number | undefined) ?? DEFAULT_RETRY.attempts,
    initialDelay,
    factor: (factor as number | undefined) ?? DEFAULT_RETRY.factor,
    maxDelay,
    jitter: (jitter as Jitter | undefined) ?? DEFAULT_RETRY.jitter,
    deadline: milliseconds(o, "deadline", where, 1),
    retryUnknown: (retryUnknown as boolean | undefined) ?? false,
  });
}

/**
 * The backoff before the `retry`-th wait (1-based): `initialDelay × factor^(retry − 1)`,
 * at most `maxDelay`, then jittered with `random()` in [0, 1). Whole milliseconds.
 */
export function backoffDelay(policy: ResolvedRetryPolicy, retry: number, random: () => number): number {
  const base = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** Math.max(0, retry - 1));
  switch (policy.jitter) {
    case "full":
      return Math.floor(random() * base);
    case "equal":
      return Math.floor(base / 2 + (random() * base) / 2);
    case "none":
      return Math.floor(base);
  }
}

/** The wait before the `retry`-th retry after `error`: the backoff, or longer when the error asks (`retryAfter`). */
export function retryDelay(policy: ResolvedRetryPolicy, retry: number, error: MissiveError | undefined, random: () => number): number {
  const backoff = backoffDelay(policy, retry, random);
  const asked = error?.retryAfter;
  return asked !== undefined && asked > backoff ? Math.ceil(asked) : backoff;
}

/**
 * What the engine does after a failed try, from classify(): "unknown" counts as
 * "retry-here" only with `retryUnknown` (the resend keeps the Message-ID: the message is
 * frozen once).
 */
export function verdictOf(error: MissiveError, policy: ResolvedRetryPolicy): Verdict {
  const verdict = classify(error);
  return verdict === "unknown" && policy.retryUnknown ? "retry-here" : verdict;
}
