/** Construction-time decisions: TLS mode and port defaults, Django aliases, timeouts, names. */
import { describe, expect, it } from "vitest";
import net from "node:net";
import { SmtpClient, DEFAULT_TIMEOUTS, addressLiteral, isLoopback } from "../../src/smtp/client.js";
import { RFC5321_TIMEOUTS } from "../../src/smtp/index.js";
import { InvalidArgumentError, SmtpAuthError } from "../../src/errors.js";
import { startFakeServer } from "../helpers/fake-smtp-server.js";

describe("defaults", () => {
  it("pins the application-sized timeouts: connect 10 s, greeting 30 s, each command and data block 60 s, final dot 5 min", () => {
    expect(DEFAULT_TIMEOUTS).toEqual({ connect: 10_000, greeting: 30_000, command: 60_000, dataStart: 60_000, data: 60_000, finalDot: 300_000 });
    expect(new SmtpClient().timeouts).toEqual(DEFAULT_TIMEOUTS);
  });

  it('pins the RFC 5321 §4.5.3.2 timeouts, kept as timeouts: "rfc5321"', () => {
    expect(RFC5321_TIMEOUTS).toEqual({ connect: 30_000, greeting: 300_000, command: 300_000, dataStart: 120_000, data: 180_000, finalDot: 600_000 });
    expect(new SmtpClient({ timeouts: "rfc5321" }).timeouts).toEqual(RFC5321_TIMEOUTS);
    expect(() => new SmtpClient({ timeouts: "rfc821" as never })).toThrow(/must be an object of per-phase milliseconds or "rfc5321"/);
    expect(() => new SmtpClient({ timeouts: "rfc5321", timeout: 1000 })).toThrow(/contradict/);
  });

  it("localhost: no TLS on port 25 (Django's defaults)", () => {
    const c = new SmtpClient();
    expect([c.host, c.port, c.tlsMode, c.state]).toEqual(["localhost", 25, "none", "idle"]);
    expect(new SmtpClient({ host: "127.0.0.5" }).tlsMode).toBe("none");
    expect(new SmtpClient({ host: "::1" }).tlsMode).toBe("none");
  });

  it("a remote host: required STARTTLS on 587, or implicit TLS when the port is 465", () => {
    expect(new SmtpClient({ host: "smtp.example.org" })).toMatchObject({ port: 587, tlsMode: "starttls" });
    expect(new SmtpClient({ host: "smtp.example.org", port: 465 })).toMatchObject({ port: 465, tlsMode: "implicit" });
    expect(new SmtpClient({ host: "smtp.example.org", port: 25 })).toMatchObject({ port: 25, tlsMode: "starttls" });
    expect(new SmtpClient({ host: "smtp.example.org", tls: "none" })).toMatchObject({ port: 25, tlsMode: "none" });
    expect(new SmtpClient({ host: "smtp.example.org", tls: "opportunistic" })).toMatchObject({ port: 25, tlsMode: "opportunistic" });
  });

  it("Django's useSsl / useTls", () => {
    expect(new SmtpClient({ host: "localhost", useSsl: true })).toMatchObject({ port: 465, tlsMode: "implicit" });
    expect(new SmtpClient({ host: "localhost", useTls: true })).toMatchObject({ port: 587, tlsMode: "starttls" });
    expect(() => new SmtpClient({ useSsl: true, useTls: true })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ useSsl: true, tls: "starttls" })).toThrow(InvalidArgumentError);
    expect(new SmtpClient({ useSsl: true, tls: "implicit" }).tlsMode).toBe("implicit");
  });

  it("timeout sets every phase; timeouts override one by one", () => {
    const c = new SmtpClient({ timeout: 1000, timeouts: { finalDot: 5000 } });
    expect(c.timeouts).toEqual({ connect: 1000, greeting: 1000, command: 1000, dataStart: 1000, data: 1000, finalDot: 5000 });
    expect(() => new SmtpClient({ timeout: -1 })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ timeouts: { nope: 1 } as never })).toThrow(/Unknown timeout/);
  });

  it("rejects bad options at construction", () => {
    expect(() => new SmtpClient({ port: 0 })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ port: 70000 })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ host: "a b" })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ localName: "bad name\r\n" })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ tls: "maybe" as never })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ auth: { user: "u", accessToken: "t" }, authMethod: "PLAIN" })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ auth: { user: "u", pass: "p" }, authMethod: "XOAUTH2" })).toThrow(InvalidArgumentError);
  });

  it("never shows the password", () => {
    const c = new SmtpClient({ auth: { user: "u", pass: "hunter2" } });
    expect(JSON.stringify(c)).not.toContain("hunter2");
  });
});

describe("helpers", () => {
  it("isLoopback", () => {
    for (const h of ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "::ffff:127.0.0.1", "foo.localhost"]) expect(isLoopback(h), h).toBe(true);
    for (const h of ["example.org", "10.0.0.1", "128.0.0.1", "::2", "localhost.example.org"]) expect(isLoopback(h), h).toBe(false);
  });

  it("address literals for the EHLO name", () => {
    expect(addressLiteral("127.0.0.1")).toBe("[127.0.0.1]");
    expect(addressLiteral("::ffff:10.1.2.3")).toBe("[10.1.2.3]");
    expect(addressLiteral("::1")).toBe("[IPv6:::1]");
    expect(addressLiteral("fe80::1%eth0")).toBe("[IPv6:fe80::1]");
    expect(addressLiteral(undefined)).toBe("[127.0.0.1]");
  });
});

/** A name that is not loopback by the client's rules, resolved to 127.0.0.1: no traffic leaves the machine. */
const REMOTE_NAME = "mail.example.test";
const toLoopback: net.LookupFunction = (_hostname, options, callback) => {
  if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
  else callback(null, "127.0.0.1", 4);
};

describe("plaintext AUTH to a non-loopback host", () => {
  it("is refused before any credential byte unless allowInsecureAuth", async () => {
    const server = await startFakeServer({ ehlo: ["AUTH PLAIN LOGIN"] });
    try {
      const client = new SmtpClient({ host: REMOTE_NAME, lookup: toLoopback, port: server.port, tls: "none", auth: { user: "u", pass: "secret-pw" }, timeout: 2000, localName: "t.test" });
      const error = await client.connect().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SmtpAuthError);
      expect((error as SmtpAuthError).retryable).toBe(false);
      expect((error as Error).message).toMatch(/plaintext/);
      expect(client.state).toBe("closed");
      expect(server.commands(1)).toEqual(["EHLO t.test", "QUIT"]);
      expect(server.clientBytes(1).toString()).not.toContain(Buffer.from("\0u\0secret-pw").toString("base64"));

      const allowed = new SmtpClient({ host: REMOTE_NAME, lookup: toLoopback, port: server.port, tls: "none", auth: { user: "u", pass: "secret-pw" }, allowInsecureAuth: true, timeout: 2000 });
      await allowed.connect();
      expect(allowed.authenticatedAs).toBe("u");
      await allowed.quit();
    } finally {
      await server.close();
    }
  });
});
