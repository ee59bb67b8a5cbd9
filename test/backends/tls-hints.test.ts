/**
 * A certificate that is not trusted: every layer's error names the option that fixes it in
 * that layer, and the option named really is that layer's (one vocabulary: tlsOptions.ca).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { SmtpTlsError } from "../../src/errors.js";
import { configure, resetSettings } from "../../src/settings.js";
import { getConnection } from "../../src/api.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { rejection } from "../helpers/errors.js";
import { fixedMessage } from "./helpers.js";

isolateEmailEnvironment();
let server: AiosmtpdServer;
let certs: TestCerts;
beforeAll(async () => {
  certs = await makeTestCerts();
  server = await startAiosmtpd({ tls: "starttls" });
});
afterAll(async () => {
  await server?.stop();
  resetSettings();
});

const HINT = "pass the CA as tlsOptions.ca";

describe("an untrusted certificate", () => {
  it("SmtpClient, SmtpBackend and a configured connection: the hint names tlsOptions.ca, which each of them takes", async () => {
    const base = { host: "localhost", port: server.port, tls: "starttls", timeout: 10_000 } as const;
    const client = (await rejection(new SmtpClient({ ...base, localName: "client.test" }).connect())) as SmtpTlsError;
    const backend = (await rejection(new SmtpBackend(base).sendMessages([fixedMessage()]))) as SmtpTlsError;
    configure({ backends: { relay: { backend: "smtp", ...base } } });
    const named = (await rejection(getConnection("relay").sendMessages([fixedMessage()]))) as SmtpTlsError;
    for (const error of [client, backend, named]) {
      expect(error).toBeInstanceOf(SmtpTlsError);
      expect(error.message).toContain(HINT);
    }
    // What the hint says works in each layer.
    const ok = new SmtpClient({ ...base, localName: "client.test", tlsOptions: { ca: certs.ca } });
    await ok.connect();
    await ok.quit();
    expect(await new SmtpBackend({ ...base, tlsOptions: { ca: certs.ca } }).sendMessages([fixedMessage()])).toBe(1);
    configure({ backends: { relay: { backend: "smtp", ...base, tlsOptions: { ca: certs.ca } } } });
    expect(await getConnection("relay").sendMessages([fixedMessage()])).toBe(1);
  });
});
