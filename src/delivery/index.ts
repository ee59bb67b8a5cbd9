/**
 * The delivery engine: policies around attempts, not protocol. Registers the "failover"
 * backend; `api.ts` imports this module.
 */
import { registerBuiltinBackendClass } from "../backend-registry.js";
import { FailoverBackend } from "./failover.js";

registerBuiltinBackendClass("failover", FailoverBackend);

export { FailoverBackend } from "./failover.js";
export type { FailoverBackendOptions, FailoverRoute } from "./failover.js";
export type { FailoverSettings, ResolvedFailoverSettings } from "./config.js";
export { DEFAULT_RETRY, NO_RETRY, backoffDelay, retryDelay, resolveRetryPolicy } from "./retry.js";
export type { Jitter, RetryPolicy, ResolvedRetryPolicy } from "./retry.js";
export { Circuit, DEFAULT_CIRCUIT } from "./circuit.js";
export type { CircuitSettings, CircuitState, ResolvedCircuitSettings } from "./circuit.js";
export { TokenBucket, resolveRateLimit } from "./rate-limit.js";
export type { RateLimit, ResolvedRateLimit } from "./rate-limit.js";
export { RateLimitedBackend } from "./limited-backend.js";
export { RoutingBackend } from "./routing.js";
export type { RoutingBackendOptions } from "./routing.js";
export { noopObserver, OBSERVER_METHODS } from "./observer.js";
export type { AttemptContext, DeliveryObserver } from "./observer.js";
export { namedConnection, isNamedConnection } from "./named.js";
export { resetDeliveryState } from "./state.js";
