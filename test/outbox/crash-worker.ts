/**
 * Run by crash.test.ts: `missive worker ARGS` with its modules already loaded, started when a
 * line arrives on stdin. The test starts the next worker while the current one delivers and
 * lets it go the moment the current one is killed: a node + tsx start costs seconds on a
 * loaded machine, which would otherwise be most of the test's time. Exits if stdin closes
 * before it was told to start (the test is gone).
 */
import { main } from "../../src/cli.js";
import "../../src/cli/outbox.js";
import "../../src/backends/smtp.js";

const started = () => void main(["worker", ...process.argv.slice(2)]).then((code) => (process.exitCode = code));
process.stdin.once("data", () => {
  process.stdin.off("end", gone);
  process.stdin.pause();
  started();
});
const gone = () => process.exit(0);
process.stdin.once("end", gone);
