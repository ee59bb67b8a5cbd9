#!/usr/bin/env node
// The `missive` command's launcher (built to dist/cli.js, the package's "bin"). The command
// itself lives in src/cli.ts, which has no side effect when imported.
import { main } from "../src/cli.js";

void main(process.argv.slice(2)).then((code) => {
  // exitCode rather than exit(): piped stdout is flushed before the process ends.
  process.exitCode = code;
});
