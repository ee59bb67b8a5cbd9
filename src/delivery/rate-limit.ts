/**
 * A token bucket: `rateLimit: { messages: 50, perSeconds: 1, burst: 100, maxWait: 10_000 }`
 * lets 50 messages a second through on average, up to 100 at once after a quiet spell.
 * Each message takes a token before it is sent; with none left it waits its turn (first
 * come, first served: each waiter reserves the next token, so waits queue up in order),
 * and when its turn is further away than `maxWait` it fails at once with ERATE_LIMITED
 * (RateLimitedError) instead of waiting.
 *
 * One bucket per named backend, shared by every user of that name in the process (see
 * named.ts). Waits are on the injected clock and end at once when the signal aborts (the
 * reserved token is given back).
 */
import { RateLimitedError } from "../errors.js";
import { MAX_TIMER_MS, type Clock } from "../observe/clock.js";
import { optionError, ownOptions, type OptionSource } from "./retry.js";
import { sleep } from "./wait.js";

export interface RateLimit {
  /** Messages allowed per `perSeconds`. */
  messages: number;
  /** The period, in seconds. Default 1. */
  perSeconds?: number | undefined;
  /** Messages that may go at once after a quiet spell (the bucket's size). Default `messages`. */
  burst?: number | undefined;
  /** The longest a message waits for its token (ms); past it, ERATE_LIMITED. Default: no limit. */
  maxWait?: number | undefined;
}

export interface ResolvedRateLimit {
  readonly messages: number;
  readonly perSeconds: number;
  readonly burst: number;
  readonly maxWait: number | undefined;
}

export function resolveRateLimit(input: unknown, where: OptionSource): ResolvedRateLimit {
  const o = ownOptions(input, ["messages", "perSeconds", "burst", "maxWait"], where, "{ messages, perSeconds, burst, maxWait }");
  const positive = (key: string, integer: boolean, max: number): number | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || v > max || (integer && !Number.isInteger(v))) {
      optionError(where, key, `must be a positive ${integer ? "integer" : "number"} up to ${max}, got ${String(v)}`);
    }
    return v;
  };
  const messages = positive("messages", true, 1_000_000);
  if (messages === undefined) optionError(where, "messages", "is required: how many messages per perSeconds");
  const perSeconds = positive("perSeconds", false, 86_400) ?? 1;
  const burst = positive("burst", true, 1_000_000) ?? messages;
  const maxWait = o["maxWait"];
  if (maxWait !== undefined && (typeof maxWait !== "number" || !Number.isFinite(maxWait) || maxWait < 0 || maxWait > MAX_TIMER_MS)) {
    optionError(where, "maxWait", `must be a number of milliseconds from 0 to ${MAX_TIMER_MS}, got ${String(maxWait)}`);
  }
  return Object.freeze({ messages, perSeconds, burst, maxWait: maxWait as number | undefined });
}

export class TokenBucket {
  readonly limit: ResolvedRateLimit;
  /** The named backend it belongs to, for errors. */
  readonly name: string | undefined;
  readonly #clock: Clock;
  /** Tokens per millisecond. */
  readonly #rate: number;
  /** Tokens now; below zero, reservations made by waiters. */
  #tokens: number;
  #last: number;

  constructor(limit: ResolvedRateLimit, clock: Clock, name?: string) {
    this.limit = limit;
    this.name = name;
    this.#clock = clock;
    this.#rate = limit.messages / (limit.perSeconds * 1000);
    this.#tokens = limit.burst;
    this.#last = clock.now();
  }

  /** Tokens available now (negative: that many already promised to waiters). */
  get available(): number {
    this.#refill();
    return this.#tokens;
  }

  /**
   * Takes a token, waiting for it when there is none. Resolves to the milliseconds waited
   * (0 when a token was there). Rejects with RateLimitedError when the wait would be longer
   * than `maxWait` (nothing is taken), and with an AbortError when `signal` aborts.
   */
  async take(signal?: AbortSignal): Promise<number> {
    this.#refill();
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    const wait = Math.ceil((1 - this.#tokens) / this.#rate);
    if (this.limit.maxWait !== undefined && wait > this.limit.maxWait) throw new RateLimitedError(this.name, wait, this.limit.maxWait);
    this.#tokens -= 1;
    try {
      await sleep(wait, this.#clock, signal);
    } catch (error) {
      this.#tokens += 1;
      throw error;
    }
    return wait;
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.limit.burst, this.#tokens + elapsed * this.#rate);
  }
}
