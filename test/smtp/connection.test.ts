/**
 * One SMTP connection (src/smtp/connection.ts) on its own, against a bare TCP peer whose
 * bytes each test writes by hand, on a virtual clock: connecting (refused, each resolver
 * error's hint, the deadline exactly and one past, an abort before and during), the
 * greeting (waiting in the read buffer, asked for once and first), replies matched to
 * commands (expected codes, a 421, a reply nobody asked for, more replies than commands in
 * one read, a broken reply after good ones), the first failure recorded and given to every
 * later command, listeners and writes, held writes, and backpressure with its deadline.
 * The TLS upgrade is in connection-tls.test.ts.
 */
import { getEventListeners } from "node:events";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SmtpConnection, abortError, type OpenOptions, type Submission } from "../../src/smtp/connection.js";
import { Transcript, type TranscriptEntry } from "../../src/smtp/transcript.js";
import { AbortError, SmtpClosedError, SmtpConnectError, SmtpError, SmtpProtocolError, SmtpTimeoutError } from "../../src/errors.js";
import { VirtualClock, flush } from "../helpers/virtual-clock.js";
import { rejection } from "../helpers/errors.js";
import { sleep } from "../helpers/fake-smtp-server.js";

/** A TCP peer: each accepted socket, and everything each one received. */
interface Peer {
  readonly port: number;
  /** The next accepted socket (the first one not yet taken). */
  accept(): Promise<net.Socket>;
  received(i?: number): string;
  close(): Promise<void>;
}

const peers: Peer[] = [];
const connections: SmtpConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) c.destroy();
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

async function peer(): Promise<Peer> {
  const sockets: net.Socket[] = [];
  const bytes: Buffer[][] = [];
  const waiting: ((s: net.Socket) => void)[] = [];
  let taken = 0;
  const server = net.createServer((socket) => {
    const mine: Buffer[] = [];
    bytes.push(mine);
    sockets.push(socket);
    socket.on("data", (b) => mine.push(b));
    socket.on("error", () => undefined);
    waiting.shift()?.(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const p: Peer = {
    port: (server.address() as net.AddressInfo).port,
    accept: () => {
      const i = taken++;
      if (sockets[i]) return Promise.resolve(sockets[i]);
      return new Promise((resolve) => waiting.push(resolve));
    },
    received: (i = 0) => Buffer.concat(bytes[i] ?? []).toString("latin1"),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  peers.push(p);
  return p;
}

async function open(p: Peer, options: Partial<OpenOptions> = {}): Promise<{ conn: SmtpConnection; server: net.Socket }> {
  const conn = await SmtpConnection.open({ host: "127.0.0.1", port: p.port, timeoutMs: 5000, ...options });
  connections.push(conn);
  return { conn, server: await p.accept() };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await sleep(5);
  if (!condition()) throw new Error(`not reached: ${what}`);
}

const greeting: Submission = { expect: [220], phase: "greeting", deadline: 1000 };
const noop = (deadline = 1000): Submission => ({ line: "NOOP\r\n", expect: [250], phase: "command", deadline });

/** Opens a connection and takes its greeting. */
async function ready(p: Peer, options: Partial<OpenOptions> = {}) {
  const opened = await open(p, options);
  const hello = opened.conn.submit(greeting);
  opened.server.write("220 peer ready\r\n");
  await hello;
  return opened;
}

/** A resolver that fails with `code` (or hangs with `code` undefined and hang true). */
function failingLookup(code: string | undefined, message = "lookup failed"): net.LookupFunction {
  return (_host, _options, callback) => {
    const error = Object.assign(new Error(message), code === undefined ? {} : { code }) as NodeJS.ErrnoException;
    process.nextTick(() => (callback as (e: NodeJS.ErrnoException) => void)(error));
  };
}
const hangingLookup: net.LookupFunction = () => undefined;
const loopbackLookup: net.LookupFunction = (_host, options, callback) => {
  const cb = callback as (e: null, a: string | { address: string; family: number }[], f?: number) => void;
  if ((options as { all?: boolean }).all) cb(null, [{ address: "127.0.0.1", family: 4 }]);
  else cb(null, "127.0.0.1", 4);
};

describe("connecting", () => {
  it("connects, through the lookup given, and reports where from", async () => {
    const p = await peer();
    const { conn } = await open(p, { host: "mx.invalid", lookup: loopbackLookup });
    expect(conn.host).toBe("mx.invalid");
    expect(conn.port).toBe(p.port);
    expect(conn.closed).toBe(false);
    expect(conn.failure).toBeUndefined();
    expect(conn.secure).toBe(false);
    expect(conn.tlsInfo).toBeUndefined();
    expect(conn.localAddress).toBe("127.0.0.1");
    expect([conn.commandsWritten, conn.repliesRead, conn.inFlight]).toEqual([0, 0, 0]);
    expect(conn.hasUnreadInput).toBe(false);
  });

  it("nothing listening: SmtpConnectError with the code and a hint", async () => {
    const p = await peer();
    const port = p.port;
    await p.close();
    const error = await rejection(SmtpConnection.open({ host: "127.0.0.1", port, timeoutMs: 5000 }));
    expect(error).toBeInstanceOf(SmtpConnectError);
    expect(error.message).toBe(`Could not connect to 127.0.0.1:${port} (ECONNREFUSED): nothing is listening there; check host and port`);
    expect((error.cause as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });

  it.each([
    ["ENOTFOUND", "the host name does not resolve"],
    ["EAI_NONAME", "the host name does not resolve"],
    ["EHOSTUNREACH", "the host is unreachable"],
    ["ENETUNREACH", "the host is unreachable"],
    ["EWEIRD", "lookup failed"],
  ])("a resolver failing with %s says %j", async (code, hint) => {
    const error = await rejection(SmtpConnection.open({ host: "mx.invalid", port: 25, timeoutMs: 5000, lookup: failingLookup(code) }));
    expect(error).toBeInstanceOf(SmtpConnectError);
    expect(error.message).toBe(`Could not connect to mx.invalid:25 (${code}): ${hint}`);
    expect((error.cause as Error).message).toBe("lookup failed");
  });

  it("an error without a code says 'error' and its own message", async () => {
    const error = await rejection(SmtpConnection.open({ host: "mx.invalid", port: 25, timeoutMs: 5000, lookup: failingLookup(undefined, "no idea") }));
    expect(error.message).toBe("Could not connect to mx.invalid:25 (error): no idea");
  });

  it("the connect deadline fires at timeoutMs exactly, not before", async () => {
    const clock = new VirtualClock();
    const signal = new AbortController().signal;
    let outcome: unknown;
    const opening = SmtpConnection.open({ host: "mx.invalid", port: 25, timeoutMs: 1000, clock, signal, lookup: hangingLookup }).then(
      () => (outcome = "open"),
      (e: unknown) => (outcome = e),
    );
    expect(clock.pending.map((t) => t.ms)).toEqual([1000]);
    await clock.advance(999);
    expect(outcome).toBeUndefined();
    await clock.advance(1);
    await opening;
    expect(outcome).toBeInstanceOf(SmtpTimeoutError);
    expect((outcome as SmtpTimeoutError).phase).toBe("connect");
    expect((outcome as SmtpTimeoutError).timeoutMs).toBe(1000);
    expect((outcome as SmtpTimeoutError).command).toBe("connect to mx.invalid:25");
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
  });

  it("an aborted signal rejects before connecting, with the signal's AbortError as it is", async () => {
    const p = await peer();
    const reason = new AbortError("stop now");
    const error = await rejection(SmtpConnection.open({ host: "127.0.0.1", port: p.port, timeoutMs: 5000, signal: AbortSignal.abort(reason) }));
    expect(error).toBe(reason);
    const other = await rejection(SmtpConnection.open({ host: "127.0.0.1", port: p.port, timeoutMs: 5000, signal: AbortSignal.abort("why") }));
    expect(other).toBeInstanceOf(AbortError);
    expect(other.message).toBe("The SMTP operation was aborted");
    expect(other.cause).toBe("why");
    await sleep(20);
    expect(p.received()).toBe("");
  });

  it("an abort while connecting rejects with AbortError and clears the deadline", async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const opening = SmtpConnection.open({ host: "mx.invalid", port: 25, timeoutMs: 1000, clock, signal: controller.signal, lookup: hangingLookup });
    controller.abort(new Error("user gave up"));
    const error = await rejection(opening);
    expect(error).toBeInstanceOf(AbortError);
    expect(error.cause).toEqual(new Error("user gave up"));
    expect(clock.pending).toEqual([]);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("once connected, the connect deadline and the signal no longer touch the connection", async () => {
    const p = await peer();
    const clock = new VirtualClock();
    const controller = new AbortController();
    const { conn, server } = await open(p, { clock, signal: controller.signal, timeoutMs: 1000 });
    expect(clock.pending).toEqual([]);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    controller.abort();
    await clock.advance(5000);
    expect(conn.closed).toBe(false);
    const hello = conn.submit(greeting);
    server.write("220 still here\r\n");
    expect((await hello).code).toBe(220);
  });

  it("abortError keeps an AbortError reason and wraps any other", () => {
    const reason = new AbortError("mine");
    expect(abortError(AbortSignal.abort(reason))).toBe(reason);
    const wrapped = abortError(AbortSignal.abort(42));
    expect(wrapped).toBeInstanceOf(AbortError);
    expect(wrapped.cause).toBe(42);
    expect(abortError(undefined).message).toBe("The SMTP operation was aborted");
  });
});

describe("the greeting", () => {
  it("may arrive before it is asked for: it waits in the read buffer", async () => {
    const p = await peer();
    const { conn, server } = await open(p);
    server.write("220 early bird\r\n");
    await until(() => conn.hasUnreadInput, "the greeting read");
    expect(conn.closed).toBe(false);
    const reply = await conn.submit(greeting);
    expect(reply.code).toBe(220);
    expect(reply.text).toBe("early bird");
    expect(conn.hasUnreadInput).toBe(false);
    expect([conn.commandsWritten, conn.repliesRead, conn.inFlight]).toEqual([1, 1, 0]);
  });

  it("part of a greeting read early is unread input too", async () => {
    const p = await peer();
    const { conn, server } = await open(p);
    server.write("220-first line");
    await until(() => conn.hasUnreadInput, "part of the greeting read");
    const hello = conn.submit(greeting);
    server.write("\r\n220 second\r\n");
    expect((await hello).lines).toEqual(["first line", "second"]);
  });

  it("two replies before the greeting is asked for are a protocol error", async () => {
    const p = await peer();
    const { conn, server } = await open(p);
    const closedWith: Error[] = [];
    conn.onClose((e) => closedWith.push(e));
    server.write("220 hello\r\n250 injected\r\n");
    await until(() => conn.closed, "closed");
    expect(conn.failure).toBeInstanceOf(SmtpProtocolError);
    expect(conn.failure!.message).toBe("The server sent a reply nobody asked for: 220 hello");
    expect(closedWith).toEqual([conn.failure]);
  });

  it("a 421 greeting is the server closing", async () => {
    const p = await peer();
    const { conn, server } = await open(p);
    const hello = conn.submit(greeting);
    server.write("421 4.3.2 too busy\r\n");
    const error = await rejection(hello);
    expect(error).toBeInstanceOf(SmtpError);
    expect(error).not.toBeInstanceOf(SmtpProtocolError);
    expect(error.message).toBe("127.0.0.1 is closing the connection: 421 4.3.2 too busy");
    expect((error as SmtpError).command).toBe("<greeting>");
    expect(conn.closed).toBe(true);
    expect(conn.failure).toBe(error);
  });

  it("is asked for once, alone and first: anything else is an internal error (a plain Error), and nothing is written", async () => {
    const p = await peer();
    const { conn, server } = await open(p);
    const message = "Internal error: the greeting can only be asked for once, first";
    const [withOther] = conn.submitAll([greeting, noop()]);
    const both = conn.submitAll([greeting, noop()]);
    expect(both).toHaveLength(2);
    for (const promise of both) expect((await rejection(promise)).message).toBe(message);
    const error = await rejection(withOther!);
    expect(error.constructor).toBe(Error);
    expect(error.message).toBe(message);
    const hello = conn.submit(greeting);
    server.write("220 hi\r\n");
    await hello;
    expect((await rejection(conn.submit(greeting))).message).toBe(message);
    expect(conn.closed).toBe(false);
    expect(conn.inFlight).toBe(0);
  });

  it("after a command has been written, asking for the greeting is an internal error", async () => {
    const p = await peer();
    const { conn } = await open(p);
    const pending = conn.submit(noop());
    expect((await rejection(conn.submit(greeting))).message).toBe("Internal error: the greeting can only be asked for once, first");
    expect(conn.inFlight).toBe(1);
    conn.destroy();
    await rejection(pending);
  });
});

describe("commands and their replies", () => {
  it("a connection whose greeting is never asked for still matches replies to its commands", async () => {
    const p = await peer();
    const { conn, server } = await open(p);
    const reply = conn.submit(noop());
    await until(() => p.received() === "NOOP\r\n", "NOOP");
    server.write("250 fine\r\n");
    expect((await reply).text).toBe("fine");
    expect([conn.commandsWritten, conn.repliesRead, conn.inFlight]).toEqual([1, 1, 0]);
  });


  it("several commands leave in one write with their payloads; replies resolve in order; the transcript records both", async () => {
    const p = await peer();
    const log: TranscriptEntry[] = [];
    const { conn, server } = await ready(p, { transcript: new Transcript((e) => log.push(e), "127.0.0.1", 25) });
    const [mail, rcpt, bdat] = conn.submitAll([
      { line: "MAIL FROM:<a@example.org>\r\n", expect: [250], phase: "command", deadline: 1000 },
      { line: Buffer.from("RCPT TO:<b@example.org>\r\n"), display: "RCPT TO:<b>", expect: "any", phase: "command", deadline: 1000 },
      { line: "BDAT 5 LAST\r\n", payload: Buffer.from("hello"), expect: [250], phase: "data", deadline: 1000 },
    ]);
    expect(conn.inFlight).toBe(3);
    await until(() => p.received().endsWith("hello"), "the batch");
    expect(p.received()).toBe("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 5 LAST\r\nhello");
    server.write("250 2.1.0 ok\r\n550 5.1.1 no such user\r\n250 2.0.0 queued\r\n");
    expect((await mail!).code).toBe(250);
    expect((await rcpt!).code).toBe(550);
    expect((await bdat!).text).toBe("2.0.0 queued");
    expect([conn.commandsWritten, conn.repliesRead, conn.inFlight]).toEqual([4, 4, 0]);
    expect(log.map((e) => `${e.direction === "client" ? "C" : "S"}: ${e.line}`)).toEqual([
      "S: 220 peer ready",
      "C: MAIL FROM:<a@example.org>",
      "C: RCPT TO:<b>",
      "C: BDAT 5 LAST",
      "S: 250 2.1.0 ok",
      "S: 550 5.1.1 no such user",
      "S: 250 2.0.0 queued",
    ]);
  });

  it("an empty payload adds nothing; a byte line is written as it is", async () => {
    const p = await peer();
    const { conn, server } = await ready(p);
    const reply = conn.submit({ line: Uint8Array.from([0x4e, 0x4f, 0x4f, 0x50, 0x0d, 0x0a]), payload: new Uint8Array(0), expect: [250], phase: "command", deadline: 1000 });
    await until(() => p.received() === "NOOP\r\n", "NOOP");
    server.write("250 ok\r\n");
    expect((await reply).code).toBe(250);
  });

  it("a reply outside the expected codes rejects with an SmtpError naming the verb, the reply and the codes; the connection goes on", async () => {
    const p = await peer();
    const { conn, server } = await ready(p);
    const mail = conn.submit({ line: "MAIL FROM:<a@example.org> SIZE=10\r\n", expect: [250, 251], phase: "command", deadline: 1000 });
    server.write("452 4.3.1 full\r\n");
    const error = await rejection(mail);
    expect(error).toBeInstanceOf(SmtpError);
    expect(error.message).toBe("MAIL got 452 4.3.1 full (expected 250 or 251)");
    expect((error as SmtpError).command).toBe("MAIL FROM:<a@example.org> SIZE=10");
    expect((error as SmtpError).replyCode).toBe(452);
    expect(conn.closed).toBe(false);
    const next = conn.submit({ line: "AUTH X\r\n", display: "<auth answer>", expect: [235], phase: "command", deadline: 1000 });
    server.write("535 no\r\n");
    expect((await rejection(next)).message).toBe("<auth answer> got 535 no (expected 235)");
  });

  it("a 421 to a command that does not expect it closes the connection; one that expects it gets it", async () => {
    const p = await peer();
    const { conn, server } = await ready(p);
    const quit = conn.submit({ line: "QUIT\r\n", expect: [221, 421], phase: "command", deadline: 1000 });
    server.write("421 bye anyway\r\n");
    expect((await quit).code).toBe(421);
    expect(conn.closed).toBe(false);
    const [first, second] = conn.submitAll([noop(), { line: "RSET\r\n", expect: "any", phase: "command", deadline: 1000 }]);
    server.write("421 4.4.2 shutting down\r\n");
    const error = await rejection(first!);
    expect(error.message).toBe("127.0.0.1 is closing the connection: 421 4.4.2 shutting down");
    expect((error as SmtpError).command).toBe("NOOP");
    expect((error as SmtpError).replyCode).toBe(421);
    // The command behind it is not answered by anything: it gets the same reason.
    expect(await rejection(second!)).toBe(error);
    expect(conn.failure).toBe(error);
    expect(await rejection(conn.submit(noop()))).toBe(error);
  });

  it("'any' takes every reply but a 421", async () => {
    const p = await peer();
    const { conn, server } = await ready(p);
    const rset = conn.submit({ line: "RSET\r\n", expect: "any", phase: "command", deadline: 1000 });
    server.write("554 whatever\r\n");
    expect((await rset).code).toBe(554);
    const again = conn.submit({ line: "RSET\r\n", expect: "any", phase: "command", deadline: 1000 });
    server.write("421 closing\r\n");
    expect((await rejection(again)).message).toBe("127.0.0.1 is closing the connection: 421 closing");
  });

  it("a reply nobody asked for is a protocol error (recorded in the transcript); a lone 421 is the server closing", async () => {
    const p = await peer();
    const log: TranscriptEntry[] = [];
    const { conn, server } = await ready(p, { transcript: new Transcript((e) => log.push(e), "127.0.0.1", 25) });
    server.write("250 surprise\r\n");
    await until(() => conn.closed, "closed");
    expect(conn.failure).toBeInstanceOf(SmtpProtocolError);
    expect(conn.failure!.message).toBe("The server sent a reply nobody asked for: 250 surprise");
    expect((conn.failure as SmtpProtocolError).replyCode).toBe(250);
    expect(log.at(-1)).toEqual({ direction: "server", line: "250 surprise" });

    const other = await ready(p);
    other.server.write("421 4.4.2 idle too long\r\n");
    await until(() => other.conn.closed, "closed");
    expect(other.conn.failure).not.toBeInstanceOf(SmtpProtocolError);
    expect(other.conn.failure!.message).toBe("127.0.0.1 is closing the connection: 421 4.4.2 idle too long");
    expect((other.conn.failure as SmtpError).command).toBeUndefined();
  });

  it("more replies in one read than commands waiting: none of them is trusted", async () => {
    const p = await peer();
    const log: TranscriptEntry[] = [];
    const { conn, server } = await ready(p, { transcript: new Transcript((e) => log.push(e), "127.0.0.1", 25) });
    const pending = conn.submit(noop());
    server.write("250 first\r\n421 second\r\n");
    const error = await rejection(pending);
    expect(error).toBeInstanceOf(SmtpProtocolError);
    expect(error.message).toBe("The server sent a reply nobody asked for: 421 second");
    expect(log.slice(-2).map((e) => e.line)).toEqual(["250 first", "421 second"]);
    expect(conn.repliesRead).toBe(1);
  });

  it("a broken reply after good ones: the good ones are delivered, then the connection fails", async () => {
    const p = await peer();
    const { conn, server } = await ready(p);
    const [first, second] = conn.submitAll([noop(), noop()]);
    server.write("250 fine\r\nhello there\r\n");
    expect((await first!).text).toBe("fine");
    const error = await rejection(second!);
    expect(error).toBeInstanceOf(SmtpProtocolError);
    expect(conn.failure).toBe(error);
  });

  it("a reply deadline passing fails the connection with SmtpTimeoutError naming the command", async () => {
    const p = await peer();
    const clock = new VirtualClock();
    const { conn } = await ready(p, { clock });
    const pending = conn.submit({ line: "DATA\r\n", expect: [354], phase: "data", deadline: 700 });
    await clock.advance(700);
    const error = await rejection(pending);
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect((error as SmtpTimeoutError).phase).toBe("data");
    expect((error as SmtpTimeoutError).timeoutMs).toBe(700);
    expect((error as SmtpTimeoutError).command).toBe("DATA");
    expect(conn.failure).toBe(error);
  });
});

describe("the first failure", () => {
  it("the server closing: SmtpClosedError, and each waiting command is named", async () => {
    const p = await peer();
    const { conn, server } = await ready(p);
    const pending = conn.submit(noop());
    server.end();
    const error = await rejection(pending);
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.message).toBe(`The server closed the connection to 127.0.0.1:${p.port} while waiting for the reply to NOOP`);
    expect((error as SmtpClosedError).command).toBe("NOOP");
    expect(conn.failure!.message).toBe(`The server closed the connection to 127.0.0.1:${p.port}`);
    // Later commands get the recorded reason, named after themselves.
    const later = await rejection(conn.submit({ line: "RSET\r\n", expect: [250], phase: "command", deadline: 1000 }));
    expect(later.message).toBe(`The server closed the connection to 127.0.0.1:${p.port} while waiting for the reply to RSET`);
    const [a, b] = conn.submitAll([noop(), { line: "QUIT\r\n", expect: "any", phase: "command", deadline: 1000 }]);
    expect((await rejection(a!)).message).toMatch(/while waiting for the reply to NOOP$/);
    expect((await rejection(b!)).message).toMatch(/while waiting for the reply to QUIT$/);
  });

  it("a reset: SmtpClosedError saying the connection failed, with the socket's error as the cause", async () => {
    const p = await peer();
    const { conn, server } = await ready(p);
    const pending = conn.submit(noop());
    await until(() => p.received().includes("NOOP"), "NOOP");
    server.resetAndDestroy();
    const error = await rejection(pending);
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.message).toMatch(new RegExp(`^The connection to 127\\.0\\.0\\.1:${p.port} failed: .*ECONNRESET.* while waiting for the reply to NOOP$`));
    expect((error.cause as NodeJS.ErrnoException).code).toBe("ECONNRESET");
  });

  it("destroy(): the client's own close, or the reason given; listeners called once, late ones at once", async () => {
    const p = await peer();
    const { conn } = await ready(p);
    const calls: Error[] = [];
    conn.onClose((e) => calls.push(e));
    conn.onClose((e) => calls.push(e));
    const pending = conn.submit(noop());
    conn.destroy();
    expect(conn.closed).toBe(true);
    expect(conn.failure).toBeInstanceOf(SmtpClosedError);
    expect(conn.failure!.message).toBe("The connection was closed by the client");
    expect((await rejection(pending)).message).toBe("The connection was closed by the client while waiting for the reply to NOOP");
    conn.destroy(new Error("again"));
    expect(conn.failure!.message).toBe("The connection was closed by the client");
    expect(calls).toEqual([conn.failure, conn.failure]);
    const late: Error[] = [];
    conn.onClose((e) => late.push(e));
    expect(late).toEqual([conn.failure]);
    expect(calls).toHaveLength(2);
    // Bytes arriving after the close are not read.
    expect(conn.hasUnreadInput).toBe(false);
  });

  it("a reason that is not a closed-connection error is given to every command as it is", async () => {
    const p = await peer();
    const { conn } = await ready(p);
    const reason = new SmtpProtocolError("broken");
    const pending = conn.submit(noop());
    conn.destroy(reason);
    expect(await rejection(pending)).toBe(reason);
    expect(await rejection(conn.submit(noop()))).toBe(reason);
    const named = new SmtpClosedError("gone", { command: "EHLO x" });
    const second = await ready(p);
    second.conn.destroy(named);
    expect(await rejection(second.conn.submit(noop()))).toBe(named);
  });

  it("the peer sees the socket closed", async () => {
    const p = await peer();
    const { conn, server } = await ready(p);
    const ended = new Promise<void>((resolve) => server.once("close", () => resolve()));
    conn.destroy();
    await ended;
  });
});

describe("writes", () => {
  it("held writes leave together when flushed; holding twice needs one flush", async () => {
    const p = await peer();
    const { conn, server } = await ready(p);
    conn.holdWrites();
    conn.holdWrites();
    const replies = conn.submitAll([noop()]);
    const more = conn.submit({ line: "RSET\r\n", expect: [250], phase: "command", deadline: 1000 });
    await sleep(50);
    expect(p.received()).toBe("");
    conn.flushWrites();
    await until(() => p.received() === "NOOP\r\nRSET\r\n", "both commands");
    server.write("250 a\r\n250 b\r\n");
    await Promise.all([...replies, more]);
    // Flushing again is harmless, and later writes are not held.
    conn.flushWrites();
    const last = conn.submit(noop());
    await until(() => p.received().endsWith("RSET\r\nNOOP\r\n"), "unheld NOOP");
    server.write("250 c\r\n");
    await last;
  });

  it("after a flush, writes can be held again", async () => {
    const p = await peer();
    const { conn, server } = await ready(p);
    conn.holdWrites();
    const first = conn.submit(noop());
    conn.flushWrites();
    await until(() => p.received() === "NOOP\r\n", "the first NOOP");
    server.write("250 a\r\n");
    await first;
    conn.holdWrites();
    const second = conn.submit({ line: "RSET\r\n", expect: [250], phase: "command", deadline: 1000 });
    await sleep(50);
    expect(p.received()).toBe("NOOP\r\n");
    conn.flushWrites();
    await until(() => p.received() === "NOOP\r\nRSET\r\n", "the held RSET");
    server.write("250 b\r\n");
    await second;
  });

  it("holding on a closed connection does nothing", async () => {
    const p = await peer();
    const { conn } = await ready(p);
    conn.destroy();
    expect(() => {
      conn.holdWrites();
      conn.flushWrites();
    }).not.toThrow();
  });

  it("writeBody resolves at once below the high-water mark; on a closed connection it rejects with the reason", async () => {
    const p = await peer();
    const { conn } = await ready(p);
    await conn.writeBody(Buffer.from("Subject: x\r\n\r\nhi\r\n"), 1000);
    await until(() => p.received() === "Subject: x\r\n\r\nhi\r\n", "body bytes");
    conn.destroy();
    expect(await rejection(conn.writeBody(Buffer.from("more"), 1000))).toBe(conn.failure);
  });

  it("past the high-water mark it waits for 'drain', bounded by its deadline", async () => {
    const p = await peer();
    const clock = new VirtualClock();
    const { conn, server } = await ready(p, { clock });
    server.pause();
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const { waiting } = await writeUntilOneWaits(conn, chunk);
    expect(clock.pending.map((t) => t.ms)).toEqual([900]);
    const failed = rejection(waiting);
    await clock.advance(899);
    expect(conn.closed).toBe(false);
    await clock.advance(1);
    const error = await failed;
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect((error as SmtpTimeoutError).phase).toBe("data");
    expect((error as SmtpTimeoutError).timeoutMs).toBe(900);
    expect((error as SmtpTimeoutError).command).toBe("<writing to the server>");
    expect(conn.failure).toBe(error);
  });

  it("'drain' resolves the waiting write and clears its deadline; held writes are let go so that it can come", async () => {
    const p = await peer();
    const clock = new VirtualClock();
    const { conn, server } = await ready(p, { clock });
    server.pause();
    conn.holdWrites();
    const chunk = Buffer.alloc(1 << 20, 0x62);
    const { waiting, written } = await writeUntilOneWaits(conn, chunk);
    let total = 0;
    server.on("data", (b: Buffer) => (total += b.length));
    server.resume();
    await waiting;
    expect(clock.pending).toEqual([]);
    await clock.advance(5000);
    expect(conn.closed).toBe(false);
    await until(() => total === written, "every body byte");
  });

  it("a failure while a write waits for 'drain' rejects it with the reason and clears its deadline", async () => {
    const p = await peer();
    const clock = new VirtualClock();
    const { conn, server } = await ready(p, { clock });
    server.pause();
    const chunk = Buffer.alloc(1 << 20, 0x63);
    const { waiting } = await writeUntilOneWaits(conn, chunk);
    const reason = new Error("stop");
    conn.destroy(reason);
    expect(await rejection(waiting)).toBe(reason);
    expect(clock.pending).toEqual([]);
  });
});

/** Writes `chunk` (at most 64 times) until a write is left waiting for 'drain', with a 900 ms deadline each. */
async function writeUntilOneWaits(conn: SmtpConnection, chunk: Buffer): Promise<{ waiting: Promise<void>; written: number }> {
  let written = 0;
  for (let i = 0; i < 64; i++) {
    let done = false;
    const write = conn.writeBody(chunk, 900).then(() => void (done = true));
    written += chunk.length;
    await flush();
    if (!done) return { waiting: write, written };
  }
  throw new Error("no write waited for 'drain' after 64 writes");
}
