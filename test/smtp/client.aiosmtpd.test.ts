/**
 * The client against a real aiosmtpd (Debian python3-aiosmtpd) on a free loopback port:
 * plaintext, STARTTLS and implicit TLS with the test CA trusted (verification is never
 * switched off), certificate failures, AUTH, SMTPUTF8 and a 50 MiB streamed message.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createHash } from "node:crypto";
import net from "node:net";
import { startAiosmtpd, type AiosmtpdOptions, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { SmtpClient, type SmtpClientOptions } from "../../src/smtp/client.js";
import type { TranscriptEntry } from "../../src/smtp/transcript.js";
import { SmtpAuthError, SmtpTlsError } from "../../src/errors.js";
import { rejection } from "../helpers/errors.js";

const originalWrite = net.Socket.prototype.write;

let certs: TestCerts;
const servers: AiosmtpdServer[] = [];
const clients: SmtpClient[] = [];

beforeAll(async () => {
  certs = await makeTestCerts();
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await Promise.all(servers.map((s) => s.stop()));
});

async function aiosmtpd(options: AiosmtpdOptions = {}): Promise<AiosmtpdServer> {
  const server = await startAiosmtpd(options);
  servers.push(server);
  return server;
}

function clientFor(server: AiosmtpdServer, options: SmtpClientOptions = {}): SmtpClient {
  const client = new SmtpClient({ host: server.host, port: server.port, timeout: 10_000, ...options });
  clients.push(client);
  return client;
}

describe("against aiosmtpd", () => {
  it("plaintext on loopback (the default for a loopback host): several messages over one connection", async () => {
    const server = await aiosmtpd();
    const client = clientFor(server);
    expect(client.tlsMode).toBe("none");
    await client.connect();
    expect(client.greeting?.code).toBe(220);
    for (let i = 1; i <= 3; i++) {
      const result = await client.sendMail({ from: "a@example.org", to: ["b@example.org"], size: 30 }, `Subject: ${i}\n\nbody ${i}\n`);
      expect(result.accepted).toEqual(["b@example.org"]);
      expect(result.queueId).toBe(String(i).padStart(6, "0"));
    }
    await client.quit();
    const stored = await server.waitForMessages(3);
    expect(stored.map((m) => m.data.toString())).toEqual([1, 2, 3].map((i) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`));
    expect(new Set(stored.map((m) => m.peer?.[1])).size).toBe(1);
    expect(stored[0]?.mailOptions).toEqual(["SIZE=30"]);
    expect(stored[0]?.heloName).toMatch(/^(\[127\.0\.0\.1\]|[A-Za-z0-9.-]+\.[A-Za-z0-9-]+)$/);
    expect(stored[0]?.tls).toBe(false);
  });

  it("STARTTLS with the test CA trusted, then AUTH PLAIN; capabilities re-learnt after TLS", async () => {
    const server = await aiosmtpd({ tls: "starttls", auth: { users: { joe: "correct horse" } } });
    const log: TranscriptEntry[] = [];
    const client = clientFor(server, {
      tls: "starttls",
      tlsOptions: { ca: certs.ca },
      auth: { user: "joe", pass: "correct horse" },
      transcript: (e) => log.push(e),
    });
    await client.connect();
    expect(client.secure).toBe(true);
    expect(client.tlsInfo).toMatchObject({ authorized: true, peerCertificate: { subject: "CN=localhost", issuer: "CN=missive test CA" } });
    expect(client.tlsInfo?.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(client.capabilities?.starttls).toBe(false);
    expect(client.capabilities?.authMechanisms.has("PLAIN")).toBe(true);
    expect(client.authenticatedAs).toBe("joe");
    await client.sendMail({ from: "a@example.org", to: ["b@example.org", "c@example.org"] }, "Subject: tls\n\nhi\n");
    await client.quit();
    const [msg] = await server.waitForMessages(1);
    expect(msg).toMatchObject({ tls: true, authUser: "joe", rcptTos: ["b@example.org", "c@example.org"] });
    const text = log.map((e) => `${e.direction === "client" ? "C" : "S"}: ${e.line}`).join("\n");
    expect(text).toContain("C: STARTTLS");
    expect(text).toContain("C: AUTH PLAIN <redacted>");
    expect(text).not.toContain("correct horse");
    expect(text).not.toContain(Buffer.from("\0joe\0correct horse").toString("base64"));
  });

  it("STARTTLS + AUTH + PIPELINING: MAIL, RCPTs and DATA go out before their replies are read", async () => {
    const server = await aiosmtpd({ tls: "starttls", pipelining: true, auth: { users: { joe: "correct horse" } } });
    const log: TranscriptEntry[] = [];
    const client = clientFor(server, { tls: "starttls", tlsOptions: { ca: certs.ca }, auth: { user: "joe", pass: "correct horse" }, transcript: (e) => log.push(e) });
    await client.connect();
    expect(client.capabilities?.pipelining).toBe(true);
    const result = await client.sendMail({ from: "ann@example.org", to: ["bob@example.org", "cy@example.org"] }, "Subject: pipelined\n\nhi\n");
    expect(result.accepted).toEqual(["bob@example.org", "cy@example.org"]);
    await client.quit();
    const [stored] = await server.waitForMessages(1);
    expect(stored).toMatchObject({ tls: true, authUser: "joe", rcptTos: ["bob@example.org", "cy@example.org"] });
    expect(stored?.data.toString()).toBe("Subject: pipelined\r\n\r\nhi\r\n");
    const lines = log.map((e) => `${e.direction === "client" ? "C" : "S"}: ${e.line}`);
    if (process.env.MISSIVE_SHOW_TRANSCRIPT) console.log(lines.join("\n"));
    const mail = lines.findIndex((l) => l.startsWith("C: MAIL FROM"));
    expect(lines.slice(mail, mail + 4)).toEqual(["C: MAIL FROM:<ann@example.org>", "C: RCPT TO:<bob@example.org>", "C: RCPT TO:<cy@example.org>", "C: DATA"]);
    expect(lines.join("\n")).not.toContain("correct horse");
  });

  it("STARTTLS by host name (SNI + host name check against the certificate)", async () => {
    const server = await aiosmtpd({ tls: "starttls" });
    const client = clientFor(server, { host: "localhost", tls: "starttls", tlsOptions: { ca: certs.ca } });
    await client.connect();
    expect(client.tlsInfo?.authorized).toBe(true);
    await client.quit();
  });

  it("implicit TLS with the test CA trusted", async () => {
    const server = await aiosmtpd({ tls: "implicit" });
    const client = clientFor(server, { tls: "implicit", tlsOptions: { ca: certs.ca } });
    await client.connect();
    expect(client.secure).toBe(true);
    await client.sendMail({ from: "a@example.org", to: ["b@example.org"] }, "x");
    await client.quit();
    const [msg] = await server.waitForMessages(1);
    expect(msg?.tls).toBe(true);
  });

  it("useSsl (Django) means implicit TLS", async () => {
    const server = await aiosmtpd({ tls: "implicit" });
    const client = clientFor(server, { useSsl: true, tlsOptions: { ca: certs.ca } });
    await client.connect();
    expect(client.secure).toBe(true);
    await client.quit();
  });

  it("a certificate for another host is refused with SmtpTlsError (ERR_TLS_CERT_ALTNAME_INVALID)", async () => {
    const server = await aiosmtpd({ tls: "implicit", certPath: certs.wrongHost.certPath, keyPath: certs.wrongHost.keyPath });
    for (const host of ["127.0.0.1", "localhost"]) {
      const client = clientFor(server, { host, tls: "implicit", tlsOptions: { ca: certs.ca } });
      const error = await rejection(client.connect());
      expect(error).toBeInstanceOf(SmtpTlsError);
      expect((error as SmtpTlsError).tlsCode).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
      expect(error.message).toMatch(/not valid for this host name/);
      expect((error as SmtpTlsError).retryable).toBe(false);
      expect(client.state).toBe("closed");
    }
  });

  it("a self-signed certificate is refused (DEPTH_ZERO_SELF_SIGNED_CERT)", async () => {
    const server = await aiosmtpd({ tls: "starttls", certPath: certs.selfSigned.certPath, keyPath: certs.selfSigned.keyPath });
    const client = clientFor(server, { tls: "starttls", tlsOptions: { ca: certs.ca } });
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpTlsError);
    expect((error as SmtpTlsError).tlsCode).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
    expect(error.message).toMatch(/self-signed/);
    expect(client.state).toBe("closed");
  });

  it("a certificate from an untrusted CA is refused (UNABLE_TO_VERIFY_LEAF_SIGNATURE)", async () => {
    const server = await aiosmtpd({ tls: "implicit" });
    const client = clientFor(server, { tls: "implicit" });
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpTlsError);
    expect((error as SmtpTlsError).tlsCode).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    // rejectUnauthorized: undefined must not switch verification off.
    const again = clientFor(server, { tls: "implicit", tlsOptions: { rejectUnauthorized: undefined } });
    expect(await rejection(again.connect())).toBeInstanceOf(SmtpTlsError);
  });

  it.each(["PLAIN", "LOGIN"] as const)("AUTH %s: right password works, wrong one is SmtpAuthError 535", async (method) => {
    const server = await aiosmtpd({ tls: "starttls", auth: { users: { ann: "pa55" }, mechanisms: [method] } });
    const good = clientFor(server, { tls: "starttls", tlsOptions: { ca: certs.ca }, auth: { user: "ann", pass: "pa55" } });
    await good.connect();
    expect(good.authenticatedAs).toBe("ann");
    await good.sendMail({ from: "ann@example.org", to: ["b@example.org"] }, "x");
    await good.quit();
    const [msg] = await server.waitForMessages(1);
    expect(msg?.authUser).toBe("ann");

    const bad = clientFor(server, { tls: "starttls", tlsOptions: { ca: certs.ca }, auth: { user: "ann", pass: "nope" }, authMethod: method });
    const error = await rejection(bad.connect());
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect((error as SmtpAuthError).replyCode).toBe(535);
    expect((error as SmtpAuthError).retryable).toBe(false);
    expect(JSON.stringify(error)).not.toContain("nope");
    expect(bad.state).toBe("closed");
  });

  it("SMTPUTF8: a UTF-8 envelope goes through when offered and requested", async () => {
    const server = await aiosmtpd({ smtputf8: true });
    const client = clientFor(server);
    const result = await client.sendMail({ from: "jürgen@example.org", to: ["δοκιμή@παράδειγμα.δοκιμή"], smtputf8: true, eightBit: true }, "Subject: é\n\nünïcödé\n");
    expect(result.accepted).toEqual(["δοκιμή@παράδειγμα.δοκιμή"]);
    await client.quit();
    const [msg] = await server.waitForMessages(1);
    expect(msg).toMatchObject({ smtputf8: true, mailFrom: "jürgen@example.org", rcptTos: ["δοκιμή@παράδειγμα.δοκιμή"] });
    expect(msg?.mailOptions).toEqual(expect.arrayContaining(["SMTPUTF8", "BODY=8BITMIME"]));
    expect(msg?.data.toString("utf8")).toBe("Subject: é\r\n\r\nünïcödé\r\n");
  });

  it("streams a 50 MiB message with bounded memory; stored bytes match byte for byte", async () => {
    const server = await aiosmtpd({ dataSizeLimit: 0 });
    const size = 50 * 1024 * 1024;
    const expected = createHash("sha256");
    let produced = 0;
    // The client's socket, found by its first write; and, each time the client pulled the
    // next chunk, how much the socket still held unsent in user space.
    let socket: net.Socket | undefined;
    const bufferedAtPull: number[] = [];
    const spy = vi.spyOn(net.Socket.prototype, "write").mockImplementation(function (this: net.Socket, ...args: unknown[]) {
      if (socket === undefined && this.remotePort === server.port) socket = this;
      return originalWrite.apply(this, args as never);
    });
    // Lines of varying length, some starting with dots, LF endings (the client makes them CRLF).
    // An async generator, not a Readable: a Readable would prefetch chunks on its own, and
    // the point here is when the client itself asks for the next one.
    async function* chunks(): AsyncGenerator<Buffer> {
      let n = 0;
      while (produced < size) {
        if (socket) bufferedAtPull.push(socket.writableLength);
        const lines: string[] = [];
        for (let i = 0; i < 1024; i++, n++) lines.push(`${n % 7 === 0 ? "." : ""}line ${n} ${"x".repeat(n % 61)}`);
        const text = lines.join("\n") + "\n";
        produced += text.length;
        expected.update(text.replace(/\n/g, "\r\n"));
        yield Buffer.from(text);
      }
    }
    const client = clientFor(server, { timeout: 60_000 });
    let result;
    try {
      result = await client.sendMail({ from: "a@example.org", to: ["b@example.org"] }, chunks());
    } finally {
      spy.mockRestore();
    }
    expect(result.reply.code).toBe(250);
    await client.quit();
    const [msg] = await server.waitForMessages(1, 60_000);
    expect(msg!.size).toBeGreaterThan(size);
    expect(createHash("sha256").update(msg!.data).digest("hex")).toBe(expected.digest("hex"));
    // Memory is bounded by backpressure, deterministically: the next chunk is pulled only
    // when the socket has taken the previous one (write() returned true, or 'drain'), so
    // the socket never holds a high-water mark's worth when the client asks for more.
    expect(bufferedAtPull.length).toBeGreaterThan(100);
    expect(Math.max(...bufferedAtPull)).toBeLessThan(socket!.writableHighWaterMark);
  });
});
