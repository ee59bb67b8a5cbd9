// Mutation testing with StrykerJS: plants small bugs (a `<` made `<=`, a condition made
// `true`, a block emptied) in one source file and reports each one no test noticed.
//
//   npm run mutate -- --mutate src/smtp/reply.ts
//
// Each target runs only against the test files listed for it below (the ones that exercise
// it directly), so a run takes minutes, not hours. Not part of `npm test` or CI. Mutants that
// cannot change behaviour are listed and explained in EQUIVALENT.md beside this file, with
// the score of each target.

/** Source file → the test files that exercise it. */
const targets = {
  "src/smtp/reply.ts": ["test/smtp/reply.test.ts", "test/smtp/capabilities.test.ts"],
  "src/smtp/data-stream.ts": ["test/smtp/data-stream.test.ts", "test/smtp/internal-errors.test.ts"],
  "src/smtp/commands.ts": ["test/smtp/commands.test.ts"],
  "src/mime/encoding/quoted-printable.ts": ["test/mime/encoding/quoted-printable.test.ts", "test/mime/encoding/transform.test.ts"],
  "src/mime/encoding/base64.ts": ["test/mime/encoding/base64.test.ts", "test/mime/encoding/transform.test.ts"],
  "src/mime/encoding/encoded-word.ts": ["test/mime/encoding/encoded-word.test.ts", "test/mime/encoding/encode-utf8-text.test.ts", "test/mime/encoding/encoded-word-cuts.test.ts"],
  "src/mime/encoding/rfc2231.ts": ["test/mime/encoding/rfc2231.test.ts"],
  "src/mime/headers.ts": ["test/mime/headers.test.ts", "test/mime/header-kinds-and-guards.test.ts", "test/mime/header-octets.test.ts"],
  "src/errors/classify.ts": ["test/errors/classify.test.ts"],
  "src/delivery/retry.ts": ["test/delivery/policies.test.ts", "test/delivery/policy-limits.test.ts"],
  "src/delivery/circuit.ts": ["test/delivery/policies.test.ts", "test/delivery/policy-limits.test.ts"],
  "src/delivery/rate-limit.ts": ["test/delivery/policies.test.ts", "test/delivery/policy-limits.test.ts"],
  "src/delivery/wait.ts": ["test/delivery/policies.test.ts", "test/delivery/policy-limits.test.ts"],
  "src/dkim/canonicalize.ts": ["test/dkim/canonicalize.test.ts"],
  "src/outbox/record.ts": ["test/outbox/record.test.ts"],
  "src/outbox/outcome.ts": ["test/outbox/outcome.test.ts"],
  "src/outbox/store.ts": ["test/outbox/store.test.ts", "test/outbox/record.test.ts", "test/outbox/outcome.test.ts"],
  "src/outbox/spool-fs.ts": ["test/outbox/spool-fs.test.ts"],
  "src/outbox/file-store.ts": ["test/outbox/file-store-basics.test.ts", "test/outbox/file-store-moves.test.ts", "test/outbox/file-store-faults.test.ts", "test/outbox/file-store.test.ts", "test/outbox/outbox.test.ts"],
  "src/smtp/pool.ts": ["test/smtp/pool.test.ts", "test/backends/smtp-pool.test.ts"],
  "src/smtp/pending.ts": ["test/smtp/pending.test.ts", "test/smtp/clock.test.ts", "test/smtp/protocol-faults.test.ts"],
  "src/smtp/connection.ts": ["test/smtp/connection.test.ts", "test/smtp/connection-tls.test.ts", "test/smtp/clock.test.ts", "test/smtp/protocol-faults.test.ts", "test/smtp/client.fake.test.ts", "test/smtp/stages.test.ts"],
  "src/smtp/auth.ts": ["test/smtp/auth-sasl.test.ts", "test/smtp/auth.test.ts", "test/smtp/auth-exchange.test.ts"],
  "src/smtp/capabilities.ts": ["test/smtp/capabilities-limits.test.ts", "test/smtp/capabilities.test.ts"],
  "src/smtp/transcript.ts": ["test/smtp/transcript.test.ts"],
  "src/smtp/envelope.ts": ["test/smtp/envelope.test.ts"],
  "src/smtp/connection.ts": ["test/smtp/clock.test.ts", "test/smtp/protocol-faults.test.ts", "test/smtp/client.fake.test.ts", "test/smtp/stages.test.ts"],
  "src/smtp/config.ts": ["test/smtp/config.test.ts", "test/smtp/config-limits.test.ts", "test/smtp/client.options.test.ts", "test/smtp/greeting-hint.test.ts"],
  "src/smtp/options.ts": ["test/smtp/tls-options.test.ts", "test/smtp/client.options.test.ts"],
  "src/smtp/client.ts": ["test/smtp/client.handshake-edges.test.ts", "test/smtp/client.surface.test.ts", "test/smtp/client.failure-edges.test.ts", "test/smtp/client.transaction-edges.test.ts", "test/smtp/client.session-edges.test.ts", "test/smtp/client.fake.test.ts", "test/smtp/protocol-faults.test.ts", "test/smtp/stages.test.ts", "test/smtp/recipients-on-failure.test.ts", "test/smtp/internal-errors.test.ts", "test/backends/smtp-pipeline.test.ts"],
  "src/smtp/handshake.ts": ["test/smtp/client.handshake-edges.test.ts", "test/smtp/client.transaction-edges.test.ts", "test/smtp/client.session-edges.test.ts", "test/smtp/client.fake.test.ts", "test/smtp/greeting-hint.test.ts", "test/smtp/client.options.test.ts"],
  "src/smtp/pipeline.ts": ["test/smtp/client.handshake-edges.test.ts", "test/smtp/client.transaction-edges.test.ts", "test/smtp/client.session-edges.test.ts", "test/backends/smtp-pipeline.test.ts"],
  "src/mime/encoding/charset.ts": ["test/mime/encoding/charset.test.ts", "test/mime/encoding/charset-edges.test.ts", "test/mime/encoding/encode-in-pieces.test.ts", "test/mime/encoding/iso-2022-jp.test.ts"],
  "src/mime/encoding/punycode.ts": ["test/mime/encoding/punycode.test.ts"],
  "src/mime/encoding/byte-classes.ts": ["test/mime/encoding/byte-classes.test.ts"],
  "src/mime/encoding/transform.ts": ["test/mime/encoding/transform.test.ts"],
};

/** The files named by `--mutate a.ts,b.ts` (or `-m`, or `--mutate=`), line ranges dropped. */
function requestedFiles(argv) {
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let value;
    if (arg === "--mutate" || arg === "-m") value = argv[++i];
    else if (arg.startsWith("--mutate=")) value = arg.slice("--mutate=".length);
    if (value === undefined) continue;
    for (const spec of value.split(",")) files.push(spec.replace(/:\d+(:\d+)?-\d+(:\d+)?$/, ""));
  }
  return files;
}

const requested = requestedFiles(process.argv.slice(2));
const chosen = requested.length > 0 ? requested : Object.keys(targets);
const unknown = chosen.filter((file) => !(file in targets));
if (unknown.length > 0) {
  throw new Error(`stryker/stryker.config.mjs lists no test files for ${unknown.join(", ")}: add the file to its targets table`);
}
// The test files reach vitest through stryker/vitest.config.ts (Stryker's test runners are
// child processes and inherit this variable). Stryker's own `testFiles` option is not used:
// in 9.6.1 it makes Stryker switch a mutant in module-level code (`const MAX = 8 * 1024`)
// on only after the module has loaded, so such mutants survive whatever the tests do
// (stryker-js issue 6144).
process.env.MISSIVE_MUTATE_TESTS = JSON.stringify([...new Set(chosen.flatMap((file) => targets[file]))]);

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "stryker/vitest.config.ts", related: false },
  mutate: Object.keys(targets),
  // Only the tests that reach a mutant run against it; the machine's two cores are shared.
  coverageAnalysis: "perTest",
  concurrency: 1,
  reporters: ["clear-text", "progress", "html", "json"],
  clearTextReporter: { allowColor: false, logTests: false },
  htmlReporter: { fileName: "stryker/reports/mutation.html" },
  jsonReporter: { fileName: "stryker/reports/mutation.json" },
  tempDirName: "stryker/tmp",
  ignorePatterns: ["dist", "out", ".tmp", ".tmp-exports-*", "stryker/reports"],
  thresholds: { high: 90, low: 80, break: null },
};
