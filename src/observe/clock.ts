/**
 * Time, injectable: whatever reads the time or arms a timer (the SMTP connection's reply
 * deadlines, the pool's idle timers and probes) takes a `Clock`, so that tests step time
 * instead of sleeping and later layers (retries, circuits, rate limits) share one source.
 * Ground floor: imports no one.
 */

/** A timer as the clock that armed it knows it; only that clock's clearTimeout reads it. */
export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds since the epoch (Date.now()). */
  now(): number;
  /**
   * Calls `callback` once after `ms` milliseconds. `unref: true` lets the process exit while
   * the timer is pending (an idle connection's close timer must not keep a program alive).
   */
  setTimeout(callback: () => void, ms: number, options?: { readonly unref?: boolean }): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: Date.now and Node's timers. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (callback: () => void, ms: number, options?: { readonly unref?: boolean }): TimerHandle => {
    const timer = setTimeout(callback, ms);
    if (options?.unref) timer.unref();
    return timer;
  },
  clearTimeout: (handle: TimerHandle): void => clearTimeout(handle as NodeJS.Timeout),
});

/** The longest delay Node's timers take (a larger one fires at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Whether `value` can be handed to a Clock as an object with the three methods. */
export function isClock(value: unknown): value is Clock {
  if (typeof value !== "object" || value === null) return false;
  const c = value as Record<string, unknown>;
  return typeof c["now"] === "function" && typeof c["setTimeout"] === "function" && typeof c["clearTimeout"] === "function";
}
