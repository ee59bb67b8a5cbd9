import { InvalidArgumentError } from "../errors.js";
import type { BackendClass } from "./base.js";

/**
 * Backend names and their classes. Kept apart from the backends themselves so that
 * `settings.ts` can validate a backend name without importing any backend.
 */
const registry = new Map<string, BackendClass>();

/** The names missive ships with; `index.ts` registers their classes. */
export const BUILTIN_BACKENDS = ["smtp", "console", "file", "memory", "dummy"] as const;
export type BuiltinBackendName = (typeof BUILTIN_BACKENDS)[number];

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * Makes `name` usable wherever a backend name is: `getConnection(name)`,
 * `configure({ backend: name })`, `EMAIL_BACKEND=name`. Registering a name again replaces it.
 */
export function registerBackend(name: string, backendClass: BackendClass): void {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new InvalidArgumentError(`Backend name ${JSON.stringify(name)} is not valid: use letters, digits, "_", "-" or "." starting with a letter`);
  }
  if (typeof backendClass !== "function") {
    throw new InvalidArgumentError(`registerBackend("${name}", ...) needs a backend class (a subclass of BaseEmailBackend)`);
  }
  registry.set(name, backendClass);
}

/** Removes a registered name (for tests); built-in names cannot be removed. */
export function unregisterBackend(name: string): boolean {
  if ((BUILTIN_BACKENDS as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(`The built-in backend "${name}" cannot be unregistered`);
  }
  return registry.delete(name);
}

export function lookupBackend(name: string): BackendClass | undefined {
  return registry.get(name);
}

export function isBackendName(name: string): boolean {
  return registry.has(name) || (BUILTIN_BACKENDS as readonly string[]).includes(name);
}

export function backendNames(): string[] {
  return [...new Set<string>([...BUILTIN_BACKENDS, ...registry.keys()])];
}
