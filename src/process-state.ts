/**
 * State that must be one per process, not one per copy of missive.
 *
 * The package ships an ESM and a CJS build. An application can load both at once (an ESM
 * app whose dependency calls `require("missive")`, a test runner that transpiles to CJS),
 * and each build has its own module instances. Settings from `configure()`, test-mail
 * routing and the outbox, and backends registered by name are what a user expects to be
 * one: configured once, seen everywhere. So they live on `globalThis` under a
 * `Symbol.for("missive.<name>")` key, which both builds (and two installed versions) resolve
 * to the same symbol. Each name carries a version (`settings.v1`): a change to the shape of
 * what is stored gets a new name, so an older copy in the same process never reads a shape
 * it does not know. Ground floor: imports nothing.
 */

/** The process-wide value named `name`, made by `make()` on first use in the process. */
export function processWide<T extends object>(name: string, make: () => T): T {
  const key = Symbol.for(`missive.${name}`);
  const holder = globalThis as unknown as Record<symbol, T | undefined>;
  const found = holder[key];
  if (found !== undefined) return found;
  const value = make();
  // Not enumerable, not writable: invisible to code that walks globalThis, and never replaced.
  Object.defineProperty(globalThis, key, { value, enumerable: false, writable: false, configurable: false });
  return value;
}
