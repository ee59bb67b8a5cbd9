/**
 * The published shape: build with tsup, then load every entry of the exports map from ESM
 * and from CJS (through the package's self-reference, as a user would), and run the built
 * `missive` command. Both module formats must share one outbox per format.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
let dir: string;

beforeAll(async () => {
  await run("npm", ["run", "build"], { cwd: root, timeout: 240_000 });
  // Probe scripts live inside the package so that `missive` resolves to it by self-reference.
  dir = await mkdtemp(join(root, ".tmp-exports-"));
}, 300_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const probe = `
  configure({ backend: "memory" });
  const sent = await sendMail({ subject: "Grüße", message: "body", from: "a@example.org", to: ["b@example.org"] });
  const bytes = await outbox[0].asBytes();
  console.log(JSON.stringify({
    sent, outbox: outbox.length, subject: /^Subject: =\\?utf-8\\?/m.test(bytes.toString("latin1")),
    kinds: [typeof SmtpClient, typeof policies.default, typeof MemoryBackend, typeof EmailMessage],
    dkim: (await signMessage("From: a@example.org\\r\\n\\r\\nbody\\r\\n", { domain: "example.org", selector: "s", privateKey: generateKeyPairSync("ed25519").privateKey })).toString("latin1").startsWith("DKIM-Signature: v=1; a=ed25519-sha256;"),
    brand: new BadHeaderError("x", "y") instanceof MissiveError,
  }));
`;

describe("package exports", () => {
  it("loads every entry as ESM", async () => {
    const file = join(dir, "probe.mjs");
    await writeFile(file, `
      import { EmailMessage, sendMail, configure, MissiveError, BadHeaderError } from "missive";
      import { outbox } from "missive/testing";
      import { MemoryBackend } from "missive/backends";
      import { SmtpClient } from "missive/smtp";
      import { policies } from "missive/mime";
      import { signMessage } from "missive/dkim";
      import { generateKeyPairSync } from "node:crypto";
      ${probe}`);
    const { stdout } = await run(process.execPath, [file], { cwd: root });
    expect(JSON.parse(stdout)).toEqual({ sent: 1, outbox: 1, subject: true, kinds: ["function", "object", "function", "function"], dkim: true, brand: true });
  });

  it("loads every entry as CJS", async () => {
    const file = join(dir, "probe.cjs");
    await writeFile(file, `
      const { EmailMessage, sendMail, configure, MissiveError, BadHeaderError } = require("missive");
      const { outbox } = require("missive/testing");
      const { MemoryBackend } = require("missive/backends");
      const { SmtpClient } = require("missive/smtp");
      const { policies } = require("missive/mime");
      const { signMessage } = require("missive/dkim");
      const { generateKeyPairSync } = require("node:crypto");
      (async () => { ${probe} })();`);
    const { stdout } = await run(process.execPath, [file], { cwd: root });
    expect(JSON.parse(stdout)).toEqual({ sent: 1, outbox: 1, subject: true, kinds: ["function", "object", "function", "function"], dkim: true, brand: true });
  });

  it("recognises an error from the CJS build as an instance of the ESM class", async () => {
    const file = join(dir, "cross.mjs");
    await writeFile(file, `
      import { createRequire } from "node:module";
      import { BadHeaderError, MissiveError } from "missive";
      const cjs = createRequire(import.meta.url)("missive");
      const error = new cjs.BadHeaderError("Subject", "bad");
      console.log(JSON.stringify([error instanceof BadHeaderError, error instanceof MissiveError, cjs.BadHeaderError !== BadHeaderError]));`);
    const { stdout } = await run(process.execPath, [file], { cwd: root });
    expect(JSON.parse(stdout)).toEqual([true, true, true]);
  });

  it("loads missive/parse and startMailCatcher from missive/testing, as ESM and as CJS", async () => {
    const probeCatcher = `
      const parsed = parseMessageSync("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\\r\\n\\r\\nbody\\r\\n");
      const catcher = await startMailCatcher({ port: 0, webPort: false });
      const ok = typeof catcher.smtpPort === "number" && catcher.smtpPort > 0;
      await catcher.close();
      console.log(JSON.stringify({ subject: parsed.subject, text: parsed.text, ok }));
    `;
    const esm = join(dir, "parse.mjs");
    await writeFile(esm, `import { parseMessageSync } from "missive/parse";\nimport { startMailCatcher } from "missive/testing";\n${probeCatcher}`);
    const cjs = join(dir, "parse.cjs");
    await writeFile(cjs, `const { parseMessageSync } = require("missive/parse");\nconst { startMailCatcher } = require("missive/testing");\n(async () => { ${probeCatcher} })();`);
    for (const file of [esm, cjs]) {
      const { stdout } = await run(process.execPath, [file], { cwd: root });
      expect(JSON.parse(stdout), file).toEqual({ subject: "Grüße", text: "body\n", ok: true });
    }
  });

  it("loads every entry but missive/otel without @opentelemetry/api (an optional peer), as ESM and as CJS", async () => {
    // Resolution of @opentelemetry/* fails as if the package were not installed.
    const esmHook = join(dir, "no-otel.mjs");
    await writeFile(esmHook, `
      import { register } from "node:module";
      register("data:text/javascript," + encodeURIComponent(\`
        export async function resolve(specifier, context, next) {
          if (specifier.startsWith("@opentelemetry/")) throw Object.assign(new Error("not installed: " + specifier), { code: "ERR_MODULE_NOT_FOUND" });
          return next(specifier, context);
        }\`));`);
    const cjsHook = join(dir, "no-otel.cjs");
    await writeFile(cjsHook, `
      const Module = require("node:module");
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (request.startsWith("@opentelemetry/")) throw Object.assign(new Error("not installed: " + request), { code: "MODULE_NOT_FOUND" });
        return resolve.call(this, request, ...rest);
      };`);
    const entries = ["missive", "missive/backends", "missive/testing", "missive/mime", "missive/parse", "missive/smtp", "missive/dkim"];
    const esm = join(dir, "no-otel-probe.mjs");
    await writeFile(esm, `
      for (const entry of ${JSON.stringify(entries)}) await import(entry);
      const { configure, sendMail } = await import("missive");
      configure({ backend: "memory" });
      const sent = await sendMail({ subject: "s", message: "b", from: "a@example.org", to: ["b@example.org"] });
      const otel = await import("missive/otel").then(() => "loaded", (e) => e.message);
      console.log(JSON.stringify({ sent, otel }));`);
    const cjs = join(dir, "no-otel-probe.cjs");
    await writeFile(cjs, `
      (async () => {
        for (const entry of ${JSON.stringify(entries)}) require(entry);
        const { configure, sendMail } = require("missive");
        configure({ backend: "memory" });
        const sent = await sendMail({ subject: "s", message: "b", from: "a@example.org", to: ["b@example.org"] });
        let otel = "loaded";
        try { require("missive/otel"); } catch (e) { otel = e.message; }
        console.log(JSON.stringify({ sent, otel }));
      })();`);
    for (const [hook, file, flag] of [[esmHook, esm, "--import"], [cjsHook, cjs, "--require"]] as const) {
      const { stdout } = await run(process.execPath, [flag, hook, file], { cwd: root });
      expect(JSON.parse(stdout), file).toEqual({ sent: 1, otel: "not installed: @opentelemetry/api" });
    }
    // With the peer installed, missive/otel loads in both formats.
    const withPeer = join(dir, "otel.mjs");
    await writeFile(withPeer, `
      import { instrument, uninstrument } from "missive/otel";
      import { createRequire } from "node:module";
      const cjs = createRequire(import.meta.url)("missive/otel");
      console.log(JSON.stringify([typeof instrument, typeof uninstrument, typeof cjs.instrument]));`);
    const { stdout } = await run(process.execPath, [withPeer], { cwd: root });
    expect(JSON.parse(stdout)).toEqual(["function", "function", "function"]);
  });

  it("runs the built missive command", async () => {
    const { stdout } = await run(process.execPath, [join(root, "dist/cli.js"), "--version"], { cwd: root });
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
