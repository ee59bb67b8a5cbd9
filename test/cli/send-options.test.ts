/**
 * `missive send` as a first-time user runs it: the connection flags it shares with `check`
 * (--ca, --timeout, --tls, --username, --password-file), a closed stdout, the file
 * backend's path, a missing attachment, the queue id printed once, and the warning for
 * the unconfigured default sender. Against aiosmtpd and the scripted fault server.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { CLI, cleanMailEnv, ROOT, runCli as run } from "../helpers/cli.js";



let dir: string;
let certs: TestCerts;
let plain: AiosmtpdServer;
let secure: AiosmtpdServer;
let caPath: string;
let passwordPath: string;
const PASSWORD = "s3cret-pa55-w0rd";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-cli-send-"));
  certs = await makeTestCerts();
  [plain, secure] = await Promise.all([startAiosmtpd(), startAiosmtpd({ tls: "starttls", auth: { users: { alice: PASSWORD } } })]);
  caPath = join(dir, "ca.pem");
  passwordPath = join(dir, "password");
  await writeFile(caPath, certs.ca);
  await writeFile(passwordPath, `${PASSWORD}\n`);
});
afterAll(async () => {
  await Promise.all([plain?.stop(), secure?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

const send = ["send", "--to", "b@example.com", "--subject", "Hello", "--body", "Hi", "--from", "a@example.com"];

describe("missive send: the connection flags check has", () => {
  it("--tls starttls --ca --username --password-file --timeout: STARTTLS verified, AUTH as alice, no password printed", async () => {
    const before = (await secure.messages()).length;
    const r = await run([...send, "--url", `smtp://localhost:${secure.port}`, "--tls", "starttls", "--ca", caPath, "--username", "alice", "--password-file", passwordPath, "--timeout", "10"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("accepted b@example.com");
    const [stored] = (await secure.waitForMessages(before + 1)).slice(before);
    expect(stored!.tls).toBe(true);
    expect(stored!.authUser).toBe("alice");
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });

  it("the same flags with the server from the environment (EMAIL_HOST), and with check", async () => {
    const flags = ["--tls", "starttls", "--ca", caPath, "--username", "alice", "--password-file", passwordPath];
    const viaEnv = await run([...send, ...flags], { EMAIL_HOST: "localhost", EMAIL_PORT: String(secure.port) });
    expect(viaEnv.code).toBe(0);
    const check = await run(["check", `smtp://localhost:${secure.port}`, ...flags]);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain("AUTH: ok (authenticated as alice)");
    expect(check.stdout).not.toContain(PASSWORD);
  });

  it("without --ca, the certificate is not trusted: exit 1, and the hint names the flag", async () => {
    const r = await run([...send, "--url", `smtp://localhost:${secure.port}?tls=starttls`, "--timeout", "10"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SmtpTlsError/);
    expect(r.stderr).toMatch(/^missive: on the command line, trust the server's CA with --ca FILE$/m);
  });

  it.each([
    [["--timeout", "soon"], /--timeout must be a positive number of seconds/],
    [["--tls", "always"], /--tls must be one of implicit, starttls, opportunistic, none/],
    [["--ca", "missing-ca.pem"], /--ca missing-ca\.pem: no such file \(looked for \/.*\/missing-ca\.pem\); check the path and the directory the command runs in/],
    [["--password-file", "nope.txt"], /--password-file nope\.txt: no such file/],
  ])("%j: exit 2 with what is wrong", async (flags, message) => {
    const r = await run([...send, "--url", `smtp://127.0.0.1:${plain.port}`, ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it("--password-file needs a user name; the flags on a non-SMTP backend are refused, not ignored", async () => {
    const noUser = await run([...send, "--url", `smtp://127.0.0.1:${plain.port}`, "--password-file", passwordPath]);
    expect(noUser.code).toBe(2);
    expect(noUser.stderr).toMatch(/--password-file needs a user name: --username, or user@ in the URL/);
    const file = await run([...send, "--url", `file://${join(dir, "never")}`, "--timeout", "5"]);
    expect(file.code).toBe(2);
    expect(file.stderr).toMatch(/are for SMTP/);
    const consoleBackend = await run([...send, "--backend", "console", "--tls", "none"]);
    expect(consoleBackend.code).toBe(2);
    expect(consoleBackend.stderr).toMatch(/are for SMTP; this sends with the console backend/);
  });
});

describe("missive send: what it prints", () => {
  it("the queue id once (the server's reply already says \"queued as\")", async () => {
    const r = await run([...send, "--url", `smtp://127.0.0.1:${plain.port}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^server: 250 .*queued as \S+$/m);
    expect(r.stdout.match(/queued as/g)).toHaveLength(1);
    expect(r.stdout).not.toMatch(/queue id/);
  });

  it("the file backend: the path it wrote", async () => {
    const out = join(dir, "outbox");
    const r = await run([...send, "--url", `file://${out}`]);
    expect(r.code).toBe(0);
    const [name] = await readdir(out);
    expect(r.stdout).toMatch(new RegExp(`^file: wrote ${join(out, name!).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
  });

  it("a missing attachment: which path, resolved, and what to check; nothing sent", async () => {
    const before = (await plain.messages()).length;
    const r = await run([...send, "--attach", "reprot.pdf", "--url", `smtp://127.0.0.1:${plain.port}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`missive: --attach reprot.pdf: no such file (looked for ${join(ROOT, "reprot.pdf")}); check the path and the directory the command runs in\n`);
    const directory = await run([...send, "--attach", dir, "--url", `smtp://127.0.0.1:${plain.port}`]);
    expect(directory.stderr).toMatch(/--attach .*: not a regular file/);
    expect((await plain.messages()).length).toBe(before);
  });
});

describe("missive send: the unconfigured default sender", () => {
  let refusing: FakeSmtpServer;
  beforeAll(async () => {
    refusing = await startFakeServer({ onCommand: (cmd) => (cmd.verb === "MAIL" && /@localhost>/i.test(cmd.arg) ? "553 5.7.1 Sender address rejected: not a valid domain" : undefined) });
  });
  afterAll(async () => {
    await refusing?.close();
  });
  const noFrom = ["send", "--to", "b@example.com", "--subject", "s", "--body", "b"];

  it("warns on stderr when it sends From webmaster@localhost, and the refusal says what to set", async () => {
    const r = await run([...noFrom, "--url", `smtp://127.0.0.1:${refusing.port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^missive: warning: no sender configured, so this goes From webmaster@localhost \(Django's default\), which servers usually refuse; pass --from or set DEFAULT_FROM_EMAIL$/m);
    expect(r.stderr).toMatch(/^missive: SmtpError: MAIL FROM was refused: 553 .*Sender address rejected.*; the sender webmaster@localhost is the default From .*set defaultFrom .* or DEFAULT_FROM_EMAIL/m);
  });

  it("with --log-format json the warning is a log record, so stderr stays one JSON object per line", async () => {
    const r = await run([...noFrom, "--url", `smtp://127.0.0.1:${plain.port}`, "--log-format", "json"]);
    expect(r.code).toBe(0);
    const records = r.stderr.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records[0]).toMatchObject({ level: "warn", event: "cli.default-from", from: "webmaster@localhost", msg: expect.stringMatching(/^no sender configured/) });
  });

  it("no warning with --from or DEFAULT_FROM_EMAIL", async () => {
    const withFrom = await run([...noFrom, "--from", "app@example.com", "--url", `smtp://127.0.0.1:${refusing.port}`]);
    expect(withFrom.code).toBe(0);
    expect(withFrom.stderr).toBe("");
    const viaEnv = await run([...noFrom, "--url", `smtp://127.0.0.1:${refusing.port}`], { DEFAULT_FROM_EMAIL: "app@example.com" });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stderr).toBe("");
  });
});

describe("missive send | head -1", () => {
  it("the reader closing the pipe early: no EPIPE, no stack trace, exit 0", async () => {
    // A 2 MB body: far more than a pipe holds, so writes go on after the reader has gone.
    const bodyPath = join(dir, "big.txt");
    await writeFile(bodyPath, "line of text\n".repeat(160_000));
    const child = spawn(process.execPath, ["--import", "tsx", CLI, "send", "--to", "b@example.com", "--subject", "s", "--body-file", bodyPath, "--from", "a@example.com"], {
      cwd: ROOT,
      env: cleanMailEnv({}),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    // What head -1 does: read the first line, then close its end of the pipe.
    let first = "";
    await new Promise<void>((done) => {
      child.stdout.on("data", (chunk: Buffer) => {
        first += chunk.toString("latin1");
        if (first.includes("\n")) {
          child.stdout.destroy();
          done();
        }
      });
    });
    const code = await new Promise<number | null>((done) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      child.on("exit", (c) => (clearTimeout(timer), done(c)));
    });
    expect(first.split("\n")[0]).toMatch(/^From: a@example\.com\r?$|^[A-Za-z-]+: /);
    expect(stderr).not.toMatch(/EPIPE|Error|at /);
    expect(code).toBe(0);
  });
});
