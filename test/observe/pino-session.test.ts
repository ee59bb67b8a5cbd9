/**
 * Real pino, real aiosmtpd: a STARTTLS + AUTH session (the test CA trusted, never
 * verification off) that sends two messages, one with a refused recipient and one whose
 * every recipient the server refuses. The JSON lines are parsed and the events, their
 * order, their keys and their connection ids asserted; no form of the password and no
 * byte of a body appears at any level.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { EmailMessage } from "../../src/mime/message.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { capturePino, ownKeys, passwordForms } from "./helpers.js";

const PASSWORD = "pw-Zq81vRk3Lm0x";
const BODY = "A body that must never reach a log: ticket 5521-aa";

let server: AiosmtpdServer;
let certs: TestCerts;
beforeAll(async () => {
  certs = await makeTestCerts();
  server = await startAiosmtpd({ tls: "starttls", requireStartTls: true, auth: { users: { app: PASSWORD } }, rejectRecipients: ["gone@example.org", "left@example.org"] });
});
afterAll(async () => {
  await server?.stop();
});

async function session(level: "info" | "debug" | "trace") {
  const capture = capturePino(level);
  const backend = new SmtpBackend({
    host: "localhost",
    port: server.port,
    useTls: true,
    tlsOptions: { ca: certs.ca },
    username: "app",
    password: PASSWORD,
    localName: "app.test",
    logger: capture.logger,
  });
  const partial = new EmailMessage({ subject: "Hello", body: BODY, from: "app@example.com", to: ["zoe@example.org", "gone@example.org"] });
  const refused = new EmailMessage({ subject: "Bye", body: BODY, from: "app@example.com", to: ["gone@example.org", "left@example.org"] });
  const { reports } = await backend.sendMessagesWithReport([partial, refused], { stopOnError: false });
  return { capture, reports };
}

describe("pino over a STARTTLS + AUTH session with aiosmtpd", () => {
  it("info: connect, TLS, AUTH, each message's outcome, close — in order, one connection id, stable keys", async () => {
    const { capture, reports } = await session("info");
    expect(reports.map((r) => r.status)).toEqual(["partial", "failed"]);
    const records = capture.records();
    expect(records.map((r) => r["event"])).toEqual(["smtp.connect", "smtp.tls", "smtp.auth", "message.partial", "message.failed", "smtp.close"]);
    expect(records.map((r) => r["level"])).toEqual([30, 30, 30, 40, 50, 30]);
    const [connect, tls, auth, partial, failed, close] = records as [Record<string, unknown>, ...Record<string, unknown>[]];
    const connectionId = connect["connectionId"];
    expect(connectionId).toMatch(/^c\d+$/);
    for (const r of records) expect(r["connectionId"]).toBe(connectionId);
    for (const r of [connect, tls, auth, close]) expect(r).toMatchObject({ host: "localhost", port: server.port });

    expect(ownKeys(connect)).toEqual(["connectionId", "durationMs", "event", "host", "localAddress", "port"]);
    expect(ownKeys(tls!)).toEqual(["authorized", "cipher", "connectionId", "durationMs", "event", "host", "port", "starttls", "tlsVersion"]);
    expect(tls).toMatchObject({ authorized: true, starttls: true, tlsVersion: expect.stringMatching(/^TLSv1\.[23]$/) });
    expect(ownKeys(auth!)).toEqual(["connectionId", "durationMs", "event", "host", "mechanism", "port"]);
    expect(["PLAIN", "LOGIN"]).toContain(auth!["mechanism"]);

    expect(ownKeys(partial!)).toEqual([
      "accepted", "backend", "connectionId", "deferred", "durationMs", "event", "host", "messageId", "port", "queueId", "recipients", "refused", "rejected", "replyCode", "tlsVersion",
    ]);
    expect(partial).toMatchObject({
      backend: "smtp",
      messageId: reports[0]!.messageId,
      recipients: 2,
      accepted: 1,
      rejected: 1,
      deferred: 0,
      replyCode: 250,
      refused: [{ replyCode: 550, count: 1 }],
      tlsVersion: tls!["tlsVersion"],
    });
    expect(ownKeys(failed!)).toEqual([
      "accepted", "backend", "connectionId", "deferred", "durationMs", "error", "errorCode", "event", "host", "messageId", "port", "recipients", "refused", "rejected", "replyCode", "stage",
      "tlsVersion",
    ]);
    expect(failed).toMatchObject({ messageId: reports[1]!.messageId, recipients: 2, accepted: 0, rejected: 2, deferred: 0, errorCode: "ERCPT_REFUSED", stage: "rcpt", refused: [{ replyCode: 550, count: 2 }] });
    // The error names each refused recipient; with logRecipients "count" the addresses are left out.
    expect(failed!["error"]).toMatch(/^The server refused every recipient \(\[address\]: 550 /);
    expect(capture.text()).not.toMatch(/(zoe|gone|left|app)@example\.(org|com)/);
    expect(ownKeys(close!)).toEqual(["connectionId", "durationMs", "event", "host", "messages", "port", "reason"]);
    expect(close).toMatchObject({ reason: "quit", messages: 2 });
    for (const r of records) if ("durationMs" in r) expect(typeof r["durationMs"]).toBe("number");
  });

  it("debug adds the dialogue between them, AUTH redacted; nothing secret at trace level either", async () => {
    for (const level of ["debug", "trace"] as const) {
      const { capture } = await session(level);
      const records = capture.records();
      const commands = records.filter((r) => r["event"] === "smtp.command").map((r) => r["command"] as string);
      expect(commands[0]).toBe("EHLO app.test");
      expect(commands).toContain("STARTTLS");
      expect(commands.filter((c) => c.startsWith("EHLO"))).toHaveLength(2);
      const auth = commands.filter((c) => c.startsWith("AUTH"));
      expect(auth).toHaveLength(1);
      expect(auth[0]).toMatch(/^AUTH (PLAIN|LOGIN)( <redacted>)?$/);
      expect(commands.at(-1)).toBe("QUIT");
      // Addresses in the dialogue are shown as logRecipients says (a count: not at all).
      expect(commands.filter((c) => c.startsWith("RCPT"))).toEqual(["RCPT TO:<[address]>", "RCPT TO:<[address]>", "RCPT TO:<[address]>", "RCPT TO:<[address]>"]);
      expect(capture.text()).not.toMatch(/(zoe|gone|left|app)@example\.(org|com)/);
      // The connection's events keep their order around the dialogue.
      const events = records.map((r) => r["event"]).filter((e) => e !== "smtp.command" && e !== "smtp.reply");
      expect(events).toEqual(["smtp.connect", "smtp.tls", "smtp.auth", "message.partial", "message.failed", "smtp.close"]);
      expect(records.findIndex((r) => r["command"] === "STARTTLS")).toBeLessThan(records.findIndex((r) => r["event"] === "smtp.tls"));
      const replies = records.filter((r) => r["event"] === "smtp.reply");
      expect(replies.filter((r) => r["replyCode"] === 550)).toHaveLength(3);
      const text = capture.text();
      for (const secret of passwordForms("app", PASSWORD)) expect(text).not.toContain(secret);
      expect(text).not.toContain("ticket 5521");
    }
  });
});
