/**
 * Hostile and broken servers (the scripted fault server): replies nobody asked for, resets
 * during the TLS handshake, odd codes where a step expects another, blank lines and huge
 * texts. Each test is named after what it guards.
 */
import { afterEach, describe, expect, it } from "vitest";
import { messageReply, replyOn, sleep, startFakeServer, type FakeServerOptions, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { makeTestCerts } from "../helpers/certs.js";
import { SmtpClient, type SmtpClientOptions } from "../../src/smtp/client.js";
import { SmtpDeliveryUnknownError, SmtpError, SmtpProtocolError, SmtpRecipientsRefusedError, SmtpTlsError } from "../../src/errors.js";
import { rejection } from "../helpers/errors.js";

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

function clientFor(server: FakeSmtpServer, options: SmtpClientOptions = {}): SmtpClient {
  const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", timeout: 2000, ...options });
  clients.push(client);
  return client;
}

async function until(condition: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await sleep(5);
  }
}

const env = { from: "a@example.org", to: ["b@example.org"] };
const NO_PIPELINING = ["8BITMIME", "SIZE 1000000", "ENHANCEDSTATUSCODES"];

describe("a reply that arrives when no command is waiting is a protocol error", () => {
  it("an early 250 after 354 (no PIPELINING) fails the message with EPROTOCOL; the late 554 reaches no later command", async () => {
    const server = await fake({
      ehlo: NO_PIPELINING,
      script: [
        replyOn("DATA", { reply: null, raw: "354 go ahead\r\n250 2.0.0 early\r\n" }, { conn: 1 }),
        { onMessage: (_m, session) => (session.id === 1 ? "554 5.6.0 the real verdict" : undefined) },
      ],
    });
    const client = clientFor(server);
    const error = await rejection(client.sendMail(env, "hello"));
    expect(error).toBeInstanceOf(SmtpProtocolError);
    expect((error as SmtpProtocolError).code).toBe("EPROTOCOL");
    expect(client.state).toBe("closed");
    // The message was never ended: no final dot left the client.
    expect(server.clientBytes().toString()).not.toMatch(/\r\n\.\r\n$/);
    // A new session starts clean: no stale reply is taken for the next MAIL FROM.
    await client.connect();
    const result = await client.sendMail(env, "second");
    expect(result.reply.code).toBe(250);
  });

  it("an early 250 that arrives while the body streams stops the body before the final dot", async () => {
    let earlySent = false;
    const server = await fake({
      ehlo: NO_PIPELINING,
      script: {
        onCommand: (cmd, session) => {
          if (cmd.verb === "DATA") {
            setTimeout(() => {
              session.send("250 2.0.0 early");
              earlySent = true;
            }, 5);
          }
          return undefined;
        },
      },
    });
    const client = clientFor(server);
    async function* body() {
      yield Buffer.from("first line\r\n");
      await until(() => earlySent);
      // Once the client has read the early reply (it drops the session), the rest follows.
      await until(() => client.state === "closed", 10_000);
      for (let i = 0; i < 20; i++) {
        yield Buffer.from(`line ${i}\r\n`);
        await sleep(5);
      }
    }
    const error = await rejection(client.sendMail(env, body()));
    expect(error).toBeInstanceOf(SmtpProtocolError);
    expect((error as SmtpError).bodySent).toBe(true);
    expect((error as SmtpError).stage).toBe("body");
    expect((error as SmtpError).retryable).toBe(true);
    expect(server.clientBytes().toString()).not.toContain("\r\n.\r\n");
    expect(server.received).toHaveLength(0);
  });

  it("a second reply right behind the final dot's makes the outcome unknown (EPROTOCOL cause)", async () => {
    const server = await fake({ script: messageReply({ reply: "250 2.0.0 ok", raw: "554 5.0.0 and another\r\n" }) });
    const client = clientFor(server);
    const error = await rejection(client.sendMail(env, "x"));
    expect(error).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect((error as Error).cause).toBeInstanceOf(SmtpProtocolError);
    expect(client.state).toBe("closed");
  });
});

describe("TLS handshake reset", () => {
  it.each(["implicit", "starttls"] as const)("a TCP reset during the %s handshake is retryable (nothing was sent)", async (mode) => {
    const certs = await makeTestCerts();
    const server = await fake({ tls: mode, key: certs.server.key, cert: certs.server.cert, resetTlsHandshake: true });
    for (let i = 0; i < 5; i++) {
      const client = clientFor(server, { tls: mode, tlsOptions: { ca: certs.ca } });
      const error = await rejection(client.connect());
      expect(error).toBeInstanceOf(SmtpTlsError);
      expect((error as SmtpTlsError).retryable).toBe(true);
      expect(client.state).toBe("closed");
    }
  });
});

describe("DATA answered 250 instead of 354", () => {
  it.each([true, false])("withholds the body and is retryable (pipelining %s)", async (pipelining) => {
    const server = await fake({ script: replyOn("DATA", "250 2.0.0 ok?") });
    const client = clientFor(server, { pipelining });
    const error = await rejection(client.sendMail(env, "the body"));
    expect(error).toBeInstanceOf(SmtpError);
    expect((error as SmtpError).replyCode).toBe(250);
    expect((error as SmtpError).retryable).toBe(true);
    expect(server.clientBytes().toString()).not.toContain("the body");
  });
});

describe("blank lines before a reply", () => {
  it("are skipped", async () => {
    const server = await fake({ greeting: { reply: null, raw: "\r\n\r\n220 fake ready\r\n" }, script: replyOn("NOOP", { reply: null, raw: "\r\n250 2.0.0 fine\r\n" }) });
    const client = clientFor(server);
    await client.connect();
    expect(client.greeting?.text).toBe("fake ready");
    expect((await client.noop()).text).toBe("fine");
    expect((await client.sendMail(env, "x")).reply.code).toBe(250);
  });

  it("are bounded: a flood of them is a protocol error", async () => {
    const server = await fake({ script: replyOn("EHLO", { reply: null, raw: `${"\r\n".repeat(100)}250 fake\r\n` }) });
    const error = await rejection(clientFor(server).connect());
    expect(error).toBeInstanceOf(SmtpProtocolError);
  });
});

describe("EHLO refused", () => {
  it("with 554 fails the session: no HELO fallback", async () => {
    const server = await fake({ ehlo: "554 5.7.1 You are not welcome" });
    const client = clientFor(server);
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpError);
    expect((error as SmtpError).replyCode).toBe(554);
    expect(server.commands()).not.toContain("HELO client.test");
    expect(client.state).toBe("closed");
  });

  it("with 500 (not recognised) falls back to HELO", async () => {
    const server = await fake({ ehlo: "500 5.5.1 what?" });
    const client = clientFor(server);
    await client.connect();
    expect(server.commands()).toEqual(["EHLO client.test", "HELO client.test"]);
  });
});

describe("a huge reply text", () => {
  it("is capped in error.message; serverText keeps it whole", async () => {
    const text = "x".repeat(7000);
    const server = await fake({ script: replyOn("MAIL", `553 5.7.1 ${text}`) });
    const error = await rejection(clientFor(server).sendMail(env, "x"));
    expect(error).toBeInstanceOf(SmtpError);
    expect(error.message.length).toBeLessThan(600);
    expect((error as SmtpError).serverText).toBe(text);
  });

  it("is capped per recipient, and at most 10 recipients are named, when every recipient is refused", async () => {
    const to = Array.from({ length: 30 }, (_, i) => `r${i}@example.org`);
    const server = await fake({ script: { onCommand: (cmd) => (cmd.verb === "RCPT" ? `550 5.1.1 ${"y".repeat(5000)}` : undefined) } });
    const error = await rejection(clientFor(server).sendMail({ from: "a@example.org", to }, "x"));
    expect(error).toBeInstanceOf(SmtpRecipientsRefusedError);
    expect(error.message.length).toBeLessThan(4000);
    expect(error.message).toContain("and 20 more");
    expect((error as SmtpRecipientsRefusedError).rejected).toHaveLength(30);
    expect((error as SmtpRecipientsRefusedError).rejected[29]!.reply.text).toHaveLength(5000);
  });
});
