import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup/fast-check.ts"],
    reporters: ["default", "./test/setup/summary-reporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites start their own servers on port 0; two workers match the machine.
    pool: "forks",
    maxWorkers: 2,
  },
});
