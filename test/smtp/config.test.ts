/**
 * resolveSmtpConfig: one set of rules for configure(), the SMTP backend and the client.
 * Each case is refused (or accepted) by every layer alike; the messages name each layer's
 * own options.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ConfigurationError, InvalidArgumentError } from "../../src/errors.js";
import { resolveSmtpConfig, isResolvedSmtpConfig, type ConfigSource } from "../../src/smtp/config.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { SmtpPool } from "../../src/smtp/pool.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { configure, getSettings, resetSettings } from "../../src/settings.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { errorOf } from "../helpers/errors.js";

isolateEmailEnvironment();
afterEach(() => resetSettings());

/** The same option in each layer's spelling. */
type Case = { name: string; client: object; backend: object; settings?: object };

const refusedEverywhere: Case[] = [
  { name: "host with a port", client: { host: "smtp.example.com:587" }, backend: { host: "smtp.example.com:587" } },
  { name: "a typo'd TLS option", client: { tlsOptions: { rejectUnauthorised: false } }, backend: { tls: { rejectUnauthorised: false } } },
  { name: "rejectUnauthorized that is not a boolean", client: { tlsOptions: { rejectUnauthorized: "false" } }, backend: { tls: { rejectUnauthorized: "false" } } },
  { name: "a fractional timeout under 1 ms", client: { timeout: 0.5 }, backend: { timeout: 0.5 } },
  { name: "a timeout past the timer limit", client: { timeout: 2 ** 31 }, backend: { timeout: 2 ** 31 } },
  { name: "a per-phase timeout of 0", client: { timeouts: { command: 0 } }, backend: { timeouts: { command: 0 } } },
  { name: "an unknown phase", client: { timeouts: { nope: 1 } }, backend: { timeouts: { nope: 1 } } },
  { name: "a user name with CR/LF", client: { auth: { user: "a\r\nb", pass: "p" } }, backend: { username: "a\r\nb", password: "p" } },
  { name: "a password with NUL", client: { auth: { user: "u", pass: "p\0" } }, backend: { username: "u", password: "p\0" } },
  { name: "an EHLO name with an underscore", client: { localName: "my_host" }, backend: { localName: "my_host" } },
  { name: "an EHLO name with a port", client: { localName: "client.example:25" }, backend: { localName: "client.example:25" } },
  { name: "useTls with useSsl", client: { useTls: true, useSsl: true }, backend: { useTls: true, useSsl: true } },
  { name: "a TLS mode contradicting useSsl", client: { useSsl: true, tls: "starttls" }, backend: { useSsl: true, tls: "starttls" } },
  { name: "an unknown TLS mode", client: { tls: "always" }, backend: { tls: "always" } },
  { name: "port 0", client: { port: 0 }, backend: { port: 0 } },
  { name: "an unknown option", client: { hots: "x" }, backend: { hots: "x" } },
  { name: "a pool of 0 connections", client: { maxConnections: 0 }, backend: { pool: { maxConnections: 0 } } },
  { name: "useTls that is not a boolean", client: { useTls: "yes" }, backend: { useTls: "yes" } },
];

describe("resolveSmtpConfig refuses the same input in every layer", () => {
  it.each(refusedEverywhere)("$name", ({ client, backend }) => {
    expect(() => new SmtpClient(client as never)).toThrow(InvalidArgumentError);
    expect(() => new SmtpPool(client as never)).toThrow(InvalidArgumentError);
    expect(() => new SmtpBackend(backend as never)).toThrow(InvalidArgumentError);
    const settingsError = errorOf(() => configure({ backends: { bulk: { backend: "smtp", ...backend } } } as never));
    expect(settingsError).toBeInstanceOf(ConfigurationError);
    expect((settingsError as ConfigurationError).setting).toMatch(/^backends\.bulk\./);
  });

  it("configure() checks the top-level SMTP settings by the same rules", () => {
    for (const input of [{ timeout: 0.5 }, { localName: "my_host" }, { host: "smtp.example.com:587" }, { tlsOptions: { rejectUnauthorised: false } }, { username: "a\nb" }]) {
      expect(() => configure(input as never), JSON.stringify(input)).toThrow(ConfigurationError);
    }
  });

  it("every layer names its options the same way in its messages", () => {
    expect(errorOf(() => new SmtpClient({ tlsOptions: { rejectUnauthorised: false } } as never)).message).toMatch(/Unknown tlsOptions option "rejectUnauthorised"/);
    expect(errorOf(() => new SmtpBackend({ tlsOptions: { rejectUnauthorised: false } } as never)).message).toMatch(/Unknown tlsOptions option "rejectUnauthorised"/);
    expect(errorOf(() => new SmtpClient({ tls: "always" } as never)).message).toMatch(/^tls must be/);
    expect(errorOf(() => new SmtpBackend({ tls: "always" } as never)).message).toMatch(/^tls must be/);
    expect(errorOf(() => new SmtpBackend({ hots: "x" } as never)).message).toMatch(/^Unknown SMTP backend option "hots"/);
    expect(errorOf(() => new SmtpClient({ hots: "x" } as never)).message).toMatch(/^Unknown SMTP client option "hots"/);
    const named = errorOf(() => configure({ backends: { bulk: { backend: "smtp", hots: "x" } } } as never)) as ConfigurationError;
    expect(named.setting).toBe("backends.bulk.hots");
    expect(named.message).toMatch(/backends\.bulk has an unknown option "hots"/);
    const timeout = errorOf(() => configure({ backends: { bulk: { backend: "smtp", timeout: 0.5 } } })) as ConfigurationError;
    expect(timeout.setting).toBe("backends.bulk.timeout");
    expect(timeout.message).toMatch(/^backends\.bulk\.timeout must be/);
  });

  it("a named backend given as a URL is checked too", () => {
    const error = errorOf(() => configure({ backends: { bulk: "smtp://bulk.example.com?local_name=my_host" } })) as ConfigurationError;
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.setting).toBe("backends.bulk");
  });

  it("a named backend is accepted once it is valid, and the backend it makes agrees", () => {
    configure({ backends: { bulk: { backend: "smtp", host: "bulk.example.com", useTls: true, localName: "client.example.com" } } });
    expect(getSettings().backends["bulk"]).toMatchObject({ host: "bulk.example.com" });
  });
});

describe("one vocabulary for TLS, and no option value echoed", () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUb3Blbi1zZWNyZXQtY2VydGlmaWNhdGUtYm9keQ==\n-----END CERTIFICATE-----\n";

  it("Node's TLS options where the mode goes: the message says to use tlsOptions and never prints the PEM", () => {
    for (const make of [() => new SmtpClient({ tls: { ca: pem } } as never), () => new SmtpBackend({ tls: { ca: pem } } as never), () => configure({ tls: { ca: pem } } as never)]) {
      const e = errorOf(make);
      expect(e.message).toMatch(/^tls is the TLS mode \("implicit", "starttls", "opportunistic" or "none"\); Node's TLS options \(ca, servername, rejectUnauthorized, cert, key, minVersion\) go in tlsOptions$/);
      expect(e.message).not.toContain("BEGIN");
      expect(e.message).not.toContain("MIIB");
    }
  });

  it("a PEM or a password given as the mode, port or EHLO name is described by its size, never shown", () => {
    const secret = "correct-horse-battery-staple-hunter2-password";
    const cases: [object, RegExp][] = [
      [{ tls: pem }, /^tls must be "implicit", "starttls", "opportunistic" or "none", got a string of \d+ characters$/],
      [{ tls: secret }, /^tls must be .* got a string of 45 characters$/],
      [{ localName: pem }, /^localName a string of \d+ characters is not a valid EHLO name/],
      [{ host: secret + "\n" }, /^host a string of 46 characters is not a valid host name$/],
      [{ port: secret }, /^port must be an integer from 1 to 65535, got a string of 45 characters$/],
      [{ authMethod: secret }, /^authMethod must be one of .*, got a string of 45 characters$/],
      [{ timeouts: pem }, /^timeouts must be an object of per-phase milliseconds or "rfc5321", got a string of \d+ characters$/],
      [{ tlsOptions: { minVersion: secret } }, /^tlsOptions\.minVersion must be "TLSv1\.2" or "TLSv1\.3", got a string of 45 characters$/],
      [{ useSsl: true, tls: "starttls" }, /^tls "starttls" contradicts useSsl: true$/],
    ];
    for (const [options, message] of cases) {
      for (const make of [() => new SmtpClient(options as never), () => new SmtpBackend(options as never)]) {
        const e = errorOf(make);
        expect(e, JSON.stringify(Object.keys(options))).toBeInstanceOf(InvalidArgumentError);
        expect(e.message).toMatch(message);
        expect(e.message).not.toContain("MIIB");
        expect(e.message).not.toContain("hunter2");
      }
    }
  });

  it("the backend's and the settings' old tlsMode is refused with the name to use", () => {
    expect(errorOf(() => new SmtpBackend({ tlsMode: "none" } as never)).message).toBe('tlsMode is now tls (the TLS mode: tls: "starttls"); every SMTP layer, EMAIL_URL and the CLI use the same names');
    const named = errorOf(() => configure({ backends: { bulk: { backend: "smtp", tlsMode: "none" } } } as never)) as ConfigurationError;
    expect(named.setting).toBe("backends.bulk.tlsMode");
    expect(named.message).toMatch(/^backends\.bulk\.tlsMode is now tls/);
    expect((errorOf(() => configure({ tlsMode: "none" } as never)) as ConfigurationError).message).toMatch(/^tlsMode is now tls .*; Node's TLS options are tlsOptions/);
  });

  it("the same names work in every layer", () => {
    const options = { host: "mail.example.com", port: 2525, tls: "opportunistic", tlsOptions: { servername: "relay.example.com" } } as const;
    expect(resolveSmtpConfig(options, "client")).toMatchObject({ tlsMode: "opportunistic", tls: { servername: "relay.example.com" } });
    expect(new SmtpBackend(options).createClient().tlsMode).toBe("opportunistic");
    configure(options);
    expect(new SmtpBackend().createClient().tlsMode).toBe("opportunistic");
    expect(getSettings().tlsOptions).toMatchObject({ servername: "relay.example.com" });
  });
});

describe("port and TLS mode, decided in one place", () => {
  // [options, client port, client mode, backend port, backend mode]
  const table: [object, number, string, number, string][] = [
    [{ host: "localhost" }, 25, "none", 25, "none"],
    [{ host: "127.0.0.1", useSsl: true }, 465, "implicit", 465, "implicit"],
    [{ host: "localhost", useTls: true }, 587, "starttls", 25, "starttls"],
    [{ host: "mail.example.com" }, 587, "starttls", 25, "starttls"],
    [{ host: "mail.example.com", port: 465 }, 465, "implicit", 465, "implicit"],
    [{ host: "mail.example.com", port: 2525 }, 2525, "starttls", 2525, "starttls"],
  ];
  it.each(table)("%o: client %i %s, backend %i %s", (options, clientPort, clientMode, backendPort, backendMode) => {
    const client = resolveSmtpConfig(options, "client");
    expect([client.port, client.tlsMode]).toEqual([clientPort, clientMode]);
    const backend = resolveSmtpConfig(options, "backend");
    expect([backend.port, backend.tlsMode]).toEqual([backendPort, backendMode]);
  });

  it("one name for the mode in every layer: tls", () => {
    expect(resolveSmtpConfig({ host: "mail.example.com", tls: "none" }, "client")).toMatchObject({ port: 25, tlsMode: "none" });
    expect(resolveSmtpConfig({ host: "mail.example.com", tls: "opportunistic" }, "backend")).toMatchObject({ port: 25, tlsMode: "opportunistic" });
    expect(resolveSmtpConfig({ host: "mail.example.com", tls: "opportunistic" }, "settings")).toMatchObject({ port: 25, tlsMode: "opportunistic" });
  });

  it("requireTls forces an encrypting mode: opportunistic becomes starttls, none is refused, 465 means implicit", () => {
    expect(resolveSmtpConfig({ host: "localhost", requireTls: true }, "backend")).toMatchObject({ tlsMode: "starttls", port: 25 });
    expect(resolveSmtpConfig({ host: "mail.example.com", requireTls: true, port: 465 }, "backend")).toMatchObject({ tlsMode: "implicit" });
    expect(resolveSmtpConfig({ host: "mail.example.com", requireTls: true, tls: "opportunistic" }, "backend")).toMatchObject({ tlsMode: "starttls" });
    expect(() => resolveSmtpConfig({ requireTls: true, tls: "none" }, "backend")).toThrow(/requireTls cannot be met/);
  });
});

describe("the resolved config", () => {
  it("is frozen, branded, and passes through any layer unchanged", () => {
    const config = resolveSmtpConfig({ host: "mail.example.com", useTls: true }, "backend");
    expect(Object.isFrozen(config)).toBe(true);
    expect(isResolvedSmtpConfig(config)).toBe(true);
    expect(resolveSmtpConfig(config, "client")).toBe(config);
    // A client made from the backend's config keeps the backend's decision (port 25, not 587).
    expect(new SmtpClient(config)).toMatchObject({ port: 25, tlsMode: "starttls" });
    expect(isResolvedSmtpConfig({ ...config })).toBe(false);
  });

  it("pins the security defaults", () => {
    const config = resolveSmtpConfig({}, "client");
    expect(config.tls).toMatchObject({ rejectUnauthorized: true, minVersion: "TLSv1.2" });
    expect(config.allowInsecureAuth).toBe(false);
    expect(config.pipelining).toBe(true);
    expect(config.chunking).toBe(false);
  });

  it("pool options: the client's at top level, the backend's under pool (off: one connection, kept until close)", () => {
    expect(resolveSmtpConfig({}, "client").pool).toEqual({ maxConnections: 5, maxMessagesPerConnection: 100, probeAfterIdle: 1000, idleTimeout: 30_000 });
    expect(resolveSmtpConfig({ maxConnections: 2, probeAfterIdle: 0 }, "client").pool).toMatchObject({ maxConnections: 2, probeAfterIdle: 0 });
    expect(resolveSmtpConfig({}, "backend").pool).toEqual({ maxConnections: 1, maxMessagesPerConnection: Number.POSITIVE_INFINITY, probeAfterIdle: 1000, idleTimeout: undefined });
    expect(resolveSmtpConfig({ pool: true }, "backend").pool.maxConnections).toBe(5);
    expect(resolveSmtpConfig({ pool: { maxConnections: 3 } }, "backend").pool.maxConnections).toBe(3);
  });

  it.each<ConfigSource>(["settings", "backend", "client"])("%s: errors are ConfigurationError only for settings", (source) => {
    const error = errorOf(() => resolveSmtpConfig({ timeout: 0 }, source));
    expect(error).toBeInstanceOf(source === "settings" ? ConfigurationError : InvalidArgumentError);
  });
});
