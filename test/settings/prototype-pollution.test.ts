/**
 * Prototype pollution cannot change where mail goes or how it is protected: settings and
 * options are read from own properties only and stored in null-prototype objects,
 * `__proto__` / `constructor` / `prototype` keys are refused, and security options have
 * explicit defaults that an inherited property cannot replace.
 *
 * Tests that pollute `Object.prototype` remove what they added in `finally`.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigurationError, InvalidArgumentError, SmtpAuthError, SmtpTlsError } from "../../src/errors.js";
import { configure, getSettings, resetSettings } from "../../src/settings.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { SmtpPool } from "../../src/smtp/pool.js";
import { Credentials } from "../../src/smtp/auth.js";
import { startFakeServer } from "../helpers/fake-smtp-server.js";
import { makeTestCerts } from "../helpers/certs.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { rejection } from "../helpers/errors.js";

isolateEmailEnvironment();
afterEach(() => resetSettings());

/** Adds `values` to Object.prototype while `body` runs, then removes them. */
async function withPollutedPrototype<T>(values: Record<string, unknown>, body: () => T | Promise<T>): Promise<T> {
  const proto = Object.prototype as Record<string, unknown>;
  const added = Object.keys(values).filter((k) => !Object.prototype.hasOwnProperty.call(proto, k));
  for (const k of added) Object.defineProperty(proto, k, { value: values[k], configurable: true, writable: true, enumerable: false });
  try {
    return await body();
  } finally {
    for (const k of added) delete proto[k];
  }
}

describe("configure() with __proto__, constructor or prototype keys", () => {
  it("refuses JSON.parse('{\"useSsl\": true, \"__proto__\": {\"port\": 1}}') and changes nothing", () => {
    configure({ host: "mail.example.com" });
    const input = JSON.parse('{"useSsl": true, "__proto__": {"port": 1}}');
    const error = (() => {
      try {
        configure(input);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).setting).toBe("__proto__");
    expect(getSettings().useSsl).toBe(false);
    // The implicit-TLS backend still gets 465 when useSsl is set properly.
    configure({ useSsl: true });
    expect(new SmtpBackend().port).toBe(465);
  });

  it.each([
    ['{"constructor": {"prototype": {"port": 1}}}', "constructor"],
    ['{"tls": {"__proto__": {"rejectUnauthorized": false}}}', "tls"],
    ['{"backends": {"bulk": {"backend": "smtp", "__proto__": {"port": 1}}}}', "backends.bulk.__proto__"],
    ['{"backends": {"__proto__": {"backend": "smtp"}}}', "backends.__proto__"],
    ['{"backends": {"bulk": {"backend": "smtp", "pool": {"prototype": 1}}}}', "backends.bulk.pool"],
  ])("refuses %s naming %s", (json, setting) => {
    let error: unknown;
    try {
      configure(JSON.parse(json));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).setting).toBe(setting);
  });

  it("stores settings in null-prototype objects", () => {
    configure({ tlsOptions: { rejectUnauthorized: true }, backends: { bulk: { backend: "smtp", host: "bulk.example.com" } } });
    const s = getSettings();
    expect(Object.getPrototypeOf(s)).toBeNull();
    expect(Object.getPrototypeOf(s.tlsOptions)).toBeNull();
    expect(Object.getPrototypeOf(s.backends)).toBeNull();
    expect(Object.getPrototypeOf(s.backends["bulk"])).toBeNull();
  });
});

describe("backend and client options with __proto__ keys", () => {
  it("are refused", () => {
    expect(() => new SmtpBackend(JSON.parse('{"host": "mail.example.com", "__proto__": {"tlsMode": "none"}}'))).toThrow(InvalidArgumentError);
    expect(() => new SmtpBackend(JSON.parse('{"host": "mail.example.com", "tlsOptions": {"__proto__": {"rejectUnauthorized": false}}}'))).toThrow(/tlsOptions\.__proto__ is refused/);
    expect(() => new SmtpClient(JSON.parse('{"host": "mail.example.com", "__proto__": {"tls": "none"}}'))).toThrow(InvalidArgumentError);
    expect(() => new SmtpPool(JSON.parse('{"host": "mail.example.com", "constructor": 1}'))).toThrow(InvalidArgumentError);
  });
});

describe("a polluted Object.prototype", () => {
  it("does not switch TLS off or change the port", async () => {
    await withPollutedPrototype({ tlsMode: "none", tls: "none", useSsl: false, useTls: false, port: 26 }, () => {
      const client = new SmtpClient({ host: "mail.example.com" });
      expect([client.tlsMode, client.port]).toEqual(["starttls", 587]);
      const backend = new SmtpBackend({ host: "mail.example.com" });
      expect(backend.port).toBe(25);
      expect(backend.createClient().tlsMode).toBe("starttls");
      configure({ host: "mail.example.com", useSsl: true });
      expect(new SmtpBackend().port).toBe(465);
      expect(new SmtpBackend().createClient().tlsMode).toBe("implicit");
    });
  });

  it("an inherited pass is never taken for a secret, and an inherited failSilently hides nothing", async () => {
    await withPollutedPrototype({ pass: "planted", failSilently: true, pool: true }, () => {
      expect(new Credentials({ user: "u", accessToken: "tok" }).kind).toBe("token");
      const backend = new SmtpBackend({ host: "mail.example.com" });
      expect(backend.failSilently).toBe(false);
      expect(backend.pool).toBeUndefined();
    });
  });

  it("rejectUnauthorized = false does not switch certificate verification off", async () => {
    const certs = await makeTestCerts();
    // The server's certificate is issued by the test CA, which this client does not trust.
    const server = await startFakeServer({ tls: "implicit", key: certs.server.key, cert: certs.server.cert });
    try {
      const error = await withPollutedPrototype({ rejectUnauthorized: false }, () =>
        rejection(new SmtpClient({ host: "localhost", port: server.port, tls: "implicit", timeout: 5000 }).connect()),
      );
      expect(error).toBeInstanceOf(SmtpTlsError);
      const backendError = await withPollutedPrototype({ rejectUnauthorized: false }, () =>
        rejection(new SmtpBackend({ host: "localhost", port: server.port, useSsl: true, timeout: 5000 }).open()),
      );
      expect(backendError).toBeInstanceOf(SmtpTlsError);
    } finally {
      await server.close();
    }
  });

  it("allowInsecureAuth = true does not send credentials in plaintext to a remote host", async () => {
    const server = await startFakeServer({ ehlo: ["AUTH PLAIN LOGIN"] });
    const toLoopback: net.LookupFunction = (_hostname, options, callback) => {
      if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
      else callback(null, "127.0.0.1", 4);
    };
    try {
      const error = await withPollutedPrototype({ allowInsecureAuth: true }, () =>
        rejection(
          new SmtpClient({ host: "mail.example.test", lookup: toLoopback, port: server.port, tls: "none", auth: { user: "u", pass: "secret-pw" }, timeout: 5000 }).connect(),
        ),
      );
      expect(error).toBeInstanceOf(SmtpAuthError);
      expect(server.clientBytes().toString()).not.toContain(Buffer.from("\0u\0secret-pw").toString("base64"));
    } finally {
      await server.close();
    }
  });
});
