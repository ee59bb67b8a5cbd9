import { inspect } from "node:util";
import net from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import {
  BadHeaderError,
  InvalidArgumentError,
  SmtpCapabilityError,
  SmtpConnectError,
  SmtpDeliveryUnknownError,
  SmtpRecipientsRefusedError,
  SmtpError,
  SmtpTlsError,
} from "../../src/errors.js";
import { configure, resetSettings } from "../../src/settings.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { messageReply, noReplyToDot, startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { fixedMessage } from "./helpers.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";

isolateEmailEnvironment();
afterEach(() => resetSettings());

describe("SmtpBackend against aiosmtpd (plain)", () => {
  let server: AiosmtpdServer;
  beforeAll(async () => {
    server = await startAiosmtpd({ rejectRecipients: ["nobody@example.com"] });
  });
  afterAll(async () => {
    await server?.stop();
  });
  let before = 0;
  beforeEach(async () => {
    before = (await server.messages()).length;
  });
  const newMessages = async (n: number) => (await server.waitForMessages(before + n)).slice(before);
  const backend = (options: ConstructorParameters<typeof SmtpBackend>[0] = {}) =>
    new SmtpBackend({ host: server.host, port: server.port, timeout: 10_000, ...options });

  it("sends several messages over one connection it opens and closes itself", async () => {
    const b = backend();
    const sent = await b.sendMessages([fixedMessage({ subject: "one", to: ["a@example.com"] }), fixedMessage({ subject: "two", to: ["b@example.com"], bcc: ["hidden@example.com"] })]);
    expect(sent).toBe(2);
    expect(b.client).toBeUndefined();
    const [m1, m2] = await newMessages(2);
    expect(m1!.peer![1]).toBe(m2!.peer![1]); // same client port: one connection
    expect(m1!.mailFrom).toBe("ann@example.com");
    expect(m1!.rcptTos).toEqual(["a@example.com"]);
    expect(m2!.rcptTos).toEqual(["b@example.com", "hidden@example.com"]);
    expect(m2!.data.toString("latin1")).not.toMatch(/^Bcc:/im);
    // The server stored exactly the bytes the message renders to.
    expect(m1!.data.toString("latin1")).toBe((await fixedMessage({ subject: "one", to: ["a@example.com"] }).asBytes()).toString("latin1"));
  });

  it("open() returns true, then false; an open connection stays open across sendMessages", async () => {
    const b = backend();
    expect(await b.open()).toBe(true);
    expect(await b.open()).toBe(false);
    expect(await b.sendMessages([fixedMessage({ subject: "x" })])).toBe(1);
    expect(b.client?.state).toBe("ready");
    expect(await b.sendMessages([fixedMessage({ subject: "y" })])).toBe(1);
    await b.close();
    expect(b.client).toBeUndefined();
    await b.close(); // idempotent
    const [x, y] = await newMessages(2);
    expect(x!.peer![1]).toBe(y!.peer![1]);
  });

  it("await using closes the connection", async () => {
    let client;
    {
      await using b = backend();
      await b.open();
      client = b.client;
      await b.sendMessages([fixedMessage()]);
    }
    expect(client!.state).toBe("closed");
    await newMessages(1);
  });

  it("reports accepted and refused recipients, message id and the final reply", async () => {
    const b = backend();
    const msg = fixedMessage({ to: ["ok@example.com", "nobody@example.com"], headers: { "Message-ID": "<fixed@example.com>" } });
    const { sent, reports } = await b.sendMessagesWithReport([msg]);
    expect(sent).toBe(1);
    const r = reports[0]!;
    // Some recipients refused: "partial" ("sent" now means every recipient accepted).
    expect(r.status).toBe("partial");
    expect(r.deferred).toEqual([]);
    expect(r.messageId).toBe("<fixed@example.com>");
    expect(r.accepted).toEqual(["ok@example.com"]);
    expect(r.rejected).toHaveLength(1);
    expect(r.rejected[0]).toMatchObject({ address: "nobody@example.com", code: 550 });
    expect(r.rejected[0]!.text).toContain("rejected");
    expect(r.reply?.code).toBe(250);
    expect(r.queueId).toMatch(/^\d{6}$/);
    expect(b.reports).toBe(reports);
    await newMessages(1);
  });

  it("every recipient refused: SmtpRecipientsRefusedError; failSilently skips that message and sends the rest", async () => {
    await expect(backend().sendMessages([fixedMessage({ to: ["nobody@example.com"] })])).rejects.toBeInstanceOf(SmtpRecipientsRefusedError);
    const b = backend({ failSilently: true });
    const sent = await b.sendMessages([fixedMessage({ to: ["nobody@example.com"], subject: "lost" }), fixedMessage({ subject: "kept" })]);
    expect(sent).toBe(1);
    expect(b.reports.map((r) => r.status)).toEqual(["failed", "sent"]);
    expect(b.reports[0]!.rejected[0]!.code).toBe(550);
    expect(b.reports[0]!.error).toBeInstanceOf(SmtpRecipientsRefusedError);
    const [m] = await newMessages(1);
    expect(m!.data.toString()).toContain("Subject: kept");
  });

  it("skips messages without recipients (Django), and does not connect when none has any", async () => {
    const b = backend();
    const sent = await b.sendMessages([fixedMessage({ to: [] }), fixedMessage({ subject: "real" })]);
    expect(sent).toBe(1);
    expect(b.reports.map((r) => r.status)).toEqual(["skipped", "sent"]);
    await newMessages(1);
  });

  it("failSilently never hides a bad header", async () => {
    const msg = fixedMessage();
    msg.headers["X-Evil"] = "x\r\nBcc: victim@example.com";
    await expect(backend({ failSilently: true }).sendMessages([msg])).rejects.toBeInstanceOf(BadHeaderError);
  });

  it("uses 8bit when the server offers 8BITMIME", async () => {
    const msg = fixedMessage({ body: "Grüße aus Köln\n".repeat(3) });
    expect(await backend().sendMessages([msg])).toBe(1);
    const [m] = await newMessages(1);
    expect(m!.mailOptions).toContain("BODY=8BITMIME");
    expect(m!.data.toString("utf8")).toContain("Grüße aus Köln");
    expect(await backend({ allow8bit: false }).sendMessages([fixedMessage({ body: "Grüße" })])).toBe(1);
    const [n] = await newMessages(2).then((x) => x.slice(1));
    expect(n!.mailOptions).not.toContain("BODY=8BITMIME");
  });

  it("a non-ASCII local part needs SMTPUTF8: a clear error before MAIL FROM", async () => {
    const err = await backend().sendMessages([fixedMessage({ to: ["jörg@example.com"] })]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpCapabilityError);
    expect((err as SmtpCapabilityError).capability).toBe("SMTPUTF8");
  });
});

describe("SmtpBackend: TLS, AUTH, SMTPUTF8 with aiosmtpd", () => {
  let certs: TestCerts;
  beforeAll(async () => {
    certs = await makeTestCerts();
  });

  it("STARTTLS + AUTH with username/password, trusting the test CA", async () => {
    const server = await startAiosmtpd({ tls: "starttls", auth: { users: { alice: "s3cret" } } });
    try {
      const b = new SmtpBackend({ host: "localhost", port: server.port, useTls: true, username: "alice", password: "s3cret", tlsOptions: { ca: certs.ca }, timeout: 10_000 });
      expect(await b.sendMessages([fixedMessage()])).toBe(1);
      const [m] = await server.waitForMessages(1);
      expect(m!.tls).toBe(true);
      expect(m!.authUser).toBe("alice");
    } finally {
      await server.stop();
    }
  });

  it("implicit TLS (useSsl) and requireTls", async () => {
    const server = await startAiosmtpd({ tls: "implicit" });
    try {
      const b = new SmtpBackend({ host: "localhost", port: server.port, useSsl: true, requireTls: true, tlsOptions: { ca: certs.ca }, timeout: 10_000 });
      expect(await b.sendMessages([fixedMessage()])).toBe(1);
      const [m] = await server.waitForMessages(1);
      expect(m!.tls).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it("requireTls refuses a plaintext session", async () => {
    const server = await startAiosmtpd();
    try {
      const b = new SmtpBackend({ host: "127.0.0.1", port: server.port, requireTls: true, timeout: 10_000 });
      await expect(b.sendMessages([fixedMessage()])).rejects.toBeInstanceOf(SmtpError);
      expect(await server.messages()).toHaveLength(0);
    } finally {
      await server.stop();
    }
  });

  it("SMTPUTF8 when the server offers it", async () => {
    const server = await startAiosmtpd({ smtputf8: true });
    try {
      const b = new SmtpBackend({ host: server.host, port: server.port, timeout: 10_000 });
      expect(await b.sendMessages([fixedMessage({ to: ["jörg@exämple.com"], subject: "Grüße" })])).toBe(1);
      const [m] = await server.waitForMessages(1);
      expect(m!.smtputf8).toBe(true);
      expect(m!.rcptTos).toEqual(["jörg@exämple.com"]);
    } finally {
      await server.stop();
    }
  });
});

describe("SmtpBackend faults (fake server)", () => {
  let fake: FakeSmtpServer | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it("sendMessages([]) returns 0 without connecting", async () => {
    fake = await startFakeServer();
    const b = new SmtpBackend({ host: fake.host, port: fake.port });
    // No sleep needed: a connection starts with net.connect, so not calling it is the proof.
    const connect = vi.spyOn(net, "connect");
    try {
      expect(await b.sendMessages([])).toBe(0);
      expect(await b.sendMessages([fixedMessage({ to: [] })])).toBe(0);
      expect(connect).not.toHaveBeenCalled();
    } finally {
      connect.mockRestore();
    }
  });

  it("requireTls: credentials never reach a server that offers no TLS (fails before AUTH)", async () => {
    fake = await startFakeServer({ authMechanisms: ["PLAIN", "LOGIN"] });
    const b = new SmtpBackend({ host: fake.host, port: fake.port, requireTls: true, username: "alice", password: "pw-secret", timeout: 5_000 });
    const err = await b.sendMessages([fixedMessage()]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpTlsError);
    expect(fake.commands().some((c) => c.startsWith("AUTH"))).toBe(false);
    expect(fake.clientBytes().toString()).not.toContain(Buffer.from("\0alice\0pw-secret").toString("base64"));
    expect(fake.received).toHaveLength(0);
  });

  it("failSilently and a connection that cannot open: one failed report per message, with the error", async () => {
    fake = await startFakeServer({ greeting: "554 5.3.2 no service here" });
    const b = new SmtpBackend({ host: fake.host, port: fake.port, failSilently: true, timeout: 5_000 });
    const messages = [fixedMessage({ subject: "one" }), fixedMessage({ subject: "two" }), fixedMessage({ to: [] })];
    const { sent, reports } = await b.sendMessagesWithReport(messages);
    expect(sent).toBe(0);
    expect(reports.map((r) => [r.message, r.status])).toEqual([[messages[0], "failed"], [messages[1], "failed"], [messages[2], "skipped"]]);
    expect(reports[0]!.error).toBeInstanceOf(SmtpConnectError);
    expect(reports[0]!.reply?.code).toBe(554);
    expect(b.reports).toBe(reports);
  });

  it("reconnects once when the server dropped the idle connection, without sending twice", async () => {
    fake = await startFakeServer({ idleTimeoutMs: 150 });
    const b = new SmtpBackend({ host: fake.host, port: fake.port, timeout: 5_000 });
    expect(await b.open()).toBe(true);
    expect(await b.sendMessages([fixedMessage({ subject: "first" })])).toBe(1);
    await fake.waitForClosed(1);
    expect(await b.sendMessages([fixedMessage({ subject: "second" })])).toBe(1);
    await b.close();
    expect(fake.connections).toBe(2);
    expect(fake.received.map((m) => m.data.toString().match(/Subject: (\w+)/)![1])).toEqual(["first", "second"]);
    expect(fake.errors).toEqual([]);
  });

  it("an unsolicited 421 on the idle connection (the server closes only later): the next message goes over a new connection (issue 8.3)", async () => {
    fake = await startFakeServer({
      script: [{ onMessage: (_m, session) => (session.id === 1 ? (setTimeout(() => session.send("421 4.4.2 closing soon"), 20), undefined) : undefined) }],
    });
    const server = fake;
    const b = new SmtpBackend({ host: server.host, port: server.port, timeout: 5_000 });
    expect(await b.open()).toBe(true);
    expect(await b.sendMessages([fixedMessage({ subject: "first" })])).toBe(1);
    // The client drops the connection when it reads the lone 421 (RFC 5321 §3.8): once the
    // server sees it closed, the client has read it (waiting on the clock instead was flaky
    // on a loaded machine).
    await server.waitForClosed(1);
    expect(await b.sendMessages([fixedMessage({ subject: "second" })])).toBe(1);
    await b.close();
    expect(server.connections).toBe(2);
    expect(server.received.map((m) => m.data.toString().match(/Subject: (\w+)/)![1])).toEqual(["first", "second"]);
  });

  it("never resends a message whose outcome is unknown", async () => {
    fake = await startFakeServer({ script: [noReplyToDot()] });
    const b = new SmtpBackend({ host: fake.host, port: fake.port, timeouts: { finalDot: 300 } });
    const err = await b.sendMessages([fixedMessage()]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect(fake.received).toHaveLength(1);
    expect(fake.connections).toBe(1);
    const quiet = new SmtpBackend({ host: fake.host, port: fake.port, timeouts: { finalDot: 300 }, failSilently: true });
    expect(await quiet.sendMessages([fixedMessage()])).toBe(0);
    expect(quiet.reports[0]!.status).toBe("unknown");
    expect(fake.received).toHaveLength(2);
    expect(fake.connections).toBe(2);
  });

  it("after a refused message the next message goes on the same connection, its MAIL right behind the refused message's end of data", async () => {
    let n = 0;
    fake = await startFakeServer({ script: [{ onMessage: () => (++n === 1 ? "554 5.7.1 Rejected as spam" : undefined) }] });
    const b = new SmtpBackend({ host: fake.host, port: fake.port, failSilently: true, timeout: 5_000 });
    const sent = await b.sendMessages([fixedMessage({ subject: "spam" }), fixedMessage({ subject: "ham" })]);
    expect(sent).toBe(1);
    expect(b.reports[0]!.status).toBe("failed");
    expect(b.reports[0]!.reply).toEqual({ code: 554, enhancedCode: "5.7.1", text: "Rejected as spam" });
    expect(b.reports[1]!.status).toBe("sent");
    expect(fake.connections).toBe(1);
    // With PIPELINING the second message's MAIL, RCPT and DATA follow the first one's final dot
    // in the same write (RFC 2920 §3.1). The reply to the dot ended that transaction (RFC 5321
    // §4.1.1.4), so no RSET comes between them (it would land after DATA).
    const transaction = ["MAIL FROM:<ann@example.com> SIZE=", "RCPT TO:<bob@example.com>", "DATA"];
    expect(fake.commands().slice(1, -1).map((c) => (c.startsWith("MAIL") ? c.replace(/SIZE=\d+/, "SIZE=") : c))).toEqual([...transaction, ...transaction]);
    expect(fake.received.map((m) => m.data.toString().match(/Subject: (\w+)/)![1])).toEqual(["spam", "ham"]);
  });

  it("after a refused message, RSET when the next message did not follow it pipelined (no PIPELINING)", async () => {
    let n = 0;
    fake = await startFakeServer({ ehlo: ["SIZE 1000000", "8BITMIME"], script: [{ onMessage: () => (++n === 1 ? "554 5.7.1 Rejected as spam" : undefined) }] });
    const b = new SmtpBackend({ host: fake.host, port: fake.port, failSilently: true, timeout: 5_000 });
    expect(await b.sendMessages([fixedMessage({ subject: "spam" }), fixedMessage({ subject: "ham" })])).toBe(1);
    expect(fake.connections).toBe(1);
    expect(fake.commands().map((c) => c.split(" ")[0])).toEqual(["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA", "QUIT"]);
  });

  it("without failSilently the first failure stops the batch and the connection is closed", async () => {
    fake = await startFakeServer({ script: [messageReply("554 5.7.1 No")] });
    const b = new SmtpBackend({ host: fake.host, port: fake.port, timeout: 5_000 });
    await expect(b.sendMessages([fixedMessage(), fixedMessage()])).rejects.toBeInstanceOf(SmtpError);
    expect(fake.received).toHaveLength(1);
    expect(b.client).toBeUndefined();
    await fake.waitForClosed(1);
  });

  it("server without 8BITMIME gets 7-bit and no BODY= parameter", async () => {
    fake = await startFakeServer({ ehlo: ["SIZE 1000000", "PIPELINING"] });
    const b = new SmtpBackend({ host: fake.host, port: fake.port, timeout: 5_000 });
    expect(await b.sendMessages([fixedMessage({ body: "Grüße\n" })])).toBe(1);
    const [m] = fake.received;
    expect(m!.mailParams.join(" ")).not.toContain("BODY=");
    expect(m!.data.every((byte) => byte < 0x80)).toBe(true);
  });

  it("an 8-bit message/rfc822 attachment to a server without 8BITMIME fails before MAIL FROM", async () => {
    fake = await startFakeServer({ ehlo: ["SIZE 1000000"] });
    const msg = fixedMessage();
    msg.attach(undefined, Buffer.from("Subject: inner\r\n\r\nGrüße\r\n", "utf8"), "message/rfc822");
    const err = await new SmtpBackend({ host: fake.host, port: fake.port, timeout: 5_000 }).sendMessages([msg]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpCapabilityError);
    expect((err as SmtpCapabilityError).capability).toBe("8BITMIME");
    expect(fake.commands().some((c) => c.startsWith("MAIL"))).toBe(false);
  });

  it("connection refused: SmtpConnectError; failSilently makes open() false and the count 0", async () => {
    fake = await startFakeServer();
    const port = fake.port;
    await fake.close();
    fake = undefined;
    await expect(new SmtpBackend({ host: "127.0.0.1", port, timeout: 2_000 }).sendMessages([fixedMessage()])).rejects.toBeInstanceOf(SmtpConnectError);
    const quiet = new SmtpBackend({ host: "127.0.0.1", port, timeout: 2_000, failSilently: true });
    expect(await quiet.open()).toBe(false);
    expect(await quiet.sendMessages([fixedMessage()])).toBe(0);
  });

  it("AUTH over plaintext to a non-loopback host is refused by default (credentials never leave)", () => {
    // Construction validates; the refusal itself is the client's (tested there). Here: the options reach it.
    const b = new SmtpBackend({ host: "mail.example.com", port: 25, tls: "none", username: "u", password: "p" });
    expect(b.port).toBe(25);
  });
});

describe("SmtpBackend options and settings", () => {
  it("falls back to the settings (Django)", () => {
    configure({ host: "smtp.example.com", port: 2525, username: "alice", password: "pw", useTls: true, timeout: 1234, localName: "client.example" });
    const b = new SmtpBackend();
    expect([b.host, b.port, b.username, b.useTls, b.useSsl, b.timeout, b.localName]).toEqual(["smtp.example.com", 2525, "alice", true, false, 1234, "client.example"]);
  });

  it("port: 465 for implicit TLS, else 25, unless set", () => {
    configure({ host: "smtp.example.com", useSsl: true });
    expect(new SmtpBackend().port).toBe(465);
    expect(new SmtpBackend({ useTls: true }).port).toBe(25);
    configure({ port: 2465 });
    expect(new SmtpBackend().port).toBe(2465);
  });

  it("TLS options from the call replace the settings' TLS choice as a whole", () => {
    configure({ useSsl: true });
    const b = new SmtpBackend({ useTls: true });
    expect([b.useTls, b.useSsl]).toEqual([true, false]);
  });

  it("rejects unknown options and useTls with useSsl", () => {
    expect(() => new SmtpBackend({ hots: "x" } as never)).toThrow(InvalidArgumentError);
    expect(() => new SmtpBackend({ requireTLS: true } as never)).toThrow(/Unknown SMTP backend option "requireTLS"/);
    expect(() => new SmtpBackend({ useTls: true, useSsl: true })).toThrow(InvalidArgumentError);
    expect(() => new SmtpBackend({ port: 0 })).toThrow(InvalidArgumentError);
    expect(() => new SmtpBackend({ tls: "none", requireTls: true })).toThrow(InvalidArgumentError);
  });

  it("never shows the password", () => {
    const b = new SmtpBackend({ host: "smtp.example.com", username: "alice", password: "hunter2-secret" });
    const shown = inspect(b, { depth: 5 }) + JSON.stringify(b);
    expect(shown).not.toContain("hunter2-secret");
    expect(shown).toContain("alice");
  });
});
