// `npm run bench`: bundles bench/run.ts with the sources it measures into one ES module
// (esbuild, as tsup builds dist/: no name-keeping wrappers around every function, which
// tsx adds and which cost a hot path several percent) and runs it with plain Node.
// Dependencies stay external, so the bundle lives under node_modules/.cache to find them.
import { build } from "esbuild";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outdir = join(root, "node_modules", ".cache", "missive-bench");
mkdirSync(outdir, { recursive: true });
// `node bench/bundle.mjs profile smtp`: the single workload of bench/profile.ts instead.
const entry = process.argv[2] === "profile" ? "profile" : "run";
const outfile = join(outdir, `${entry}.mjs`);
await build({
  entryPoints: [join(root, "bench", `${entry}.ts`)],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
  outfile,
  logLevel: "warning",
});
await import(pathToFileURL(outfile).href);
