/**
 * A message/rfc822 attachment given as 8-bit bytes keeps the message 8-bit (RFC 2046
 * §5.2.1 allows only 7bit, 8bit or binary there, so it cannot be re-encoded); to a server
 * without 8BITMIME the send fails before MAIL FROM, and the error says what can be done.
 */
import { afterEach, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { SmtpCapabilityError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { parseOneWithPython } from "../helpers/python-oracle.js";
import { fixedMessage } from "./helpers.js";

isolateEmailEnvironment();

let fake: FakeSmtpServer | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

describe("8-bit message/rfc822 to a server without 8BITMIME", () => {
  it("fails before MAIL FROM with advice that RFC 2046 allows, and the advice works", async () => {
    fake = await startFakeServer({ ehlo: ["SIZE 1000000"] });
    const backend = new SmtpBackend({ host: fake.host, port: fake.port, timeout: 5_000 });
    const bytes = fixedMessage().attach("fwd.eml", Buffer.from("Subject: inner\r\nFrom: x@example.org\r\n\r\nGrüße\r\n", "utf8"), "message/rfc822");
    const err = await backend.sendMessages([bytes]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpCapabilityError);
    const message = (err as Error).message;
    expect(message).toContain("does not offer 8BITMIME");
    expect(message).toContain("RFC 2046 §5.2.1");
    expect(message).toContain("EmailMessage");
    expect(message).not.toMatch(/encode it as 7-bit/);
    expect(fake.commands().some((c) => c.startsWith("MAIL"))).toBe(false);

    // What the error suggests: the inner message rebuilt as an EmailMessage goes out 7-bit.
    const inner = new EmailMessage({ subject: "inner", body: "Grüße", from: "x@example.org", to: ["y@example.org"] });
    expect(await backend.sendMessages([fixedMessage().attach(inner)])).toBe(1);
    const [sent] = fake.received;
    expect(sent!.data.every((byte) => byte < 0x80)).toBe(true);
    expect((await parseOneWithPython(sent!.data)).attachments[0]?.message?.textBodies.map((t) => t.trimEnd())).toEqual(["Grüße"]);
  });
});
