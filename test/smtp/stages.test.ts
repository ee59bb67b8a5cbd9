/**
 * Every SMTP error says where it happened (`stage`) and whether any byte of the message's
 * body had left (`bodySent`), recorded by the client as the error leaves each step.
 */
import net from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { dropAfterDot, hangOn, messageReply, noReplyToDot, recipientReplies, replyOn, startFakeServer, type FakeServerOptions, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { SmtpClient, type SmtpClientOptions } from "../../src/smtp/client.js";
import { SmtpError, type SmtpStage } from "../../src/errors.js";
import { rejection } from "../helpers/errors.js";

const servers: FakeSmtpServer[] = [];
const clients: SmtpClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function clientFor(server: FakeServerOptions, options: SmtpClientOptions = {}): Promise<SmtpClient> {
  const fake = await startFakeServer(server);
  servers.push(fake);
  const client = new SmtpClient({ host: "127.0.0.1", port: fake.port, localName: "client.test", timeout: 2000, ...options });
  clients.push(client);
  return client;
}

const env = { from: "a@example.org", to: ["b@example.org"] };

describe("stage and bodySent on SMTP errors", () => {
  const connectCases: [string, FakeServerOptions, SmtpClientOptions, SmtpStage][] = [
    ["greeting refused", { greeting: "554 5.3.2 no service" }, {}, "greeting"],
    ["STARTTLS required but not offered", {}, { tls: "starttls" }, "tls"],
    ["EHLO refused for good", { ehlo: "554 5.7.1 go away" }, {}, "ehlo"],
    ["wrong password", { users: { joe: "right" } }, { auth: { user: "joe", pass: "wrong" } }, "auth"],
    ["greeting never sent", { greeting: null }, { timeouts: { greeting: 100 } }, "greeting"],
  ];
  it.each(connectCases)("connect: %s → %s", async (_name, server, options, stage) => {
    const error = await rejection((await clientFor(server, options)).connect());
    expect(error).toBeInstanceOf(SmtpError);
    expect([(error as SmtpError).stage, (error as SmtpError).bodySent]).toEqual([stage, false]);
  });

  it("connect: connection refused → connect", async () => {
    const refuse = vi.spyOn(net, "connect").mockImplementation(((options: net.NetConnectOpts) => {
      const socket = new net.Socket();
      const { host, port } = options as net.TcpNetConnectOpts;
      process.nextTick(() => socket.emit("error", Object.assign(new Error(`connect ECONNREFUSED ${host}:${port}`), { code: "ECONNREFUSED" })));
      return socket;
    }) as typeof net.connect);
    try {
      const error = await rejection(new SmtpClient({ host: "127.0.0.1", port: 2525, timeout: 2000 }).connect());
      expect((error as SmtpError).stage).toBe("connect");
    } finally {
      refuse.mockRestore();
    }
  });

  const sendCases: [string, FakeServerOptions, SmtpClientOptions, SmtpStage, boolean][] = [
    ["MAIL refused (pipelined)", { script: replyOn("MAIL", "553 5.7.1 no") }, {}, "mail", false],
    ["MAIL refused (one at a time)", { script: replyOn("MAIL", "553 5.7.1 no") }, { pipelining: false }, "mail", false],
    ["every recipient refused", { script: recipientReplies({ "b@example.org": "550 5.1.1 unknown" }) }, {}, "rcpt", false],
    ["DATA refused", { script: replyOn("DATA", "554 5.5.1 no") }, { pipelining: false }, "data", false],
    ["MAIL never answered", { script: hangOn("MAIL") }, { pipelining: false, timeouts: { command: 100 } }, "mail", false],
    ["no reply to the final dot", { script: noReplyToDot() }, { timeouts: { finalDot: 100 } }, "final-dot", true],
    ["a drop right after the final dot", { script: dropAfterDot() }, {}, "final-dot", true],
    ["the message refused after the dot", { script: messageReply("552 5.3.4 too big") }, {}, "final-dot", true],
    ["BDAT chunk refused", { ehlo: ["PIPELINING", "CHUNKING"], script: replyOn("BDAT", "554 5.0.0 no") }, { chunking: true, chunkSize: 2 }, "body", true],
  ];
  it.each(sendCases)("sendMail: %s → %s", async (_name, server, options, stage, bodySent) => {
    const error = await rejection((await clientFor(server, options)).sendMail(env, "hello"));
    expect(error).toBeInstanceOf(SmtpError);
    expect([(error as SmtpError).stage, (error as SmtpError).bodySent]).toEqual([stage, bodySent]);
  });

  it("NOOP on a connection the server closed → noop; the next send → mail", async () => {
    const client = await clientFor({ idleTimeoutMs: 50 });
    await client.connect();
    const deadline = Date.now() + 3000;
    while (client.state !== "closed" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(((await rejection(client.noop())) as SmtpError).stage).toBe("noop");
    expect(((await rejection(client.sendMail(env, "x"))) as SmtpError).stage).toBe("mail");
  });
});
