/**
 * A greeting that never comes is most often a port that expects TLS first: the error says
 * so and names the option to use, in the vocabulary of the layer the caller used.
 */
import { afterEach, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { classify } from "../../src/errors/classify.js";
import { SmtpTimeoutError } from "../../src/errors.js";
import { getConnection } from "../../src/api.js";
import { configure, resetSettings } from "../../src/settings.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { greetingTimeoutHint } from "../../src/smtp/config.js";
import { fixedMessage } from "../backends/helpers.js";
import { rejection } from "../helpers/errors.js";
import { startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";

const servers: FakeSmtpServer[] = [];
afterEach(async () => {
  resetSettings();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function silent(): Promise<FakeSmtpServer> {
  const server = await startFakeServer({ greeting: null });
  servers.push(server);
  return server;
}

describe("a greeting that never comes", () => {
  it("SmtpClient: a greeting timeout that names tls: \"implicit\", at the greeting stage, next-route", async () => {
    const server = await silent();
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", timeouts: { greeting: 100 } });
    const error = (await rejection(client.connect())) as SmtpTimeoutError;
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect(error.phase).toBe("greeting");
    expect(error.stage).toBe("greeting");
    expect(error.message).toBe(
      `SMTP greeting timed out after 100 ms (waiting for the reply to <greeting>): no greeting came on port ${server.port} (plaintext was asked for); if this port expects TLS from the first byte, set tls: "implicit" (or useSsl: true)`,
    );
    expect(error.message).not.toContain("tlsMode");
    expect(classify(error)).toBe("next-route");
  });

  it("SmtpBackend and configure(): the same option names, plus EMAIL_URL's smtps://", async () => {
    const server = await silent();
    const backend = new SmtpBackend({ host: "127.0.0.1", port: server.port, localName: "client.test", timeouts: { greeting: 100 } });
    const error = (await rejection(backend.sendMessages([fixedMessage()]))) as SmtpTimeoutError;
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect(error.message).toContain(`no greeting came on port ${server.port} (plaintext was asked for); if this port expects TLS from the first byte, set tls: "implicit" (or useSsl: true; smtps:// in EMAIL_URL)`);

    configure({ backends: { relay: { backend: "smtp", host: "127.0.0.1", port: server.port, useTls: true, timeouts: { greeting: 100 } } } });
    const viaSettings = (await rejection(getConnection("relay").sendMessages([fixedMessage()]))) as SmtpTimeoutError;
    expect(viaSettings.message).toContain("(STARTTLS was asked for); if this port expects TLS from the first byte, set tls: \"implicit\" (or useSsl: true; smtps:// in EMAIL_URL)");
  });

  it("names port 465 as the implicit-TLS port, and says nothing when implicit TLS was asked for", () => {
    expect(greetingTimeoutHint({ port: 465, tlsMode: "starttls", source: "backend" })).toBe(
      'port 465 speaks implicit TLS (RFC 8314): the server is waiting for a TLS handshake, not sending a greeting; set tls: "implicit" (or useSsl: true; smtps:// in EMAIL_URL)',
    );
    expect(greetingTimeoutHint({ port: 465, tlsMode: "none", source: "client" })).toMatch(/set tls: "implicit" \(or useSsl: true\)$/);
    expect(greetingTimeoutHint({ port: 465, tlsMode: "implicit", source: "client" })).toBeUndefined();
    expect(greetingTimeoutHint({ port: 2525, tlsMode: "opportunistic", source: "settings" })).toMatch(/\(STARTTLS if offered was asked for\)/);
  });
});
