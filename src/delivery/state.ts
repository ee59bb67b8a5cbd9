/**
 * The delivery state shared by every user of a named connection in the process: one token
 * bucket per rate-limited name, one circuit per failover route name. Each is made on first
 * use and kept while its settings (and clock) stay the same, so that a new connection per
 * `sendMail` (Django's way) still shares the limit and the circuit. `resetSettings()`
 * forgets them (tests).
 */
import type { Clock } from "../observe/clock.js";
import { Circuit, type ResolvedCircuitSettings } from "./circuit.js";
import { TokenBucket, type ResolvedRateLimit } from "./rate-limit.js";

interface Kept<T> {
  readonly key: string;
  readonly clock: Clock;
  readonly value: T;
}

const buckets = new Map<string, Kept<TokenBucket>>();
const circuits = new Map<string, Kept<Circuit>>();

function kept<T>(table: Map<string, Kept<T>>, name: string, settings: object, clock: Clock, make: () => T): T {
  const key = JSON.stringify(settings);
  const found = table.get(name);
  if (found !== undefined && found.key === key && found.clock === clock) return found.value;
  const value = make();
  table.set(name, { key, clock, value });
  return value;
}

/** The token bucket of the named connection `name`. */
export function sharedBucket(name: string, limit: ResolvedRateLimit, clock: Clock): TokenBucket {
  return kept(buckets, name, limit, clock, () => new TokenBucket(limit, clock, name));
}

/** The circuit of the route `name`. */
export function sharedCircuit(name: string, settings: ResolvedCircuitSettings, clock: Clock): Circuit {
  return kept(circuits, name, settings, clock, () => new Circuit(name, settings, clock));
}

/** Forgets every bucket and circuit (called by resetSettings()). */
export function resetDeliveryState(): void {
  buckets.clear();
  circuits.clear();
}
