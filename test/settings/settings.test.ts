import { inspect } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { getMessageDefaults } from "../../src/mime/defaults.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { BaseEmailBackend } from "../../src/backends/base.js";
import { registerBackend, unregisterBackend } from "../../src/backends/registry.js";
import {
  backendFromUrl,
  configure,
  DEFAULT_SETTINGS,
  ENVIRONMENT_VARIABLES,
  getSettings,
  resetSettings,
  settingsFromEnvironment,
  type SettingsInput,
} from "../../src/settings.js";

const saved = new Map<string, string | undefined>();
beforeEach(() => {
  for (const name of ENVIRONMENT_VARIABLES) {
    saved.set(name, process.env[name]);
    delete process.env[name];
  }
  resetSettings();
});
afterEach(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  resetSettings();
});

function configError(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error("expected a ConfigurationError");
}

describe("defaults (pinned: a changed default must fail here)", () => {
  it("follow Django", () => {
    const s = getSettings();
    expect(s.backend).toBe("smtp");
    expect(s.host).toBe("localhost");
    expect(s.port).toBe(25);
    expect(s.username).toBeUndefined();
    expect(s.password).toBeUndefined();
    expect(s.useTls).toBe(false);
    expect(s.useSsl).toBe(false);
    expect(s.timeout).toBeUndefined();
    expect(s.defaultFrom).toBe("webmaster@localhost");
    expect(s.serverEmail).toBe("root@localhost");
    expect(s.admins).toEqual([]);
    expect(s.managers).toEqual([]);
    expect(s.subjectPrefix).toBe("[missive] ");
    expect(s.defaultCharset).toBe("utf-8");
    expect(s.messageIdDomain).toBeUndefined();
    expect(s.filePath).toBeUndefined();
    expect(s.backends).toEqual({});
    expect(s.dkim).toBeUndefined();
    expect(s.logger).toBeUndefined();
    expect(s.logRecipients).toBe("count");
    expect(DEFAULT_SETTINGS.port).toBe(25);
  });

  it("are frozen copies", () => {
    const s = getSettings();
    expect(Object.isFrozen(s)).toBe(true);
    expect(() => {
      (s as { host: string }).host = "evil";
    }).toThrow(TypeError);
    expect(Object.isFrozen(s.admins)).toBe(true);
  });
});

describe("configure", () => {
  it("merges into the current settings", () => {
    configure({ host: "smtp.example.com" });
    configure({ port: 587, useTls: true });
    const s = getSettings();
    expect(s.host).toBe("smtp.example.com");
    expect(s.port).toBe(587);
    expect(s.useTls).toBe(true);
  });

  it("returns to the default for a key given as undefined", () => {
    configure({ host: "smtp.example.com" });
    configure({ host: undefined });
    expect(getSettings().host).toBe("localhost");
  });

  it("resetSettings forgets configure()", () => {
    configure({ host: "smtp.example.com", subjectPrefix: "" });
    resetSettings();
    expect(getSettings().host).toBe("localhost");
    expect(getSettings().subjectPrefix).toBe("[missive] ");
  });

  it("leaves everything unchanged when a value is invalid", () => {
    configure({ host: "a.example" });
    configError(() => configure({ host: "b.example", port: 0 }));
    expect(getSettings().host).toBe("a.example");
    expect(getSettings().port).toBe(25);
  });

  const invalid: [string, SettingsInput][] = [
    ["port", { port: 0 }],
    ["port", { port: 70000 }],
    ["port", { port: 25.5 }],
    ["port", { port: "25" as unknown as number }],
    ["host", { host: "" }],
    ["host", { host: "mail host" }],
    ["host", { host: "mail\r\nhost" }],
    ["useTls", { useTls: "yes" as unknown as boolean }],
    ["useSsl", { useTls: true, useSsl: true }],
    ["tls", { tls: "always" as never }],
    ["tls", { useSsl: true, tls: "none" }],
    ["tlsMode", { tlsMode: "none" } as never],
    ["timeout", { timeout: 0 }],
    ["timeout", { timeout: -1 }],
    ["timeout", { timeout: Number.NaN }],
    ["timeout", { timeout: 0.5 }],
    ["timeout", { timeout: 2 ** 31 }],
    ["timeout", { timeout: Number.MAX_SAFE_INTEGER }],
    ["host", { host: "mail.example.com:587" }],
    ["host", { host: "[::1]:25" }],
    ["localName", { localName: "client.example:25" }],
    ["username", { username: "a\nb" }],
    ["password", { password: 5 as unknown as string }],
    ["defaultFrom", { defaultFrom: "not an address" }],
    ["defaultFrom", { defaultFrom: "a@example.com\r\nBcc: x@example.com" }],
    ["serverEmail", { serverEmail: "" }],
    ["admins[1]", { admins: ["a@example.com", "nope"] }],
    ["managers", { managers: 5 as unknown as string[] }],
    ["subjectPrefix", { subjectPrefix: "[x]\n" }],
    ["defaultCharset", { defaultCharset: "utf 8" }],
    ["backend", { backend: "carrier-pigeon" }],
    ["backend", { backend: "" }],
    ["tls", { tls: "yes" as never }],
    ["tlsOptions", { tlsOptions: { rejectUnauthorized: "false" as never } }],
    ["tlsOptions", { tlsOptions: { passphrase: "x" } as never }],
    ["tls", { tls: { ca: "x" } as never }],
    ["filePath", { filePath: "" }],
    ["localName", { localName: "my host" }],
    ["backends", { backends: [] as never }],
    ["backends.bulk", { backends: { bulk: 5 as never } }],
    ["backends.bulk.backend", { backends: { bulk: { backend: "carrier-pigeon" } } }],
    ["backends.bulk", { backends: { bulk: "gopher://x" } }],
    ["backends.smtp", { backends: { smtp: "smtp://x" } }],
    ["hots", { hots: "x" } as never],
  ];
  it.each(invalid)("rejects a bad %s", (setting, input) => {
    const err = configError(() => configure(input));
    expect(err.setting).toBe(setting);
    expect(err.code).toBe("ECONFIG");
  });

  it("accepts admins and managers as lists", () => {
    configure({ admins: ["Ann <ann@example.com>", "bob@example.com"], managers: ["Carl <carl@example.com>", "dora@example.com"] });
    expect(getSettings().admins).toEqual(["Ann <ann@example.com>", "bob@example.com"]);
    expect(getSettings().managers).toEqual(["Carl <carl@example.com>", "dora@example.com"]);
  });

  it.each(["admins", "managers"] as const)("refuses %s as a bare string (Django requires a list; one string is easily a typo for a list of one)", (setting) => {
    const err = configError(() => configure({ [setting]: "a@example.com" } as never));
    expect(err.setting).toBe(setting);
    expect(err.message).toBe(`${setting} must be a list of addresses, not one string: write ["a@example.com"] ("Name <addr>" allowed in each)`);
    expect(getSettings()[setting]).toEqual([]);
  });

  it("keeps named connections, parsing URLs", () => {
    configure({
      backends: {
        transactional: { backend: "smtp", host: "tx.example.com", port: 2525 },
        bulk: "smtp://user:p%40ss@bulk.example.com:587?tls=starttls",
        archive: "file:///var/mail/archive",
      },
    });
    const b = getSettings().backends;
    expect(b["transactional"]).toEqual({ backend: "smtp", host: "tx.example.com", port: 2525 });
    expect(b["bulk"]).toEqual({ backend: "smtp", host: "bulk.example.com", port: 587, username: "user", password: "p@ss", useTls: true });
    expect(b["archive"]).toEqual({ backend: "file", filePath: "/var/mail/archive" });
  });

  it("pushes message defaults to the message model", () => {
    configure({ defaultFrom: "App <app@example.org>", defaultCharset: "ISO-8859-1", messageIdDomain: "ids.example.org" });
    const d = getMessageDefaults();
    expect(d.from).toBe("App <app@example.org>");
    expect(d.charset).toBe("iso-8859-1");
    expect(d.messageIdDomain).toBe("ids.example.org");
    resetSettings();
    expect(getMessageDefaults().from).toBe("webmaster@localhost");
    expect(getMessageDefaults().messageIdDomain).toBeUndefined();
  });
});

describe("secrets", () => {
  it("never show in util.inspect, JSON or errors", () => {
    configure({
      username: "alice",
      password: "hunter2-secret",
      tlsOptions: { key: "-----BEGIN PRIVATE KEY----- tls-secret", rejectUnauthorized: true },
      backends: { bulk: "smtp://bob:url-secret@bulk.example.com" },
    });
    const s = getSettings();
    expect(s.password).toBe("hunter2-secret");
    const shown = inspect(s, { depth: 10 }) + JSON.stringify(s) + inspect(s.backends, { depth: 10 }) + JSON.stringify(s.backends["bulk"]);
    for (const secret of ["hunter2-secret", "tls-secret", "url-secret"]) expect(shown).not.toContain(secret);
    expect(shown).toContain("alice");
    expect(shown).toContain("<redacted>");
  });

  it("a custom backend's named connection shows only its backend; built-ins hide key/pass/secret/token/credential/auth", () => {
    class Carrier extends BaseEmailBackend {
      async sendMessages(): Promise<number> {
        return 0;
      }
    }
    registerBackend("carrier-test", Carrier);
    try {
      configure({
        backends: {
          custom: { backend: "carrier-test", endpoint: "https://user:endpoint-secret@api.example", region: "region-secret" },
          byClass: { backend: Carrier, dsn: "dsn-secret" },
          builtin: {
            backend: "console",
            apiKey: "apikey-secret",
            clientSecret: "client-secret",
            accessToken: "token-secret",
            credentials: "cred-secret",
            auth: { user: "u", pass: "auth-secret" },
            oauth: "oauth-secret",
            visible: "plain-value",
          },
        },
      });
      const s = getSettings();
      for (const shown of [inspect(s, { depth: 20 }), JSON.stringify(s), inspect(s.backends, { depth: 20 }), JSON.stringify(s.backends)]) {
        for (const secret of ["endpoint-secret", "region-secret", "dsn-secret", "apikey-secret", "client-secret", "token-secret", "cred-secret", "auth-secret", "oauth-secret"]) {
          expect(shown).not.toContain(secret);
        }
        expect(shown).toContain("carrier-test");
        expect(shown).toContain("plain-value");
      }
      expect(JSON.parse(JSON.stringify(s.backends["custom"]))).toEqual({ backend: "carrier-test", endpoint: "<redacted>", region: "<redacted>" });
    } finally {
      unregisterBackend("carrier-test");
    }
  });

  it("past the depth limit prints [Object], never the raw value", () => {
    const deep = { a: { b: { c: { d: { e: { f: { g: "deep-value" } } } } } } };
    configure({ backends: { nested: { backend: "console", deep } } });
    const s = getSettings();
    for (const shown of [inspect(s, { depth: null }), JSON.stringify(s), inspect(s.backends["nested"], { depth: null }), JSON.stringify(s.backends["nested"])]) {
      expect(shown).not.toContain("deep-value");
      expect(shown).toContain("[Object]");
    }
  });

  it("an invalid EMAIL_URL is not echoed (it may hold a password)", () => {
    const err = configError(() => settingsFromEnvironment({ EMAIL_URL: "smtp://u:sekrit@host:99999" }));
    expect(err.message).not.toContain("sekrit");
    expect(err.setting).toBe("EMAIL_URL");
  });
});

describe("EMAIL_URL", () => {
  const cases: [string, Record<string, unknown>][] = [
    ["smtp://user:pass@mail.example.com:587?tls=starttls", { backend: "smtp", host: "mail.example.com", port: 587, username: "user", password: "pass", useTls: true }],
    ["smtp://mail.example.com", { backend: "smtp", host: "mail.example.com" }],
    ["smtps://mail.example.com", { backend: "smtp", host: "mail.example.com", useSsl: true }],
    ["smtps://mail.example.com:2465", { backend: "smtp", host: "mail.example.com", port: 2465, useSsl: true }],
    ["smtp://mail.example.com?tls=implicit", { backend: "smtp", host: "mail.example.com", useSsl: true }],
    ["smtp://mail.example.com:2525?tls=none", { backend: "smtp", host: "mail.example.com", port: 2525, tls: "none" }],
    ["smtp://mail.example.com?tls=opportunistic", { backend: "smtp", host: "mail.example.com", tls: "opportunistic" }],
    ["submission://mail.example.com", { backend: "smtp", host: "mail.example.com", port: 587, useTls: true }],
    ["smtp://us%40er:p%3Ass%2Fw%25rd@h.example?timeout=2.5", { backend: "smtp", host: "h.example", username: "us@er", password: "p:ss/w%rd", timeout: 2500 }],
    ["smtp://[::1]:2525", { backend: "smtp", host: "::1", port: 2525 }],
    ["smtp://h.example?local_name=client.example", { backend: "smtp", host: "h.example", localName: "client.example" }],
    ["console:", { backend: "console" }],
    ["console://", { backend: "console" }],
    ["memory:", { backend: "memory" }],
    ["dummy:", { backend: "dummy" }],
    ["file:///var/spool/mail%20out", { backend: "file", filePath: "/var/spool/mail out" }],
  ];
  it.each(cases)("%s", (url, expected) => {
    expect({ ...backendFromUrl(url) }).toEqual(expected);
  });

  const bad = [
    "not a url",
    "gopher://x",
    "smtp://",
    "smtp://h.example:0",
    "smtp://h.example/path",
    "smtp://h.example?tls=sometimes",
    "smtps://h.example?tls=starttls",
    "smtp://h.example?timeout=0",
    "smtp://h.example?timeout=soon",
    "smtp://h.example?timeout=0.0001",
    "smtp://h.example?timeout=3000000",
    "smtp://h.example?local_name=client.example:25",
    "smtp://h.example?tls=none&tls=none",
    "smtp://h.example?bogus=1",
    "file://",
    "file:///",
    "file://remote.example/dir",
    "console://host",
  ];
  it.each(bad)("rejects %s naming EMAIL_URL", (url) => {
    const err = configError(() => settingsFromEnvironment({ EMAIL_URL: url }));
    expect(err.setting).toBe("EMAIL_URL");
  });
});

describe("timeouts and host names that would only fail later", () => {
  it("accepts the largest timer delay and IPv6 literals", () => {
    expect(configure({ timeout: 2 ** 31 - 1 }).timeout).toBe(2 ** 31 - 1);
    expect(configure({ host: "::1", localName: "[IPv6:2001:db8::1]" }).host).toBe("::1");
    expect(settingsFromEnvironment({ EMAIL_TIMEOUT: "2147483" }).timeout).toBe(2_147_483_000);
    expect(settingsFromEnvironment({ EMAIL_TIMEOUT: "0.001" }).timeout).toBe(1);
    expect(settingsFromEnvironment({ EMAIL_URL: "smtp://[2001:db8::1]:2525" }).host).toBe("2001:db8::1");
  });

  it("EMAIL_URL without a port leaves port unset, so implicit TLS set later still gets 465", () => {
    expect("port" in settingsFromEnvironment({ EMAIL_URL: "smtp://mail.example.com" })).toBe(false);
    expect(settingsFromEnvironment({ EMAIL_URL: "smtp://mail.example.com:2525" }).port).toBe(2525);
    Object.assign(process.env, { EMAIL_URL: "smtp://mail.example.com", EMAIL_USE_SSL: "true" });
    resetSettings();
    expect(new SmtpBackend().port).toBe(465);
    configure({ useSsl: false, useTls: true });
    expect(new SmtpBackend().port).toBe(25);
  });
});

describe("environment", () => {
  const table: [Record<string, string>, Partial<Record<string, unknown>>][] = [
    [{ EMAIL_HOST: "mail.example.com" }, { host: "mail.example.com" }],
    [{ EMAIL_PORT: "2525" }, { port: 2525 }],
    [{ EMAIL_HOST_USER: "alice" }, { username: "alice" }],
    [{ EMAIL_HOST_PASSWORD: "s3cret" }, { password: "s3cret" }],
    [{ EMAIL_USE_TLS: "true" }, { useTls: true }],
    [{ EMAIL_USE_TLS: "1" }, { useTls: true }],
    [{ EMAIL_USE_TLS: "False" }, { useTls: false }],
    [{ EMAIL_USE_SSL: "yes" }, { useSsl: true }],
    [{ EMAIL_USE_SSL: "off" }, { useSsl: false }],
    [{ EMAIL_TIMEOUT: "10" }, { timeout: 10_000 }],
    [{ EMAIL_TIMEOUT: "0.5" }, { timeout: 500 }],
    [{ EMAIL_SSL_KEYFILE: "/k.pem", EMAIL_SSL_CERTFILE: "/c.pem" }, { sslKeyfile: "/k.pem", sslCertfile: "/c.pem" }],
    [{ EMAIL_FILE_PATH: "/tmp/mail" }, { filePath: "/tmp/mail" }],
    [{ EMAIL_BACKEND: "console" }, { backend: "console" }],
    [{ EMAIL_BACKEND: "django.core.mail.backends.locmem.EmailBackend" }, { backend: "memory" }],
    [{ EMAIL_SUBJECT_PREFIX: "[app] " }, { subjectPrefix: "[app] " }],
    [{ DEFAULT_FROM_EMAIL: "App <app@example.com>" }, { defaultFrom: "App <app@example.com>" }],
    [{ SERVER_EMAIL: "errors@example.com" }, { serverEmail: "errors@example.com" }],
    [{ EMAIL_HOST: "" }, { host: "localhost" }],
    [{ EMAIL_URL: "smtp://u:p@url.example:587?tls=starttls", EMAIL_HOST: "override.example", EMAIL_HOST_PASSWORD: "fromenv" },
      { host: "override.example", port: 587, username: "u", password: "fromenv", useTls: true }],
    // No port in the URL: the port follows the TLS mode in effect (STARTTLS here: the default 25).
    [{ EMAIL_URL: "smtps://url.example", EMAIL_USE_TLS: "true" }, { useTls: true, useSsl: false, port: 25 }],
    [{ EMAIL_URL: "console:", EMAIL_BACKEND: "dummy" }, { backend: "dummy" }],
    [{ EMAIL_URL: "file:///srv/mail" }, { backend: "file", filePath: "/srv/mail" }],
  ];
  it.each(table)("%o", (env, expected) => {
    Object.assign(process.env, env);
    resetSettings();
    const s = getSettings();
    for (const [key, value] of Object.entries(expected)) expect(s[key as keyof typeof s], key).toEqual(value);
  });

  const bad: [Record<string, string>, string][] = [
    [{ EMAIL_PORT: "smtp" }, "EMAIL_PORT"],
    [{ EMAIL_PORT: "0" }, "EMAIL_PORT"],
    [{ EMAIL_PORT: "65536" }, "EMAIL_PORT"],
    [{ EMAIL_PORT: "25x" }, "EMAIL_PORT"],
    [{ EMAIL_HOST: "a b" }, "EMAIL_HOST"],
    [{ EMAIL_USE_TLS: "maybe" }, "EMAIL_USE_TLS"],
    [{ EMAIL_USE_SSL: "2" }, "EMAIL_USE_SSL"],
    [{ EMAIL_USE_TLS: "1", EMAIL_USE_SSL: "1" }, "EMAIL_USE_SSL"],
    [{ EMAIL_TIMEOUT: "-3" }, "EMAIL_TIMEOUT"],
    [{ EMAIL_TIMEOUT: "ten" }, "EMAIL_TIMEOUT"],
    [{ EMAIL_TIMEOUT: "0.0004" }, "EMAIL_TIMEOUT"],
    [{ EMAIL_TIMEOUT: "2147484" }, "EMAIL_TIMEOUT"],
    [{ EMAIL_TIMEOUT: "99999999999999999999" }, "EMAIL_TIMEOUT"],
    [{ EMAIL_HOST: "mail.example.com:587" }, "EMAIL_HOST"],
    [{ EMAIL_BACKEND: "not a name" }, "EMAIL_BACKEND"],
    [{ DEFAULT_FROM_EMAIL: "nobody" }, "DEFAULT_FROM_EMAIL"],
    [{ SERVER_EMAIL: "a@b.example, c@d.example" }, "SERVER_EMAIL"],
    [{ EMAIL_HOST_PASSWORD: "a\nb" }, "EMAIL_HOST_PASSWORD"],
    [{ EMAIL_SUBJECT_PREFIX: "x\r\n" }, "EMAIL_SUBJECT_PREFIX"],
    [{ EMAIL_URL: "ftp://x" }, "EMAIL_URL"],
  ];
  it.each(bad)("%o is rejected naming %s", (env, setting) => {
    Object.assign(process.env, env);
    resetSettings(); // does not throw: the next getSettings() reports it
    const err = configError(() => getSettings());
    expect(err.setting).toBe(setting);
  });

  it("configure() wins over the environment", () => {
    process.env["EMAIL_HOST"] = "env.example";
    process.env["EMAIL_PORT"] = "2525";
    resetSettings();
    configure({ host: "configured.example" });
    expect(getSettings().host).toBe("configured.example");
    expect(getSettings().port).toBe(2525);
    configure({ host: undefined });
    expect(getSettings().host).toBe("env.example");
  });

  it("DEFAULT_FROM_EMAIL reaches the message model", () => {
    process.env["DEFAULT_FROM_EMAIL"] = "env@example.net";
    resetSettings();
    expect(getMessageDefaults().from).toBe("env@example.net");
  });

  it("an environment backend name is resolved later (it may be registered after start-up)", () => {
    process.env["EMAIL_BACKEND"] = "custom-later";
    resetSettings();
    expect(getSettings().backend).toBe("custom-later");
  });
});

describe("dkim from the environment", () => {
  const keys = new URL("../../fixtures/dkim/keys/", import.meta.url).pathname;

  it("EMAIL_DKIM_* make the dkim setting (pairs of selectors and key files); configure() replaces it, undefined goes back to it", () => {
    process.env["EMAIL_DKIM_DOMAIN"] = "Example.COM";
    process.env["EMAIL_DKIM_SELECTOR"] = "rsa, ed";
    process.env["EMAIL_DKIM_PRIVATE_KEY_FILE"] = `${keys}test-rsa-2048.pem, ${keys}test-ed25519.pem`;
    resetSettings();
    const fromEnv = getSettings().dkim;
    expect(fromEnv && fromEnv.map((s) => [s.domain, s.selector, s.algorithm])).toEqual([
      ["example.com", "rsa", "rsa-sha256"],
      ["example.com", "ed", "ed25519-sha256"],
    ]);
    configure({ dkim: false });
    expect(getSettings().dkim).toBe(false);
    configure({ dkim: undefined });
    expect(getSettings().dkim).toEqual(fromEnv);
  });

  it("each mistake names the variable", () => {
    const env = (vars: Record<string, string>) => () => settingsFromEnvironment(vars);
    const file = `${keys}test-ed25519.pem`;
    expect(configError(env({ EMAIL_DKIM_SELECTOR: "s", EMAIL_DKIM_PRIVATE_KEY_FILE: file })).setting).toBe("EMAIL_DKIM_DOMAIN");
    expect(configError(env({ EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_PRIVATE_KEY_FILE: file })).setting).toBe("EMAIL_DKIM_SELECTOR");
    expect(configError(env({ EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_SELECTOR: "s" })).setting).toBe("EMAIL_DKIM_PRIVATE_KEY");
    expect(configError(env({ EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_SELECTOR: "s", EMAIL_DKIM_PRIVATE_KEY: "x", EMAIL_DKIM_PRIVATE_KEY_FILE: file })).setting).toBe("EMAIL_DKIM_PRIVATE_KEY");
    expect(configError(env({ EMAIL_DKIM_DOMAIN: "localhost", EMAIL_DKIM_SELECTOR: "s", EMAIL_DKIM_PRIVATE_KEY_FILE: file })).setting).toBe("EMAIL_DKIM_DOMAIN");
    expect(configError(env({ EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_SELECTOR: "s_1", EMAIL_DKIM_PRIVATE_KEY_FILE: file })).setting).toBe("EMAIL_DKIM_SELECTOR");
    const missing = configError(env({ EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_SELECTOR: "s", EMAIL_DKIM_PRIVATE_KEY_FILE: "/nonexistent/k.pem" }));
    expect([missing.setting, missing.message]).toEqual(["EMAIL_DKIM_PRIVATE_KEY_FILE", "EMAIL_DKIM_PRIVATE_KEY_FILE /nonexistent/k.pem: ENOENT"]);
    const notKey = configError(env({ EMAIL_DKIM_DOMAIN: "example.com", EMAIL_DKIM_SELECTOR: "s", EMAIL_DKIM_PRIVATE_KEY: "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----" }));
    expect(notKey.setting).toBe("EMAIL_DKIM_PRIVATE_KEY");
    expect(notKey.message).toMatch(/^EMAIL_DKIM_PRIVATE_KEY /);
  });
});
