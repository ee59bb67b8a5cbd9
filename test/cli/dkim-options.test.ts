/**
 * `missive send` signs: with --dkim-domain/--dkim-selector/--dkim-key (two pairs: RSA and
 * Ed25519), and as configured through EMAIL_DKIM_* when no flag is given; --no-dkim sends
 * unsigned. Run as the real command; dkimpy verifies what came out on stdout and what a
 * real aiosmtpd stored.
 */
import { execFile } from "node:child_process";
import { createPublicKey } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_SEPARATOR } from "../../src/backends/console.js";
import { ENVIRONMENT_VARIABLES } from "../../src/settings.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { verifyWithDkimpy } from "../helpers/dkim-oracle.js";
import { dkimFixtures, RECORDS, RSA_PEM } from "../dkim/helpers.js";

const ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(ROOT, "bin/missive.ts");
const RSA_KEY = `${dkimFixtures}keys/test-rsa-2048.pem`;
const ED_KEY = `${dkimFixtures}keys/test-ed25519.pem`;

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** `node --import tsx bin/missive.ts ...args` with a clean mail environment plus `env`. */
function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const clean: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ENVIRONMENT_VARIABLES) delete clean[name];
  return new Promise((done, fail) => {
    execFile(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: ROOT, env: { ...clean, ...env }, encoding: "buffer", timeout: 30_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return fail(error);
      done({ code: error ? (error.code as number) : 0, stdout, stderr: stderr.toString("utf8") });
    });
  });
}

const SEND = ["send", "--from", "Ann <ann@example.com>", "--to", "bob@example.org", "--subject", "Signed from the shell — ü", "--body", "Hello.\n.dot line\n"];
/** The message the console backend printed (without its separator line). */
const printed = (r: Run) => r.stdout.subarray(0, r.stdout.length - CONSOLE_SEPARATOR.length);
const selectors = (bytes: Buffer) => [...bytes.toString("latin1").matchAll(/^DKIM-Signature:[^]*?\bs=([a-z0-9]+);/gm)].map((m) => m[1]);

let dir: string;
let server: AiosmtpdServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-cli-dkim-"));
  server = await startAiosmtpd();
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("missive send with DKIM", () => {
  it("signs with the flags (two pairs), with EMAIL_DKIM_* over SMTP and on the console, and not with --no-dkim", async () => {
    const pairs = ["--dkim-domain", "example.com", "--dkim-selector", "rsa", "--dkim-key", RSA_KEY, "--dkim-selector", "ed", "--dkim-key", ED_KEY];
    const envFiles = { EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_SELECTOR: "rsa, ed", EMAIL_DKIM_PRIVATE_KEY_FILE: `${RSA_KEY},${ED_KEY}` };
    // A PEM pasted into one line of an environment file, its line breaks written as \n.
    const envPem = { EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_SELECTOR: "rsa", EMAIL_DKIM_PRIVATE_KEY: RSA_PEM.trim().replaceAll("\n", "\\n") };
    const before = (await server.messages()).length;
    const [flags, overSmtp, fromPem, off, flagsWin] = await Promise.all([
      run([...SEND, "--backend", "console", ...pairs]),
      run([...SEND, "--url", `smtp://${server.host}:${server.port}`], envFiles),
      run([...SEND, "--backend", "console"], envPem),
      run([...SEND, "--backend", "console", "--no-dkim"], envFiles),
      run([...SEND, "--backend", "console", "--dkim-domain", "example.com", "--dkim-selector", "ed", "--dkim-key", ED_KEY], envFiles),
    ]);
    for (const r of [flags, overSmtp, fromPem, off, flagsWin]) expect(r.code, r.stderr).toBe(0);
    const [stored] = (await server.waitForMessages(before + 1)).slice(before);
    expect(overSmtp.stdout.toString()).toMatch(/^accepted bob@example\.org$/m);

    expect(selectors(printed(flags))).toEqual(["rsa", "ed"]);
    expect(selectors(stored!.data)).toEqual(["rsa", "ed"]);
    expect(selectors(printed(fromPem))).toEqual(["rsa"]);
    expect(selectors(printed(off))).toEqual([]);
    // The flags replace what is configured (no merging).
    expect(selectors(printed(flagsWin))).toEqual(["ed"]);

    const judged = [printed(flags), stored!.data, printed(fromPem), printed(flagsWin)];
    const verdicts = await verifyWithDkimpy(judged.map((message) => ({ message, records: RECORDS })));
    expect(verdicts.map((v) => v.map((s) => s.ok))).toEqual([[true, true], [true, true], [true], [true]]);
  });

  it("bad DKIM input is exit 2 with a message naming the flag or variable, and nothing is sent", async () => {
    const publicKey = join(dir, "public.pem");
    await writeFile(publicKey, createPublicKey(RSA_PEM).export({ type: "spki", format: "pem" }));
    const console = ["--backend", "console"];
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["--dkim-domain", "example.com", "--dkim-selector", "rsa", "--dkim-key", join(dir, "missing.pem")], {}, /--dkim-key \S+missing\.pem: ENOENT/],
      [["--dkim-domain", "example.com", "--dkim-selector", "rsa", "--dkim-key", publicKey], {}, /--dkim-key \S+public\.pem is a public key/],
      [["--dkim-domain", "example.com", "--dkim-selector", "rsa"], {}, /--dkim-selector and --dkim-key in pairs/],
      [["--dkim-selector", "rsa", "--dkim-key", RSA_KEY], {}, /--dkim-domain is required/],
      [["--dkim-domain", "example", "--dkim-selector", "rsa", "--dkim-key", RSA_KEY], {}, /--dkim-domain "example" is not a domain/],
      [["--no-dkim", "--dkim-selector", "rsa"], {}, /--no-dkim .* cannot be given with/],
      [[], { EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_PRIVATE_KEY_FILE: RSA_KEY }, /EMAIL_DKIM_SELECTOR is required/],
      [[], { EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_SELECTOR: "rsa,ed", EMAIL_DKIM_PRIVATE_KEY_FILE: RSA_KEY }, /in pairs/],
      [[], { EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_SELECTOR: "rsa", EMAIL_DKIM_PRIVATE_KEY_FILE: publicKey }, /EMAIL_DKIM_PRIVATE_KEY_FILE is a public key/],
    ];
    const runs = await Promise.all(cases.map(([flags, env]) => run([...SEND, ...console, ...flags], env)));
    runs.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(cases[i]![2]);
      expect(r.stdout.length).toBe(0);
    });
  });
});
