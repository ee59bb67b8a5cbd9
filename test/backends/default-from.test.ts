/**
 * Django's default From (webmaster@localhost) is kept, and when a server refuses it as the
 * sender, the error says to configure one instead of reading as a recipient problem.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { SmtpError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { configure, getSettings, resetSettings } from "../../src/settings.js";
import { startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { rejection } from "../helpers/errors.js";

isolateEmailEnvironment();
afterEach(() => {
  delete process.env["DEFAULT_FROM_EMAIL"];
  resetSettings();
});

const ADVICE = "; the sender webmaster@localhost is the default From (Django's), which servers usually refuse: set defaultFrom (configure({ defaultFrom: \"app@example.com\" })) or DEFAULT_FROM_EMAIL, or give the message a from";

let server: FakeSmtpServer;
beforeAll(async () => {
  // Refuses any sender at localhost, as a real relay does; accepts the rest.
  server = await startFakeServer({ onCommand: (cmd) => (cmd.verb === "MAIL" && /@localhost>/i.test(cmd.arg) ? "553 5.7.1 Sender address rejected: not a valid domain" : undefined) });
});
afterAll(async () => {
  await server?.close();
});

const backend = () => new SmtpBackend({ host: server.host, port: server.port, timeout: 5000 });
const message = (from?: string) => new EmailMessage({ subject: "s", body: "b", to: ["bob@example.com"], ...(from !== undefined ? { from } : {}) });

describe("a refused default sender", () => {
  it("keeps Django's default From", () => {
    expect(getSettings().defaultFrom).toBe("webmaster@localhost");
    expect(message().from).toBe("webmaster@localhost");
  });

  it("unconfigured: the error names defaultFrom and DEFAULT_FROM_EMAIL", async () => {
    const error = (await rejection(backend().sendMessages([message()]))) as SmtpError;
    expect(error).toBeInstanceOf(SmtpError);
    expect(error.stage).toBe("mail");
    expect(error.replyCode).toBe(553);
    expect(error.message.endsWith(ADVICE)).toBe(true);
    expect(error.message).toMatch(/refused/);
  });

  it("in the report too, when the batch carries on", async () => {
    const b = new SmtpBackend({ host: server.host, port: server.port, timeout: 5000, failSilently: true });
    const { reports } = await b.sendMessagesWithReport([message()]);
    expect(reports[0]!.status).toBe("failed");
    expect(reports[0]!.error!.message.endsWith(ADVICE)).toBe(true);
  });

  it.each([
    ["configured with configure()", () => configure({ defaultFrom: "webmaster@localhost" })],
    ["configured with DEFAULT_FROM_EMAIL", () => {
      process.env["DEFAULT_FROM_EMAIL"] = "webmaster@localhost";
      resetSettings();
    }],
  ])("%s (even to the same address): no advice, the choice was made", async (_name, setup) => {
    setup();
    const error = (await rejection(backend().sendMessages([message()]))) as SmtpError;
    expect(error.replyCode).toBe(553);
    expect(error.message).not.toContain("default From");
  });

  it("another refused sender gets no advice", async () => {
    const error = (await rejection(backend().sendMessages([message("root@localhost")]))) as SmtpError;
    expect(error.replyCode).toBe(553);
    expect(error.message).not.toContain("default From");
  });
});
