import {
  BUILTIN_BACKENDS,
  backendNames,
  isBackendName,
  lookupBackendClass,
  registerBackendClass,
  unregisterBackendClass,
  type BuiltinBackendName,
} from "../backend-registry.js";
import type { BackendClass } from "./base.js";

/**
 * The typed face of the backend registry (the table itself is `src/backend-registry.ts`, on
 * the ground floor, so that settings can check names without importing a backend).
 */
export { BUILTIN_BACKENDS, backendNames, isBackendName };
export type { BuiltinBackendName };

/**
 * Makes `name` usable wherever a backend name is: `getConnection(name)`,
 * `configure({ backend: name })`, `EMAIL_BACKEND=name`. Registering a name again replaces it.
 */
export function registerBackend(name: string, backendClass: BackendClass): void {
  registerBackendClass(name, backendClass);
}

/** Removes a registered name (for tests); built-in names cannot be removed. */
export function unregisterBackend(name: string): boolean {
  return unregisterBackendClass(name);
}

export function lookupBackend(name: string): BackendClass | undefined {
  // Every class in the table came through registerBackend above, so it is a BackendClass.
  return lookupBackendClass(name) as BackendClass | undefined;
}
