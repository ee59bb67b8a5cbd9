import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    "backends/index": "src/backends/index.ts",
    testing: "src/testing.ts",
    "mime/index": "src/mime/index.ts",
    "smtp/index": "src/smtp/index.ts",
    "dkim/index": "src/dkim/index.ts",
    "parse/index": "src/parse/index.ts",
    // OpenTelemetry: its own entry, so that only it imports @opentelemetry/api (an optional peer).
    "otel/index": "src/otel/index.ts",
    // The launcher; src/cli.ts (main) is bundled into it.
    cli: "bin/missive.ts",
  },
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  platform: "node",
  splitting: true,
  shims: false,
});
