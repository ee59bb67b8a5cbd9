/**
 * Runs every benchmark module that exports `run()`. Add a module to the list to include it.
 * Benchmarks print figures and never fail on them.
 */
const modules = ["./encoding.ts", "./message.ts", "./dkim.ts", "./observe.ts"];

for (const path of modules) {
  const mod = (await import(path)) as { run?: () => Promise<void> };
  if (typeof mod.run === "function") {
    await mod.run();
    console.log("");
  }
}
