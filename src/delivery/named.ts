/**
 * Named connections from the settings (`configure({ backends: { bulk: {...} } })`), made
 * into backends: a new backend instance each time (Django), with the name's shared rate
 * limit when it has `rateLimit`. `getConnection(name)` and the failover routes both come
 * here, so a route and a direct user of the same name share one token bucket.
 */
import { ConfigurationError } from "../errors.js";
import { isClock, systemClock, type Clock } from "../observe/clock.js";
import { CONNECTION_NAME, SETTINGS_FALLBACK, type BackendClass, type EmailBackend } from "../backends/base.js";
import { lookupBackend } from "../backends/registry.js";
import { DEFAULT_SETTINGS, getSettings } from "../settings.js";
import { RateLimitedBackend } from "./limited-backend.js";
import { resolveRateLimit, type TokenBucket } from "./rate-limit.js";
import { sharedBucket } from "./state.js";

export interface NamedRoute {
  /** The backend itself, without the rate limit (the delivery engine applies that as a policy). */
  readonly backend: EmailBackend;
  /** The name's shared token bucket, when it has `rateLimit`. */
  readonly limiter: TokenBucket | undefined;
  /** The backend name it was configured with ("smtp", "failover", a registered name, or a class). */
  readonly kind: string | BackendClass;
}

/** Whether `name` is a named connection in the current settings. */
export function isNamedConnection(name: string): boolean {
  return Object.hasOwn(getSettings().backends, name);
}

/** The named connection `name`: a new backend instance and its shared rate limit. */
export function namedRoute(name: string, options: Record<string, unknown> = {}): NamedRoute {
  const settings = getSettings();
  const config = Object.hasOwn(settings.backends, name) ? settings.backends[name] : undefined;
  if (config === undefined) {
    throw new ConfigurationError("backends", `There is no named connection "${name}"; configured: ${Object.keys(settings.backends).join(", ") || "none"}`);
  }
  const { backend, rateLimit, ...rest } = config;
  // Settings keep a class given to configure() as it came (they do not import backends).
  const cls = typeof backend === "function" ? (backend as BackendClass) : lookupBackend(backend);
  if (cls === undefined) throw new ConfigurationError(`backends.${name}.backend`, `Unknown backend "${String(backend)}" for the connection "${name}"`);
  const instance = new cls({ [SETTINGS_FALLBACK]: DEFAULT_SETTINGS, [CONNECTION_NAME]: name, ...rest, ...options });
  const clock = [options["clock"], rest["clock"]].find(isClock) ?? systemClock;
  const limiter = rateLimit === undefined ? undefined : sharedBucket(name, resolveRateLimit(rateLimit, { path: `backends.${name}.rateLimit`, settings: true }), clock as Clock);
  return { backend: instance, limiter, kind: backend as string | BackendClass };
}

/** The named connection `name` as one backend: behind its rate limit when it has one. */
export function namedConnection(name: string, options: Record<string, unknown> = {}): EmailBackend {
  const route = namedRoute(name, options);
  return route.limiter === undefined ? route.backend : new RateLimitedBackend(route.backend, route.limiter);
}
