import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { RawSmtp } from "../helpers/raw-smtp.js";

const execFileAsync = promisify(execFile);
const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");

const MESSAGE =
  "From: Ann <ann@example.com>\r\n" +
  "To: bob@example.com\r\n" +
  "Subject: hello\r\n" +
  "\r\n" +
  "line one\r\n" +
  "..a line that started with a dot\r\n" +
  "caf\xc3\xa9 in 8 bits\r\n";

/** A full transaction over an already greeted (and EHLO'd) connection. */
async function transaction(c: RawSmtp, from: string, to: string[], body: string, mailParams = ""): Promise<number> {
  expect((await c.command(`MAIL FROM:<${from}>${mailParams}`)).code).toBe(250);
  for (const r of to) expect((await c.command(`RCPT TO:<${r}>`)).code).toBe(250);
  expect((await c.command("DATA")).code).toBe(354);
  c.write(Buffer.from(body + ".\r\n", "latin1"));
  return (await c.reply()).code;
}

let certs: TestCerts;
const servers: AiosmtpdServer[] = [];
async function start(opts: Parameters<typeof startAiosmtpd>[0]): Promise<AiosmtpdServer> {
  const s = await startAiosmtpd(opts);
  servers.push(s);
  return s;
}

beforeAll(async () => {
  certs = await makeTestCerts();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await certs?.cleanup();
});

describe("aiosmtpd helper", () => {
  it("plain: stores envelope and exact (dot-unstuffed) bytes", async () => {
    const t0 = Date.now();
    const server = await start({});
    const startMs = Date.now() - t0;
    expect(startMs).toBeLessThan(10_000);
    expect(server.port).toBeGreaterThan(0);
    const c = await RawSmtp.connect({ port: server.port });
    try {
      const greeting = await c.reply();
      expect(greeting.code).toBe(220);
      const ehlo = await c.command("EHLO client.test");
      expect(ehlo.code).toBe(250);
      const caps = ehlo.lines.map((l) => l.slice(4));
      expect(caps).toContain("8BITMIME");
      expect(caps).toContain("SIZE 33554432");
      // aiosmtpd 1.4.3 advertises neither PIPELINING, CHUNKING, SMTPUTF8 (unless enabled),
      // ENHANCEDSTATUSCODES nor DSN.
      for (const missing of ["PIPELINING", "CHUNKING", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN"]) {
        expect(caps).not.toContain(missing);
      }
      expect(await transaction(c, "ann@example.com", ["bob@example.com", "carol@example.org"], MESSAGE, " BODY=8BITMIME SIZE=200")).toBe(250);
      expect((await c.command("QUIT")).code).toBe(221);
    } finally {
      c.close();
    }
    const [m] = await server.waitForMessages(1, 5000);
    expect(m!.mailFrom).toBe("ann@example.com");
    expect(m!.mailOptions).toEqual(["BODY=8BITMIME", "SIZE=200"]);
    expect(m!.rcptTos).toEqual(["bob@example.com", "carol@example.org"]);
    expect(m!.rcptOptions).toEqual([[], []]);
    expect(m!.tls).toBe(false);
    expect(m!.authUser).toBeNull();
    expect(m!.heloName).toBe("client.test");
    expect(m!.data.equals(Buffer.from(MESSAGE.replace("\r\n..a", "\r\n.a"), "latin1"))).toBe(true);
  });

  it("BDAT is not recognized, and DSN parameters are refused (aiosmtpd 1.4.3)", async () => {
    const server = await start({});
    const c = await RawSmtp.connect({ port: server.port });
    try {
      await c.reply();
      await c.command("EHLO client.test");
      expect((await c.command("MAIL FROM:<a@example.com> RET=HDRS")).code).toBe(555);
      expect((await c.command("MAIL FROM:<a@example.com>")).code).toBe(250);
      expect((await c.command("RCPT TO:<b@example.com> NOTIFY=NEVER")).code).toBe(555);
      expect((await c.command("RCPT TO:<b@example.com>")).code).toBe(250);
      const bdat = await c.command("BDAT 3 LAST");
      expect(bdat.code).toBe(500);
      expect(bdat.lines[0]).toMatch(/BDAT/);
    } finally {
      c.close();
    }
  });

  it("STARTTLS with the test CA trusted, then AUTH PLAIN; records user and TLS", async () => {
    const server = await start({ tls: "starttls", requireStartTls: true, auth: { users: { ann: "s3cret" } } });
    const c = await RawSmtp.connect({ port: server.port });
    try {
      await c.reply();
      const before = await c.command("EHLO client.test");
      expect(before.lines.map((l) => l.slice(4))).toContain("STARTTLS");
      expect(before.lines.join("\n")).not.toMatch(/AUTH/);
      expect((await c.command("MAIL FROM:<a@example.com>")).code).toBe(530);
      expect((await c.command("STARTTLS")).code).toBe(220);
      await c.upgrade({ ca: certs.ca, servername: "localhost", minVersion: "TLSv1.2" });
      const after = await c.command("EHLO client.test");
      const caps = after.lines.map((l) => l.slice(4));
      expect(caps).not.toContain("STARTTLS");
      expect(caps).toContain("AUTH LOGIN PLAIN");
      expect((await c.command(`AUTH PLAIN ${b64("\0ann\0wrong")}`)).code).toBe(535);
      expect((await c.command(`AUTH PLAIN ${b64("\0ann\0s3cret")}`)).code).toBe(235);
      expect(await transaction(c, "ann@example.com", ["bob@example.com"], "Subject: tls\r\n\r\nhi\r\n")).toBe(250);
    } finally {
      c.close();
    }
    const [m] = await server.waitForMessages(1, 5000);
    expect(m).toMatchObject({ tls: true, authUser: "ann", rcptTos: ["bob@example.com"] });
    expect(m!.tlsVersion).toMatch(/^TLSv1\.[23]$/);
    expect(server.stderr()).not.toMatch(/login_data/);
  });

  it("AUTH over plaintext: 538 by default, allowed with allowPlaintext; LOGIN works", async () => {
    const strict = await start({ auth: { users: { ann: "pw" } } });
    const loose = await start({ auth: { users: { ann: "pw" }, allowPlaintext: true, requireAuth: true } });
    const c1 = await RawSmtp.connect({ port: strict.port });
    const c2 = await RawSmtp.connect({ port: loose.port });
    try {
      await c1.reply();
      await c1.command("EHLO x.test");
      expect((await c1.command(`AUTH PLAIN ${b64("\0ann\0pw")}`)).code).toBe(538);

      await c2.reply();
      const ehlo = await c2.command("EHLO x.test");
      expect(ehlo.lines.map((l) => l.slice(4))).toContain("AUTH LOGIN PLAIN");
      expect((await c2.command("MAIL FROM:<a@example.com>")).code).toBe(530);
      expect((await c2.command("AUTH LOGIN")).code).toBe(334);
      expect((await c2.command(b64("ann"))).code).toBe(334);
      expect((await c2.command(b64("pw"))).code).toBe(235);
      expect(await transaction(c2, "a@example.com", ["b@example.com"], "Subject: x\r\n\r\ny\r\n")).toBe(250);
    } finally {
      c1.close();
      c2.close();
    }
    const [m] = await loose.waitForMessages(1, 5000);
    expect(m).toMatchObject({ tls: false, authUser: "ann" });
  });

  it("implicit TLS (AUTH offered there too), via swaks", async () => {
    const server = await start({ tls: "implicit", auth: { users: { ann: "pw" } } });
    const { stdout } = await execFileAsync(
      "swaks",
      [
        "--server", "127.0.0.1", "--port", String(server.port), "--tls-on-connect",
        "--tls-verify", "--tls-ca-path", certs.caPath, "--tls-sni", "localhost",
        "--auth", "PLAIN", "--auth-user", "ann", "--auth-password", "pw",
        "--from", "ann@example.com", "--to", "bob@example.com", "--header", "Subject: via swaks",
        "--timeout", "10",
      ],
      { timeout: 20_000 },
    );
    expect(stdout).toMatch(/250 2\.0\.0 OK queued as/);
    const [m] = await server.waitForMessages(1, 5000);
    expect(m).toMatchObject({ tls: true, authUser: "ann", mailFrom: "ann@example.com" });
    expect(m!.data.toString("utf8")).toMatch(/^Subject: via swaks\r$/m);
  });

  it("SMTPUTF8 when enabled; rejected recipients; data size limit", async () => {
    const server = await start({ smtputf8: true, rejectRecipients: ["nobody@example.com"], dataSizeLimit: 100 });
    const c = await RawSmtp.connect({ port: server.port });
    try {
      await c.reply();
      const caps = (await c.command("EHLO x.test")).lines.map((l) => l.slice(4));
      expect(caps).toContain("SMTPUTF8");
      expect(caps).toContain("SIZE 100");
      expect((await c.command("MAIL FROM:<a@example.com> SIZE=101")).code).toBe(552);
      expect((await c.command("MAIL FROM:<jörg@bücher.example> SMTPUTF8")).code).toBe(250);
      expect((await c.command("RCPT TO:<nobody@example.com>")).code).toBe(550);
      expect((await c.command("RCPT TO:<zoë@example.com>")).code).toBe(250);
      expect((await c.command("DATA")).code).toBe(354);
      c.write("Subject: ü\r\n\r\nx\r\n.\r\n");
      expect((await c.reply()).code).toBe(250);
      expect((await c.command("MAIL FROM:<a@example.com>")).code).toBe(250);
      expect((await c.command("RCPT TO:<b@example.com>")).code).toBe(250);
      expect((await c.command("DATA")).code).toBe(354);
      c.write("Subject: big\r\n\r\n" + "x".repeat(200) + "\r\n.\r\n");
      expect((await c.reply()).code).toBe(552);
    } finally {
      c.close();
    }
    const msgs = await server.waitForMessages(1, 5000);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toMatchObject({ mailFrom: "jörg@bücher.example", smtputf8: true, rcptTos: ["zoë@example.com"] });
    expect(msgs[0]!.mailOptions).toEqual(["SMTPUTF8"]);
    expect(msgs[0]!.data.toString("utf8")).toBe("Subject: ü\r\n\r\nx\r\n");
  });

  it("without smtputf8, a UTF-8 command gets 500 strict ASCII mode", async () => {
    const server = await start({});
    const c = await RawSmtp.connect({ port: server.port });
    try {
      await c.reply();
      await c.command("EHLO x.test");
      const r = await c.command("MAIL FROM:<jörg@example.com>");
      expect(r.code).toBe(500);
      expect((await c.command("MAIL FROM:<a@example.com> SMTPUTF8")).code).toBe(501);
    } finally {
      c.close();
    }
  });

  it("a failing start reports Python's stderr and leaves no process", async () => {
    await expect(startAiosmtpd({ tls: "starttls", certPath: "/nonexistent.crt", keyPath: "/nonexistent.key" })).rejects.toThrow(
      /exited before it was ready[\s\S]*aiosmtpd stderr[\s\S]*(FileNotFoundError|No such file)/,
    );
  });

  it("stop() is bounded, idempotent and removes the spool", async () => {
    const server = await startAiosmtpd({});
    const { existsSync } = await import("node:fs");
    expect(existsSync(server.dir)).toBe(true);
    const t0 = Date.now();
    await Promise.all([server.stop(), server.stop()]);
    expect(Date.now() - t0).toBeLessThan(7000);
    expect(existsSync(server.dir)).toBe(false);
    expect(() => process.kill(server.pid, 0)).toThrow();
  });
});
