/**
 * A circuit breaker per route: after `failures` route-level failures in a row (cannot
 * connect, greeting refused, TLS, AUTH: classify's `routeFault`) the route is skipped for
 * `cooldown` ms; then one probe goes through, and its outcome closes the circuit again or
 * reopens it for another cooldown.
 *
 *   closed ──failures in a row──▶ open ──cooldown──▶ half-open (one probe) ──ok──▶ closed
 *                                  ▲                          │
 *                                  └────────── fault ─────────┘
 *
 * Nothing here knows SMTP: the engine says whether a try was a fault of the route, went
 * through ("ok": the server answered, whatever it said about the message), or said nothing
 * about the route ("neutral": a rate limit's wait, an abort). Time is the injected clock's.
 */
import { MAX_TIMER_MS, type Clock } from "../observe/clock.js";
import { optionError, ownOptions, type OptionSource } from "./retry.js";

export interface CircuitSettings {
  /** Route-level failures in a row that open the circuit. Default 5. */
  failures?: number | undefined;
  /** How long (ms) an open circuit skips the route before one probe. Default 30000. */
  cooldown?: number | undefined;
}

export interface ResolvedCircuitSettings {
  readonly failures: number;
  readonly cooldown: number;
}

export const DEFAULT_CIRCUIT: ResolvedCircuitSettings = Object.freeze({ failures: 5, cooldown: 30_000 });

/** `false` switches circuits off; undefined is the default. */
export function resolveCircuitSettings(input: unknown, where: OptionSource): ResolvedCircuitSettings | undefined {
  if (input === undefined) return DEFAULT_CIRCUIT;
  if (input === false) return undefined;
  const o = ownOptions(input, ["failures", "cooldown"], where, "false or { failures, cooldown }");
  const failures = o["failures"];
  if (failures !== undefined && (typeof failures !== "number" || !Number.isInteger(failures) || failures < 1 || failures > 10_000)) {
    optionError(where, "failures", `must be an integer from 1 to 10000, got ${String(failures)}`);
  }
  const cooldown = o["cooldown"];
  if (cooldown !== undefined && (typeof cooldown !== "number" || !Number.isFinite(cooldown) || cooldown < 1 || cooldown > MAX_TIMER_MS)) {
    optionError(where, "cooldown", `must be a number of milliseconds from 1 to ${MAX_TIMER_MS}, got ${String(cooldown)}`);
  }
  return Object.freeze({ failures: (failures as number | undefined) ?? DEFAULT_CIRCUIT.failures, cooldown: (cooldown as number | undefined) ?? DEFAULT_CIRCUIT.cooldown });
}

export type CircuitState = "closed" | "open" | "half-open";

/** What one try said about the route. */
export type RouteOutcome = "ok" | "fault" | "neutral";

export class Circuit {
  readonly route: string;
  readonly settings: ResolvedCircuitSettings;
  readonly #clock: Clock;
  #state: CircuitState = "closed";
  #faults = 0;
  #openedAt = 0;
  #probing = false;

  constructor(route: string, settings: ResolvedCircuitSettings, clock: Clock) {
    this.route = route;
    this.settings = settings;
    this.#clock = clock;
  }

  get state(): CircuitState {
    return this.#state;
  }

  /** Route-level failures in a row so far. */
  get faults(): number {
    return this.#faults;
  }

  /**
   * Whether a try may go through now: "yes" (closed), "probe" (the cooldown passed: this try
   * is the one probe; the caller must `record` its outcome with `probe: true`), or "no".
   */
  admit(): "yes" | "probe" | "no" {
    switch (this.#state) {
      case "closed":
        return "yes";
      case "open":
        if (this.#clock.now() - this.#openedAt < this.settings.cooldown) return "no";
        this.#state = "half-open";
        this.#probing = true;
        return "probe";
      case "half-open":
        if (this.#probing) return "no";
        this.#probing = true;
        return "probe";
    }
  }

  /** Milliseconds until an open circuit lets a probe through (0 when it would now); undefined when not open. */
  reopensIn(): number | undefined {
    switch (this.#state) {
      case "open":
        return Math.max(0, this.settings.cooldown - (this.#clock.now() - this.#openedAt));
      case "half-open":
        return this.#probing ? undefined : 0;
      case "closed":
        return undefined;
    }
  }

  /**
   * The outcome of a try admitted by `admit()`. Returns "opened" when this failure opened
   * (or reopened) the circuit, "closed" when a success closed it after it had been open.
   */
  record(outcome: RouteOutcome, probe: boolean): "opened" | "closed" | undefined {
    if (probe) this.#probing = false;
    switch (outcome) {
      case "neutral":
        return undefined;
      case "ok": {
        const wasOpen = this.#state !== "closed";
        this.#state = "closed";
        this.#faults = 0;
        return wasOpen ? "closed" : undefined;
      }
      case "fault":
        if (this.#state === "half-open") {
          // The probe failed (or a try admitted before the circuit opened): another cooldown.
          this.#state = "open";
          this.#openedAt = this.#clock.now();
          return "opened";
        }
        if (this.#state === "open") return undefined;
        this.#faults += 1;
        if (this.#faults < this.settings.failures) return undefined;
        this.#state = "open";
        this.#openedAt = this.#clock.now();
        return "opened";
    }
  }
}
