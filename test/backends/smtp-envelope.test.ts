/**
 * The envelope as a real server (aiosmtpd) receives it: one RCPT per mailbox however the
 * domain is spelt, and a quoted local part quoted as RFC 5321 §4.1.2 writes it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { fixedMessage } from "./helpers.js";

isolateEmailEnvironment();

describe("the SMTP envelope, judged by aiosmtpd", () => {
  let server: AiosmtpdServer;
  beforeAll(async () => {
    server = await startAiosmtpd();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("sends one RCPT for dup@Example.COM, dup@example.com and dup@EXAMPLE.com, and quotes a local part with a space", async () => {
    const before = (await server.messages()).length;
    const message = fixedMessage({ from: '"ann smith"@example.com', to: ["dup@Example.COM", "dup@example.com", '"a b"@example.org'], cc: ["dup@EXAMPLE.com"], bcc: ["Dup@example.com"] });
    const sent = await new SmtpBackend({ host: server.host, port: server.port, timeout: 10_000 }).sendMessages([message]);
    expect(sent).toBe(1);
    const [stored] = (await server.waitForMessages(before + 1)).slice(before);
    expect(stored!.mailFrom).toBe('"ann smith"@example.com');
    expect(stored!.rcptTos).toEqual(["dup@Example.COM", '"a b"@example.org', "Dup@example.com"]);
  });
});
