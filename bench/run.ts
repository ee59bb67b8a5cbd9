/**
 * Runs the benchmarks, then prints each ratio next to its target (bench/env.ts).
 * Benchmarks print figures and never fail on them. `npm run bench` runs them all on a
 * bundle of the sources (bench/bundle.mjs); `npm run bench -- smtp encoding` only the
 * ones named. The observability cost (bench/observe.ts) is not bundled: it loads missive
 * from two checkouts in processes of its own, so it runs on its own (`npm run bench:observe`).
 */
import * as dkim from "./dkim.js";
import * as encoding from "./encoding.js";
import { environment, printTargets } from "./env.js";
import * as message from "./message.js";
import * as smtp from "./smtp.js";

const modules: Record<string, { run(): Promise<void> }> = { encoding, message, smtp, dkim };
const chosen = process.argv.slice(2).filter((a) => a in modules);

console.log(`# missive benchmarks (${environment()})\n`);
for (const name of chosen.length > 0 ? chosen : Object.keys(modules)) {
  await modules[name]!.run();
  console.log("");
}
printTargets();
