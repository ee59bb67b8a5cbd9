/**
 * resolveSmtpConfig at each limit, exactly and one past it, with the message each refusal
 * gives (the message is what a user reads: it names the option in the caller's vocabulary
 * and describes a wrong value without echoing it), and every value a resolved config
 * carries from its options to the connection.
 */
import { describe, expect, it } from "vitest";
import { ConfigurationError, InvalidArgumentError } from "../../src/errors.js";
import { systemClock, MAX_TIMER_MS } from "../../src/observe/clock.js";
import {
  credentialProblem,
  deriveSmtpConfig,
  greetingTimeoutHint,
  hostProblem,
  isResolvedSmtpConfig,
  localNameProblem,
  resolveSmtpConfig,
  timeoutProblem,
  type ConfigSource,
} from "../../src/smtp/config.js";
import { errorOf } from "../helpers/errors.js";

/** The message resolveSmtpConfig refuses `input` with (InvalidArgumentError for the client and backend). */
function refusal(input: unknown, source: Exclude<ConfigSource, "settings"> = "client"): string {
  const error = errorOf(() => resolveSmtpConfig(input, source));
  expect(error).toBeInstanceOf(InvalidArgumentError);
  return error.message;
}

/** The ConfigurationError for settings `input`, at `path` when given. */
function settingsRefusal(input: unknown, path?: string): ConfigurationError {
  const error = errorOf(() => resolveSmtpConfig(input, "settings", path === undefined ? {} : { path }));
  expect(error).toBeInstanceOf(ConfigurationError);
  return error as ConfigurationError;
}

const TIMEOUT_RANGE = `must be a number of milliseconds from 1 to ${MAX_TIMER_MS}`;

describe("the options object itself", () => {
  it.each([null, "host", 42, ["host"], undefined])("refuses %o as the options, naming the layer", (input) => {
    expect(refusal(input, "client")).toBe("SMTP client options must be an object");
    expect(refusal(input, "backend")).toBe("SMTP options must be an object");
    const settings = settingsRefusal(input, "backends.bulk");
    expect([settings.setting, settings.message]).toEqual(["backends.bulk.options", "SMTP options must be an object"]);
  });

  it("reads own properties only: a polluted prototype supplies no option", () => {
    const inherited = Object.create({ host: "evil.example", tls: "none", port: 2525, pipelining: false, auth: { user: "u", pass: "p" } });
    const config = resolveSmtpConfig(inherited, "client");
    expect(config).toMatchObject({ host: "localhost", port: 25, tlsMode: "none", pipelining: true, credentials: undefined });
    const tlsOptions = Object.create({ rejectUnauthorized: false, servername: "evil.example" });
    expect(resolveSmtpConfig({ host: "mail.example.com", tlsOptions }, "client").tls).toMatchObject({ rejectUnauthorized: true, servername: undefined });
  });

  it.each(["__proto__", "constructor", "prototype"])("refuses the key %s at the top level and inside an option", (key) => {
    const top = JSON.parse(`{"${key}": {}}`) as object;
    expect(refusal(top)).toBe(`${key} is refused: "${key}" is never an option (it would reach Object.prototype)`);
    const nested = JSON.parse(`{"tlsOptions": {"${key}": {}}}`) as object;
    expect(refusal(nested)).toBe(`tlsOptions.${key} is refused: "${key}" is never an option (it would reach Object.prototype)`);
    const inSettings = settingsRefusal(nested, "backends.bulk");
    expect(inSettings.setting).toBe("backends.bulk.tlsOptions");
    expect(inSettings.message).toBe(`backends.bulk.tlsOptions.${key} is refused: "${key}" is never an option (it would reach Object.prototype)`);
    expect(settingsRefusal(top).setting).toBe(key);
  });

  it("names unknown keys with the known ones, in the vocabulary of each layer", () => {
    expect(refusal({ hots: "x" }, "backend")).toMatch(/^Unknown SMTP backend option "hots"; known: host, port, useTls, useSsl, sslKeyfile, sslCertfile, localName, timeout, tls, tlsOptions, username, password, auth, authMethod, allowInsecureAuth, requireTls, timeouts, dsn, allow8bit, pipelining, chunking, signal, transcript, pool, failSilently, clock, deadline, logger, logRecipients$/);
    expect(refusal({ hots: "x" }, "client")).toBe(
      'Unknown SMTP client option "hots"; known: host, port, useTls, useSsl, sslKeyfile, sslCertfile, localName, timeout, tls, tlsOptions, auth, authMethod, allowInsecureAuth, timeouts, pipelining, chunking, chunkSize, signal, lookup, transcript, clock, logger, logRecipients, maxConnections, maxMessagesPerConnection, probeAfterIdle, idleTimeout',
    );
    // Options of one layer only are unknown to the other.
    expect(refusal({ chunkSize: 1024 }, "backend")).toMatch(/^Unknown SMTP backend option "chunkSize"/);
    expect(refusal({ username: "u" }, "client")).toMatch(/^Unknown SMTP client option "username"/);
    expect(refusal({ deadline: 1000 }, "client")).toMatch(/^Unknown SMTP client option "deadline"/);
    expect(refusal({ maxConnections: 2 }, "backend")).toMatch(/^Unknown SMTP backend option "maxConnections"/);
    const settings = settingsRefusal({ hots: "x" });
    expect([settings.setting, settings.message]).toEqual(["hots", expect.stringMatching(/^Unknown SMTP backend option "hots"; known: host, /)]);
    const atPath = settingsRefusal({ hots: "x" }, "backends.bulk");
    expect([atPath.setting, atPath.message]).toEqual(["backends.bulk.hots", expect.stringMatching(/^backends\.bulk has an unknown option "hots"; an smtp backend takes: host, port, /)]);
  });

  it("names an unknown key inside an option, and where it sits when there is a path", () => {
    expect(refusal({ tlsOptions: { sni: "x" } })).toBe('Unknown tlsOptions option "sni"; known: ca, servername, rejectUnauthorized, cert, key, minVersion');
    expect(refusal({ timeouts: { total: 5 } })).toBe('Unknown timeout "total"; known: connect, greeting, command, dataStart, data, finalDot');
    expect(refusal({ auth: { user: "u", password: "p" } })).toBe('Unknown auth option "password"; known: user, pass, accessToken, tokenProvider');
    expect(refusal({ pool: { probeAfterIdle: 0 } }, "backend")).toBe('Unknown pool option "probeAfterIdle"; known: maxConnections, maxMessagesPerConnection, idleTimeout');
    expect(refusal({ dsn: { notfy: ["NEVER"] } }, "backend")).toBe('Unknown dsn option "notfy"; known: ret, envid, notify, orcpt, optional');
    const atPath = settingsRefusal({ tlsOptions: { sni: "x" } }, "backends.bulk");
    expect([atPath.setting, atPath.message]).toEqual([
      "backends.bulk.tlsOptions",
      'Unknown tlsOptions option "sni" in backends.bulk.tlsOptions; known: ca, servername, rejectUnauthorized, cert, key, minVersion',
    ]);
  });

  it("an old name is refused with the new one only at the top level", () => {
    expect(refusal({ tlsMode: "none" }, "client")).toBe('tlsMode is now tls (the TLS mode: tls: "starttls"); every SMTP layer, EMAIL_URL and the CLI use the same names');
    expect(refusal({ tlsOptions: { tlsMode: "none" } })).toMatch(/^Unknown tlsOptions option "tlsMode"/);
    expect(settingsRefusal({ tlsMode: "none" }, "backends.bulk").message).toMatch(/^backends\.bulk\.tlsMode is now tls/);
  });

  it("a nested option that is not an object", () => {
    for (const name of ["tlsOptions", "timeouts", "auth"]) {
      for (const value of [null, 5, ["a"]]) expect(refusal({ [name]: value }), `${name}: ${String(value)}`).toBe(`${name} must be an object`);
    }
    expect(refusal({ dsn: "FULL" }, "backend")).toBe("dsn must be an object");
    expect(settingsRefusal({ tlsOptions: 5 }, "backends.bulk").message).toBe("backends.bulk.tlsOptions must be an object");
  });
});

describe("host", () => {
  it("defaults to localhost; a name, an IPv4 address or an IPv6 literal is taken as given", () => {
    expect(resolveSmtpConfig({}, "client").host).toBe("localhost");
    for (const host of ["mail.example.com", "192.0.2.1", "::1", "[::1]", "[IPv6:::1]", "[ipv6:2001:db8::1]", "2001:db8::25"]) {
      expect(resolveSmtpConfig({ host }, "client").host, host).toBe(host);
      expect(hostProblem(host), host).toBeUndefined();
    }
  });

  it("refuses a host with a port, an empty or non-string host, and characters no host has", () => {
    expect(hostProblem("")).toBe("must be a non-empty host name");
    expect(hostProblem(25)).toBe("must be a non-empty host name");
    expect(refusal({ host: "" })).toBe("host must be a non-empty host name");
    expect(refusal({ host: "mail.example.com:587" })).toBe('host "mail.example.com:587" is not a host name: give the port separately');
    for (const host of ["[::1]:25", "[::1", "::1]", "x::1]", "ipv6:::1", "[IPv6:1]", "[IPv6::1]x", "[IPv4:127.0.0.1]", "1:2"]) {
      expect(hostProblem(host), host).toBe(`${JSON.stringify(host)} is not a host name: give the port separately`);
    }
    for (const c of [" ", "\t", "\0", "\x1f", "\x7f", "<", ">", "@", ",", ";", '"', "\\", "/"]) {
      const host = `mail${c}example.com`;
      expect(hostProblem(host), JSON.stringify(c)).toMatch(/ is not a valid host name$/);
    }
    expect(hostProblem("mail-1_x.example.com")).toBeUndefined();
  });
});

describe("port", () => {
  it("takes 1 and 65535, refuses 0, 65536, a fraction and a string", () => {
    expect(resolveSmtpConfig({ port: 1 }, "client").port).toBe(1);
    expect(resolveSmtpConfig({ port: 65535 }, "client").port).toBe(65535);
    for (const port of [0, 65536, 25.5, "25", Number.NaN]) {
      expect(refusal({ port }), String(port)).toBe(`port must be an integer from 1 to 65535, got ${typeof port === "string" ? '"25"' : String(port)}`);
    }
  });
});

describe("TLS mode and the port it implies", () => {
  it("each mode's default port, for the bare client and the Django-style layers", () => {
    const cases: [string, number, number][] = [
      ["implicit", 465, 465],
      ["starttls", 587, 25],
      ["opportunistic", 25, 25],
      ["none", 25, 25],
    ];
    for (const [tls, clientPort, backendPort] of cases) {
      expect(resolveSmtpConfig({ host: "mail.example.com", tls }, "client"), tls).toMatchObject({ tlsMode: tls, port: clientPort });
      expect(resolveSmtpConfig({ host: "mail.example.com", tls }, "backend"), tls).toMatchObject({ tlsMode: tls, port: backendPort });
      expect(resolveSmtpConfig({ host: "mail.example.com", tls, port: 2525 }, "client"), tls).toMatchObject({ tlsMode: tls, port: 2525 });
    }
  });

  it("a loopback host gets plaintext even on 465; requireTls makes it STARTTLS, or implicit on 465", () => {
    expect(resolveSmtpConfig({ host: "127.0.0.1", port: 465 }, "client").tlsMode).toBe("none");
    expect(resolveSmtpConfig({ host: "127.0.0.1", requireTls: true }, "backend")).toMatchObject({ tlsMode: "starttls", port: 25, requireTls: true });
    expect(resolveSmtpConfig({ host: "127.0.0.1", requireTls: true, port: 465 }, "backend")).toMatchObject({ tlsMode: "implicit", port: 465 });
    expect(resolveSmtpConfig({ host: "mail.example.com", port: 466 }, "client").tlsMode).toBe("starttls");
    expect(resolveSmtpConfig({ host: "mail.example.com", requireTls: false }, "backend")).toMatchObject({ tlsMode: "starttls", requireTls: false });
    expect(resolveSmtpConfig({}, "backend").requireTls).toBe(false);
  });

  it("requireTls leaves an encrypting mode alone and refuses none, naming both options", () => {
    expect(resolveSmtpConfig({ host: "mail.example.com", requireTls: true, tls: "implicit" }, "backend")).toMatchObject({ tlsMode: "implicit", port: 465 });
    expect(resolveSmtpConfig({ host: "mail.example.com", requireTls: true, tls: "starttls" }, "backend")).toMatchObject({ tlsMode: "starttls" });
    expect(resolveSmtpConfig({ host: "mail.example.com", requireTls: false, tls: "opportunistic" }, "backend").tlsMode).toBe("opportunistic");
    expect(resolveSmtpConfig({ host: "mail.example.com", requireTls: false, tls: "none" }, "backend").tlsMode).toBe("none");
    expect(refusal({ requireTls: true, tls: "none" }, "backend")).toBe('requireTls cannot be met with tls "none"');
    expect(settingsRefusal({ requireTls: true, tls: "none" }, "backends.bulk")).toMatchObject({ setting: "backends.bulk.requireTls", message: 'backends.bulk.requireTls cannot be met with backends.bulk.tls "none"' });
    expect(refusal({ requireTls: "yes" }, "backend")).toBe("requireTls must be true or false");
  });

  it("Django's aliases, with the messages for giving both or contradicting tls", () => {
    expect(resolveSmtpConfig({ host: "mail.example.com", useSsl: false, useTls: false }, "client")).toMatchObject({ tlsMode: "starttls", port: 587 });
    expect(resolveSmtpConfig({ host: "localhost", useSsl: false, useTls: false }, "client").tlsMode).toBe("none");
    expect(resolveSmtpConfig({ host: "localhost", useTls: true, tls: "starttls" }, "client").tlsMode).toBe("starttls");
    expect(refusal({ useSsl: true, useTls: true })).toBe("useTls (STARTTLS, port 587) and useSsl (implicit TLS, port 465) are mutually exclusive; set only one");
    expect(settingsRefusal({ useSsl: true, useTls: true }).setting).toBe("useSsl");
    expect(refusal({ useTls: true, tls: "implicit" })).toBe('tls "implicit" contradicts useTls: true');
    expect(refusal({ useSsl: true, tls: "none" })).toBe('tls "none" contradicts useSsl: true');
    expect(refusal({ useSsl: 1 })).toBe("useSsl must be true or false");
    expect(refusal({ tls: null })).toBe('tls must be "implicit", "starttls", "opportunistic" or "none", got null');
    expect(refusal({ tls: true })).toBe('tls must be "implicit", "starttls", "opportunistic" or "none", got true');
  });
});

describe("tlsOptions", () => {
  it("defaults: verify, TLS 1.2 at least, nothing else", () => {
    expect(resolveSmtpConfig({}, "client").tls).toEqual({
      ca: undefined,
      servername: undefined,
      rejectUnauthorized: true,
      cert: undefined,
      key: undefined,
      minVersion: "TLSv1.2",
      certFile: undefined,
      keyFile: undefined,
    });
  });

  it("carries every option given, each to its own field", () => {
    const ca = [Buffer.from("ca-one"), "ca-two"];
    const tls = resolveSmtpConfig(
      { tlsOptions: { ca, servername: "relay.example.com", rejectUnauthorized: false, cert: "CERT", key: Buffer.from("KEY"), minVersion: "TLSv1.3" }, sslCertfile: "/etc/cert.pem", sslKeyfile: "/etc/key.pem" },
      "client",
    ).tls;
    expect(tls).toEqual({ ca, servername: "relay.example.com", rejectUnauthorized: false, cert: "CERT", key: Buffer.from("KEY"), minVersion: "TLSv1.3", certFile: "/etc/cert.pem", keyFile: "/etc/key.pem" });
    // The list is copied and frozen: changing the caller's array later changes nothing.
    expect(tls.ca).not.toBe(ca);
    expect(Object.isFrozen(tls.ca)).toBe(true);
    expect(Object.isFrozen(tls)).toBe(true);
    ca.push("ca-three");
    expect(tls.ca).toHaveLength(2);
    expect(resolveSmtpConfig({ tlsOptions: { ca: "PEM" } }, "client").tls.ca).toBe("PEM");
    expect(resolveSmtpConfig({ tlsOptions: { rejectUnauthorized: true } }, "client").tls.rejectUnauthorized).toBe(true);
  });

  it.each(["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"])("takes minVersion %s", (minVersion) => {
    expect(resolveSmtpConfig({ tlsOptions: { minVersion } }, "client").tls.minVersion).toBe(minVersion);
  });

  it("refuses each wrong value with the option's full name", () => {
    expect(refusal({ tlsOptions: { rejectUnauthorized: 0 } })).toBe("tlsOptions.rejectUnauthorized must be true or false");
    expect(refusal({ tlsOptions: { servername: 5 } })).toBe("tlsOptions.servername must be a string");
    expect(refusal({ tlsOptions: { minVersion: "TLSv1.4" } })).toBe('tlsOptions.minVersion must be "TLSv1.2" or "TLSv1.3", got "TLSv1.4"');
    expect(refusal({ tlsOptions: { cert: 5 } })).toBe("tlsOptions.cert must be PEM text or a Buffer");
    expect(refusal({ tlsOptions: { key: {} } })).toBe("tlsOptions.key must be PEM text or a Buffer");
    expect(refusal({ tlsOptions: { ca: 5 } })).toBe("tlsOptions.ca must be PEM text, a Buffer, or a list of them");
    expect(refusal({ tlsOptions: { ca: ["PEM", 5] } })).toBe("tlsOptions.ca must be PEM text, a Buffer, or a list of them");
    expect(refusal({ sslKeyfile: "" })).toBe("sslKeyfile must be a non-empty path");
    expect(refusal({ sslCertfile: 5 })).toBe("sslCertfile must be a non-empty path");
    expect(settingsRefusal({ tlsOptions: { servername: 5 } }, "backends.bulk")).toMatchObject({ setting: "backends.bulk.tlsOptions", message: "backends.bulk.tlsOptions.servername must be a string" });
    expect(settingsRefusal({ sslKeyfile: "" }).setting).toBe("sslKeyfile");
  });
});

describe("timeouts", () => {
  it("timeoutProblem: 1 ms and 2^31 - 1 ms are fine; 0.999, 2^31, NaN, Infinity and strings are not", () => {
    for (const ok of [1, 1.5, MAX_TIMER_MS]) expect(timeoutProblem(ok), String(ok)).toBeUndefined();
    for (const bad of [0, 0.999, -1, MAX_TIMER_MS + 1, Number.NaN, Number.POSITIVE_INFINITY, "1000", undefined]) {
      expect(timeoutProblem(bad), String(bad)).toBe(TIMEOUT_RANGE);
    }
  });

  it("timeout sets every phase, at each limit", () => {
    expect(resolveSmtpConfig({ timeout: 1 }, "client").timeouts).toEqual({ connect: 1, greeting: 1, command: 1, dataStart: 1, data: 1, finalDot: 1 });
    expect(resolveSmtpConfig({ timeout: MAX_TIMER_MS }, "client").timeouts.finalDot).toBe(MAX_TIMER_MS);
    expect(refusal({ timeout: MAX_TIMER_MS + 1 })).toBe(`timeout ${TIMEOUT_RANGE}`);
    expect(settingsRefusal({ timeout: 0 }, "backends.bulk")).toMatchObject({ setting: "backends.bulk.timeout", message: `backends.bulk.timeout ${TIMEOUT_RANGE}` });
  });

  it("each phase on its own, an undefined phase keeping its default, and the resolved set frozen", () => {
    const timeouts = resolveSmtpConfig({ timeouts: { connect: 1, greeting: 2, command: 3, dataStart: 4, data: 5, finalDot: MAX_TIMER_MS } }, "client").timeouts;
    expect(timeouts).toEqual({ connect: 1, greeting: 2, command: 3, dataStart: 4, data: 5, finalDot: MAX_TIMER_MS });
    expect(Object.isFrozen(timeouts)).toBe(true);
    expect(resolveSmtpConfig({ timeout: 7, timeouts: { command: undefined } }, "client").timeouts.command).toBe(7);
    expect(resolveSmtpConfig({ timeouts: { command: undefined } }, "client").timeouts.command).toBe(60_000);
    for (const phase of ["connect", "greeting", "command", "dataStart", "data", "finalDot"]) {
      expect(refusal({ timeouts: { [phase]: 0 } })).toBe(`timeouts.${phase} ${TIMEOUT_RANGE}`);
      expect(refusal({ timeouts: { [phase]: MAX_TIMER_MS + 1 } })).toBe(`timeouts.${phase} ${TIMEOUT_RANGE}`);
    }
    expect(settingsRefusal({ timeouts: { data: 0 } })).toMatchObject({ setting: "timeouts", message: `timeouts.data ${TIMEOUT_RANGE}` });
  });

  it('"rfc5321" as the only timeout setting, named in full when it conflicts', () => {
    expect(refusal({ timeouts: "RFC5321" })).toBe('timeouts must be an object of per-phase milliseconds or "rfc5321", got "RFC5321"');
    expect(refusal({ timeouts: "rfc5321", timeout: 1000 })).toBe('timeout and timeouts: "rfc5321" contradict each other; give one');
    expect(settingsRefusal({ timeouts: "rfc5321", timeout: 1000 }, "backends.bulk")).toMatchObject({
      setting: "backends.bulk.timeouts",
      message: 'backends.bulk.timeout and backends.bulk.timeouts: "rfc5321" contradict each other; give one',
    });
  });
});

describe("local name", () => {
  it("keeps a valid EHLO name, and keeps the reason an invalid one is refused", () => {
    expect(resolveSmtpConfig({ localName: "client.example.com" }, "client").localName).toBe("client.example.com");
    expect(resolveSmtpConfig({ localName: "[192.0.2.1]" }, "client").localName).toBe("[192.0.2.1]");
    expect(resolveSmtpConfig({}, "client").localName).toBeUndefined();
    expect(localNameProblem("client.example.com")).toBeUndefined();
    expect(localNameProblem("my_host")).toBe('"my_host" is not a valid EHLO name: use a domain name (letters, digits, hyphens, dots) or an address literal such as [192.0.2.1]');
    expect(localNameProblem("")).toBe('"" is not a valid EHLO name: must be 1–255 characters');
    expect(refusal({ localName: "x".repeat(256) })).toBe("localName a string of 256 characters is not a valid EHLO name: must be 1–255 characters");
  });
});

describe("credentials and the AUTH method", () => {
  it("credentialProblem: a string without CR, LF or NUL", () => {
    expect(credentialProblem("pa ss\tword")).toBeUndefined();
    expect(credentialProblem(5)).toBe("must be a string");
    for (const c of ["\0", "\r", "\n"]) expect(credentialProblem(`a${c}b`), JSON.stringify(c)).toBe("must not contain CR, LF or NUL");
  });

  it("Django's username and password: both are needed to log in", () => {
    const both = resolveSmtpConfig({ username: "user", password: "secret" }, "backend").credentials;
    expect([both?.user, both?.kind, both?.revealPassword()]).toEqual(["user", "password", "secret"]);
    expect(resolveSmtpConfig({ username: "user" }, "backend").credentials).toBeUndefined();
    expect(resolveSmtpConfig({ password: "secret" }, "backend").credentials).toBeUndefined();
    expect(resolveSmtpConfig({ username: "", password: "secret" }, "backend").credentials).toBeUndefined();
    expect(resolveSmtpConfig({ username: "user", password: "" }, "backend").credentials).toBeUndefined();
    expect(refusal({ username: 5, password: "p" }, "backend")).toBe("username must be a string");
    expect(refusal({ username: "u", password: "p\r\n" }, "backend")).toBe("password must not contain CR, LF or NUL");
    expect(settingsRefusal({ username: "u\n" }, "backends.bulk")).toMatchObject({ setting: "backends.bulk.username", message: "backends.bulk.username must not contain CR, LF or NUL" });
  });

  it("auth wins over username and password, and takes a password, a token or a token provider", async () => {
    const auth = resolveSmtpConfig({ username: "django", password: "pw", auth: { user: "u", pass: "p" } }, "backend").credentials;
    expect([auth?.user, auth?.revealPassword()]).toEqual(["u", "p"]);
    const token = resolveSmtpConfig({ auth: { user: "u", accessToken: "tok" }, authMethod: "XOAUTH2" }, "client");
    expect([token.credentials?.kind, await token.credentials?.revealToken(), token.authMethod]).toEqual(["token", "tok", "XOAUTH2"]);
    const provided = resolveSmtpConfig({ auth: { user: "u", tokenProvider: () => "fresh" } }, "client").credentials;
    expect(await provided?.revealToken()).toBe("fresh");
    // An inherited secret is never read.
    const inherited = Object.assign(Object.create({ pass: "planted" }), { user: "u", accessToken: "tok" }) as object;
    expect(resolveSmtpConfig({ auth: inherited }, "client").credentials?.kind).toBe("token");
  });

  it("the credentials' own refusals come out as the layer's error, prefixed with the path", () => {
    expect(refusal({ auth: { user: "u" } })).toBe("auth needs a pass, an accessToken or a tokenProvider");
    const named = settingsRefusal({ auth: { user: "u" } }, "backends.bulk");
    expect([named.setting, named.message]).toEqual(["backends.bulk.auth", "backends.bulk: auth needs a pass, an accessToken or a tokenProvider"]);
    const bare = settingsRefusal({ auth: { pass: "p" } });
    expect([bare.setting, bare.message]).toEqual(["auth", "auth must be { user, pass } or { user, accessToken } or { user, tokenProvider }"]);
  });

  it("authMethod: one of the four, and one that fits the credentials", () => {
    for (const method of ["PLAIN", "LOGIN", "CRAM-MD5"]) {
      expect(resolveSmtpConfig({ auth: { user: "u", pass: "p" }, authMethod: method }, "client").authMethod).toBe(method);
    }
    expect(resolveSmtpConfig({ authMethod: "LOGIN" }, "client").authMethod).toBe("LOGIN");
    expect(resolveSmtpConfig({}, "client").authMethod).toBeUndefined();
    expect(refusal({ authMethod: "plain" })).toBe('authMethod must be one of PLAIN, LOGIN, CRAM-MD5, XOAUTH2, got "plain"');
    expect(refusal({ auth: { user: "u", pass: "p" }, authMethod: "XOAUTH2" })).toBe("authMethod XOAUTH2 does not fit the credentials given (a password)");
    expect(refusal({ auth: { user: "u", accessToken: "t" }, authMethod: "LOGIN" })).toBe("authMethod LOGIN does not fit the credentials given (a token)");
  });
});

describe("the client's pool options", () => {
  it("counts from 1, and refuses 0, a fraction, an unsafe integer and a string", () => {
    expect(resolveSmtpConfig({ maxConnections: 1, maxMessagesPerConnection: 1 }, "client").pool).toMatchObject({ maxConnections: 1, maxMessagesPerConnection: 1 });
    expect(resolveSmtpConfig({ maxMessagesPerConnection: Number.MAX_SAFE_INTEGER }, "client").pool.maxMessagesPerConnection).toBe(Number.MAX_SAFE_INTEGER);
    for (const key of ["maxConnections", "maxMessagesPerConnection"]) {
      for (const bad of [0, 1.5, Number.MAX_SAFE_INTEGER + 1, "2"]) expect(refusal({ [key]: bad }), `${key} ${String(bad)}`).toBe(`${key} must be a positive integer`);
    }
  });

  it("probeAfterIdle from 0 to 2^31 - 1 ms; idleTimeout a timer delay", () => {
    expect(resolveSmtpConfig({ probeAfterIdle: 0 }, "client").pool.probeAfterIdle).toBe(0);
    expect(resolveSmtpConfig({ probeAfterIdle: MAX_TIMER_MS }, "client").pool.probeAfterIdle).toBe(MAX_TIMER_MS);
    for (const bad of [-1, MAX_TIMER_MS + 1, Number.NaN, "0"]) {
      expect(refusal({ probeAfterIdle: bad }), String(bad)).toBe(`probeAfterIdle must be a number of milliseconds from 0 to ${MAX_TIMER_MS}`);
    }
    expect(resolveSmtpConfig({ idleTimeout: 1 }, "client").pool.idleTimeout).toBe(1);
    expect(refusal({ idleTimeout: 0 })).toBe(`idleTimeout ${TIMEOUT_RANGE}`);
    expect(Object.isFrozen(resolveSmtpConfig({}, "client").pool)).toBe(true);
  });
});

describe("the backend's pool option", () => {
  it("false or absent: one connection; true: the defaults; an object: those values", () => {
    expect(resolveSmtpConfig({ pool: false }, "backend").pool).toEqual(resolveSmtpConfig({}, "backend").pool);
    expect(resolveSmtpConfig({ pool: true }, "backend").pool).toEqual({ maxConnections: 5, maxMessagesPerConnection: 100, probeAfterIdle: 1000, idleTimeout: 30_000 });
    const pool = resolveSmtpConfig({ pool: { maxConnections: 1, maxMessagesPerConnection: 7, idleTimeout: 1 } }, "backend").pool;
    expect(pool).toEqual({ maxConnections: 1, maxMessagesPerConnection: 7, probeAfterIdle: 1000, idleTimeout: 1 });
    expect(Object.isFrozen(pool)).toBe(true);
    expect(resolveSmtpConfig({ pool: {} }, "backend").pool).toEqual({ maxConnections: 5, maxMessagesPerConnection: 100, probeAfterIdle: 1000, idleTimeout: 30_000 });
  });

  it("refuses anything else, naming pool's own options", () => {
    for (const bad of [null, "yes", 1, ["a"]]) {
      expect(refusal({ pool: bad }, "backend"), String(bad)).toBe("pool must be true, false or { maxConnections, maxMessagesPerConnection, idleTimeout }");
    }
    for (const key of ["maxConnections", "maxMessagesPerConnection"]) {
      for (const bad of [0, 2.5, Number.MAX_SAFE_INTEGER + 1, "3"]) expect(refusal({ pool: { [key]: bad } }, "backend")).toBe(`pool.${key} must be a positive integer`);
    }
    expect(refusal({ pool: { idleTimeout: MAX_TIMER_MS + 1 } }, "backend")).toBe(`pool.idleTimeout ${TIMEOUT_RANGE}`);
    expect(settingsRefusal({ pool: { maxConnections: 0 } }, "backends.bulk")).toMatchObject({ setting: "backends.bulk.pool", message: "backends.bulk.pool.maxConnections must be a positive integer" });
  });
});

describe("DSN", () => {
  it("keeps only the parameters given, the NOTIFY list copied and frozen", () => {
    const notify = ["SUCCESS", "FAILURE", "DELAY"];
    const dsn = resolveSmtpConfig({ dsn: { ret: "HDRS", envid: "QQ314159", notify, orcpt: true, optional: false } }, "backend").dsn;
    expect(dsn).toEqual({ ret: "HDRS", envid: "QQ314159", notify: ["SUCCESS", "FAILURE", "DELAY"], orcpt: true, optional: false });
    expect(dsn?.notify).not.toBe(notify);
    expect(Object.isFrozen(dsn?.notify)).toBe(true);
    expect(Object.isFrozen(dsn)).toBe(true);
    const only = resolveSmtpConfig({ dsn: { ret: "FULL" } }, "backend").dsn;
    expect(Object.keys(only ?? {})).toEqual(["ret"]);
    expect(resolveSmtpConfig({ dsn: { notify: ["NEVER"] } }, "backend").dsn).toEqual({ notify: ["NEVER"] });
    expect(resolveSmtpConfig({}, "backend").dsn).toBeUndefined();
  });

  it("refuses each wrong parameter", () => {
    expect(refusal({ dsn: { ret: "BODY" } }, "backend")).toBe('dsn.ret must be "FULL" or "HDRS"');
    expect(refusal({ dsn: { envid: 5 } }, "backend")).toBe("dsn.envid must be a string");
    expect(refusal({ dsn: { notify: ["SUCCESS", "ALWAYS"] } }, "backend")).toBe("dsn.notify must list NEVER, or SUCCESS, FAILURE and DELAY");
    expect(refusal({ dsn: { notify: "NEVER" } }, "backend")).toBe("dsn.notify must list NEVER, or SUCCESS, FAILURE and DELAY");
    expect(refusal({ dsn: { orcpt: "yes" } }, "backend")).toBe("dsn.orcpt must be true or false");
    expect(refusal({ dsn: { optional: 1 } }, "backend")).toBe("dsn.optional must be true or false");
    expect(settingsRefusal({ dsn: { ret: "BODY" } }, "backends.bulk")).toMatchObject({ setting: "backends.bulk.dsn", message: 'backends.bulk.dsn.ret must be "FULL" or "HDRS"' });
  });
});

describe("everything else a connection is handed", () => {
  const logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
  const clock = { now: () => 0, setTimeout: () => 1, clearTimeout: () => undefined };
  const transcript = () => undefined;
  const lookup = (() => undefined) as never;

  it("defaults", () => {
    const client = resolveSmtpConfig({}, "client");
    expect(client).toMatchObject({
      allowInsecureAuth: false,
      pipelining: true,
      chunking: false,
      chunkSize: 256 * 1024,
      signal: undefined,
      lookup: undefined,
      transcript: undefined,
      logger: undefined,
      logRecipients: "count",
      allow8bit: true,
      dsn: undefined,
      deadline: undefined,
      source: "client",
    });
    expect(client.clock).toBe(systemClock);
    expect(resolveSmtpConfig({}, "backend")).toMatchObject({ allow8bit: true, source: "backend" });
    expect(resolveSmtpConfig({}, "settings").source).toBe("settings");
  });

  it("carries each option given", () => {
    const signal = new AbortController().signal;
    const client = resolveSmtpConfig(
      { allowInsecureAuth: true, pipelining: false, chunking: true, chunkSize: 1, signal, lookup, transcript, clock, logger, logRecipients: "domain" },
      "client",
    );
    expect(client).toMatchObject({ allowInsecureAuth: true, pipelining: false, chunking: true, chunkSize: 1, logRecipients: "domain" });
    expect([client.signal, client.lookup, client.transcript, client.clock, client.logger]).toEqual([signal, lookup, transcript, clock, logger]);
    expect(resolveSmtpConfig({ chunkSize: Number.MAX_SAFE_INTEGER }, "client").chunkSize).toBe(Number.MAX_SAFE_INTEGER);
    const backend = resolveSmtpConfig({ allow8bit: false, deadline: 1, failSilently: true }, "backend");
    expect(backend).toMatchObject({ allow8bit: false, deadline: 1 });
    expect(resolveSmtpConfig({ deadline: MAX_TIMER_MS }, "backend").deadline).toBe(MAX_TIMER_MS);
  });

  it("refuses each wrong value, naming the option", () => {
    for (const bad of [0, 1.5, Number.MAX_SAFE_INTEGER + 1, "1024"]) expect(refusal({ chunkSize: bad }), String(bad)).toBe("chunkSize must be a positive integer");
    expect(refusal({ signal: { aborted: false } })).toBe("signal must be an AbortSignal");
    expect(refusal({ lookup: "8.8.8.8" })).toBe("lookup must be a function (Node's dns.lookup signature)");
    expect(refusal({ transcript: [] })).toBe("transcript must be a function");
    expect(refusal({ clock: { now: () => 0 } })).toBe("clock must be { now(), setTimeout(), clearTimeout() }");
    expect(refusal({ logger: { info() {} } })).toBe("logger must be a logger with trace, debug, info, warn and error methods; it has no trace, debug, warn, error");
    expect(refusal({ logRecipients: "all" })).toBe('logRecipients must be one of "count", "domain", "hash", "full"');
    expect(refusal({ failSilently: "no" }, "backend")).toBe("failSilently must be true or false");
    expect(refusal({ deadline: 0 }, "backend")).toBe(`deadline ${TIMEOUT_RANGE}`);
    expect(refusal({ deadline: MAX_TIMER_MS + 1 }, "backend")).toBe(`deadline ${TIMEOUT_RANGE}`);
    for (const key of ["allowInsecureAuth", "pipelining", "chunking"]) expect(refusal({ [key]: "true" })).toBe(`${key} must be true or false`);
    expect(refusal({ allow8bit: "true" }, "backend")).toBe("allow8bit must be true or false");
  });
});

describe("a resolved config", () => {
  it("is recognised only by its brand", () => {
    expect(isResolvedSmtpConfig(resolveSmtpConfig({}, "client"))).toBe(true);
    for (const value of [null, undefined, "config", 5, {}]) expect(isResolvedSmtpConfig(value)).toBe(false);
    // The brand is not enumerable: a copy, or the config serialized, carries none.
    const config = resolveSmtpConfig({}, "client");
    expect(Object.keys(config)).not.toContain("missive.smtp.resolvedConfig");
    expect(isResolvedSmtpConfig({ ...config })).toBe(false);
  });

  it("deriveSmtpConfig drops the credentials or swaps the transcript, and nothing else", () => {
    const original = resolveSmtpConfig({ host: "mail.example.com", auth: { user: "u", pass: "p" }, transcript: () => undefined }, "backend");
    const withoutCredentials = deriveSmtpConfig(original, { credentials: undefined });
    expect(withoutCredentials.credentials).toBeUndefined();
    expect(withoutCredentials.transcript).toBe(original.transcript);
    expect(withoutCredentials).toMatchObject({ host: "mail.example.com", port: original.port, tlsMode: original.tlsMode });
    expect(isResolvedSmtpConfig(withoutCredentials)).toBe(true);
    expect(Object.isFrozen(withoutCredentials)).toBe(true);
    const hook = () => undefined;
    const withTranscript = deriveSmtpConfig(original, { transcript: hook });
    expect(withTranscript.transcript).toBe(hook);
    expect(withTranscript.credentials).toBe(original.credentials);
    expect(deriveSmtpConfig(original, { transcript: undefined }).transcript).toBeUndefined();
    expect(original.credentials?.user).toBe("u");
  });
});

describe("greetingTimeoutHint", () => {
  it("says what each mode asked for, in the client's and the other layers' options", () => {
    expect(greetingTimeoutHint({ port: 2525, tlsMode: "none", source: "client" })).toBe(
      'no greeting came on port 2525 (plaintext was asked for); if this port expects TLS from the first byte, set tls: "implicit" (or useSsl: true)',
    );
    expect(greetingTimeoutHint({ port: 587, tlsMode: "starttls", source: "settings" })).toBe(
      'no greeting came on port 587 (STARTTLS was asked for); if this port expects TLS from the first byte, set tls: "implicit" (or useSsl: true; smtps:// in EMAIL_URL)',
    );
    expect(greetingTimeoutHint({ port: 25, tlsMode: "opportunistic", source: "backend" })).toBe(
      'no greeting came on port 25 (STARTTLS if offered was asked for); if this port expects TLS from the first byte, set tls: "implicit" (or useSsl: true; smtps:// in EMAIL_URL)',
    );
    expect(greetingTimeoutHint({ port: 465, tlsMode: "none", source: "client" })).toBe(
      'port 465 speaks implicit TLS (RFC 8314): the server is waiting for a TLS handshake, not sending a greeting; set tls: "implicit" (or useSsl: true)',
    );
    expect(greetingTimeoutHint({ port: 2465, tlsMode: "implicit", source: "backend" })).toBeUndefined();
  });
});

describe("the setting a ConfigurationError names", () => {
  const logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
  // [settings, the setting named, the message without the path]
  const cases: [object, string, string][] = [
    [{ port: 0 }, "port", "port must be an integer from 1 to 65535, got 0"],
    [{ authMethod: "NTLM" }, "authMethod", 'authMethod must be one of PLAIN, LOGIN, CRAM-MD5, XOAUTH2, got "NTLM"'],
    [{ username: "u", password: "p", authMethod: "XOAUTH2" }, "authMethod", "authMethod XOAUTH2 does not fit the credentials given (a password)"],
    [{ signal: "stop" }, "signal", "signal must be an AbortSignal"],
    [{ transcript: "log" }, "transcript", "transcript must be a function"],
    [{ clock: Date }, "clock", "clock must be { now(), setTimeout(), clearTimeout() }"],
    [{ logger: { ...logger, child: 5 } }, "logger", "logger has child that is not a function"],
    [{ timeouts: "slow" }, "timeouts", 'timeouts must be an object of per-phase milliseconds or "rfc5321", got "slow"'],
    [{ timeouts: { total: 5 } }, "timeouts", 'Unknown timeout "total" in backends.bulk.timeouts; known: connect, greeting, command, dataStart, data, finalDot'],
    [{ pool: "yes" }, "pool", "pool must be true, false or { maxConnections, maxMessagesPerConnection, idleTimeout }"],
    [{ pool: { size: 2 } }, "pool", 'Unknown pool option "size" in backends.bulk.pool; known: maxConnections, maxMessagesPerConnection, idleTimeout'],
    [{ pool: { maxMessagesPerConnection: 0 } }, "pool", "pool.maxMessagesPerConnection must be a positive integer"],
    [{ pool: { idleTimeout: 0 } }, "pool", `pool.idleTimeout ${TIMEOUT_RANGE}`],
    [{ dsn: { envid: 5 } }, "dsn", "dsn.envid must be a string"],
    [{ dsn: { notify: ["NEVER", "SOMETIMES"] } }, "dsn", "dsn.notify must list NEVER, or SUCCESS, FAILURE and DELAY"],
    [{ dsn: { orcpt: 1 } }, "dsn", "dsn.orcpt must be true or false"],
    [{ dsn: { optional: "no" } }, "dsn", "dsn.optional must be true or false"],
    [{ deadline: 0 }, "deadline", `deadline ${TIMEOUT_RANGE}`],
    [{ logRecipients: "some" }, "logRecipients", 'logRecipients must be one of "count", "domain", "hash", "full"'],
    [{ localName: "my_host" }, "localName", 'localName "my_host" is not a valid EHLO name: use a domain name (letters, digits, hyphens, dots) or an address literal such as [192.0.2.1]'],
    [{ host: "" }, "host", "host must be a non-empty host name"],
    [{ tls: "tls" }, "tls", 'tls must be "implicit", "starttls", "opportunistic" or "none", got "tls"'],
    [{ allow8bit: 1 }, "allow8bit", "allow8bit must be true or false"],
  ];

  it.each(cases)("%o: the setting %s", (input, setting, message) => {
    const bare = settingsRefusal(input);
    expect(bare.setting).toBe(setting);
    const atPath = settingsRefusal(input, "backends.bulk");
    expect(atPath.setting).toBe(`backends.bulk.${setting}`);
    // The message names the option with its path (the setting's own name comes first).
    expect(atPath.message).toBe(message.startsWith("Unknown") ? message : `backends.bulk.${message}`);
  });
});
