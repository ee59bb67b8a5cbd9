/**
 * The failover options, checked once: `configure({ failover })`, a named connection
 * `{ backend: "failover", routes, ... }` and `new FailoverBackend({...})` all come here, so
 * a bad retry number or an unknown key is refused the same way (ConfigurationError naming
 * the setting for settings, InvalidArgumentError for code). That route names exist and are
 * not failovers themselves is checked where the named connections are known (settings.ts,
 * and the FailoverBackend when it builds its routes).
 */
import { resolveCircuitSettings, type CircuitSettings, type ResolvedCircuitSettings } from "./circuit.js";
import { observerProblem, type DeliveryObserver } from "./observer.js";
import { optionError, ownOptions, resolveRetryPolicy, type OptionSource, type ResolvedRetryPolicy, type RetryPolicy } from "./retry.js";

/** What `configure({ failover })` and a named `{ backend: "failover" }` take. */
export interface FailoverSettings {
  /** Named connections (from `backends`), tried in this order. */
  routes: readonly string[];
  /** Default: 3 attempts, 1 s doubling to at most 60 s, full jitter. `false`: one try per route. */
  retry?: RetryPolicy | false | undefined;
  /** Default: open after 5 route failures in a row, for 30 s. `false`: no circuits. */
  circuit?: CircuitSettings | false | undefined;
  /** Sees every decision (see observer.ts). */
  observer?: DeliveryObserver | undefined;
  /** Messages of one batch in flight at once. Default 1 (in order, one after another). */
  concurrency?: number | undefined;
}

export interface ResolvedFailoverSettings {
  readonly routes: readonly string[];
  readonly retry: ResolvedRetryPolicy;
  readonly circuit: ResolvedCircuitSettings | undefined;
  readonly observer: DeliveryObserver | undefined;
  readonly concurrency: number;
}

export const FAILOVER_KEYS = ["routes", "retry", "circuit", "observer", "concurrency"] as const;

/** Checks everything but whether the route names exist (the caller knows the named connections). */
export function resolveFailoverSettings(input: unknown, where: OptionSource, extraKeys: readonly string[] = []): ResolvedFailoverSettings {
  const o = ownOptions(input, [...FAILOVER_KEYS, ...extraKeys], where, "{ routes: [names of connections], retry, circuit }");
  const routes = o["routes"];
  if (!Array.isArray(routes) || routes.length === 0 || !routes.every((r) => typeof r === "string" && r !== "")) {
    optionError(where, "routes", "must be a non-empty list of named connections (from backends), e.g. [\"primary\", \"secondary\"]");
  }
  const seen = new Set<string>();
  for (const r of routes as string[]) {
    if (seen.has(r)) optionError(where, "routes", `names "${r}" twice`);
    seen.add(r);
  }
  return resolveFailoverPolicies(o, where, Object.freeze([...(routes as string[])]));
}

/** The parts of the failover options other than routes (a FailoverBackend given its routes as backends checks these). */
export function resolveFailoverPolicies(o: Record<string, unknown>, where: OptionSource, routes: readonly string[]): ResolvedFailoverSettings {
  const retryInput = o["retry"];
  const retry = retryInput === false ? resolveRetryPolicy({ attempts: 1 }, sub(where, "retry")) : resolveRetryPolicy(retryInput, sub(where, "retry"));
  const circuit = resolveCircuitSettings(o["circuit"], sub(where, "circuit"));
  const observer = o["observer"];
  if (observer !== undefined) {
    const problem = observerProblem(observer);
    if (problem !== undefined) optionError(where, "observer", problem);
  }
  const concurrency = o["concurrency"];
  if (concurrency !== undefined && (typeof concurrency !== "number" || !Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000)) {
    optionError(where, "concurrency", `must be an integer from 1 to 1000, got ${String(concurrency)}`);
  }
  return Object.freeze({ routes, retry, circuit, observer: observer as DeliveryObserver | undefined, concurrency: (concurrency as number | undefined) ?? 1 });
}

function sub(where: OptionSource, key: string): OptionSource {
  return { path: `${where.path}.${key}`, settings: where.settings };
}
