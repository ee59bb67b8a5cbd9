/**
 * The client at the edges its other tests leave open, against the scripted fault server
 * (test/helpers/fake-smtp-server.ts): each reply code a step accepts or refuses, each
 * fallback, and what the client's state, errors and the server's log show afterwards.
 */
import diagnosticsChannel from "node:diagnostics_channel";
import { getEventListeners } from "node:events";
import net from "node:net";
import os from "node:os";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { dropOn, hangOn, messageReply, recipientReplies, replyOn, startFakeServer, type FakeServerOptions, type FakeSmtpServer, type Script } from "../helpers/fake-smtp-server.js";
import { SmtpClient, type SmtpClientOptions } from "../../src/smtp/client.js";
import { ANNOUNCE, DATA_WRITTEN } from "../../src/smtp/pipeline.js";
import { AbortError, InvalidArgumentError, SmtpAuthError, SmtpClosedError, SmtpConnectError, SmtpDeliveryUnknownError, SmtpError, SmtpProtocolError, SmtpTlsError } from "../../src/errors.js";
import type { TranscriptEntry } from "../../src/smtp/transcript.js";
import type { Clock, TimerHandle } from "../../src/observe/clock.js";
import { EVENT_CHANNEL_NAMES } from "../../src/observe/channels.js";
import { rejection } from "../helpers/errors.js";
import { makeTestCerts } from "../helpers/certs.js";
import { capturePino } from "../observe/helpers.js";

const servers: FakeSmtpServer[] = [];
const clients: SmtpClient[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
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

const env = { from: "a@example.org", to: ["b@example.org"] };

describe("recipients", () => {
  it("251 (user not local; will forward) counts as accepted, like 250", async () => {
    const server = await fake({ script: recipientReplies({ "fwd@example.org": "251 2.1.5 User not local; will forward" }) });
    const client = clientFor(server);
    const result = await client.sendMail({ from: "a@example.org", to: ["fwd@example.org", "b@example.org"] }, "x");
    expect(result.accepted).toEqual(["fwd@example.org", "b@example.org"]);
    expect(result.rejected).toEqual([]);
    expect(server.received[0]!.rcptTo).toEqual(["fwd@example.org", "b@example.org"]);
  });
});

describe("STARTTLS", () => {
  const tlsServer = async (extra: FakeServerOptions = {}): Promise<{ server: FakeSmtpServer; ca: string }> => {
    const certs = await makeTestCerts();
    return { server: await fake({ tls: "starttls", key: certs.server.key, cert: certs.server.cert, ...extra }), ca: certs.ca };
  };

  it("the connection dropped at STARTTLS: the drop is the error, at stage tls, also when plaintext would do", async () => {
    for (const tls of ["starttls", "opportunistic"] as const) {
      const { server, ca } = await tlsServer({ script: dropOn("STARTTLS") });
      const client = clientFor(server, { tls, tlsOptions: { ca, servername: "localhost" } });
      const error = (await rejection(client.connect())) as SmtpError;
      expect(error).toBeInstanceOf(SmtpClosedError);
      expect(error.stage).toBe("tls");
      expect(client.state).toBe("closed");
    }
  });

  it("421 to STARTTLS (the server closing): that error, even for opportunistic", async () => {
    const { server, ca } = await tlsServer({ script: replyOn("STARTTLS", { reply: "421 4.3.2 closing", then: "close" }) });
    const client = clientFor(server, { tls: "opportunistic", tlsOptions: { ca, servername: "localhost" } });
    const error = (await rejection(client.connect())) as SmtpError;
    expect(error.replyCode).toBe(421);
    expect(error.retryable).toBe(true);
    expect(client.state).toBe("closed");
  });

  it("STARTTLS refused when required: SmtpTlsError naming the command and the reply", async () => {
    const { server, ca } = await tlsServer({ script: replyOn("STARTTLS", "454 4.7.0 TLS not available") });
    const client = clientFor(server, { tls: "starttls", tlsOptions: { ca, servername: "localhost" } });
    const error = (await rejection(client.connect())) as SmtpTlsError;
    expect(error).toBeInstanceOf(SmtpTlsError);
    expect(error.message).toBe(`127.0.0.1:${server.port} refused STARTTLS: 454 TLS not available`);
    expect(error.command).toBe("STARTTLS");
    expect(error.replyCode).toBe(454);
  });

  it("after STARTTLS the enhanced codes are forgotten with the rest (RFC 3207 §4.2): a refused EHLO over TLS keeps its text whole", async () => {
    const { server, ca } = await tlsServer({ script: replyOn("EHLO", "554 5.7.1 not over TLS", { nth: 2 }) });
    const client = clientFor(server, { tls: "starttls", tlsOptions: { ca, servername: "localhost" } });
    const error = (await rejection(client.connect())) as SmtpError;
    expect(error.replyCode).toBe(554);
    expect(error.stage).toBe("ehlo");
    expect(error.enhancedCode).toBeUndefined();
    expect(error.reply?.text).toBe("5.7.1 not over TLS");
  });

  it('"opportunistic" without STARTTLS offered goes on in plaintext, without asking for it', async () => {
    const server = await fake();
    const client = clientFor(server, { tls: "opportunistic" });
    await client.connect();
    expect(client.state).toBe("ready");
    expect(client.secure).toBe(false);
    await client.sendMail(env, "x");
    expect(server.commands()).toEqual(["EHLO client.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"]);
  });
});

describe("connect", () => {
  it("joins a connect in progress, resolves at once when ready, and sendMail waits for a connect under way", async () => {
    const server = await fake();
    const client = clientFor(server);
    const first = client.connect();
    const second = client.connect();
    const sent = client.sendMail(env, "x");
    await Promise.all([first, second]);
    await sent;
    await client.connect();
    expect(server.connections).toBe(1);
    expect(server.commands()).toEqual(["EHLO client.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"]);
    expect(client.transactions).toBe(1);
  });

  it("a closed client connects afresh on connect(), forgetting what the last session learnt", async () => {
    const server = await fake({ authMechanisms: ["PLAIN"] });
    const client = clientFor(server, { auth: { user: "u", pass: "p" } });
    await client.connect();
    expect(client.authenticatedAs).toBe("u");
    expect(client.greeting?.code).toBe(220);
    const firstId = client.connectionId;
    client.destroy();
    expect(client.state).toBe("closed");
    await client.connect();
    expect(client.state).toBe("ready");
    expect(client.connectionId).not.toBe(firstId);
    expect(server.connections).toBe(2);
  });

  it("greeting and capabilities are forgotten when a reconnect fails at the greeting", async () => {
    let n = 0;
    const server = await fake({ greeting: () => (++n === 1 ? undefined : "554 5.3.2 not now") });
    const client = clientFor(server);
    await client.connect();
    expect(client.capabilities?.pipelining).toBe(true);
    client.destroy();
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpConnectError);
    expect(client.greeting?.code).toBe(554);
    expect(client.capabilities).toBeUndefined();
  });

  it("a server that closes before its greeting: SmtpConnectError saying so, retryable", async () => {
    const server = await fake({ greeting: { reply: null, then: "close" } });
    const client = clientFor(server);
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpConnectError);
    expect(error.message).toBe(`127.0.0.1:${server.port} closed the connection before greeting`);
    expect((error as SmtpConnectError).retryable).toBe(true);
    expect(error.cause).toBeInstanceOf(SmtpClosedError);
    expect((error.cause as SmtpClosedError).command).toBe("<greeting>");
    expect(client.state).toBe("closed");
  });

  it("without localName, says EHLO with the host's name when it is a domain, else the address literal", async () => {
    const server = await fake();
    const hostname = vi.spyOn(os, "hostname");
    const say = async (name: string): Promise<string> => {
      hostname.mockReturnValue(name);
      const client = new SmtpClient({ host: "127.0.0.1", port: server.port, timeout: 2000 });
      clients.push(client);
      await client.connect();
      await client.quit();
      return server.commands().at(-2)!;
    };
    expect(await say("mail.example.org")).toBe("EHLO mail.example.org");
    expect(await say("localhost")).toBe("EHLO [127.0.0.1]");
    expect(await say("bad name.example.org")).toBe("EHLO [127.0.0.1]");
  });
});

describe("EHLO and HELO", () => {
  it("EHLO answered 500 (not recognised) falls back to HELO; the session has no extensions", async () => {
    const server = await fake({ ehlo: "500 5.5.1 Command unrecognized" });
    const client = clientFor(server);
    await client.connect();
    expect(client.capabilities?.esmtp).toBe(false);
    expect(client.capabilities?.pipelining).toBe(false);
    expect(server.commands()).toEqual(["EHLO client.test", "HELO client.test"]);
  });

  it("EHLO answered 502 and the connection closed: the HELO finds it closed, the session fails (retryable)", async () => {
    const server = await fake({ script: replyOn("EHLO", { reply: "502 5.5.2 not here", then: "close" }) });
    const client = clientFor(server);
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect((error as SmtpError).retryable).toBe(true);
    expect((error as SmtpError).stage).toBe("ehlo");
    expect(server.commands()).toEqual(["EHLO client.test"]);
    expect(client.state).toBe("closed");
  });

  it("HELO refused after the fallback: SmtpError at stage ehlo, QUIT, closed", async () => {
    const server = await fake({ ehlo: "502 5.5.2 not here", script: replyOn("HELO", "554 5.7.1 go away") });
    const client = clientFor(server);
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpError);
    expect((error as SmtpError).replyCode).toBe(554);
    expect((error as SmtpError).stage).toBe("ehlo");
    expect(server.commands()).toEqual(["EHLO client.test", "HELO client.test", "QUIT"]);
    expect(client.state).toBe("closed");
  });

  it("EHLO refused with 554 (no service for you): no HELO, SmtpError at stage ehlo, QUIT", async () => {
    const server = await fake({ ehlo: "554 5.7.1 not you" });
    const client = clientFor(server);
    const error = (await rejection(client.connect())) as SmtpError;
    expect(error.replyCode).toBe(554);
    expect(error.stage).toBe("ehlo");
    expect(server.commands()).toEqual(["EHLO client.test", "QUIT"]);
  });

  it("a 554 greeting: the session refused, in so many words", async () => {
    const server = await fake({ greeting: "554 5.3.2 No SMTP service here" });
    const client = clientFor(server);
    const error = (await rejection(client.connect())) as SmtpConnectError;
    expect(error.message).toBe(`127.0.0.1:${server.port} refused the session: 554 5.3.2 No SMTP service here`);
    expect(error.command).toBe("<greeting>");
    expect(client.greeting?.code).toBe(554);
  });

  it("a greeting that is not a reply: a protocol error, not a refusal", async () => {
    const server = await fake({ greeting: { raw: "hello there\r\n" } });
    const client = clientFor(server);
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpProtocolError);
    expect(client.greeting).toBeUndefined();
    expect(client.state).toBe("closed");
  });

  it("ENHANCEDSTATUSCODES offered: refusals carry the enhanced code; not offered (HELO): the text stays whole", async () => {
    const refusal = replyOn("MAIL", "553 5.1.8 sender refused");
    const withCodes = await fake({ script: refusal });
    const a = clientFor(withCodes);
    const e1 = (await rejection(a.sendMail(env, "x"))) as SmtpError;
    expect(e1.enhancedCode).toBe("5.1.8");
    expect(e1.reply?.text).toBe("sender refused");

    const without = await fake({ ehlo: "502 5.5.2 not here", script: refusal });
    const b = clientFor(without);
    const e2 = (await rejection(b.sendMail(env, "x"))) as SmtpError;
    expect(e2.enhancedCode).toBeUndefined();
    expect(e2.reply?.text).toBe("5.1.8 sender refused");
  });
});

describe("AUTH", () => {
  const challenges = (n: number): FakeServerOptions => {
    let sent = 0;
    return {
      authMechanisms: ["PLAIN"],
      script: {
        onCommand: (cmd) => {
          if (cmd.verb === "AUTH" || cmd.line === "") return sent++ < n ? "334 " : "235 2.7.0 Authentication successful";
          return undefined;
        },
      },
    };
  };

  it(`answers up to 5 challenges`, async () => {
    const server = await fake(challenges(5));
    const client = clientFor(server, { auth: { user: "u", pass: "p" } });
    await client.connect();
    expect(client.authenticatedAs).toBe("u");
    expect(server.commands().filter((c) => c === "")).toHaveLength(5);
  });

  it("a 6th challenge: the exchange is cancelled with '*', SmtpAuthError, nobody authenticated", async () => {
    const server = await fake(challenges(6));
    const log: TranscriptEntry[] = [];
    const client = clientFor(server, { auth: { user: "u", pass: "p" }, transcript: (e) => log.push(e) });
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toBe("The server sent more than 5 AUTH PLAIN challenges");
    expect((error as SmtpAuthError).command).toBe("AUTH PLAIN <redacted>");
    expect(log.filter((e) => e.direction === "client").map((e) => e.line).slice(-2)).toEqual(["*", "QUIT"]);
    expect(server.commands().slice(1)).toEqual([expect.stringMatching(/^AUTH PLAIN /), "", "", "", "", "", "*", "QUIT"]);
    expect(client.authenticatedAs).toBeUndefined();
  });

  it("a mechanism that gives up (a 3rd LOGIN challenge): its error, even when the server drops at the '*'", async () => {
    const server = await fake({
      authMechanisms: ["LOGIN"],
      script: {
        onCommand: (cmd) => {
          if (cmd.line === "*") return { reply: null, then: "destroy" };
          if (cmd.verb === "AUTH" || /^[A-Za-z0-9+/=]+$/.test(cmd.line)) return "334 UGFzc3dvcmQ6";
          return undefined;
        },
      },
    });
    const client = clientFor(server, { auth: { user: "u", pass: "p" }, authMethod: "LOGIN" });
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toBe("The server sent more LOGIN challenges than a user name and a password");
    expect(server.commands().slice(1)).toEqual(["AUTH LOGIN", "dQ==", "cA==", "*"]);
    expect(client.state).toBe("closed");
  });

  it("to a host that is not loopback, AUTH goes once the connection is secure (after STARTTLS)", async () => {
    const certs = await makeTestCerts();
    const server = await fake({ tls: "starttls", key: certs.server.key, cert: certs.server.cert, authMechanisms: ["PLAIN"] });
    const toLoopback: net.LookupFunction = (_hostname, options, callback) => {
      if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
      else callback(null, "127.0.0.1", 4);
    };
    const client = clientFor(server, {
      host: "mail.example.test",
      lookup: toLoopback,
      tls: "starttls",
      tlsOptions: { ca: certs.ca, servername: "localhost" },
      auth: { user: "u", pass: "p" },
    });
    await client.connect();
    expect(client.secure).toBe(true);
    expect(client.authenticatedAs).toBe("u");
    expect(server.commands()).toEqual(["EHLO client.test", "STARTTLS", "EHLO client.test", expect.stringMatching(/^AUTH PLAIN /)]);
  });

  it("the connection dropped at AUTH without a reply: the drop is the error, at stage auth", async () => {
    const server = await fake({ authMechanisms: ["PLAIN"], script: dropOn("AUTH") });
    const client = clientFor(server, { auth: { user: "u", pass: "p" } });
    const error = (await rejection(client.connect())) as SmtpError;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.stage).toBe("auth");
  });

  it("destroy() while the exchange is being cancelled: SmtpClosedError at stage auth", async () => {
    const server = await fake(challenges(6));
    let client: SmtpClient | undefined;
    client = clientFor(server, {
      auth: { user: "u", pass: "p" },
      transcript: (e) => {
        if (e.direction === "client" && e.line === "*") client!.destroy();
      },
    });
    const error = (await rejection(client.connect())) as SmtpError;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.stage).toBe("auth");
  });

  it("credentials refused: SmtpAuthError naming the mechanism and the reply", async () => {
    const server = await fake({ authMechanisms: ["PLAIN"], users: { u: "right" } });
    const client = clientFor(server, { auth: { user: "u", pass: "wrong" } });
    const error = (await rejection(client.connect())) as SmtpAuthError;
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toMatch(/^Authentication with PLAIN failed: 535 /);
    expect(error.stage).toBe("auth");
  });

  it("421 to AUTH (the server closing): a retryable SmtpError, not an authentication failure", async () => {
    const server = await fake({ authMechanisms: ["PLAIN"], script: replyOn("AUTH", { reply: "421 4.7.0 closing", then: "close" }) });
    const client = clientFor(server, { auth: { user: "u", pass: "p" } });
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpError);
    expect(error).not.toBeInstanceOf(SmtpAuthError);
    expect((error as SmtpError).replyCode).toBe(421);
    expect((error as SmtpError).retryable).toBe(true);
    expect((error as SmtpError).stage).toBe("auth");
    expect(client.state).toBe("closed");
  });
});

describe("the transaction", () => {
  it("DATA refused (one command at a time): the body is withheld, RSET, still ready", async () => {
    const server = await fake({ ehlo: ["8BITMIME"], script: replyOn("DATA", "554 5.5.1 no valid recipients") });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error).toBeInstanceOf(SmtpError);
    expect(error.message).toBe("DATA was refused: 554 5.5.1 no valid recipients");
    expect(error.stage).toBe("data");
    expect(error.bodySent).toBe(false);
    expect(server.commands()).toEqual(["EHLO client.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA", "RSET"]);
    expect(server.received).toHaveLength(0);
    expect(client.state).toBe("ready");
    await client.sendMail(env, "y");
    expect(server.received).toHaveLength(1);
  });

  it("DATA refused (pipelined): the same, RSET after the group", async () => {
    const server = await fake({ script: replyOn("DATA", "451 4.3.0 try later") });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error.message).toBe("DATA was refused: 451 try later");
    expect(error.retryable).toBe(true);
    expect(server.commands().slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA", "RSET"]);
    expect(client.state).toBe("ready");
  });

  it("MAIL refused one command at a time: no RCPT is sent", async () => {
    const server = await fake({ ehlo: ["8BITMIME"], script: replyOn("MAIL", "553 5.1.8 no") });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error.message).toBe("MAIL FROM was refused: 553 5.1.8 no");
    expect(error.stage).toBe("mail");
    expect(server.commands().slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RSET"]);
    expect(client.state).toBe("ready");
  });

  it("a refusal whose RSET fails too: the connection is dropped", async () => {
    const server = await fake({ ehlo: ["8BITMIME"], script: [replyOn("MAIL", "553 5.1.8 no"), replyOn("RSET", "500 5.5.1 what")] });
    const client = clientFor(server);
    await rejection(client.sendMail(env, "x"));
    expect(client.state).toBe("closed");
    await server.waitForClosed(1);
  });

  it("a refused BDAT chunk before the last: the rest is withheld, RSET, still ready", async () => {
    const server = await fake({ ehlo: ["CHUNKING", "PIPELINING"], script: replyOn("BDAT", "552 5.3.4 too much") });
    const client = clientFor(server, { chunking: true, chunkSize: 1024 });
    const body = Buffer.alloc(3000, "a");
    const error = (await rejection(client.sendMail(env, body))) as SmtpError;
    expect(error.message).toBe("BDAT 1024 was refused: 552 5.3.4 too much");
    expect(error.stage).toBe("body");
    expect(error.bodySent).toBe(true);
    expect(server.commands().filter((c) => c.startsWith("BDAT"))).toEqual(["BDAT 1024"]);
    expect(server.commands().at(-1)).toBe("RSET");
    expect(server.received).toHaveLength(0);
    expect(client.state).toBe("ready");
  });

  it("BDAT: every chunk but the last is answered before the next goes; the last carries LAST", async () => {
    const server = await fake({ ehlo: ["CHUNKING"] });
    const client = clientFor(server, { chunking: true, chunkSize: 1024 });
    const body = Buffer.alloc(2500, "b");
    const result = await client.sendMail(env, body);
    expect(result.reply.code).toBe(250);
    expect(server.commands().filter((c) => c.startsWith("BDAT"))).toEqual(["BDAT 1024", "BDAT 1024", "BDAT 454 LAST"]);
    expect(server.received[0]!.via).toBe("BDAT");
  });

  it("a body stream that fails during BDAT: the connection is dropped, nothing delivered", async () => {
    const server = await fake({ ehlo: ["CHUNKING"] });
    const client = clientFor(server, { chunking: true, chunkSize: 1024 });
    const body = new Readable({
      read() {
        this.push(Buffer.alloc(2048, "c"));
        this.destroy(new SmtpConnectError("disk gone"));
      },
    });
    const error = await rejection(client.sendMail(env, body));
    expect(error.message).toBe("disk gone");
    expect((error as SmtpError).stage).toBe("body");
    expect(client.state).toBe("closed");
    expect(server.received).toHaveLength(0);
  });

  it("the server's queue id is in the result when its reply names one, absent when not", async () => {
    const named = await fake({ script: messageReply("250 2.0.0 Ok: queued as 4Xk9Lz1BqQ") });
    expect((await clientFor(named).sendMail(env, "x")).queueId).toBe("4Xk9Lz1BqQ");
    const plain = await fake({ script: messageReply("250 2.0.0 Ok") });
    const result = await clientFor(plain).sendMail(env, "x");
    expect("queueId" in result).toBe(false);
    expect(result).toEqual({ accepted: ["b@example.org"], rejected: [], reply: expect.objectContaining({ code: 250 }) });
  });

  it("a 4xx after the final dot: refused (retryable), RSET, ready", async () => {
    const server = await fake({ script: messageReply("451 4.3.0 queue full") });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error.message).toBe("127.0.0.1 refused the message: 451 queue full");
    expect(error.stage).toBe("final-dot");
    expect(error.bodySent).toBe(true);
    expect(error.retryable).toBe(true);
    expect(server.commands().at(-1)).toBe("RSET");
    expect(client.state).toBe("ready");
  });
});

describe("NOOP, RSET, QUIT", () => {
  it("before connect(): InvalidArgumentError naming the state", async () => {
    const server = await fake();
    const client = clientFor(server);
    for (const call of [() => client.noop(), () => client.reset()]) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toBe('The client is not connected (state "idle"); call connect() first');
    }
    expect(server.connections).toBe(0);
  });

  it("after the server hung up: SmtpClosedError naming why, with the stage of the call", async () => {
    const server = await fake({ script: dropOn("NOOP") });
    const client = clientFor(server);
    await client.connect();
    await rejection(client.noop());
    const error = (await rejection(client.reset())) as SmtpClosedError;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.message).toMatch(new RegExp(`^The connection to 127\\.0\\.0\\.1:${server.port} is closed \\(.+\\); call connect\\(\\) again$`));
    expect(error.stage).toBe("rset");
    expect(error.retryable).toBe(true);
  });

  it("RSET and NOOP answer with the server's reply", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    expect((await client.reset()).code).toBe(250);
    expect((await client.noop()).code).toBe(250);
    expect(server.commands().slice(1)).toEqual(["RSET", "NOOP"]);
  });

  it("quit() to a server that never answers QUIT still closes", async () => {
    const server = await fake({ script: hangOn("QUIT") });
    const client = clientFor(server, { timeout: 200 });
    await client.connect();
    await client.quit();
    expect(client.state).toBe("closed");
    expect(server.commands().at(-1)).toBe("QUIT");
  });
});

describe("pipelining across messages", () => {
  const next = { from: "a@example.org", to: ["c@example.org"] };

  /** The server's log as "c LINE" / "s LINE" for the client's lines and the server's first reply lines. */
  const wireAfterDot = (server: FakeSmtpServer, nth: number): string[] => {
    const dots = server.transcript.filter((e) => e.dir === "c" && e.kind === "data");
    const after = server.transcript.slice(server.transcript.indexOf(dots[nth - 1]!) + 1);
    return after.slice(0, 3).map((e) => `${e.dir} ${e.text}`);
  };

  it("an envelope sent without being announced leaves the announced one in line, written behind its dot", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    client[ANNOUNCE](next);
    await client.sendMail({ from: "a@example.org", to: ["d@example.org"] }, "unannounced");
    expect(wireAfterDot(server, 1)).toEqual(["c MAIL FROM:<a@example.org>", "c RCPT TO:<c@example.org>", "c DATA"]);
    await client.sendMail(next, "two");
    expect(server.received.map((m) => m.rcptTo[0])).toEqual(["d@example.org", "c@example.org"]);
  });

  it("withdrawing an announcement already sent leaves the others announced", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    const third = { from: "a@example.org", to: ["e@example.org"] };
    const first = client[ANNOUNCE](env);
    client[ANNOUNCE](next);
    client[ANNOUNCE](third);
    await client.sendMail(env, "one");
    first.withdraw();
    await client.sendMail(next, "two");
    expect(wireAfterDot(server, 2)).toEqual(["c MAIL FROM:<a@example.org>", "c RCPT TO:<e@example.org>", "c DATA"]);
    await client.sendMail(third, "three");
    expect(server.received).toHaveLength(3);
    expect(client.state).toBe("ready");
  });

  it("commands written ahead on a connection that is gone are not reused: after reconnecting the message is sent afresh", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    client[ANNOUNCE](next);
    await client.sendMail(env, "one");
    client.destroy();
    await client.connect();
    const result = await client.sendMail(next, "two");
    expect(result.accepted).toEqual(["c@example.org"]);
    expect(server.commands(2).slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RCPT TO:<c@example.org>", "DATA"]);
    expect(server.received.map((m) => m.conn)).toEqual([1, 2]);
  });

  it("a recipient of the message written ahead refused: partial success as data", async () => {
    const server = await fake({ script: recipientReplies({ "x@example.org": "550 5.1.1 no such user" }) });
    const client = clientFor(server);
    await client.connect();
    const partly = { from: "a@example.org", to: ["x@example.org", "c@example.org"] };
    client[ANNOUNCE](partly);
    await client.sendMail(env, "one");
    const result = await client.sendMail(partly, "two");
    expect(result.accepted).toEqual(["c@example.org"]);
    expect(result.rejected.map((r) => [r.address, r.reply.code])).toEqual([["x@example.org", 550]]);
  });

  it("[DATA_WRITTEN] called during an operation that writes no message resolves when it ends", async () => {
    const server = await fake({ script: replyOn("NOOP", { delayMs: 50 }) });
    const client = clientFor(server);
    await client.connect();
    let resolved = false;
    const noop = client.noop();
    const written = client[DATA_WRITTEN]().then(() => (resolved = true));
    await noop;
    await written;
    expect(resolved).toBe(true);
  });

  it("the next message's MAIL, RCPT and DATA go in the same write as the final dot", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    client[ANNOUNCE](next);
    await client.sendMail(env, "one");
    await client.sendMail(next, "two");
    expect(server.received.map((m) => m.rcptTo)).toEqual([["b@example.org"], ["c@example.org"]]);
    // message one's dot, then message two's commands, before the server answered the dot
    const flight = server.transcript.find((e) => e.dir === "c" && e.kind === "data")!;
    const after = server.transcript.slice(server.transcript.indexOf(flight) + 1);
    expect(after.slice(0, 3).map((e) => `${e.dir} ${e.text}`)).toEqual(["c MAIL FROM:<a@example.org>", "c RCPT TO:<c@example.org>", "c DATA"]);
    expect(client.transactions).toBe(2);
  });

  it("an announcement made while the final dot's reply is awaited goes out at once", async () => {
    const server = await fake({ script: messageReply({ delayMs: 100 }) });
    const client = clientFor(server);
    await client.connect();
    const first = client.sendMail(env, "one");
    await client[DATA_WRITTEN]();
    client[ANNOUNCE](next);
    await first;
    expect(server.commands().slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA", "MAIL FROM:<a@example.org>", "RCPT TO:<c@example.org>", "DATA"]);
    await client.sendMail(next, "two");
    expect(server.received).toHaveLength(2);
  });

  it("one message at a time is written ahead: a second announcement while the dot's reply is awaited waits its turn", async () => {
    const server = await fake({ script: { onMessage: (msg) => (msg.data.toString() === "one\r\n" ? { delayMs: 100 } : undefined) } });
    const client = clientFor(server);
    await client.connect();
    const third = { from: "a@example.org", to: ["e@example.org"] };
    const first = client.sendMail(env, "one");
    await client[DATA_WRITTEN]();
    client[ANNOUNCE](next);
    client[ANNOUNCE](third);
    await first;
    expect(server.commands().slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA", "MAIL FROM:<a@example.org>", "RCPT TO:<c@example.org>", "DATA"]);
    await client.sendMail(next, "two");
    expect(wireAfterDot(server, 2)).toEqual(["c MAIL FROM:<a@example.org>", "c RCPT TO:<e@example.org>", "c DATA"]);
    await client.sendMail(third, "three");
    expect(server.received.map((m) => m.rcptTo[0])).toEqual(["b@example.org", "c@example.org", "e@example.org"]);
  });

  it("[DATA_WRITTEN] resolves at once when nothing is running", async () => {
    const server = await fake();
    const client = clientFor(server);
    let resolved = false;
    void client[DATA_WRITTEN]().then(() => (resolved = true));
    await Promise.resolve();
    await Promise.resolve();
    expect(resolved).toBe(true);
  });

  it("withdrawn after its commands were written: the connection is dropped, nothing more is delivered", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    const announcement = client[ANNOUNCE](next);
    await client.sendMail(env, "one");
    announcement.withdraw();
    expect(client.state).toBe("closed");
    await server.waitForClosed(1);
    expect(server.received).toHaveLength(1);
  });

  it("withdrawn before its commands were written: nothing happens, the next sendMail runs as usual", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    const announcement = client[ANNOUNCE](next);
    announcement.withdraw();
    await client.sendMail(env, "one");
    expect(client.state).toBe("ready");
    expect(server.commands().slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"]);
  });

  it("NOOP while a message's commands are out: an internal error, nothing written", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    client[ANNOUNCE](next);
    await client.sendMail(env, "one");
    const count = server.commands().length;
    await expect(client.noop()).rejects.toThrow(/^Internal error: a command other than the announced message's/);
    await expect(client.reset()).rejects.toThrow(/^Internal error/);
    await expect(client.sendMail(env, "other")).rejects.toThrow("Internal error: sendMail called with another envelope than the one announced and already written");
    expect(server.commands()).toHaveLength(count);
  });

  it("close() while a message's commands are out: no QUIT (it would be message text), the connection dropped", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    client[ANNOUNCE](next);
    await client.sendMail(env, "one");
    await client.close();
    expect(client.state).toBe("closed");
    await server.waitForClosed(1);
    expect(server.commands()).not.toContain("QUIT");
  });

  it("an announced envelope the server cannot take is not written ahead: its sendMail reports why", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    const unsuitable = { from: "a@example.org", to: ["ü@example.org"] };
    client[ANNOUNCE](unsuitable);
    await client.sendMail(env, "one");
    expect(server.commands().slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"]);
    await expect(client.sendMail(unsuitable, "two")).rejects.toThrow(/SMTPUTF8/);
  });

  it("without PIPELINING (offered or allowed), or with BDAT, nothing is written ahead", async () => {
    const cases: [FakeServerOptions, SmtpClientOptions][] = [
      [{ ehlo: ["8BITMIME"] }, {}],
      [{ ehlo: ["PIPELINING", "CHUNKING"] }, { chunking: true }],
      [{}, { pipelining: false }],
    ];
    for (const [options, clientOptions] of cases) {
      const server = await fake(options);
      const client = clientFor(server, clientOptions);
      await client.connect();
      client[ANNOUNCE](next);
      await client.sendMail(env, "one");
      await client.noop(); // refused while a message's commands are out
      expect(server.commands().filter((c) => c.startsWith("MAIL"))).toHaveLength(1);
      await client.sendMail(next, "two");
      expect(server.received).toHaveLength(2);
    }
  });
});

describe("the connection's events", () => {
  it("smtp.tls after STARTTLS, smtp.auth with its mechanism, smtp.close by QUIT counting this connection's messages", async () => {
    const certs = await makeTestCerts();
    const server = await fake({ tls: "starttls", key: certs.server.key, cert: certs.server.cert, authMechanisms: ["PLAIN"] });
    const capture = capturePino("info");
    const client = clientFor(server, { tls: "starttls", tlsOptions: { ca: certs.ca, servername: "localhost" }, auth: { user: "u", pass: "p" }, logger: capture.logger });
    await client.sendMail(env, "one");
    await client.sendMail(env, "two");
    await client.quit();
    const records = capture.records();
    expect(records.map((r) => r["event"])).toEqual(["smtp.connect", "smtp.tls", "smtp.auth", "smtp.close"]);
    expect(records[1]).toMatchObject({ starttls: true, authorized: true });
    expect(records[2]).toMatchObject({ mechanism: "PLAIN" });
    expect(records[3]).toMatchObject({ reason: "quit", messages: 2 });
    // each step's duration is measured from its own start
    for (const record of records) expect(record["durationMs"]).toEqual(expect.any(Number));
  });

  it("a connection that drops closes with reason error; the next connection counts its messages from zero", async () => {
    const server = await fake({ script: dropOn("RSET") });
    const capture = capturePino("info");
    const client = clientFor(server, { logger: capture.logger });
    await client.sendMail(env, "one");
    await rejection(client.reset());
    await client.connect();
    await client.sendMail(env, "two");
    await client.close();
    const closes = capture.records().filter((r) => r["event"] === "smtp.close");
    expect(closes).toMatchObject([
      { reason: "error", messages: 1 },
      { reason: "quit", messages: 1 },
    ]);
  });
});

/** A clock whose timers fire only when the test says so. */
function manualClock(): Clock & { timers: { ms: number; fire(): void }[] } {
  const timers: { ms: number; fire(): void }[] = [];
  return {
    timers,
    now: () => 0,
    setTimeout: (callback: () => void, ms: number): TimerHandle => {
      const timer = { ms, fire: () => (timers.splice(timers.indexOf(timer), 1), callback()) };
      timers.push(timer);
      return timer;
    },
    clearTimeout: (handle: TimerHandle) => {
      const i = timers.indexOf(handle as never);
      if (i !== -1) timers.splice(i, 1);
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("closing", () => {
  it("close() waits at most 5 s for QUIT's reply; quit() waits the whole command timeout", async () => {
    const server = await fake({ script: hangOn("QUIT") });
    for (const [how, ms] of [["close", 5_000], ["quit", 60_000]] as const) {
      const clock = manualClock();
      const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock });
      clients.push(client);
      await client.connect();
      const closing = how === "close" ? client.close() : client.quit();
      await until(() => clock.timers.length > 0);
      expect(clock.timers.map((t) => t.ms)).toEqual([ms]);
      clock.timers[0]!.fire();
      await closing;
      expect(client.state).toBe("closed");
    }
  });

  it("after quit(): the next call says the connection is closed, and why", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    await client.quit();
    const error = await rejection(client.noop());
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.message).toBe(`The connection to 127.0.0.1:${server.port} is closed (The connection was closed by the client); call connect() again`);
  });

  it("an abort as the last step's reply arrives still fails connect(): AbortError, closed", async () => {
    for (const auth of [false, true]) {
      const server = await fake({ authMechanisms: ["PLAIN"] });
      const controller = new AbortController();
      const last = auth ? "235" : "250 ";
      const client = clientFor(server, {
        signal: controller.signal,
        ...(auth ? { auth: { user: "u", pass: "p" } } : {}),
        transcript: (entry) => {
          if (entry.direction === "server" && entry.line.startsWith(last)) controller.abort();
        },
      });
      const error = await rejection(client.connect());
      expect(error).toBeInstanceOf(AbortError);
      expect(client.state).toBe("closed");
    }
  });

  it("destroy() as the EHLO reply arrives: connect() rejects with SmtpClosedError", async () => {
    const server = await fake();
    let client: SmtpClient | undefined;
    client = clientFor(server, {
      transcript: (entry) => {
        if (entry.direction === "server" && entry.line.startsWith("250 ")) client!.destroy();
      },
    });
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(client.state).toBe("closed");
  });
});

describe("state and outcomes during a transaction", () => {
  it("client.state names the phase each command goes out in", async () => {
    const seen: string[] = [];
    const server = await fake({ ehlo: ["8BITMIME"] });
    let client: SmtpClient | undefined;
    client = clientFor(server, {
      transcript: (entry) => {
        if (entry.direction === "client") seen.push(`${entry.line.split(" ")[0]} ${client!.state}`);
      },
    });
    await client.sendMail({ from: "a@example.org", to: ["b@example.org", "c@example.org"] }, "x");
    expect(client.state).toBe("ready");
    expect(seen).toEqual(["EHLO greeting", "MAIL mail", "RCPT rcpt", "RCPT rcpt", "DATA rcpt", ". data"]);
  });

  it("connect() while a message is under way (at MAIL, RCPT, DATA and the final dot) changes nothing", async () => {
    for (const verb of ["MAIL", "RCPT", "DATA", "."]) {
      let arrived!: () => void;
      const here = new Promise<void>((resolve) => (arrived = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const hold = async () => {
        arrived();
        await gate;
        return undefined;
      };
      const server = await fake({
        ehlo: ["8BITMIME"],
        script: verb === "." ? { onMessage: hold } : { onCommand: (cmd) => (cmd.verb === verb ? hold() : undefined) },
      });
      const client = clientFor(server);
      await client.connect();
      const sent = client.sendMail(env, "x");
      await here;
      await client.connect();
      release();
      expect((await sent).reply.code).toBe(250);
      expect(server.connections).toBe(1);
    }
  });

  it("a 421 after the final dot: the server is closing and did not take it (retryable), not unknown", async () => {
    const server = await fake({ script: messageReply({ reply: "421 4.3.2 shutting down", then: "close" }) });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error).not.toBeInstanceOf(SmtpDeliveryUnknownError);
    expect(error.replyCode).toBe(421);
    expect(error.retryable).toBe(true);
    expect(error.stage).toBe("final-dot");
    expect(error.bodySent).toBe(true);
    expect(client.state).toBe("closed");
  });

  it("bodySent of a message that failed does not leak into the next connect's errors", async () => {
    let n = 0;
    const server = await fake({ greeting: () => (++n === 1 ? undefined : "554 5.3.2 not now"), script: dropAfterDotOnce() });
    const client = clientFor(server);
    const first = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(first).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect(first.bodySent).toBe(true);
    expect(first.command).toBe("<end of data>");
    expect(first.message).toMatch(/^The message was sent but 127\.0\.0\.1 did not confirm it \(.+\); it may or may not have been delivered, so do not resend it blindly$/);
    const second = (await rejection(client.connect())) as SmtpError;
    expect(second.stage).toBe("greeting");
    expect(second.bodySent).toBe(false);
  });

  it("a body that fails after an empty chunk: no byte has left, bodySent is false", async () => {
    const server = await fake({ ehlo: ["8BITMIME"] });
    const client = clientFor(server);
    async function* body(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(0);
      throw new SmtpConnectError("source gone");
    }
    const error = (await rejection(client.sendMail(env, body()))) as SmtpError;
    expect(error.message).toBe("source gone");
    expect(error.stage).toBe("body");
    expect(error.bodySent).toBe(false);
    expect(client.state).toBe("closed");
  });

  it("MAIL refused in a pipelined group whose DATA got 354 anyway: '.' ends it, then RSET", async () => {
    const server = await fake({ script: [replyOn("MAIL", "553 5.1.8 no"), replyOn("DATA", "354 go ahead")] });
    const log: TranscriptEntry[] = [];
    const client = clientFor(server, { transcript: (e) => log.push(e) });
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error.message).toBe("MAIL FROM was refused: 553 no");
    expect(server.commands().slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA", "RSET"]);
    expect(server.clientBytes().toString("latin1")).toContain("DATA\r\n.\r\nRSET\r\n");
    expect(log.filter((e) => e.direction === "client").map((e) => e.line).slice(-2)).toEqual([".", "RSET"]);
    expect(client.state).toBe("ready");
  });
});

/** Drops the first connection right after its final dot; later ones get the default reply. */
function dropAfterDotOnce(): Script {
  return { onMessage: (msg) => (msg.conn === 1 ? { reply: null, then: "destroy" } : undefined) };
}

describe("before the first connect", () => {
  it("not secure, no TLS facts, no unread input, no connection id, nothing learnt", async () => {
    const server = await fake();
    const client = clientFor(server);
    expect(client.state).toBe("idle");
    expect(client.secure).toBe(false);
    expect(client.tlsInfo).toBeUndefined();
    expect(client.hasUnreadInput).toBe(false);
    expect(client.connectionId).toBeUndefined();
    expect(client.capabilities).toBeUndefined();
    expect(client.greeting).toBeUndefined();
    expect(client.transactions).toBe(0);
  });

  it("a signal aborted already: sendMail and connect reject with AbortError, no connection is made", async () => {
    const server = await fake();
    const client = clientFor(server, { signal: AbortSignal.abort() });
    expect(await rejection(client.sendMail(env, "x"))).toBeInstanceOf(AbortError);
    expect(await rejection(client.connect())).toBeInstanceOf(AbortError);
    expect(server.connections).toBe(0);
    expect(client.state).toBe("idle");
  });
});

describe("events without a logger", () => {
  it("go to the event channels with recipients as logRecipients says", async () => {
    const server = await fake();
    const commands: string[] = [];
    const listener = (message: unknown) => commands.push((message as { command: string }).command);
    diagnosticsChannel.subscribe(EVENT_CHANNEL_NAMES["smtp.command"], listener);
    try {
      await clientFor(server, { logRecipients: "full" }).sendMail(env, "x");
      await clientFor(server).sendMail(env, "x");
    } finally {
      diagnosticsChannel.unsubscribe(EVENT_CHANNEL_NAMES["smtp.command"], listener);
    }
    const rcpts = commands.filter((c) => c.startsWith("RCPT"));
    expect(rcpts).toEqual(["RCPT TO:<b@example.org>", "RCPT TO:<[address]>"]);
  });
});

describe("more of the transaction", () => {
  it("BDAT only when asked for and offered: offered but not asked, DATA", async () => {
    const server = await fake({ ehlo: ["CHUNKING", "PIPELINING"] });
    await clientFor(server).sendMail(env, "x");
    expect(server.received[0]!.via).toBe("DATA");
  });

  it("an envelope the server cannot take fails at stage mail, before MAIL FROM", async () => {
    const server = await fake({ sizeLimit: 100 });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail({ ...env, size: 1000 }, "x"))) as SmtpError;
    expect(error.stage).toBe("mail");
    expect(error.bodySent).toBe(false);
    expect(server.commands()).toEqual(["EHLO client.test"]);
  });

  it("the connection dropped at RCPT: stage rcpt, one command at a time and pipelined", async () => {
    for (const ehlo of [["8BITMIME"], ["PIPELINING"]]) {
      const server = await fake({ ehlo, batchReplies: false, script: dropOn("RCPT") });
      const client = clientFor(server);
      const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
      expect(error).toBeInstanceOf(SmtpClosedError);
      expect(error.stage).toBe("rcpt");
    }
  });

  it("every recipient refused: the error names the first RCPT", async () => {
    const server = await fake({ script: recipientReplies({ "b@example.org": "550 5.1.1 no", "c@example.org": "550 5.1.1 no" }) });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail({ from: "a@example.org", to: ["b@example.org", "c@example.org"] }, "x"))) as SmtpError;
    expect(error.code).toBe("ERCPT_REFUSED");
    expect(error.command).toBe("RCPT TO:<b@example.org>");
  });

  it("client.state is data while BDAT chunks go", async () => {
    const seen: string[] = [];
    const server = await fake({ ehlo: ["CHUNKING"] });
    let client: SmtpClient | undefined;
    client = clientFor(server, {
      chunking: true,
      chunkSize: 1024,
      transcript: (entry) => {
        if (entry.direction === "client" && entry.line.startsWith("BDAT")) seen.push(`${entry.line} ${client!.state}`);
      },
    });
    await client.sendMail(env, Buffer.alloc(1500, "d"));
    expect(seen).toEqual(["BDAT 1024 data", "BDAT 478 LAST data"]);
  });

  it("after a message refused at its end, the RSET goes out in state rcpt, then the client is ready", async () => {
    const seen: string[] = [];
    const server = await fake({ script: messageReply("554 5.7.1 spam") });
    let client: SmtpClient | undefined;
    client = clientFor(server, {
      transcript: (entry) => {
        if (entry.direction === "client" && entry.line === "RSET") seen.push(client!.state);
      },
    });
    await rejection(client.sendMail(env, "x"));
    expect(seen).toEqual(["rcpt"]);
    expect(client.state).toBe("ready");
  });

  it("a 421 while the body is read: the failure, at stage body; no final dot, no BDAT LAST", async () => {
    for (const chunking of [false, true]) {
      const verb = chunking ? "BDAT" : "DATA";
      const server = await fake({
        ehlo: chunking ? ["CHUNKING"] : ["8BITMIME"],
        script: {
          onCommand: (cmd, session) => {
            if (cmd.verb === verb && session.count(verb) === 1) {
              setTimeout(() => {
                session.send("421 4.3.2 shutting down");
                session.close();
              }, 10);
            }
            return undefined;
          },
        },
      });
      const client = clientFor(server, { chunking, chunkSize: 1024 });
      // DATA: the whole body is encoded before the server's 421 is read; BDAT: the first
      // chunk is answered, and the second (its last) is due after the 421.
      async function* body(): AsyncGenerator<Uint8Array> {
        yield Buffer.alloc(chunking ? 2048 : 1024, "e");
        await until(() => client.state === "closed");
      }
      const error = (await rejection(client.sendMail(env, body()))) as SmtpError;
      expect(error).not.toBeInstanceOf(SmtpDeliveryUnknownError);
      expect(error.replyCode).toBe(421);
      expect(error.stage).toBe("body");
      expect(server.commands().filter((c) => c.includes("LAST"))).toEqual([]);
      expect(server.received).toHaveLength(0);
    }
  });

  it("a BDAT chunk never answered: the command deadline (phase command) on the clock", async () => {
    const server = await fake({ ehlo: ["CHUNKING"], script: hangOn("BDAT") });
    const clock = manualClock();
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock, chunking: true, chunkSize: 1024 });
    clients.push(client);
    await client.connect();
    const sent = rejection(client.sendMail(env, Buffer.alloc(3000, "f")));
    // MAIL's and RCPT's deadlines are cleared by their replies, before the first chunk goes
    await until(() => server.commands().includes("BDAT 1024") && clock.timers.length === 1);
    expect(clock.timers.map((t) => t.ms)).toEqual([60_000]);
    clock.timers[0]!.fire();
    const error = (await sent) as SmtpError & { phase?: string };
    expect(error.phase).toBe("command");
    expect(error.stage).toBe("body");
  });

  it("no reply to the final dot: the final-dot deadline (5 min) on the clock, outcome unknown", async () => {
    const server = await fake({ script: { onMessage: () => ({ reply: null, then: "hang" }) } });
    const clock = manualClock();
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock });
    clients.push(client);
    await client.connect();
    const sent = rejection(client.sendMail(env, "x"));
    await until(() => clock.timers.some((t) => t.ms === 300_000));
    clock.timers.find((t) => t.ms === 300_000)!.fire();
    const error = (await sent) as SmtpDeliveryUnknownError;
    expect(error).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect((error.cause as SmtpError & { phase?: string }).phase).toBe("final-dot");
  });

  it("an announcement made between messages is written behind the next dot, not at once", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.sendMail(env, "one");
    const announcement = client[ANNOUNCE]({ from: "a@example.org", to: ["c@example.org"] });
    announcement.withdraw();
    expect(client.state).toBe("ready");
    await client.noop();
    expect(server.commands().filter((c) => c.startsWith("MAIL"))).toHaveLength(1);
  });
});

describe("the connect attempt", () => {
  it('is "connecting" from the call on', async () => {
    const server = await fake();
    const client = clientFor(server);
    const connecting = client.connect();
    expect(client.state).toBe("connecting");
    await connecting;
    expect(client.state).toBe("ready");
  });

  it("leaves no listener on the caller's signal, after a session and after a failed connect", async () => {
    const server = await fake();
    const controller = new AbortController();
    const client = clientFor(server, { signal: controller.signal });
    await client.sendMail(env, "x");
    expect(getEventListeners(controller.signal, "abort").length).toBeGreaterThan(0);
    await client.quit();
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    const refusing = await fake({ greeting: "554 5.3.2 not now" });
    const other = clientFor(refusing, { signal: controller.signal });
    await rejection(other.connect());
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("tls none: no STARTTLS even when offered", async () => {
    const certs = await makeTestCerts();
    const server = await fake({ tls: "starttls", key: certs.server.key, cert: certs.server.cert });
    const client = clientFor(server, { tls: "none" });
    await client.sendMail(env, "x");
    expect(client.secure).toBe(false);
    expect(server.commands()).not.toContain("STARTTLS");
  });

  it("implicit TLS: a smtp.tls event without STARTTLS; an untrusted certificate fails at stage tls", async () => {
    const certs = await makeTestCerts();
    const server = await fake({ tls: "implicit", key: certs.server.key, cert: certs.server.cert });
    const capture = capturePino("info");
    const client = clientFor(server, { tls: "implicit", tlsOptions: { ca: certs.ca, servername: "localhost" }, logger: capture.logger });
    await client.connect();
    expect(client.secure).toBe(true);
    expect(capture.records().find((r) => r["event"] === "smtp.tls")).toMatchObject({ starttls: false });
    const untrusted = clientFor(server, { tls: "implicit" });
    const error = (await rejection(untrusted.connect())) as SmtpError;
    expect(error).toBeInstanceOf(SmtpTlsError);
    expect(error.stage).toBe("tls");
  });

  it("destroy() during connect: the SmtpClosedError says no body was sent", async () => {
    const server = await fake({ greeting: null });
    const client = clientFor(server);
    const connecting = rejection(client.connect());
    await until(() => server.connections === 1);
    client.destroy();
    const error = (await connecting) as SmtpError;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.bodySent).toBe(false);
  });

  it("a failure that is not the server's (a token provider that throws): dropped without QUIT", async () => {
    const server = await fake({ authMechanisms: ["XOAUTH2"] });
    const client = clientFor(server, {
      auth: {
        user: "u@example.org",
        tokenProvider: async () => {
          throw new Error("vault down");
        },
      },
    });
    const error = await rejection(client.connect());
    expect(error.message).toMatch(/vault down/);
    expect(server.commands()).toEqual(["EHLO client.test"]);
    expect(client.state).toBe("closed");
  });

  it("a refused session's QUIT waits at most 5 s (on the clock)", async () => {
    const server = await fake({ ehlo: "554 5.7.1 not you", script: hangOn("QUIT") });
    const clock = manualClock();
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock });
    clients.push(client);
    const connecting = rejection(client.connect());
    await until(() => server.commands().includes("QUIT"));
    await until(() => clock.timers.length > 0);
    expect(clock.timers.map((t) => t.ms)).toEqual([5_000]);
    clock.timers[0]!.fire();
    expect(((await connecting) as SmtpError).replyCode).toBe(554);
  });
});

describe("teardown", () => {
  it("BDAT pipelined ahead only without BDAT: chunking asked for but not offered still pipelines across messages", async () => {
    const server = await fake({ ehlo: ["PIPELINING"] });
    const client = clientFor(server, { chunking: true });
    await client.connect();
    const next = { from: "a@example.org", to: ["c@example.org"] };
    client[ANNOUNCE](next);
    await client.sendMail(env, "one");
    await client.sendMail(next, "two");
    const dot = server.transcript.find((e) => e.dir === "c" && e.kind === "data")!;
    expect(server.transcript[server.transcript.indexOf(dot) + 1]!.text).toBe("MAIL FROM:<a@example.org>");
  });

  it("QUIT shows as QUIT in the transcript", async () => {
    const server = await fake();
    const log: TranscriptEntry[] = [];
    const client = clientFor(server, { transcript: (e) => log.push(e) });
    await client.connect();
    await client.quit();
    expect(log.filter((e) => e.direction === "client").map((e) => e.line)).toEqual(["EHLO client.test", "QUIT"]);
  });

  it("a body that fails: the next call names the body's error when it is missive's, else the client's closing", async () => {
    for (const [failure, reason] of [
      [new SmtpConnectError("disk gone"), "disk gone"],
      [new Error("disk gone"), "The connection was closed by the client"],
    ] as const) {
      const server = await fake({ ehlo: ["8BITMIME"] });
      const client = clientFor(server);
      async function* body(): AsyncGenerator<Uint8Array> {
        yield Buffer.from("a\r\n");
        throw failure;
      }
      await rejection(client.sendMail(env, body()));
      const error = (await rejection(client.noop())) as SmtpClosedError;
      expect(error.message).toBe(`The connection to 127.0.0.1:${server.port} is closed (${reason}); call connect() again`);
      expect(error.bodySent).toBe(false);
    }
  });

  it("destroy() on a client that never connected leaves it idle", async () => {
    const server = await fake();
    const client = clientFor(server);
    client.destroy();
    expect(client.state).toBe("idle");
    await client.sendMail(env, "x");
    expect(server.received).toHaveLength(1);
  });

  it("a client whose connect was refused: closed, and the next call says so without a reason", async () => {
    const gone = await startFakeServer();
    const port = gone.port;
    await gone.close();
    const client = new SmtpClient({ host: "127.0.0.1", port, localName: "client.test", timeout: 2000 });
    clients.push(client);
    await rejection(client.connect());
    expect(client.state).toBe("closed");
    const error = (await rejection(client.noop())) as SmtpClosedError;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.message).toBe(`The connection to 127.0.0.1:${port} is closed; call connect() again`);
  });
});
