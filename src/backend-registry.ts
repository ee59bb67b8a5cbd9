import { InvalidArgumentError } from "./errors.js";
import { processWide } from "./process-state.js";

/**
 * Backend names and their classes, on the ground floor: `settings.ts` checks a backend name
 * at `configure()` time without importing any backend, and `backends/` registers the
 * built-ins. Its only imports are `errors.ts` and `process-state.ts`; the precise class type
 * (`BackendClass`, whose instances are `EmailBackend`s) lives in `backends/base.ts`, and
 * `backends/registry.ts` is the typed face of this table.
 */

/** A class whose instances are backends; `backends/base.ts` has the full interface. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type BackendClassLike = new (options?: any) => object;

/**
 * Names registered by users are one table per process, shared by the ESM and CJS builds (see
 * process-state.ts), so that `registerBackend("sendgrid", …)` in one is found by
 * `configure({ backend: "sendgrid" })` in the other. The built-in classes stay per copy:
 * each build's `getConnection("smtp")` gives its own `SmtpBackend`, which its own
 * `instanceof` recognises. A user's registration of a built-in name wins over the built-in.
 */
const registry = processWide("backend-registry.v1", () => new Map<string, BackendClassLike>());
const builtins = new Map<string, BackendClassLike>();

/** The names missive ships with; `backends/index.ts` registers their classes, `delivery/index.ts` "failover", `outbox/backend.ts` "outbox". */
export const BUILTIN_BACKENDS = ["smtp", "console", "file", "memory", "dummy", "failover", "outbox"] as const;
export type BuiltinBackendName = (typeof BUILTIN_BACKENDS)[number];

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** Names that would reach Object.prototype if used as keys, refused everywhere a name goes. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/**
 * Makes `name` usable wherever a backend name is: `getConnection(name)`,
 * `configure({ backend: name })`, `EMAIL_BACKEND=name`. Registering a name again replaces it.
 */
export function registerBackendClass(name: string, backendClass: BackendClassLike): void {
  if (typeof name !== "string" || !NAME.test(name) || FORBIDDEN_KEYS.has(name)) {
    throw new InvalidArgumentError(`Backend name ${JSON.stringify(name)} is not valid: use letters, digits, "_", "-" or "." starting with a letter`);
  }
  if (typeof backendClass !== "function") {
    throw new InvalidArgumentError(`registerBackend("${name}", ...) needs a backend class (a subclass of BaseEmailBackend)`);
  }
  registry.set(name, backendClass);
}

/** Registers a built-in backend of this copy of missive (`backends/index.ts`, `delivery/index.ts`). */
export function registerBuiltinBackendClass(name: BuiltinBackendName, backendClass: BackendClassLike): void {
  builtins.set(name, backendClass);
}

/** Removes a registered name (for tests); built-in names cannot be removed. */
export function unregisterBackendClass(name: string): boolean {
  if ((BUILTIN_BACKENDS as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(`The built-in backend "${name}" cannot be unregistered`);
  }
  return registry.delete(name);
}

export function lookupBackendClass(name: string): BackendClassLike | undefined {
  return registry.get(name) ?? builtins.get(name);
}

export function isBackendName(name: string): boolean {
  return registry.has(name) || builtins.has(name) || (BUILTIN_BACKENDS as readonly string[]).includes(name);
}

export function backendNames(): string[] {
  return [...new Set<string>([...BUILTIN_BACKENDS, ...builtins.keys(), ...registry.keys()])];
}
