/**
 * What the client hands Node's TLS layer (buildTlsOptions), which hosts count as loopback,
 * and the EHLO address literal: checked on the options themselves and on a real handshake
 * with the scripted server, which asks for and records a client certificate.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SmtpTlsError } from "../../src/errors.js";
import { resolveSmtpConfig } from "../../src/smtp/config.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { addressLiteral, buildTlsOptions, isLoopback } from "../../src/smtp/options.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { rejection } from "../helpers/errors.js";
import { startFakeServer } from "../helpers/fake-smtp-server.js";

let certs: TestCerts;
beforeAll(async () => {
  certs = await makeTestCerts();
});
afterAll(async () => {
  await certs.cleanup();
});

describe("isLoopback", () => {
  it.each(["localhost", "LOCALHOST", "localhost.", "mail.localhost", "127.0.0.1", "127.255.0.9", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "::FFFF:127.0.0.2", "[127.0.0.1]"])(
    "%s is loopback",
    (host) => expect(isLoopback(host)).toBe(true),
  );

  it.each(["example.org", "localhost.example.org", "xlocalhost", "10.0.0.1", "1.127.0.0", "128.0.0.1", "::2", "::ffff:10.0.0.1", "127.0.0.1.example.org", "::1[", "]::1", "a[::1]", "[::1]b"])(
    "%s is not",
    (host) => expect(isLoopback(host)).toBe(false),
  );
});

describe("addressLiteral", () => {
  it("brackets an IPv4 address, tags an IPv6 one, and drops a zone", () => {
    expect(addressLiteral("192.0.2.1")).toBe("[192.0.2.1]");
    expect(addressLiteral("::ffff:192.0.2.1")).toBe("[192.0.2.1]");
    expect(addressLiteral("2001:db8::1")).toBe("[IPv6:2001:db8::1]");
    expect(addressLiteral("::ffff:abcd")).toBe("[IPv6:::ffff:abcd]");
    expect(addressLiteral("fe80::1%eth0")).toBe("[IPv6:fe80::1]");
  });

  it("falls back to [127.0.0.1] when there is no usable address", () => {
    for (const address of [undefined, "", "not-an-address", "%eth0", "abcdefg1.2.3.4"]) expect(addressLiteral(address), String(address)).toBe("[127.0.0.1]");
  });
});

describe("buildTlsOptions", () => {
  // toStrictEqual: an option not given is absent, not `undefined`, so the result spread over
  // other TLS options (a caller's own CA list) never wipes one of them.
  it("verifies, asks for TLS 1.2, and sends the host as SNI by default", async () => {
    const options = await buildTlsOptions(resolveSmtpConfig({ host: "mail.example.com" }, "client"));
    expect({ ca: "caller's CA", cert: "caller's cert", key: "caller's key", ...options }).toMatchObject({ ca: "caller's CA", cert: "caller's cert", key: "caller's key" });
    expect(options).toStrictEqual({
      host: "mail.example.com",
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
      servername: "mail.example.com",
    });
  });

  it("sends no SNI for an IP address (RFC 6066 §3), unless a servername is given", async () => {
    for (const host of ["192.0.2.1", "2001:db8::1"]) {
      const options = await buildTlsOptions(resolveSmtpConfig({ host }, "client"));
      expect(options, host).toStrictEqual({ host, rejectUnauthorized: true, minVersion: "TLSv1.2" });
      expect(Object.keys(options)).not.toContain("servername");
    }
    const named = await buildTlsOptions(resolveSmtpConfig({ host: "192.0.2.1", tlsOptions: { servername: "relay.example.com" } }, "client"));
    expect(named.servername).toBe("relay.example.com");
  });

  it("passes each TLS option given, each to its own field", async () => {
    const options = await buildTlsOptions(
      resolveSmtpConfig({ host: "mail.example.com", tlsOptions: { ca: [certs.ca], cert: certs.client.cert, key: certs.client.key, rejectUnauthorized: false, minVersion: "TLSv1.3" } }, "client"),
    );
    expect(options).toStrictEqual({
      host: "mail.example.com",
      rejectUnauthorized: false,
      minVersion: "TLSv1.3",
      servername: "mail.example.com",
      ca: [certs.ca],
      cert: certs.client.cert,
      key: certs.client.key,
    });
  });

  it("reads the client certificate and key files, each into its own field; cert and key given inline win", async () => {
    const files = resolveSmtpConfig({ host: "mail.example.com", sslCertfile: certs.client.certPath, sslKeyfile: certs.client.keyPath }, "client");
    const options = await buildTlsOptions(files);
    expect(Buffer.isBuffer(options.cert)).toBe(true);
    expect(String(options.cert)).toBe(certs.client.cert);
    expect(String(options.key)).toBe(certs.client.key);
    const inline = await buildTlsOptions(
      resolveSmtpConfig({ host: "mail.example.com", sslCertfile: "/nonexistent/cert.pem", sslKeyfile: "/nonexistent/key.pem", tlsOptions: { cert: "CERT", key: "KEY" } }, "client"),
    );
    expect([inline.cert, inline.key]).toEqual(["CERT", "KEY"]);
  });

  it("a file that cannot be read is an SmtpTlsError naming the option and the path", async () => {
    const missing = join(certs.dir, "missing.pem");
    const certError = await rejection(buildTlsOptions(resolveSmtpConfig({ host: "mail.example.com", sslCertfile: missing, sslKeyfile: certs.client.keyPath }, "client")));
    expect(certError).toBeInstanceOf(SmtpTlsError);
    expect(certError.message).toBe(`Could not read sslCertfile ${JSON.stringify(missing)}: ENOENT: no such file or directory, open '${missing}'`);
    expect((certError.cause as NodeJS.ErrnoException).code).toBe("ENOENT");
    const keyError = await rejection(buildTlsOptions(resolveSmtpConfig({ host: "mail.example.com", sslCertfile: certs.client.certPath, sslKeyfile: missing }, "client")));
    expect(keyError.message).toMatch(/^Could not read sslKeyfile /);
  });
});

describe("against a TLS server", () => {
  it("presents the client certificate read from sslCertfile/sslKeyfile, and verifies the server by its IP address", async () => {
    const server = await startFakeServer({ tls: "implicit", key: certs.server.key, cert: certs.server.cert, requestCert: true, ca: certs.ca });
    try {
      const client = new SmtpClient({
        host: server.host,
        port: server.port,
        tls: "implicit",
        tlsOptions: { ca: certs.ca },
        sslCertfile: certs.client.certPath,
        sslKeyfile: certs.client.keyPath,
        localName: "client.test",
        timeout: 5000,
      });
      await client.connect();
      expect(client.tlsInfo?.authorized).toBe(true);
      await client.quit();
      const events = server.transcript.filter((e) => e.kind === "event").map((e) => e.text);
      expect(events).toContain("tls established TLSv1.3 client-cert CN=missive test client");
    } finally {
      await server.close();
    }
  });

  it("refuses a server certificate no trusted CA signed, and one for another name, by default", async () => {
    for (const pair of [certs.selfSigned, certs.wrongHost]) {
      const server = await startFakeServer({ tls: "implicit", key: pair.key, cert: pair.cert });
      try {
        const client = new SmtpClient({ host: "localhost", port: server.port, tls: "implicit", tlsOptions: { ca: certs.ca }, localName: "client.test", timeout: 5000 });
        expect(await rejection(client.connect())).toBeInstanceOf(SmtpTlsError);
      } finally {
        await server.close();
      }
    }
  });
});
