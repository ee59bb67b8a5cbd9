/**
 * deliver() and deliverMany(): reports, never a throw for a delivery failure; and the
 * message fields sendMail now passes on (cc, bcc, replyTo, headers, attachments,
 * alternatives).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deliver, deliverMany, getConnection, sendMail } from "../../src/api.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { BadHeaderError, InvalidArgumentError, SmtpRecipientsRefusedError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { configure, resetSettings } from "../../src/settings.js";
import { outbox, setupTestMail } from "../../src/testing.js";
import { parseOneWithPython } from "../helpers/python-oracle.js";
import { recipientReplies, replyOn } from "../helpers/fake-smtp-server.js";
import { closeServers, fake, message, recorder, smtp } from "../delivery/helpers.js";

afterEach(async () => {
  resetSettings();
  await closeServers();
});

const fields = {
  subject: "Quarterly report",
  message: "See attached.",
  from: "Ann <ann@example.com>",
  to: ["bob@example.org"],
  cc: "Carol <carol@example.org>",
  bcc: ["audit@example.com"],
  replyTo: ["reports@example.com"],
  headers: { "X-Campaign": "q3" },
  attachments: [{ filename: "data.csv", content: "a,b\n1,2\n", mimetype: "text/csv" }],
  alternatives: [{ content: "<p>See attached.</p>", mimetype: "text/html" }],
};

describe("sendMail passes every message field on", () => {
  let restore: () => void;
  beforeEach(() => {
    restore = setupTestMail();
  });
  afterEach(() => restore());

  it("cc, bcc, replyTo, headers, attachments and alternatives reach the message", async () => {
    expect(await sendMail(fields)).toBe(1);
    const m = outbox[0]!;
    expect(m.recipients()).toEqual(["bob@example.org", "carol@example.org", "audit@example.com"]);
    const parsed = await parseOneWithPython(await m.asBytes());
    expect(parsed.headers).toContainEqual(["Cc", "Carol <carol@example.org>"]);
    expect(parsed.headers).toContainEqual(["Reply-To", "reports@example.com"]);
    expect(parsed.headers).toContainEqual(["X-Campaign", "q3"]);
    expect(parsed.bcc).toEqual([]);
    expect(parsed.htmlBodies.map((h) => h.trim())).toEqual(["<p>See attached.</p>"]);
    expect(parsed.attachments.map((a) => [a.filename, a.contentType])).toEqual([["data.csv", "text/csv"]]);
  });

  it("no recipient at all: 0 and nothing sent (Django), where deliver() says it is a mistake", async () => {
    expect(await sendMail({ subject: "s", message: "m", from: "a@example.com", to: [] })).toBe(0);
    expect(outbox).toHaveLength(0);
    await expect(deliver({ subject: "s", message: "m", from: "a@example.com", to: [] })).rejects.toThrow(InvalidArgumentError);
    await expect(deliver({ subject: "s", message: "m", from: "a@example.com", to: [] })).rejects.toThrow(/has no recipient/);
  });

  it("deliver(fields) builds the same message and reports it", async () => {
    const r = await deliver(fields);
    expect(r).toMatchObject({ status: "sent", accepted: ["bob@example.org", "carol@example.org", "audit@example.com"], rejected: [], deferred: [] });
    expect(r.messageId).toMatch(/^<.+@example\.com>$/);
    expect(outbox[0]!.headers["X-Campaign"]).toBe("q3");
  });

  it("a typo in deliver's options is refused", async () => {
    await expect(deliver(fields, { conection: undefined } as never)).rejects.toThrow(/Unknown deliver option "conection"/);
    expect(outbox).toHaveLength(0);
  });

  it("a bad header is a programming error: thrown, nothing sent", async () => {
    await expect(deliver({ ...fields, subject: "evil\r\nBcc: x@example.com" })).rejects.toBeInstanceOf(BadHeaderError);
    expect(outbox).toHaveLength(0);
  });
});

describe("deliver over SMTP", () => {
  it("a refused recipient is a report, never a throw; deliverMany never stops at the first failure", async () => {
    const server = await fake({ script: recipientReplies({ "nobody@example.org": "550 5.1.1 No such user" }) });
    const connection = smtp(server.port);
    const reports = await deliverMany([message(["a@example.org"]), message(["nobody@example.org"]), message(["b@example.org", "nobody@example.org"])], { connection });
    expect(reports.map((r) => r.status)).toEqual(["sent", "failed", "partial"]);
    expect(reports[1]!.error).toBeInstanceOf(SmtpRecipientsRefusedError);
    expect(reports[1]!.rejected).toEqual([{ address: "nobody@example.org", code: 550, enhancedCode: "5.1.1", text: "No such user" }]);
    expect(reports[2]!.accepted).toEqual(["b@example.org"]);
    expect(server.received).toHaveLength(2);
  });

  it("the same message keeps its Message-ID when delivered again (a receiver can recognise the resend)", async () => {
    const server = await fake();
    const m = new EmailMessage({ subject: "Once", body: "x", from: "a@example.com", to: ["b@example.org"] });
    const first = await deliver(m, { connection: smtp(server.port) });
    const second = await deliver(m, { connection: smtp(server.port) });
    expect(second.messageId).toBe(first.messageId);
  });

  it("retry: on a plain connection, the engine with that one route", async () => {
    const server = await fake({ script: replyOn("MAIL", "451 4.3.0 Busy", { conn: 1 }) });
    const observer = recorder();
    const r = await deliver(message(), { connection: smtp(server.port), retry: { attempts: 2, initialDelay: 0 }, observer });
    expect(r.status).toBe("sent");
    expect(r.attempts.map((a) => [a.route, a.status])).toEqual([
      ["default", "failed"],
      ["default", "sent"],
    ]);
    expect(observer.lines.at(-1)).toBe("outcome sent default delivered");
  });

  it("an aborted signal: a report saying so", async () => {
    const server = await fake();
    const controller = new AbortController();
    controller.abort();
    const r = await deliver(message(), { connection: smtp(server.port), signal: controller.signal });
    expect(r.status).toBe("failed");
    expect(r.error?.code).toBe("EABORTED");
  });

  it("the default connection from the settings, and the observer hears a plain backend's outcome", async () => {
    const server = await fake();
    configure({ host: "127.0.0.1", port: server.port, localName: "client.test" });
    const observer = recorder();
    const r = await deliver(message(), { observer });
    expect(r.status).toBe("sent");
    expect(observer.lines).toEqual(["outcome sent - -"]);
  });
});

describe("the memory backend reports as SMTP does", () => {
  it("the same message: the same status, Message-ID, recipients and shape", async () => {
    const server = await fake();
    const m = new EmailMessage({ subject: "Same", body: "x", from: "a@example.com", to: ["b@example.org", "Zoë <zoe@bücher.example>"], bcc: ["c@example.org"] });
    const viaSmtp = await deliver(m, { connection: new SmtpBackend({ host: "127.0.0.1", port: server.port, localName: "client.test" }) });
    const viaMemory = await deliver(m, { connection: getConnection("memory") });
    const shape = (r: typeof viaSmtp) => ({
      keys: Object.keys(r).sort(),
      status: r.status,
      messageId: r.messageId,
      accepted: r.accepted,
      rejected: r.rejected,
      deferred: r.deferred,
      route: r.route,
      attempts: r.attempts.map((a) => ({ keys: Object.keys(a).sort(), route: a.route, status: a.status, recipients: a.recipients, accepted: a.accepted, delayMs: a.delayMs })),
    });
    expect(shape(viaMemory)).toEqual(shape(viaSmtp));
    expect(viaSmtp.accepted).toEqual(["b@example.org", "zoe@xn--bcher-kva.example", "c@example.org"]);
  });
});
