import { readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, relative } from "node:path";
import { defineConfig } from "tsup";

/**
 * tsup's CommonJS code splitting converts esbuild's ESM output to CJS in a second pass, and
 * the maps of that pass name the intermediate file by its absolute path on the build
 * machine. Rewrites such a source as a path relative to the map, as every other source is.
 */
async function relativeMapSources(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".map")) continue;
    const file = join(entry.parentPath, entry.name);
    const map = JSON.parse(await readFile(file, "utf8")) as { sources: string[] };
    if (!map.sources.some((s) => isAbsolute(s))) continue;
    map.sources = map.sources.map((s) => (isAbsolute(s) ? relative(dirname(file), s) : s));
    await writeFile(file, JSON.stringify(map));
  }
}

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
    "outbox/index": "src/outbox/index.ts",
    "bullmq/index": "src/bullmq/index.ts",
    // The launcher; src/cli.ts (main) is bundled into it.
    cli: "bin/missive.ts",
  },
  format: ["esm", "cjs"],
  dts: true,
  // Maps map stack traces (node --enable-source-maps) to src/ lines; without sourcesContent
  // they do not carry a second copy of the source, which was most of the package's size.
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
  clean: true,
  target: "node20",
  platform: "node",
  splitting: true,
  shims: false,
  onSuccess: () => relativeMapSources("dist"),
});
