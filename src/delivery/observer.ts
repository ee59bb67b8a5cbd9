/**
 * The delivery engine's decisions, as calls on an injectable observer: logging, metrics and
 * tracing attach here without the engine knowing about any of them. Every method is
 * optional; the default observer does nothing. An observer that throws is ignored (a broken
 * logger must not change what is delivered).
 *
 * The order for one message: `attempt` (and `attemptEnd`) for each try, with `retry` or
 * `failover` between two tries, `skip` for a route passed over, `circuitOpen` /
 * `circuitProbe` / `circuitClose` as a route's circuit changes, `rateLimitWait` before an
 * attempt that had to wait for a token, and `outcome` once, with the final report.
 */
import type { MissiveError } from "../errors.js";
import type { EmailMessage } from "../mime/message.js";
import type { DeliveryReport, DeliveryStatus } from "../backends/report.js";

/** Which message, which route, which try. */
export interface AttemptContext {
  readonly message: EmailMessage;
  /** The message's Message-ID once known (after its first rendering), else undefined. */
  readonly messageId: string | undefined;
  readonly route: string | undefined;
  /** 1 for the first try of this message, counting every route. */
  readonly attempt: number;
  /** The recipients this try is for (a retry carries only those still deferred). */
  readonly recipients: readonly string[];
}

export interface DeliveryObserver {
  /** A try starts. */
  attempt?(context: AttemptContext): void;
  /** A try ended: its own status, how long it took, its failure. */
  attemptEnd?(context: AttemptContext, result: { readonly status: Exclude<DeliveryStatus, "skipped">; readonly durationMs: number; readonly error: MissiveError | undefined }): void;
  /** The engine waits `delayMs` and tries again (on the same route, or the first again after every route failed). */
  retry?(delayMs: number, error: MissiveError | undefined, context: AttemptContext): void;
  /** The message moves from one route to the next at once (a route-level failure). */
  failover?(from: string, to: string, error: MissiveError | undefined, context: AttemptContext): void;
  /** A route was passed over: its circuit is open. */
  skip?(route: string, reason: "circuit-open", context: AttemptContext): void;
  /** A route's circuit opened after repeated route failures: the route is skipped for its cooldown. */
  circuitOpen?(route: string): void;
  /** The cooldown passed: one probe goes through the route. */
  circuitProbe?(route: string): void;
  /** The probe (or any try) succeeded: the route is in use again. */
  circuitClose?(route: string): void;
  /** An attempt waited `ms` for a rate limit's token. */
  rateLimitWait?(route: string, ms: number): void;
  /** The message's final report. */
  outcome?(report: DeliveryReport): void;
}

export const noopObserver: DeliveryObserver = Object.freeze({});

type Method = keyof DeliveryObserver;

/** Calls observers' methods, ignoring what they throw; several observers are called in order. */
export class ObserverSet {
  readonly #observers: readonly DeliveryObserver[];

  constructor(observers: readonly (DeliveryObserver | undefined)[]) {
    const given = observers.filter((o): o is DeliveryObserver => o !== undefined);
    this.#observers = given.filter((o, i) => given.indexOf(o) === i);
  }

  /** These observers and `more` (each called once). */
  with(more: DeliveryObserver | undefined): ObserverSet {
    return more === undefined ? this : new ObserverSet([...this.#observers, more]);
  }

  emit<M extends Method>(method: M, ...args: Parameters<NonNullable<DeliveryObserver[M]>>): void {
    for (const observer of this.#observers) {
      const fn = observer[method] as ((...a: unknown[]) => void) | undefined;
      if (typeof fn !== "function") continue;
      try {
        fn.apply(observer, args);
      } catch {
        // An observer's failure is its own: delivery goes on as decided.
      }
    }
  }
}

/** Whether `value` can be an observer: an object whose known keys are functions. */
export function observerProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "must be an object with methods such as attempt(), retry(), outcome()";
  for (const key of OBSERVER_METHODS) {
    const fn = (value as Record<string, unknown>)[key];
    if (fn !== undefined && typeof fn !== "function") return `has ${key} that is not a function`;
  }
  return undefined;
}

export const OBSERVER_METHODS: readonly Method[] = [
  "attempt",
  "attemptEnd",
  "retry",
  "failover",
  "skip",
  "circuitOpen",
  "circuitProbe",
  "circuitClose",
  "rateLimitWait",
  "outcome",
];
