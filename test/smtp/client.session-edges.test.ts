/**
 * The client's session at its edges, against the scripted fault server: pipelining one
 * message's commands behind the previous final dot, the connection's events, closing and
 * teardown.
 */
import diagnosticsChannel from "node:diagnostics_channel";
import { describe, expect, it } from "vitest";
import { dropOn, hangOn, messageReply, recipientReplies, replyOn, startFakeServer, type FakeServerOptions, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { SmtpClient, type SmtpClientOptions } from "../../src/smtp/client.js";
import { ANNOUNCE, DATA_WRITTEN } from "../../src/smtp/pipeline.js";
import { AbortError, SmtpClosedError, SmtpConnectError } from "../../src/errors.js";
import type { TranscriptEntry } from "../../src/smtp/transcript.js";
import { EVENT_CHANNEL_NAMES } from "../../src/observe/channels.js";
import { rejection } from "../helpers/errors.js";
import { makeTestCerts } from "../helpers/certs.js";
import { capturePino } from "../observe/helpers.js";
import { fake, clientFor, env, manualClock, until, track } from "./client-edges-fixture.js";

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

describe("closing", () => {
  it("close() waits at most 5 s for QUIT's reply; quit() waits the whole command timeout", async () => {
    const server = await fake({ script: hangOn("QUIT") });
    for (const [how, ms] of [["close", 5_000], ["quit", 60_000]] as const) {
      const clock = manualClock();
      const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock });
      track(client);
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
    track(client);
    await rejection(client.connect());
    expect(client.state).toBe("closed");
    const error = (await rejection(client.noop())) as SmtpClosedError;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.message).toBe(`The connection to 127.0.0.1:${port} is closed; call connect() again`);
  });
});
