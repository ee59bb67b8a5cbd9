import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ENVIRONMENT_VARIABLES } from "../../src/settings.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { startFakeServer } from "../helpers/fake-smtp-server.js";
import { attachmentBytes, parseOneWithPython } from "../helpers/python-oracle.js";

const ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(ROOT, "bin/missive.ts");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Runs `node --import tsx bin/missive.ts ...args` (no build needed) with a clean mail environment. */
function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const clean: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ENVIRONMENT_VARIABLES) delete clean[name];
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ["--import", "tsx", CLI, ...args],
      { cwd: ROOT, env: { ...clean, ...env }, encoding: "buffer", timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") return fail(error);
        done({ code: error ? (error.code as number) : 0, stdout: stdout.toString("utf8"), stderr: stderr.toString("utf8"), stdoutBytes: stdout });
      },
    );
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("src/cli.ts as a module", () => {
  it("importing it has no side effect (no output, no exit code); main() is what runs the command", async () => {
    const writes: string[] = [];
    const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => (writes.push(String(chunk)), true));
    const errOut = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => (writes.push(String(chunk)), true));
    const exitCode = process.exitCode;
    try {
      const cli = await import("../../src/cli.js");
      await new Promise((r) => setImmediate(r));
      expect(writes).toEqual([]);
      expect(process.exitCode).toBe(exitCode);
      expect(typeof cli.main).toBe("function");
      expect(await cli.main(["--version"])).toBe(0);
      expect(writes.join("").trim()).toMatch(/^\d+\.\d+\.\d+$/);
    } finally {
      out.mockRestore();
      errOut.mockRestore();
      process.exitCode = exitCode;
    }
  });
});

describe("missive: help, version, usage errors", () => {
  it("--version prints the package version (the ESM source entry runs without a build)", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
    const r = await run(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
    expect((await readFile(CLI, "utf8")).startsWith("#!/usr/bin/env node\n")).toBe(true);
  });

  it("--help for the command and each subcommand", async () => {
    for (const args of [["--help"], ["send", "--help"], ["check", "--help"]]) {
      const r = await run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Usage:/);
    }
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/Usage:/);
  });

  const bad: [string, string[], RegExp][] = [
    ["unknown command", ["frobnicate"], /unknown command/],
    ["unknown option", ["send", "--to", "a@example.com", "--subject", "s", "--body", "b", "--bogus"], /Unknown option '--bogus'/],
    ["no recipient", ["send", "--subject", "s", "--body", "b"], /at least one recipient/],
    ["no subject", ["send", "--to", "a@example.com", "--body", "b"], /--subject/],
    ["no body", ["send", "--to", "a@example.com", "--subject", "s"], /--body/],
    ["two bodies", ["send", "--to", "a@example.com", "--subject", "s", "--body", "b", "--body-file", "x"], /exactly one/],
    ["bad address", ["send", "--to", "not an address", "--subject", "s", "--body", "b"], /InvalidAddressError/],
    ["header injection", ["send", "--to", "a@example.com", "--subject", "s\r\nBcc: x@example.com", "--body", "b"], /BadHeaderError/],
    ["missing attachment", ["send", "--to", "a@example.com", "--subject", "s", "--body", "b", "--attach", "/nonexistent/file.pdf"], /--attach \/nonexistent\/file\.pdf: no such file; check the path/],
    ["bad url", ["send", "--to", "a@example.com", "--subject", "s", "--body", "b", "--url", "gopher://x"], /--url/],
    ["unknown backend", ["send", "--to", "a@example.com", "--subject", "s", "--body", "b", "--backend", "pigeon"], /pigeon/],
    ["check: not smtp", ["check", "console:"], /needs an SMTP server/],
  ];
  it.each(bad)("%s: exit 2 with a clear message", async (_name, args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it("an invalid environment variable: exit 2 naming it", async () => {
    const r = await run(["send", "--to", "a@example.com", "--subject", "s", "--body", "b"], { EMAIL_PORT: "smtp" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("EMAIL_PORT");
  });
});

describe("missive send through the non-SMTP backends", () => {
  it("defaults to the console: the exact bytes and 79 dashes on stdout, the report on stderr", async () => {
    const r = await run(["send", "--to", "b@example.com", "--subject", "Hello", "--body", "line one\nline two", "--from", "a@example.com"]);
    expect(r.code).toBe(0);
    const text = r.stdoutBytes.toString("latin1");
    expect(text.endsWith("\r\n" + "-".repeat(79) + "\r\n")).toBe(true);
    expect(text.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    expect(text).toContain("Subject: Hello\r\n");
    expect(text).toContain("\r\n\r\nline one\r\nline two\r\n");
    const id = /Message-ID: (<[^>]+>)/.exec(r.stderr)![1]!;
    expect(text).toContain(`Message-ID: ${id}\r\n`);
  });

  it("--url file:///dir writes one .eml with the printed Message-ID", async () => {
    const out = join(dir, "outbox");
    const bodyFile = join(dir, "body.txt");
    await writeFile(bodyFile, "From a file\n");
    const r = await run(["send", "--to", "b@example.com", "--subject", "File", "--body-file", bodyFile, "--url", `file://${out}`]);
    expect(r.code).toBe(0);
    const files = await readdir(out);
    expect(files).toHaveLength(1);
    const eml = await readFile(join(out, files[0]!), "utf8");
    const id = /Message-ID: (<[^>]+>)/.exec(r.stdout)![1]!;
    expect(eml).toContain(`Message-ID: ${id}`);
    expect(eml).toContain("From a file");
  });

  it("--calendar-file sends an invitation as a text/calendar alternative with the file's METHOD", async () => {
    const ics = join(dir, "invite.ics");
    await writeFile(ics, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:1@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
    const r = await run(["send", "--to", "b@example.com", "--subject", "Meeting", "--body", "Invitation", "--calendar-file", ics, "--backend", "console"]);
    expect(r.code).toBe(0);
    const text = r.stdoutBytes.toString("latin1");
    const parsed = await parseOneWithPython(text.slice(0, text.lastIndexOf("-".repeat(79))));
    expect(parsed.defects).toEqual([]);
    expect(parsed.parts.children?.map((p) => [p.contentType, p.params.method])).toEqual([["text/plain", undefined], ["text/calendar", "REQUEST"]]);
    await writeFile(ics, "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n");
    const bad = await run(["send", "--to", "b@example.com", "--subject", "s", "--body", "b", "--calendar-file", ics, "--backend", "console"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no METHOD/);
  });

  it("EMAIL_URL from the environment, and --backend", async () => {
    const out = join(dir, "env-outbox");
    const viaEnv = await run(["send", "--to", "b@example.com", "--subject", "s", "--body", "b"], { EMAIL_URL: `file://${out}` });
    expect(viaEnv.code).toBe(0);
    expect(await readdir(out)).toHaveLength(1);
    const dummy = await run(["send", "--to", "b@example.com", "--subject", "s", "--body", "b", "--backend", "dummy"]);
    expect(dummy.code).toBe(0);
    expect(dummy.stdout).toContain("dummy: done");
    const memory = await run(["send", "--to", "b@example.com", "--subject", "s", "--body", "b", "--backend", "memory"]);
    expect(memory.code).toBe(0);
  });
});

describe("missive send and check against aiosmtpd", () => {
  let server: AiosmtpdServer;
  let tlsServer: AiosmtpdServer;
  let certs: TestCerts;
  beforeAll(async () => {
    certs = await makeTestCerts();
    server = await startAiosmtpd({ rejectRecipients: ["refused@example.com"] });
    tlsServer = await startAiosmtpd({ tls: "starttls", auth: { users: { alice: "pa55-w0rd" } } });
  });
  afterAll(async () => {
    await server?.stop();
    await tlsServer?.stop();
  });

  it("sends text, HTML and attachments; the server stores them byte for byte", async () => {
    const bin = Buffer.alloc(70_000);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 7 + (i >> 8)) & 0xff;
    const binPath = join(dir, "data.bin");
    const pdfPath = join(dir, "report.pdf");
    const htmlPath = join(dir, "body.html");
    await writeFile(binPath, bin);
    await writeFile(pdfPath, Buffer.from("%PDF-1.4 fake"));
    await writeFile(htmlPath, "<p>Grüße</p>");
    const r = await run([
      "send", "--to", "b@example.com", "--cc", "c@example.com", "--bcc", "d@example.com",
      "--from", "Ann <a@example.com>", "--subject", "Attachments ✓", "--body", "See attached",
      "--html-file", htmlPath, "--attach", binPath, "--attach", pdfPath, "--header", "X-Tag: cli",
      "--url", `smtp://${server.host}:${server.port}`,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Message-ID: <.+>$/m);
    for (const a of ["b@example.com", "c@example.com", "d@example.com"]) expect(r.stdout).toContain(`accepted ${a}`);
    expect(r.stdout).toMatch(/server: 250/);
    const [m] = await server.waitForMessages(1);
    expect(m!.rcptTos).toEqual(["b@example.com", "c@example.com", "d@example.com"]);
    const parsed = await parseOneWithPython(m!.data);
    expect(parsed.subject).toBe("Attachments ✓");
    expect(parsed.bcc).toEqual([]);
    expect(parsed.textBodies.map((t) => t.trimEnd())).toEqual(["See attached"]);
    expect(parsed.htmlBodies.map((t) => t.trimEnd())).toEqual(["<p>Grüße</p>"]);
    expect(parsed.headers).toContainEqual(["X-Tag", "cli"]);
    const byName = new Map(parsed.attachments.map((a) => [a.filename, a]));
    expect(attachmentBytes(byName.get("data.bin")!).equals(bin)).toBe(true);
    expect(byName.get("report.pdf")!.contentType).toBe("application/pdf");
    expect(attachmentBytes(byName.get("report.pdf")!).toString()).toBe("%PDF-1.4 fake");
  });

  it("a refused recipient is reported with its code, exit 1", async () => {
    const r = await run(["send", "--to", "ok@example.com", "--to", "refused@example.com", "--subject", "s", "--body", "b", "--url", `smtp://${server.host}:${server.port}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("accepted ok@example.com");
    expect(r.stdout).toMatch(/refused +refused@example\.com: 550/);
  });

  it("every recipient refused, or no server at all: exit 1", async () => {
    const refused = await run(["send", "--to", "refused@example.com", "--subject", "s", "--body", "b", "--url", `smtp://${server.host}:${server.port}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/SmtpRecipientsRefusedError/);
    const fake = await startFakeServer();
    const port = fake.port;
    await fake.close();
    const down = await run(["send", "--to", "b@example.com", "--subject", "s", "--body", "b", "--url", `smtp://127.0.0.1:${port}?timeout=5`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/SmtpConnectError/);
  });

  it("a failure says what to do about it (classify): where it happened and whether trying again helps", async () => {
    const fake = await startFakeServer();
    const port = fake.port;
    await fake.close();
    const down = await run(["send", "--to", "b@example.com", "--subject", "s", "--body", "b", "--url", `smtp://127.0.0.1:${port}?timeout=5`]);
    expect(down.stderr).toMatch(/^missive: next-route \(at connect\): this server or the way to it failed; try again later, or another server$/m);
    const refused = await run(["send", "--to", "refused@example.com", "--subject", "s", "--body", "b", "--url", `smtp://${server.host}:${server.port}`]);
    expect(refused.stderr).toMatch(/^missive: give-up \(at rcpt\): sending it again will not help$/m);
  });

  it("the environment's SMTP settings are used when set", async () => {
    const before = (await server.messages()).length;
    const r = await run(["send", "--to", "env@example.com", "--subject", "s", "--body", "b"], { EMAIL_HOST: server.host, EMAIL_PORT: String(server.port) });
    expect(r.code).toBe(0);
    const stored = await server.waitForMessages(before + 1);
    expect(stored.at(-1)!.rcptTos).toEqual(["env@example.com"]);
  });

  it("check: greeting, TLS details, capabilities, AUTH; no credential in the output", async () => {
    const caPath = join(dir, "ca.pem");
    await writeFile(caPath, certs.ca);
    const r = await run(["check", `smtp://alice:pa55-w0rd@localhost:${tlsServer.port}?tls=starttls`, "--ca", caPath, "--transcript"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Greeting: 220 /);
    expect(r.stdout).toMatch(/TLS: TLSv1\.[23] \S+ \(certificate verified\)/);
    expect(r.stdout).toMatch(/subject: .*localhost/);
    expect(r.stdout).toMatch(/issuer: /);
    expect(r.stdout).toMatch(/valid: .* to /);
    expect(r.stdout).toMatch(/^ {2}AUTH .*PLAIN/m);
    expect(r.stdout).toMatch(/^ {2}8BITMIME$/m);
    expect(r.stdout).toContain("AUTH: ok (authenticated as alice)");
    expect(r.stdout).toMatch(/^C: EHLO /m);
    expect(r.stdout).toMatch(/^C: STARTTLS$/m);
    expect(r.stdout).toMatch(/^C: AUTH \w+ <redacted>$|^C: <redacted>$/m);
    expect(r.stdout).not.toContain("pa55-w0rd");
    expect(r.stdout).not.toContain(Buffer.from("\0alice\0pa55-w0rd").toString("base64"));
    expect(r.stdout).not.toContain(Buffer.from("pa55-w0rd").toString("base64"));
    expect(r.stdout.trim().endsWith("OK")).toBe(true);
  });

  it("check: a wrong password is exit 1, and an untrusted certificate too", async () => {
    const caPath = join(dir, "ca.pem");
    await writeFile(caPath, certs.ca);
    const wrong = await run(["check", `smtp://alice:nope@localhost:${tlsServer.port}?tls=starttls`, "--ca", caPath]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/AUTH: failed/);
    expect(wrong.stdout + wrong.stderr).not.toContain("nope@");
    const untrusted = await run(["check", `smtp://localhost:${tlsServer.port}?tls=starttls&timeout=5`]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/SmtpTlsError/);
  });

  it("check: plaintext server without credentials", async () => {
    const r = await run(["check", "--url", `smtp://${server.host}:${server.port}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("TLS: none (plaintext)");
    expect(r.stdout).toContain("AUTH: not tested");
  });
});

describe("missive send over routes: the report shows every attempt", () => {
  it("--url twice is failover in that order: a dead first route, the second delivers; status, route and attempts printed", async () => {
    const dead = await startFakeServer();
    const deadPort = dead.port;
    await dead.close();
    const good = await startFakeServer();
    try {
      const r = await run(["send", "--to", "b@example.com", "--from", "a@example.com", "--subject", "s", "--body", "b", "--url", `smtp://127.0.0.1:${deadPort}`, "--url", `smtp://127.0.0.1:${good.port}`]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("accepted b@example.com");
      expect(r.stdout).toMatch(/^status: sent via route2 \(2 attempts\)$/m);
      expect(r.stdout).toMatch(/^  attempt 1 via route1 at \d{4}-\d\d-\d\dT[\d:.]+Z: failed: SmtpConnectError: Could not connect to 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/m);
      expect(r.stdout).toMatch(/^  attempt 2 via route2 at \S+: sent$/m);
      expect(good.received).toHaveLength(1);
    } finally {
      await good.close();
    }
  });

  it("--attempts bounds the tries; when none delivers, exit 1 with what to do", async () => {
    const busy = await startFakeServer({ script: { onCommand: (cmd) => (cmd.verb === "MAIL" ? "451 4.3.0 Try again later" : undefined) } });
    try {
      const r = await run(["send", "--to", "b@example.com", "--subject", "s", "--body", "b", "--url", `smtp://127.0.0.1:${busy.port}`, "--attempts", "2"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^deferred b@example\.com: 451 4\.3\.0 Try again later$/m);
      expect(r.stdout).toMatch(/^status: failed via cli \(2 attempts, stopped: attempts\)$/m);
      expect(r.stdout).toMatch(/^  attempt 2 via cli at \S+ after waiting \d+ ms: failed: SmtpError: MAIL FROM was refused: 451/m);
      expect(r.stderr).toMatch(/^missive: retry-here \(at mail\): nothing was delivered; sending again later may work$/m);
    } finally {
      await busy.close();
    }
    const bad = await run(["send", "--to", "b@example.com", "--subject", "s", "--body", "b", "--attempts", "0", "--url", "smtp://127.0.0.1:25"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--attempts must be a whole number/);
  });
});
