/**
 * How each step of the client fails, against the scripted fault server: which error a
 * caller gets (its class, stage, timeout phase and bodySent) when the connection drops,
 * closes or goes silent at MAIL, DATA, between BDAT chunks, at the "." that ends an
 * abandoned DATA and at QUIT; a client closed before it ever connected; and when
 * [DATA_WRITTEN] resolves while operations are queued.
 */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { dropOn, hangOn, replyOn, shutdownOn } from "../helpers/fake-smtp-server.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { DATA_WRITTEN } from "../../src/smtp/pipeline.js";
import { AbortError, SmtpClosedError, SmtpDeliveryUnknownError, SmtpError, SmtpTimeoutError, SmtpTlsError } from "../../src/errors.js";
import { rejection } from "../helpers/errors.js";
import { fake, clientFor, env, manualClock, until, track, gate, settle } from "./client-edges-fixture.js";

describe("before the connection", () => {
  it("a certificate file that cannot be read: SmtpTlsError at stage tls, no connection made", async () => {
    const server = await fake();
    const client = clientFor(server, { sslCertfile: "/nonexistent/missive-test/client.pem" });
    const error = (await rejection(client.connect())) as SmtpError;
    expect(error).toBeInstanceOf(SmtpTlsError);
    expect(error.message).toMatch(/^Could not read sslCertfile "\/nonexistent\/missive-test\/client\.pem": /);
    expect([error.stage, error.bodySent]).toEqual(["tls", false]);
    expect(server.connections).toBe(0);
    expect(client.state).toBe("closed");
  });

  it("quit() and close() on a client that never connected: nothing is written, it stays idle and connects lazily later", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.quit();
    await client.close();
    expect(client.state).toBe("idle");
    expect(server.connections).toBe(0);
    await client.sendMail(env, "x");
    expect(server.received).toHaveLength(1);
  });
});

describe("MAIL FROM", () => {
  it("the connection dropped at MAIL: SmtpClosedError (retryable) at stage mail, one command at a time and pipelined", async () => {
    for (const pipelining of [false, true]) {
      const server = await fake({ script: dropOn("MAIL") });
      const client = clientFor(server, { pipelining });
      const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
      expect(error).toBeInstanceOf(SmtpClosedError);
      expect([error.stage, error.bodySent, error.retryable]).toEqual(["mail", false, true]);
      expect(client.state).toBe("closed");
    }
  });

  it("a 421 to MAIL: the server is closing (retryable), not a refusal of the sender", async () => {
    for (const pipelining of [false, true]) {
      const server = await fake({ script: shutdownOn("MAIL") });
      const client = clientFor(server, { pipelining });
      const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
      expect(error.message).toBe("127.0.0.1 is closing the connection: 421 Service shutting down");
      expect([error.replyCode, error.stage, error.retryable]).toEqual([421, "mail", true]);
      expect(client.state).toBe("closed");
    }
  });
});

describe("DATA", () => {
  it("DATA never answered: the DATA deadline (phase command) on the clock, at stage data", async () => {
    const server = await fake({ script: hangOn("DATA") });
    const clock = manualClock();
    const client = track(new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock, pipelining: false, timeouts: { dataStart: 45_000 } }));
    await client.connect();
    const sent = rejection(client.sendMail(env, "x"));
    await until(() => server.commands().includes("DATA") && clock.timers.length === 1);
    expect(clock.timers.map((t) => t.ms)).toEqual([45_000]);
    clock.timers[0]!.fire();
    const error = (await sent) as SmtpTimeoutError;
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect([error.phase, error.stage, error.bodySent]).toEqual(["command", "data", false]);
    expect(server.received).toHaveLength(0);
  });

  it("the '.' that ends a DATA the server took although MAIL was refused, never answered: the final-dot deadline, at stage data", async () => {
    const server = await fake({ script: [replyOn("MAIL", "553 5.1.8 no"), replyOn("DATA", "354 go ahead"), { onMessage: () => ({ reply: null, then: "hang" }) }] });
    const clock = manualClock();
    const client = track(new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock }));
    await client.connect();
    const sent = rejection(client.sendMail(env, "x"));
    await until(() => clock.timers.some((t) => t.ms === 300_000));
    clock.timers.find((t) => t.ms === 300_000)!.fire();
    const error = (await sent) as SmtpTimeoutError;
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect([error.phase, error.stage, error.bodySent]).toEqual(["final-dot", "data", false]);
    expect(client.state).toBe("closed");
  });

  it("destroy() as the 354 arrives (from the transcript callback): SmtpClosedError naming why, no byte of the body sent", async () => {
    const server = await fake();
    let client: SmtpClient | undefined;
    client = clientFor(server, {
      transcript: (entry) => {
        if (entry.direction === "server" && entry.line.startsWith("354")) client!.destroy();
      },
    });
    const error = (await rejection(client.sendMail(env, "body"))) as SmtpError;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.message).toBe(`The connection to 127.0.0.1:${server.port} is closed`);
    expect((error.cause as Error).message).toBe("The connection was closed by the client");
    expect([error.stage, error.bodySent]).toEqual(["body", false]);
    expect(error.recipients).toEqual({ accepted: ["b@example.org"], rejected: [] });
    expect(server.received).toHaveLength(0);
    expect(server.clientBytes().toString("latin1")).not.toContain("body");
  });

  it("the caller's signal aborted as the 354 arrives: that AbortError, no byte of the body sent", async () => {
    const server = await fake();
    const controller = new AbortController();
    const client = clientFor(server, {
      signal: controller.signal,
      transcript: (entry) => {
        if (entry.direction === "server" && entry.line.startsWith("354")) controller.abort();
      },
    });
    const error = await rejection(client.sendMail(env, "body"));
    expect(error).toBeInstanceOf(AbortError);
    expect(server.received).toHaveLength(0);
    expect(server.clientBytes().toString("latin1")).not.toContain("body");
  });
});

describe("BDAT", () => {
  it("the connection dropped while the body is read between chunks: that failure at stage body, not an unknown outcome", async () => {
    const server = await fake({ ehlo: ["CHUNKING"], script: replyOn("BDAT", { reply: "250 2.0.0 first chunk", then: "destroy" }) });
    const client = clientFor(server, { chunking: true, chunkSize: 1024 });
    const body = new Readable({ read() {} });
    // Two chunks' worth ending in CRLF: the first goes at once, the second is held until
    // the body ends, and is then the last.
    body.push(Buffer.from(`${"a".repeat(2046)}\r\n`));
    const sent = rejection(client.sendMail(env, body));
    await until(() => client.state === "closed");
    body.push(null);
    const error = (await sent) as SmtpError;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error).not.toBeInstanceOf(SmtpDeliveryUnknownError);
    expect([error.stage, error.bodySent, error.retryable]).toEqual(["body", true, true]);
    expect(server.commands().filter((c) => c.startsWith("BDAT"))).toEqual(["BDAT 1024"]);
  });
});

describe("QUIT", () => {
  it("QUIT never answered: quit() still closes, and the next call names the QUIT's timeout (phase command)", async () => {
    const server = await fake({ script: hangOn("QUIT") });
    const clock = manualClock();
    const client = track(new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock }));
    await client.connect();
    const quitting = client.quit();
    await until(() => server.commands().includes("QUIT") && clock.timers.length === 1);
    expect(clock.timers.map((t) => t.ms)).toEqual([60_000]);
    clock.timers[0]!.fire();
    await quitting;
    expect(client.state).toBe("closed");
    const error = (await rejection(client.noop())) as SmtpClosedError;
    expect(error.message).toBe(
      `The connection to 127.0.0.1:${server.port} is closed (SMTP command timed out after 60000 ms (waiting for the reply to QUIT)); call connect() again`,
    );
    expect((error.cause as SmtpTimeoutError).phase).toBe("command");
  });
});

describe("[DATA_WRITTEN] with operations queued", () => {
  it("resolves only once the last queued operation has ended, not when the first does", async () => {
    const first = gate();
    const second = gate();
    const server = await fake({
      script: { onCommand: (cmd, session) => (cmd.verb === "NOOP" ? (session.count("NOOP") === 1 ? first.held : second.held) : undefined) },
    });
    const client = clientFor(server);
    await client.connect();
    const noops = [client.noop(), client.noop()];
    let resolved = false;
    const written = client[DATA_WRITTEN]().then(() => (resolved = true));
    await until(() => server.commands().includes("NOOP"));
    first.release();
    await noops[0];
    await until(() => server.commands().filter((c) => c === "NOOP").length === 2);
    await settle();
    expect(resolved).toBe(false);
    second.release();
    await noops[1];
    await written;
    expect(resolved).toBe(true);
  });
});
