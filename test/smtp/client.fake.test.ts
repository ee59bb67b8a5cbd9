/**
 * The client against the scripted fault server (test/helpers/fake-smtp-server.ts): every
 * fault asserts the error class, `retryable` and the client's state afterwards.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import net from "node:net";
import diagnosticsChannel from "node:diagnostics_channel";
import { Readable } from "node:stream";
import {
  dropAfterDot,
  dropOn,
  hangOn,
  messageReply,
  noReplyToDot,
  recipientReplies,
  refuseStartTls,
  replyOn,
  shutdownOn,
  startFakeServer,
  trickle,
  type FakeServerOptions,
  type FakeSmtpServer,
} from "../helpers/fake-smtp-server.js";
import { makeTestCerts } from "../helpers/certs.js";
import { SmtpClient, type SmtpClientOptions } from "../../src/smtp/client.js";
import type { TranscriptEntry } from "../../src/smtp/transcript.js";
import {
  AbortError,
  SmtpAuthError,
  SmtpCapabilityError,
  SmtpClosedError,
  SmtpConnectError,
  SmtpDeliveryUnknownError,
  SmtpError,
  SmtpProtocolError,
  SmtpRecipientsRefusedError,
  SmtpTimeoutError,
  SmtpTlsError,
} from "../../src/errors.js";
import { rejection } from "../helpers/errors.js";

const originalWrite = net.Socket.prototype.write;
const servers: FakeSmtpServer[] = [];
const clients: SmtpClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fake(options: FakeServerOptions = {}): Promise<FakeSmtpServer> {
  const server = await startFakeServer(options);
  servers.push(server);
  return server;
}

function clientFor(server: FakeSmtpServer, options: SmtpClientOptions = {}, log?: TranscriptEntry[]): SmtpClient {
  const client = new SmtpClient({
    host: "127.0.0.1",
    port: server.port,
    localName: "client.test",
    timeout: 2000,
    ...(log ? { transcript: (e: TranscriptEntry) => log.push(e) } : {}),
    ...options,
  });
  clients.push(client);
  return client;
}

/**
 * The client's byte stream to `port`, cut into flights: the bytes it sent between two
 * moments it received something. Pipelined commands share a flight (they all left before
 * any reply was read); one command per round trip gives one flight each. This compares
 * bytes and their order against the replies, not how many write() calls carried them, so
 * corked or batched writes compare the same.
 */
function captureFlights(port: number): { flights(): string[]; restore(): void } {
  const flights: string[] = [""];
  const watched = new WeakSet<net.Socket>();
  const spy = vi.spyOn(net.Socket.prototype, "write").mockImplementation(function (this: net.Socket, ...args: unknown[]) {
    if (this.remotePort === port) {
      if (!watched.has(this)) {
        watched.add(this);
        this.on("data", () => flights.push(""));
      }
      const chunk = args[0] as Uint8Array | string;
      flights[flights.length - 1] += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    }
    return originalWrite.apply(this, args as never);
  });
  return { flights: () => flights.filter((f) => f !== ""), restore: () => spy.mockRestore() };
}

async function until(condition: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const env = { from: "a@example.org", to: ["b@example.org"] };

/** Makes every net.connect fail as a closed port does (ECONNREFUSED), deterministically. */
function refuseConnections() {
  return vi.spyOn(net, "connect").mockImplementation(((options: net.NetConnectOpts) => {
    const socket = new net.Socket();
    const { host, port } = options as net.TcpNetConnectOpts;
    process.nextTick(() => socket.emit("error", Object.assign(new Error(`connect ECONNREFUSED ${host}:${port}`), { code: "ECONNREFUSED" })));
    return socket;
  }) as typeof net.connect);
}

describe("SmtpClient against the fake server: the happy paths", () => {
  it("sends a pipelined transaction: exact client bytes and transcript", async () => {
    const server = await fake();
    const log: TranscriptEntry[] = [];
    const client = clientFor(server, {}, log);
    await client.connect();
    expect(client.state).toBe("ready");
    const { flights, restore } = captureFlights(server.port);
    expect(client.capabilities?.pipelining).toBe(true);
    const result = await client.sendMail({ from: "a@example.org", to: ["b@example.org", "c@example.org"], size: 20 }, "Subject: x\n\n.hello\n");
    restore();
    // MAIL, both RCPTs and DATA left before any reply was read; the body after the 354.
    expect(flights()).toEqual(["MAIL FROM:<a@example.org> SIZE=20\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n", "Subject: x\r\n\r\n..hello\r\n.\r\n"]);
    expect(result.accepted).toEqual(["b@example.org", "c@example.org"]);
    expect(result.rejected).toEqual([]);
    expect(result.reply.code).toBe(250);
    expect(result.reply.enhancedCode).toBe("2.0.0");
    expect(result.queueId).toBe("FAKE1");
    await client.quit();
    expect(client.state).toBe("closed");

    expect(server.clientBytes().toString()).toBe(
      "EHLO client.test\r\n" +
        "MAIL FROM:<a@example.org> SIZE=20\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n" +
        "Subject: x\r\n\r\n..hello\r\n.\r\n" +
        "QUIT\r\n",
    );
    const [msg] = server.received;
    expect(msg?.data.toString()).toBe("Subject: x\r\n\r\n.hello\r\n");

    expect(log.filter((e) => e.direction === "client").map((e) => e.line)).toEqual([
      "EHLO client.test",
      "MAIL FROM:<a@example.org> SIZE=20",
      "RCPT TO:<b@example.org>",
      "RCPT TO:<c@example.org>",
      "DATA",
      ".",
      "QUIT",
    ]);
    expect(log[0]).toEqual({ direction: "server", line: "220 fake.missive.test ESMTP ready" });
  });

  it("STARTTLS + AUTH + pipelined transaction: the whole transcript, credentials redacted", async () => {
    const certs = await makeTestCerts();
    const server = await fake({ tls: "starttls", key: certs.server.key, cert: certs.server.cert, users: { joe: "correct horse" } });
    const log: TranscriptEntry[] = [];
    const client = clientFor(server, { tls: "starttls", tlsOptions: { ca: certs.ca }, auth: { user: "joe", pass: "correct horse" } }, log);
    await client.connect();
    await client.sendMail({ from: "ann@example.org", to: ["bob@example.org", "cy@example.org"] }, "Subject: hi\n\nbody\n");
    await client.quit();
    const caps = ["250-PIPELINING", "250-8BITMIME", "250-SIZE 10485760", "250-ENHANCEDSTATUSCODES"];
    expect(log.map((e) => `${e.direction === "client" ? "C" : "S"}: ${e.line}`)).toEqual([
      "S: 220 fake.missive.test ESMTP ready",
      "C: EHLO client.test",
      ...["250-fake.missive.test", ...caps, "250-AUTH PLAIN LOGIN", "250 STARTTLS"].map((l) => `S: ${l}`),
      "C: STARTTLS",
      "S: 220 2.0.0 Ready to start TLS",
      "C: EHLO client.test",
      ...["250-fake.missive.test", ...caps, "250 AUTH PLAIN LOGIN"].map((l) => `S: ${l}`),
      "C: AUTH PLAIN <redacted>",
      "S: 235 2.7.0 Authentication successful",
      "C: MAIL FROM:<ann@example.org>",
      "C: RCPT TO:<bob@example.org>",
      "C: RCPT TO:<cy@example.org>",
      "C: DATA",
      "S: 250 2.1.0 Ok",
      "S: 250 2.1.5 Ok",
      "S: 250 2.1.5 Ok",
      "S: 354 End data with <CR><LF>.<CR><LF>",
      "C: .",
      "S: 250 2.0.0 Ok: queued as FAKE1",
      "C: QUIT",
      "S: 221 2.0.0 Bye",
    ]);
    // What actually crossed the wire after TLS (the fake records plaintext of both phases).
    const afterTls = server.clientBytes().toString().split("STARTTLS\r\n")[1]!;
    expect(afterTls).toBe(
      "EHLO client.test\r\n" +
        `AUTH PLAIN ${Buffer.from("\0joe\0correct horse").toString("base64")}\r\n` +
        "MAIL FROM:<ann@example.org>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<cy@example.org>\r\nDATA\r\n" +
        "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n",
    );
    expect(server.received[0]).toMatchObject({ tls: true, authUser: "joe" });
  });

  it("without PIPELINING sends one command at a time", async () => {
    const server = await fake({ ehlo: ["8BITMIME"] });
    const client = clientFor(server);
    await client.connect();
    const { flights, restore } = captureFlights(server.port);
    await client.sendMail(env, "x");
    restore();
    expect(flights()).toEqual(["MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.org>\r\n", "DATA\r\n", "x\r\n.\r\n"]);
  });

  it("pipelining: false is honoured even when offered", async () => {
    const server = await fake();
    const client = clientFor(server, { pipelining: false });
    await client.sendMail(env, "x");
    await client.connect();
    const { flights, restore } = captureFlights(server.port);
    await client.sendMail(env, "x");
    restore();
    expect(flights()).toEqual(["MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.org>\r\n", "DATA\r\n", "x\r\n.\r\n"]);
  });

  it("sends several messages over one connection and streams a Readable body", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.sendMail(env, "one");
    await client.sendMail(env, Readable.from([Buffer.from("tw"), Buffer.from("o\r")]));
    await client.sendMail(env, (async function* () {
      yield new TextEncoder().encode("three");
    })());
    expect(server.connections).toBe(1);
    expect(server.received.map((m) => m.data.toString())).toEqual(["one\r\n", "two\r\n", "three\r\n"]);
  });

  it("uses BDAT when asked and offered (CHUNKING)", async () => {
    const server = await fake({ ehlo: ["PIPELINING", "CHUNKING", "8BITMIME"] });
    const client = clientFor(server, { chunking: true, chunkSize: 4 });
    const result = await client.sendMail(env, "hello\nworld");
    expect(result.reply.code).toBe(250);
    const [msg] = server.received;
    expect(msg?.via).toBe("BDAT");
    expect(msg?.data.toString()).toBe("hello\r\nworld\r\n");
    expect(server.commands().filter((c) => c.startsWith("BDAT"))).toEqual(["BDAT 4", "BDAT 4", "BDAT 4", "BDAT 2 LAST"]);
  });

  it("authenticates with CRAM-MD5 when offered, redacting the transcript", async () => {
    const server = await fake({ authMechanisms: ["PLAIN", "LOGIN", "CRAM-MD5"], users: { tim: "tanstaaftanstaaf" } });
    const log: TranscriptEntry[] = [];
    const client = clientFor(server, { auth: { user: "tim", pass: "tanstaaftanstaaf" } }, log);
    await client.connect();
    expect(client.authenticatedAs).toBe("tim");
    const lines = log.filter((e) => e.direction === "client").map((e) => e.line);
    expect(lines).toEqual(["EHLO client.test", "AUTH CRAM-MD5", "<redacted>"]);
    expect(JSON.stringify(log)).not.toMatch(/tanstaaf|dGlt/);
  });

  it.each(["PLAIN", "LOGIN"] as const)("AUTH %s payloads are redacted in the transcript", async (method) => {
    const server = await fake({ users: { joe: "s3cret-pw" } });
    const log: TranscriptEntry[] = [];
    const client = clientFor(server, { auth: { user: "joe", pass: "s3cret-pw" }, authMethod: method }, log);
    await client.connect();
    const sent = server.clientBytes().toString();
    const plainB64 = Buffer.from("\0joe\0s3cret-pw").toString("base64");
    const pwB64 = Buffer.from("s3cret-pw").toString("base64");
    expect(sent).toContain(method === "PLAIN" ? plainB64 : pwB64);
    const text = JSON.stringify(log);
    expect(text).not.toContain(plainB64);
    expect(text).not.toContain(pwB64);
    expect(text).not.toContain("s3cret-pw");
    expect(log.filter((e) => e.direction === "client").map((e) => e.line)).toEqual(
      method === "PLAIN" ? ["EHLO client.test", "AUTH PLAIN <redacted>"] : ["EHLO client.test", "AUTH LOGIN", "<redacted>", "<redacted>"],
    );
  });

  it("XOAUTH2 with a token provider; a refused token answers the error challenge and fails", async () => {
    const server = await fake({ authMechanisms: ["XOAUTH2", "PLAIN"], users: { "u@x.org": "good-token" } });
    const ok = clientFor(server, { auth: { user: "u@x.org", tokenProvider: async () => "good-token" } });
    await ok.connect();
    expect(ok.authenticatedAs).toBe("u@x.org");
    const bad = clientFor(server, { auth: { user: "u@x.org", accessToken: "bad-token" } });
    const error = await rejection(bad.connect());
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect((error as SmtpAuthError).replyCode).toBe(535);
    expect((error as SmtpAuthError).retryable).toBe(false);
    expect(error.message).not.toContain("bad-token");
    expect(bad.state).toBe("closed");
  });

  it("publishes on diagnostics_channel only to subscribers, with AUTH redacted", async () => {
    const server = await fake({ users: { joe: "pw-xyz" } });
    const commands: string[] = [];
    const replies: number[] = [];
    const onCommand = (m: unknown) => commands.push((m as { command: string }).command);
    const onReply = (m: unknown) => replies.push((m as { reply: { code: number } }).reply.code);
    diagnosticsChannel.subscribe("missive:smtp:command", onCommand);
    diagnosticsChannel.subscribe("missive:smtp:reply", onReply);
    try {
      const client = clientFor(server, { auth: { user: "joe", pass: "pw-xyz" }, authMethod: "PLAIN" });
      await client.connect();
      await client.quit();
    } finally {
      diagnosticsChannel.unsubscribe("missive:smtp:command", onCommand);
      diagnosticsChannel.unsubscribe("missive:smtp:reply", onReply);
    }
    expect(commands).toEqual(["EHLO client.test", "AUTH PLAIN <redacted>", "QUIT"]);
    expect(replies).toEqual([220, 250, 235, 221]);
  });
});

describe("SmtpClient faults", () => {
  it("greeting never sent: greeting timeout, retryable, closed", async () => {
    const server = await fake({ greeting: null });
    const client = clientFor(server, { timeouts: { greeting: 200 } });
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect((error as SmtpTimeoutError).phase).toBe("greeting");
    expect((error as SmtpTimeoutError).retryable).toBe(true);
    expect(client.state).toBe("closed");
  });

  it("554 greeting: SmtpConnectError after QUIT, not retryable", async () => {
    const server = await fake({ greeting: "554 5.3.2 No SMTP service here" });
    const client = clientFor(server);
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpConnectError);
    expect((error as SmtpConnectError).replyCode).toBe(554);
    expect((error as SmtpConnectError).retryable).toBe(false);
    expect(client.state).toBe("closed");
    expect(server.commands()).toEqual(["QUIT"]);
  });

  it("421 greeting: SmtpConnectError, retryable", async () => {
    const server = await fake({ greeting: "421 4.3.2 busy, try later" });
    const error = await rejection(clientFor(server).connect());
    expect(error).toBeInstanceOf(SmtpConnectError);
    expect((error as SmtpConnectError).retryable).toBe(true);
  });

  it("EHLO refused: falls back to HELO and sends without extensions", async () => {
    const server = await fake({ ehlo: "502 5.5.2 Error: command not recognized" });
    const client = clientFor(server);
    await client.connect();
    expect(client.capabilities?.esmtp).toBe(false);
    await client.sendMail({ ...env, size: 10 }, "x");
    expect(server.commands()).toEqual(["EHLO client.test", "HELO client.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"]);
  });

  it("STARTTLS offered then refused: SmtpTlsError when required, plaintext when opportunistic", async () => {
    const certs = await makeTestCerts();
    const opts = { tls: "starttls" as const, key: certs.server.key, cert: certs.server.cert, script: refuseStartTls() };
    const server = await fake(opts);
    const required = clientFor(server, { tls: "starttls", tlsOptions: { ca: certs.ca } });
    const error = await rejection(required.connect());
    expect(error).toBeInstanceOf(SmtpTlsError);
    expect(error.message).toMatch(/refused STARTTLS: 454/);
    expect((error as SmtpTlsError).retryable).toBe(true);
    expect(required.state).toBe("closed");

    const opportunistic = clientFor(server, { tls: "opportunistic", tlsOptions: { ca: certs.ca } });
    await opportunistic.connect();
    expect(opportunistic.secure).toBe(false);
    expect(opportunistic.state).toBe("ready");
  });

  it("STARTTLS required but not offered: SmtpTlsError naming it, never silent plaintext", async () => {
    const server = await fake();
    const client = clientFor(server, { tls: "starttls" });
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpTlsError);
    expect(error.message).toMatch(/does not offer STARTTLS/);
    expect(client.state).toBe("closed");
    expect(server.commands()).toEqual(["EHLO client.test", "QUIT"]);
  });

  it("STARTTLS: capabilities learnt before TLS are forgotten, EHLO again over TLS", async () => {
    const certs = await makeTestCerts();
    const server = await fake({
      tls: "starttls",
      key: certs.server.key,
      cert: certs.server.cert,
      ehlo: ["PIPELINING", "STARTTLS", "SMTPUTF8", "AUTH PLAIN"],
      ehloAfterTls: ["8BITMIME", "AUTH PLAIN"],
    });
    const client = clientFor(server, { tls: "starttls", tlsOptions: { ca: certs.ca, servername: "localhost" } });
    await client.connect();
    expect(client.secure).toBe(true);
    expect(client.capabilities?.smtputf8).toBe(false);
    expect(client.capabilities?.pipelining).toBe(false);
    expect(client.capabilities?.eightBitMime).toBe(true);
    expect(client.tlsInfo?.authorized).toBe(true);
    expect(server.commands()).toEqual(["EHLO client.test", "STARTTLS", "EHLO client.test"]);
  });

  it("drop after MAIL FROM: SmtpClosedError, retryable, closed", async () => {
    const server = await fake({ script: dropOn("MAIL") });
    const client = clientFor(server, { pipelining: false });
    await client.connect();
    const error = await rejection(client.sendMail(env, "x"));
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect((error as SmtpClosedError).retryable).toBe(true);
    expect((error as SmtpClosedError).command).toBe("MAIL FROM:<a@example.org>");
    expect(client.state).toBe("closed");
    // The next send fails fast and retryable too.
    const again = await rejection(client.sendMail(env, "x"));
    expect(again).toBeInstanceOf(SmtpClosedError);
  });

  it("421 mid-session: retryable SmtpError, connection closed", async () => {
    const server = await fake({ script: shutdownOn("RCPT") });
    const client = clientFor(server);
    await client.connect();
    const error = await rejection(client.sendMail(env, "x"));
    expect(error).toBeInstanceOf(SmtpError);
    expect((error as SmtpError).replyCode).toBe(421);
    expect((error as SmtpError).retryable).toBe(true);
    expect(client.state).toBe("closed");
  });

  it("some recipients refused (452, 550): partial success as data", async () => {
    const server = await fake({
      script: recipientReplies({ "full@example.org": "452 4.2.2 Mailbox full", "nobody@example.org": "550 5.1.1 No such user" }),
    });
    const client = clientFor(server);
    const result = await client.sendMail({ from: "a@example.org", to: ["full@example.org", "b@example.org", "nobody@example.org"] }, "x");
    expect(result.accepted).toEqual(["b@example.org"]);
    expect(result.rejected.map((r) => [r.address, r.reply.code, r.reply.enhancedCode, r.reply.text])).toEqual([
      ["full@example.org", 452, "4.2.2", "Mailbox full"],
      ["nobody@example.org", 550, "5.1.1", "No such user"],
    ]);
    expect(server.received[0]?.rcptTo).toEqual(["b@example.org"]);
    expect(client.state).toBe("ready");
  });

  it.each([true, false])("all recipients refused (pipelining %s): RSET and SmtpRecipientsRefusedError", async (pipelining) => {
    const server = await fake({ script: recipientReplies({ "x@example.org": "550 5.1.1 No such user", "y@example.org": "452 4.2.2 Full" }) });
    const client = clientFor(server, { pipelining });
    const error = await rejection(client.sendMail({ from: "a@example.org", to: ["x@example.org", "y@example.org"] }, "x"));
    expect(error).toBeInstanceOf(SmtpRecipientsRefusedError);
    expect((error as SmtpRecipientsRefusedError).rejected.map((r) => r.reply.code)).toEqual([550, 452]);
    expect((error as SmtpRecipientsRefusedError).retryable).toBe(false);
    expect(client.state).toBe("ready");
    expect(server.commands().at(-1)).toBe("RSET");
    expect(server.commands()).not.toContain(".");
    // The connection is still usable.
    await client.sendMail(env, "after");
    expect(server.received.map((m) => m.data.toString())).toEqual(["after\r\n"]);
  });

  it("all recipients refused with 4xx only: retryable", async () => {
    const server = await fake({ script: recipientReplies({ "y@example.org": "451 4.3.0 Try later" }) });
    const error = await rejection(clientFor(server).sendMail({ from: "a@example.org", to: ["y@example.org"] }, "x"));
    expect((error as SmtpRecipientsRefusedError).retryable).toBe(true);
  });

  it("all RCPTs refused but the pipelined DATA got 354 anyway: ends with '.', then RSET", async () => {
    const server = await fake({
      script: [recipientReplies({ "x@example.org": "550 5.1.1 No such user" }), replyOn("DATA", "354 go ahead anyway")],
    });
    const client = clientFor(server);
    const error = await rejection(client.sendMail({ from: "a@example.org", to: ["x@example.org"] }, "the body"));
    expect(error).toBeInstanceOf(SmtpRecipientsRefusedError);
    expect(client.state).toBe("ready");
    expect(server.clientBytes().toString()).toMatch(/DATA\r\n\.\r\nRSET\r\n$/);
    expect(server.clientBytes().toString()).not.toContain("the body");
    await client.noop();
  });

  it("MAIL refused (pipelined): SmtpError with the MAIL reply, RSET, still ready", async () => {
    const server = await fake({ script: replyOn("MAIL", "553 5.7.1 Sender rejected") });
    const client = clientFor(server);
    const error = await rejection(client.sendMail(env, "x"));
    expect(error).toBeInstanceOf(SmtpError);
    expect((error as SmtpError).replyCode).toBe(553);
    expect((error as SmtpError).command).toBe("MAIL FROM:<a@example.org>");
    expect(client.state).toBe("ready");
    expect(server.commands().at(-1)).toBe("RSET");
  });

  it("552 after DATA: SmtpError, not retryable; RSET keeps the connection usable", async () => {
    const server = await fake({ script: messageReply("552 5.3.4 Message too big") });
    const client = clientFor(server);
    const error = await rejection(client.sendMail(env, "x"));
    expect(error).toBeInstanceOf(SmtpError);
    expect(error).not.toBeInstanceOf(SmtpDeliveryUnknownError);
    expect((error as SmtpError).replyCode).toBe(552);
    expect((error as SmtpError).enhancedCode).toBe("5.3.4");
    expect((error as SmtpError).retryable).toBe(false);
    expect(client.state).toBe("ready");
    expect(server.commands().at(-1)).toBe("RSET");
    await client.noop();
  });

  it("a reply trickled one byte at a time: the whole-reply deadline fires", async () => {
    const server = await fake({ script: trickle("EHLO", 40) });
    const client = clientFor(server, { timeouts: { command: 300 } });
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect((error as SmtpTimeoutError).phase).toBe("command");
    expect((error as SmtpTimeoutError).command).toBe("EHLO client.test");
    expect((error as SmtpTimeoutError).retryable).toBe(true);
    expect(client.state).toBe("closed");
  });

  it("pipelined replies arriving in one packet are matched in order", async () => {
    // The four replies come in one write after MAIL; the fake then reads the body as lines.
    const server = await fake({
      script: {
        onCommand: (cmd) => {
          if (cmd.verb === "MAIL") return { reply: null, raw: "250 2.1.0 mail ok\r\n250 2.1.5 rcpt1 ok\r\n550 5.1.1 rcpt2 no\r\n354 go\r\n" };
          if (cmd.verb === "RCPT" || cmd.verb === "DATA" || cmd.verb === "BODYLINE") return null;
          if (cmd.verb === ".") return "250 2.0.0 queued as RAW1";
          return undefined;
        },
      },
    });
    const client = clientFor(server);
    const result = await client.sendMail({ from: "a@example.org", to: ["p@example.org", "q@example.org"] }, "bodyline");
    expect(result.accepted).toEqual(["p@example.org"]);
    expect(result.rejected.map((r) => [r.address, r.reply.code, r.reply.text])).toEqual([["q@example.org", 550, "rcpt2 no"]]);
    expect(result.queueId).toBe("RAW1");
    expect(client.state).toBe("ready");
  });

  it("more replies than pipelined commands: SmtpProtocolError and the connection discarded", async () => {
    const server = await fake({ script: replyOn("DATA", { reply: null, raw: "354 go\r\n250 2.0.0 surprise\r\n" }) });
    const client = clientFor(server);
    const error = await rejection(client.sendMail(env, "x"));
    expect(error).toBeInstanceOf(SmtpProtocolError);
    expect(client.state).toBe("closed");
    expect(server.clientBytes().toString()).not.toContain("x\r\n.\r\n");
  });

  it("unsolicited reply flood to an idle client: bounded buffer, SmtpProtocolError (EPROTOCOL), closed", async () => {
    let flooded = 0;
    const server = await fake({
      script: {
        onCommand: (cmd, session) => {
          if (cmd.verb !== "EHLO") return undefined;
          // After the EHLO reply, send replies nobody asked for until the client hangs up.
          const chunk = Buffer.from("250 ok\r\n".repeat(512));
          const flood = () => {
            if (session.socket.destroyed || flooded >= 20_000) return;
            flooded += 512;
            if (session.socket.write(chunk)) setImmediate(flood);
            else session.socket.once("drain", flood);
          };
          setTimeout(flood, 20);
          return undefined;
        },
      },
    });
    const client = clientFor(server);
    await client.connect();
    await until(() => client.state === "closed");
    const error = await rejection(client.noop());
    expect(error).toBeInstanceOf(SmtpClosedError);
    const cause = (error as SmtpClosedError).cause as SmtpProtocolError;
    expect(cause).toBeInstanceOf(SmtpProtocolError);
    expect(cause.code).toBe("EPROTOCOL");
    await server.waitForClosed(1);
    // The client hung up long before the flood ended: nothing kept piling up.
    expect(flooded).toBeLessThan(20_000);
  });

  it("one unsolicited 421 then FIN is still reported as the server closing (not a protocol error)", async () => {
    const server = await fake({ idleTimeoutMs: 100 });
    const client = clientFor(server);
    await client.connect();
    await until(() => client.state === "closed");
    const error = await rejection(client.noop());
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect((error as SmtpClosedError).cause).not.toBeInstanceOf(SmtpProtocolError);
  });

  it("a large pipelined batch whose replies all arrive before they are read still works", async () => {
    const to = Array.from({ length: 60 }, (_, i) => `r${i}@example.org`);
    const server = await fake({
      script: {
        onCommand: (cmd) => {
          if (cmd.verb === "MAIL") return { reply: null, raw: `250 mail ok\r\n${"250 rcpt ok\r\n".repeat(to.length)}354 go\r\n` };
          if (cmd.verb === "RCPT" || cmd.verb === "DATA" || cmd.verb === "BODYLINE") return null;
          if (cmd.verb === ".") return "250 2.0.0 queued as BIG";
          return undefined;
        },
      },
    });
    const client = clientFor(server);
    const result = await client.sendMail({ from: "a@example.org", to }, "bodyline");
    expect(result.accepted).toEqual(to);
    expect(result.queueId).toBe("BIG");
    expect(client.state).toBe("ready");
  });

  it("no reply after the final dot: SmtpDeliveryUnknownError, not retryable, closed", async () => {
    const server = await fake({ script: noReplyToDot() });
    const client = clientFor(server, { timeouts: { finalDot: 300 } });
    const error = await rejection(client.sendMail(env, "x"));
    expect(error).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect((error as SmtpDeliveryUnknownError).retryable).toBe(false);
    expect((error as Error).cause).toBeInstanceOf(SmtpTimeoutError);
    expect(client.state).toBe("closed");
  });

  it("drop right after the final dot: SmtpDeliveryUnknownError", async () => {
    const server = await fake({ script: dropAfterDot() });
    const client = clientFor(server);
    const error = await rejection(client.sendMail(env, "x"));
    expect(error).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect(client.state).toBe("closed");
  });

  it("drop before the final dot (DATA never answered, connection dropped): ordinary retryable error", async () => {
    const server = await fake({ script: dropOn("DATA") });
    const client = clientFor(server);
    const error = await rejection(client.sendMail(env, "x"));
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect((error as SmtpClosedError).retryable).toBe(true);
    expect(client.state).toBe("closed");
  });

  it("server closes an idle connection: NOOP probe detects it, the next send fails retryable", async () => {
    const server = await fake({ idleTimeoutMs: 150 });
    const client = clientFor(server);
    await client.connect();
    await until(() => client.state === "closed");
    const probe = await rejection(client.noop());
    expect(probe).toBeInstanceOf(SmtpClosedError);
    expect((probe as SmtpClosedError).retryable).toBe(true);
    const send = await rejection(client.sendMail(env, "x"));
    expect(send).toBeInstanceOf(SmtpClosedError);
    expect((send as SmtpClosedError).retryable).toBe(true);
    // connect() again gives a fresh session.
    await client.connect();
    await client.sendMail(env, "x");
    expect(server.received).toHaveLength(1);
  });

  it("AbortSignal during a hung exchange: AbortError, socket destroyed, closed", async () => {
    const server = await fake({ script: hangOn("MAIL") });
    const controller = new AbortController();
    const client = clientFor(server, { signal: controller.signal });
    await client.connect();
    const pending = rejection(client.sendMail(env, "x"));
    await until(() => server.commands().includes("MAIL FROM:<a@example.org>"));
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(AbortError);
    expect(client.state).toBe("closed");
    await server.waitForClosed(1);
    await expect(client.connect()).rejects.toBeInstanceOf(AbortError);
  });

  it("AbortSignal while waiting for the greeting: AbortError, closed, no listener left behind", async () => {
    const server = await fake({ greeting: null });
    const controller = new AbortController();
    const client = clientFor(server, { signal: controller.signal });
    const pending = rejection(client.connect());
    await until(() => server.connections === 1);
    controller.abort();
    expect(await pending).toBeInstanceOf(AbortError);
    expect(client.state).toBe("closed");
  });

  it("destroy() while connect() reads key files: connect rejects with SmtpClosedError, stays closed, no socket", async () => {
    const server = await fake();
    const certs = await makeTestCerts();
    const client = clientFor(server, { tls: "opportunistic", sslCertfile: certs.client.certPath, sslKeyfile: certs.client.keyPath });
    const connects = vi.spyOn(net, "connect");
    try {
      const pending = rejection(client.connect());
      client.destroy();
      const error = await pending;
      expect(error).toBeInstanceOf(SmtpClosedError);
      expect(client.state).toBe("closed");
      // The attempt stopped before TCP: no socket was ever made.
      expect(connects).not.toHaveBeenCalled();
    } finally {
      connects.mockRestore();
    }
  });

  it("destroy() while waiting for the greeting: connect rejects with SmtpClosedError, socket closed", async () => {
    const server = await fake({ greeting: null });
    const client = clientFor(server);
    const pending = rejection(client.connect());
    await until(() => server.connections === 1);
    client.destroy();
    const error = await pending;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(client.state).toBe("closed");
    await server.waitForClosed(1);
  });

  it("connection refused: SmtpConnectError, retryable", async () => {
    // A freed port may be bound again by another test; refuse in net.connect instead.
    const refuse = refuseConnections();
    const client = new SmtpClient({ host: "127.0.0.1", port: 2525, timeout: 2000 });
    const error = await rejection(client.connect()).finally(() => refuse.mockRestore());
    expect(error).toBeInstanceOf(SmtpConnectError);
    expect(error.message).toMatch(/ECONNREFUSED/);
    expect((error as SmtpConnectError).retryable).toBe(true);
    expect(client.state).toBe("closed");
  });

  it("a body stream that fails mid-way: the connection is dropped, nothing is delivered", async () => {
    const server = await fake();
    const client = clientFor(server);
    const body = new Readable({
      read() {
        this.push("first part\n");
        this.destroy(new Error("disk on fire"));
      },
    });
    const error = await rejection(client.sendMail(env, body));
    expect(error.message).toBe("disk on fire");
    expect(client.state).toBe("closed");
    await server.waitForClosed(1);
    expect(server.received).toHaveLength(0);
  });

  it("a server that stops reading mid-body: the data-block deadline fires (write waits for drain), retryable", async () => {
    const server = await fake({
      script: {
        onCommand: (cmd, session) => {
          if (cmd.verb === "DATA") session.socket.pause();
          return undefined;
        },
      },
    });
    const client = clientFor(server, { timeouts: { data: 300 } });
    let produced = 0;
    const body = (function* () {
      const chunk = Buffer.alloc(64 * 1024, "a\n");
      while (produced < 256 * 1024 * 1024) {
        produced += chunk.length;
        yield chunk;
      }
    })();
    const error = await rejection(client.sendMail(env, Readable.from(body)));
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect((error as SmtpTimeoutError).phase).toBe("data");
    expect((error as SmtpTimeoutError).retryable).toBe(true);
    expect(client.state).toBe("closed");
    // Backpressure: the client stopped producing long before the whole body.
    expect(produced).toBeLessThan(128 * 1024 * 1024);
  });

  it("a too-long reply line is a protocol error", async () => {
    const server = await fake({ script: replyOn("EHLO", { reply: null, raw: `250 ${"x".repeat(9000)}\r\n` }) });
    const client = clientFor(server);
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpProtocolError);
    expect(client.state).toBe("closed");
  });

  it("wrong password: SmtpAuthError (535), not retryable, closed", async () => {
    const server = await fake({ users: { joe: "right" } });
    const client = clientFor(server, { auth: { user: "joe", pass: "wrong" } });
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect((error as SmtpAuthError).replyCode).toBe(535);
    expect((error as SmtpAuthError).retryable).toBe(false);
    expect((error as SmtpAuthError).command).toBe("AUTH PLAIN <redacted>");
    expect(JSON.stringify(error)).not.toContain("wrong");
    expect(client.state).toBe("closed");
  });

  it("no AUTH mechanism in common: says which were offered", async () => {
    const server = await fake({ authMechanisms: ["XOAUTH2"] });
    const error = await rejection(clientFor(server, { auth: { user: "joe", pass: "pw" } }).connect());
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toMatch(/offers XOAUTH2/);
  });
});

describe("never send what the server did not advertise", () => {
  it("SIZE over the limit, 8BITMIME, SMTPUTF8 and DSN fail before MAIL FROM", async () => {
    const server = await fake({ ehlo: ["PIPELINING", "SIZE 1000", "ENHANCEDSTATUSCODES"] });
    const client = clientFor(server);
    await client.connect();
    const cases: [Promise<unknown>, string][] = [
      [client.sendMail({ ...env, size: 1001 }, "x"), "SIZE"],
      [client.sendMail({ ...env, eightBit: true }, "x"), "8BITMIME"],
      [client.sendMail({ from: "ü@example.org", to: ["b@example.org"], smtputf8: true }, "x"), "SMTPUTF8"],
      [client.sendMail({ from: "a@example.org", to: ["ü@example.org"] }, "x"), "SMTPUTF8"],
      [client.sendMail({ ...env, dsn: { notify: ["FAILURE"] } }, "x"), "DSN"],
    ];
    for (const [promise, capability] of cases) {
      const error = await rejection(promise);
      expect(error).toBeInstanceOf(SmtpCapabilityError);
      expect((error as SmtpCapabilityError).capability).toBe(capability);
      expect((error as SmtpCapabilityError).retryable).toBe(false);
    }
    expect(server.commands()).toEqual(["EHLO client.test"]);
    expect(client.state).toBe("ready");
    // dsn.optional sends without DSN parameters.
    await client.sendMail({ ...env, dsn: { notify: ["FAILURE"], optional: true } }, "x");
    expect(server.commands()).toContain("RCPT TO:<b@example.org>");
  });

  it("sends SIZE, BODY=8BITMIME, SMTPUTF8 and DSN parameters only when offered", async () => {
    const server = await fake({ ehlo: ["PIPELINING", "SIZE 5000", "8BITMIME", "SMTPUTF8", "DSN"] });
    const client = clientFor(server);
    await client.sendMail(
      { from: "ä@example.org", to: ["b@example.org"], size: 10, eightBit: true, smtputf8: true, dsn: { ret: "HDRS", envid: "id+1", notify: ["SUCCESS", "FAILURE"], orcpt: true } },
      "x",
    );
    expect(server.commands().slice(1, 3)).toEqual([
      "MAIL FROM:<ä@example.org> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1",
      "RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org",
    ]);
  });

  it("rejects injection in envelope addresses before connecting", async () => {
    const server = await fake();
    const client = clientFor(server);
    await expect(client.sendMail({ from: "a@x\r\nRSET", to: ["b@x"] }, "x")).rejects.toThrow(/carriage return/);
    await expect(client.sendMail({ from: "a@x", to: ["b@x>"] }, "x")).rejects.toThrow(/not allowed/);
    await expect(client.sendMail({ from: "a@x", to: [] }, "x")).rejects.toThrow(/non-empty/);
    await expect(client.sendMail({ from: "a@x", to: ["b@x"] }, "x")).resolves.toMatchObject({ accepted: ["b@x"] });
    expect(server.received).toHaveLength(1);
    expect(server.connections).toBe(1);
  });
});
