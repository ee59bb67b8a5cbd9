// The project's vitest configuration, limited to the test files stryker.config.mjs chose for
// the file being mutated.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import base from "../vitest.config.js";

const include: unknown = JSON.parse(process.env.MISSIVE_MUTATE_TESTS ?? "null");
if (!Array.isArray(include) || include.length === 0) {
  throw new Error("stryker/vitest.config.ts is for `npm run mutate`, which names the test files to run");
}

export default defineConfig({
  ...base,
  root: fileURLToPath(new URL("..", import.meta.url)),
  test: { ...base.test, include: include as string[] },
});
