/**
 * The client's opening steps at their edges, against the scripted fault server: connecting
 * (and each way a connect attempt ends), STARTTLS and opportunistic TLS, EHLO and its HELO
 * fallback, AUTH and its challenges, and a client used before its first connect.
 */
import { getEventListeners } from "node:events";
import net from "node:net";
import os from "node:os";
import { describe, expect, it, vi } from "vitest";
import { dropOn, hangOn, replyOn, type FakeServerOptions, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { AbortError, SmtpAuthError, SmtpClosedError, SmtpConnectError, SmtpError, SmtpProtocolError, SmtpTlsError } from "../../src/errors.js";
import type { TranscriptEntry } from "../../src/smtp/transcript.js";
import { rejection } from "../helpers/errors.js";
import { makeTestCerts } from "../helpers/certs.js";
import { capturePino } from "../observe/helpers.js";
import { fake, clientFor, env, manualClock, until, track } from "./client-edges-fixture.js";

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
      track(client);
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
    track(client);
    const connecting = rejection(client.connect());
    await until(() => server.commands().includes("QUIT"));
    await until(() => clock.timers.length > 0);
    expect(clock.timers.map((t) => t.ms)).toEqual([5_000]);
    clock.timers[0]!.fire();
    expect(((await connecting) as SmtpError).replyCode).toBe(554);
  });
});
