/**
 * `missive dkim`: a newcomer's path from keygen to a signed message, run as the real
 * command, with dkimpy verifying the signature against the record the command printed.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyWithDkimpy } from "../helpers/dkim-oracle.js";

const ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(ROOT, "bin/missive.ts");
/** tsx by path: the commands run in a temporary directory, where the bare name would not resolve. */
const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<Run> {
  return new Promise((done, fail) => {
    const child = execFile(process.execPath, ["--import", TSX, CLI, ...args], { cwd: opts.cwd ?? ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return fail(error);
      done({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
    child.stdin!.end(opts.input ?? "");
  });
}

/** The record text from a zone-file line: the quoted strings joined (what DNS gives a verifier). */
function recordOf(stdout: string): { name: string; value: string; strings: string[] } {
  const line = stdout.split("\n").find((l) => l.includes(" IN TXT "))!;
  const strings = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
  return { name: line.split(" ")[0]!.replace(/\.$/, ""), value: strings.join(""), strings };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-dkim-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("missive dkim keygen", () => {
  it("writes an RSA-2048 key with mode 0600 and prints its DNS record in strings of at most 255 bytes", async () => {
    const r = await run(["dkim", "keygen", "--domain", "example.com", "--selector", "s2026"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const path = join(dir, "s2026._domainkey.example.com.pem");
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const pem = await readFile(path, "utf8");
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(execFileSync("openssl", ["pkey", "-in", path, "-noout", "-text"]).toString()).toMatch(/Private-Key: \(2048 bit/);
    const record = recordOf(r.stdout);
    expect(record.name).toBe("s2026._domainkey.example.com");
    expect(record.strings.length).toBe(2);
    expect(record.strings.every((s) => Buffer.byteLength(s) <= 255)).toBe(true);
    const spki = execFileSync("openssl", ["pkey", "-in", path, "-pubout", "-outform", "DER"]).toString("base64");
    expect(record.value).toBe(`v=DKIM1; k=rsa; p=${spki}`);
    expect(r.stdout).toContain("Wrote the RSA 2048-bit private key to s2026._domainkey.example.com.pem (mode 0600)");
  });

  it("never overwrites a key file, and refuses bad options with exit code 2", async () => {
    const path = join(dir, "keep.pem");
    await writeFile(path, "the key in DNS");
    const cases = [
      ["--domain", "example.com", "--selector", "s1", "--out", path],
      ["--domain", "localhost", "--selector", "s1"],
      ["--domain", "example.com", "--selector", "bad_selector"],
      ["--domain", "example.com", "--selector", "s1", "--bits", "512"],
      ["--domain", "example.com", "--selector", "s1", "--type", "ed25519", "--bits", "2048"],
      ["--domain", "example.com", "--selector", "s1", "--type", "dsa"],
      ["--selector", "s1"],
    ];
    for (const args of cases) {
      const r = await run(["dkim", "keygen", ...args], { cwd: dir });
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^missive: /);
    }
    expect(await readFile(path, "utf8")).toBe("the key in DNS");
  });

  it("--out - prints the key on stdout and everything else on stderr", async () => {
    const r = await run(["dkim", "keygen", "--domain", "example.com", "--selector", "ed", "--type", "ed25519", "--out", "-"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=]+\n-----END PRIVATE KEY-----\n$/);
    expect(recordOf(r.stderr).value).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
  });
});

describe("from keygen to a signed message dkimpy verifies", () => {
  it("RSA and Ed25519 keys, their records as printed, `dkim sign` on a file and on stdin, `dkim record` agreeing", async () => {
    const rsa = await run(["dkim", "keygen", "--domain", "mail.example.net", "--selector", "rsa2026", "--out", "rsa.pem"], { cwd: dir });
    const ed = await run(["dkim", "keygen", "--domain", "mail.example.net", "--selector", "ed2026", "--type", "ed25519", "--out", "ed.pem"], { cwd: dir });
    expect([rsa.code, ed.code]).toEqual([0, 0]);
    const records = Object.fromEntries([recordOf(rsa.stdout), recordOf(ed.stdout)].map((r) => [r.name, r.value]));

    const again = await run(["dkim", "record", "--domain", "mail.example.net", "--selector", "rsa2026", "--key", "rsa.pem"], { cwd: dir });
    expect(again.stdout.trim()).toBe(rsa.stdout.split("\n").find((l) => l.includes(" IN TXT ")));

    const message = "From: Ann <ann@mail.example.net>\nTo: bob@example.org\nSubject: Signed from the command line\n\nHello,  Bob.\n";
    await writeFile(join(dir, "m.eml"), message);
    const pair = ["--domain", "mail.example.net", "--selector", "rsa2026", "--key", "rsa.pem", "--selector", "ed2026", "--key", "ed.pem"];
    const fromFile = await run(["dkim", "sign", ...pair, "m.eml"], { cwd: dir });
    const fromStdin = await run(["dkim", "sign", ...pair, "-"], { cwd: dir, input: message });
    expect([fromFile.code, fromStdin.code], fromFile.stderr + fromStdin.stderr).toEqual([0, 0]);
    expect(fromFile.stdout).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256; [^]*\r\nDKIM-Signature: v=1; a=ed25519-sha256; /);
    const verdicts = await verifyWithDkimpy([fromFile.stdout, fromStdin.stdout].map((s) => ({ message: Buffer.from(s), records })));
    expect(verdicts.map((v) => v.map((s) => s.ok))).toEqual([[true, true], [true, true]]);
  });

  it("sign: a missing key file is exit 1, a key that is not a key exit 2", async () => {
    await writeFile(join(dir, "not-a-key.pem"), "hello");
    const missing = await run(["dkim", "sign", "--domain", "example.com", "--selector", "s", "--key", "nope.pem", "-"], { cwd: dir, input: "From: a@example.com\n\nx\n" });
    const bad = await run(["dkim", "sign", "--domain", "example.com", "--selector", "s", "--key", "not-a-key.pem", "-"], { cwd: dir, input: "From: a@example.com\n\nx\n" });
    expect([missing.code, bad.code]).toEqual([1, 2]);
    expect(missing.stderr).toMatch(/nope\.pem: ENOENT/);
    expect(bad.stderr).toMatch(/not a private key/);
  });

  it("help and usage", async () => {
    const help = await run(["dkim", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/missive dkim keygen --domain DOMAIN --selector SELECTOR/);
    const none = await run(["dkim"]);
    expect(none.code).toBe(2);
    const top = await run(["--help"]);
    expect(top.stdout).toMatch(/missive dkim keygen/);
  });
});

