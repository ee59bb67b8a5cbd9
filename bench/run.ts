/**
 * Runs every benchmark module that exports `run()`, then prints each ratio next to its
 * target (bench/env.ts). Benchmarks print figures and never fail on them. `npm run bench`
 * runs them all; `npm run bench -- smtp encoding` only the ones named.
 */
import { environment, printTargets } from "./env.js";

const modules = ["encoding", "message", "smtp", "dkim"];
const chosen = process.argv.slice(2).filter((a) => modules.includes(a));

console.log(`# missive benchmarks (${environment()})\n`);
for (const name of chosen.length > 0 ? chosen : modules) {
  const mod = (await import(`./${name}.ts`)) as { run?: () => Promise<void> };
  if (typeof mod.run === "function") {
    await mod.run();
    console.log("");
  }
}
printTargets();
