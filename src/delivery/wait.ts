/**
 * Waiting on the injected clock, cancellable: every wait of the delivery engine (backoff, a
 * rate limit's token) goes through `sleep`, so a test steps time instead of sleeping and an
 * AbortSignal ends any wait at once.
 */
import { AbortError } from "../errors.js";
import { MAX_TIMER_MS, type Clock } from "../observe/clock.js";

/** Resolves after `ms` on `clock`; rejects with an AbortError as soon as `signal` aborts. */
export function sleep(ms: number, clock: Clock, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = clock.setTimeout(
      () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      },
      Math.min(ms, MAX_TIMER_MS),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The AbortError for a signal: its reason when that is one already. */
export function abortError(signal: AbortSignal | undefined): AbortError {
  const reason: unknown = signal?.reason;
  if (reason instanceof AbortError) return reason;
  return new AbortError("The delivery was aborted", { cause: reason });
}

/** A signal that aborts when any of `signals` does (with that one's reason); `dispose()` stops listening. */
export function anySignal(signals: readonly (AbortSignal | undefined)[]): { readonly signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  const listeners = live.map((s) => {
    const onAbort = () => controller.abort(s.reason);
    if (s.aborted) controller.abort(s.reason);
    else s.addEventListener("abort", onAbort, { once: true });
    return () => s.removeEventListener("abort", onAbort);
  });
  return { signal: controller.signal, dispose: () => listeners.forEach((off) => off()) };
}
