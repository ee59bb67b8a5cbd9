// The SMTP backend's runs of messages per connection (pipelined behind each final dot)
// together with what the delivery engine asks of a backend: a gate per message (a rate
// limit's token) taken before any byte of that message leaves, a deadline and a signal
// that cut one message (and drop its connection) while the messages pipelined behind it
// go again over another connection exactly once, a subset of the recipients, DKIM signed
// on the render each connection gets, and the errors and reports main's engine reads.
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { SmtpBackend, type SmtpBackendOptions } from "../../src/backends/smtp.js";
import { reportsOf } from "../../src/backends/report.js";
import { RateLimitedBackend } from "../../src/delivery/limited-backend.js";
import { resolveRateLimit, TokenBucket } from "../../src/delivery/rate-limit.js";
import { AbortError, RateLimitedError, SmtpDeliveryUnknownError, SmtpTimeoutError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { systemClock, type Clock } from "../../src/observe/clock.js";
import { verifyWithDkimpy } from "../helpers/dkim-oracle.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { rejection } from "../helpers/errors.js";
import { delay, startFakeServer, type FakeServerOptions, type FakeSmtpServer, type ScriptResult } from "../helpers/fake-smtp-server.js";
import { VirtualClock } from "../helpers/virtual-clock.js";
import { edSigner, RECORDS, rsaSigner, SIGNING_TIME } from "../dkim/helpers.js";

isolateEmailEnvironment();

const servers: FakeSmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(options: FakeServerOptions = {}): Promise<FakeSmtpServer> {
  const s = await startFakeServer(options);
  servers.push(s);
  return s;
}

function backend(s: FakeSmtpServer, options: SmtpBackendOptions = {}): SmtpBackend {
  return new SmtpBackend({ host: s.host, port: s.port, localName: "client.test", timeout: 60_000, ...options });
}

const numbered = (i: number, to: readonly string[] = [`r${i}@example.com`], body = `Body of message ${i}\n`) =>
  new EmailMessage({ subject: `m${i}`, body, from: "ann@example.com", to: [...to], headers: { "Message-ID": `<m${i}@example.com>` } });
const batchOf = (n: number) => Array.from({ length: n }, (_, i) => numbered(i + 1));
const subjects = (s: FakeSmtpServer) => s.received.map((m) => /^Subject: (.*)$/m.exec(m.data.toString("latin1"))?.[1]);
const where = (s: FakeSmtpServer) => s.received.map((m) => [/^Subject: (.*)$/m.exec(m.data.toString("latin1"))?.[1], m.conn]);

/** The client's bytes on connection `conn` up to the server's reply holding `marker`. */
function clientBytesBefore(s: FakeSmtpServer, marker: string, conn = 1): string {
  let out = "";
  for (const entry of s.transcript) {
    if (entry.conn !== conn) continue;
    if (entry.dir === "s" && entry.text.includes(marker)) return out;
    if (entry.dir === "c") out += entry.bytes.toString("latin1");
  }
  throw new Error(`no reply with ${marker}`);
}

/** Waits (bounded, real time) until `ready()`; the clocks under test are virtual. */
async function until(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The dialogue as the client saw it (what it wrote, even where the server stopped reading; what it read). */
function written(): { transcript: (e: { direction: string; line: string }) => void; count(prefix: string): number; read(text: string): boolean } {
  const lines: string[] = [];
  const replies: string[] = [];
  return {
    transcript: (e) => (e.direction === "client" ? lines : replies).push(e.line),
    count: (prefix) => lines.filter((l) => l.startsWith(prefix)).length,
    read: (text) => replies.some((l) => l.includes(text)),
  };
}

/** A reply the test hands out when it chooses: `release()` lets the server answer. */
function held(): { promise: Promise<ScriptResult>; release(reply?: ScriptResult): void } {
  let release!: (reply?: ScriptResult) => void;
  const promise = new Promise<ScriptResult>((resolve) => (release = (reply) => resolve(reply)));
  return { promise, release };
}

describe("a rate limit over a pipelining server", () => {
  it("no message's MAIL FROM leaves before its token; within the burst the next message still follows the final dot", async () => {
    const clock = new VirtualClock();
    let tokens = 0;
    const taken: number[] = [];
    class CountedBucket extends TokenBucket {
      override async take(signal?: AbortSignal): Promise<number> {
        const waited = await super.take(signal);
        tokens += 1;
        taken.push(clock.now() - start);
        return waited;
      }
    }
    const start = clock.now();
    const bucket = new CountedBucket(resolveRateLimit({ messages: 1, perSeconds: 1, burst: 2 }, { path: "rateLimit", settings: false }), clock);
    // Each MAIL as the server reads it: the tokens taken by then, and the virtual time.
    const mails: { tokens: number; at: number }[] = [];
    const s = await server({
      script: [
        {
          onCommand: (cmd) => {
            if (cmd.verb === "MAIL") mails.push({ tokens, at: clock.now() - start });
            return undefined;
          },
        },
        // The first DATA answered late: by then m2 is surely announced.
        delay("DATA", 100, { nth: 1 }),
      ],
    });
    const confirmed = (n: number) => s.transcript.some((e) => e.dir === "s" && e.text.includes(`queued as FAKE${n}`));
    const limited = new RateLimitedBackend(backend(s, { clock }), bucket);
    const pending = limited.sendMessagesWithReport(batchOf(5));
    for (let n = 2; n <= 4; n++) {
      // m1..mn are confirmed and the next message waits for its token on the clock: its MAIL has not left.
      await until(() => confirmed(n) && clock.pending.some((t) => t.ms === 1000), `message ${n} confirmed and the next one waiting`);
      expect(mails).toHaveLength(n);
      await clock.advance(1000);
    }
    const { sent, reports } = await pending;
    expect(sent).toBe(5);
    expect(reports.map((r) => r.status)).toEqual(["sent", "sent", "sent", "sent", "sent"]);
    expect(subjects(s)).toEqual(["m1", "m2", "m3", "m4", "m5"]);
    // Two tokens at once (the burst), then one a second; the k-th MAIL read after the k-th token.
    expect(taken).toEqual([0, 0, 1000, 2000, 3000]);
    expect(mails.map((m) => m.at)).toEqual([0, 0, 1000, 2000, 3000]);
    expect(mails.map((m, k) => m.tokens >= k + 1)).toEqual([true, true, true, true, true]);
    // m2 (its token in the burst) was pipelined behind m1's final dot.
    expect(clientBytesBefore(s, "queued as FAKE1")).toMatch(/\r\n\.\r\nMAIL FROM:<ann@example\.com>[^\r]*\r\nRCPT TO:<r2@example\.com>\r\nDATA\r\n$/);
    expect(s.errors).toEqual([]);
  });

  it("a gate that refuses one message (ERATE_LIMITED) fails only that one; the others go pipelined on the same connection", async () => {
    const s = await server();
    const b = backend(s);
    const refused = new RateLimitedError("bulk", 9000, 5000);
    const messages = batchOf(4);
    const { reports } = await b.sendMessagesWithReport(messages, {
      stopOnError: false,
      beforeEach: async (m) => {
        if (m === messages[1]) throw refused;
      },
    });
    expect(reports.map((r) => r.status)).toEqual(["sent", "failed", "sent", "sent"]);
    expect(reports[1]!.error).toBe(refused);
    expect(reports[1]!.deferred.map((d) => d.address)).toEqual(["r2@example.com"]);
    expect(subjects(s)).toEqual(["m1", "m3", "m4"]);
    expect(s.connections).toBe(1);
    expect(s.commands().filter((c) => c.startsWith("RCPT")).join()).not.toContain("r2@");
  });
});

describe("a deadline or a signal that cuts one message of a pipelined run", () => {
  it("a server that stops answering m2's DATA: m2 times out (its connection dropped), m3 goes once over a new connection", async () => {
    const clock = new VirtualClock();
    const s = await server({ script: { onCommand: (cmd, session) => (cmd.verb === "DATA" && session.id === 1 && session.count("DATA") === 2 ? { reply: null, then: "hang" } : undefined) } });
    const client = written();
    const b = backend(s, { clock, deadline: 20_000, transcript: client.transcript });
    const pending = b.sendMessagesWithReport(batchOf(3), { stopOnError: false });
    // m1 confirmed (its own deadline cleared), m2's DATA unanswered.
    await until(() => client.read("queued as FAKE1") && s.commands(1).filter((c) => c === "DATA").length === 2, "m2's DATA");
    await clock.advance(20_000);
    const { sent, reports } = await pending;
    expect(sent).toBe(2);
    expect(reports.map((r) => r.status)).toEqual(["sent", "failed", "sent"]);
    const cut = reports[1]!.error as SmtpTimeoutError;
    expect(cut).toBeInstanceOf(SmtpTimeoutError);
    expect([cut.phase, cut.stage, cut.bodySent]).toEqual(["message", "data", false]);
    expect(reports[1]!.deferred.map((d) => d.address)).toEqual(["r2@example.com"]);
    expect(reports.map((r) => r.attempts.length)).toEqual([1, 1, 1]);
    expect(where(s)).toEqual([
      ["m1", 1],
      ["m3", 2],
    ]);
  });

  it("cut after m2's final dot, with m3's commands behind it: m2 is unknown (never resent), m3 is withdrawn and delivered exactly once", async () => {
    const clock = new VirtualClock();
    const s = await server({ script: { onMessage: (_m, session) => (session.id === 1 && session.count("MAIL") >= 2 ? { reply: null, then: "hang" } : undefined) } });
    const client = written();
    const b = backend(s, { clock, deadline: 20_000, transcript: client.transcript });
    const pending = b.sendMessagesWithReport(batchOf(3), { stopOnError: false });
    // m2's dot is out and m3's MAIL, RCPT and DATA went in the same write.
    await until(() => client.read("queued as FAKE1") && s.received.length === 2 && client.count("MAIL FROM") === 3, "m2's data and m3's commands");
    await clock.advance(20_000);
    const { reports } = await pending;
    expect(reports.map((r) => r.status)).toEqual(["sent", "unknown", "sent"]);
    expect(reports[1]!.error).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect(reports[1]!.deferred.map((d) => d.address)).toEqual(["r2@example.com"]);
    expect(where(s)).toEqual([
      ["m1", 1],
      ["m2", 1],
      ["m3", 2],
    ]);
    expect(s.commands(2).filter((c) => c.startsWith("RCPT"))).toEqual(["RCPT TO:<r3@example.com>"]);
  });

  it("without stopOnError: false the cut stops the batch: thrown with the reports known, the message pipelined behind never delivered", async () => {
    const clock = new VirtualClock();
    const s = await server({ script: { onCommand: (cmd, session) => (cmd.verb === "DATA" && session.count("DATA") === 2 ? { reply: null, then: "hang" } : undefined) } });
    const client = written();
    const b = backend(s, { clock, deadline: 20_000, transcript: client.transcript });
    const pending = rejection(b.sendMessages(batchOf(3)));
    await until(() => client.read("queued as FAKE1") && s.commands(1).filter((c) => c === "DATA").length === 2, "m2's DATA");
    await clock.advance(20_000);
    const error = await pending;
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect(reportsOf(error)!.map((r) => [r.message.subject, r.status])).toEqual([
      ["m1", "sent"],
      ["m2", "failed"],
    ]);
    expect(subjects(s)).toEqual(["m1"]);
    expect(s.connections).toBe(1);
  });

  it("the time a rendered message waits behind the one before it does not count towards its deadline", async () => {
    const clock = new VirtualClock();
    const replies = [held(), held()];
    let data = 0;
    const s = await server({ script: { onMessage: () => replies[data++]?.promise } });
    const client = written();
    const b = backend(s, { clock, deadline: 20_000, transcript: client.transcript });
    const pending = b.sendMessagesWithReport(batchOf(2), { stopOnError: false });
    // m1's dot is out, m2's commands behind it: m1 waits 15 s for its verdict.
    await until(() => data === 1 && client.count("MAIL FROM") === 2, "m1's data");
    await clock.advance(15_000);
    replies[0]!.release();
    // m2's own transaction takes 15 s too: 30 s after it was rendered, 15 s of its own.
    await until(() => data === 2, "m2's data");
    await clock.advance(15_000);
    replies[1]!.release();
    const { reports } = await pending;
    expect(reports.map((r) => r.status)).toEqual(["sent", "sent"]);
    expect(s.connections).toBe(1);
  });

  it("the caller's signal aborting while m2 is on the wire: m2 and m3 end aborted, m3's body never sent", async () => {
    const reply = held();
    let data = 0;
    const s = await server({ script: { onMessage: () => (++data === 2 ? reply.promise : undefined) } });
    const controller = new AbortController();
    const client = written();
    const b = backend(s, { transcript: client.transcript });
    const pending = b.sendMessagesWithReport(batchOf(3), { stopOnError: false, signal: controller.signal });
    await until(() => client.read("queued as FAKE1") && data === 2 && client.count("MAIL FROM") === 3, "m2's data and m3's commands");
    controller.abort();
    const { reports } = await pending;
    expect(reports.map((r) => [r.status, r.error?.code])).toEqual([
      ["sent", undefined],
      ["unknown", "EDELIVERY_UNKNOWN"],
      ["failed", "EABORTED"],
    ]);
    expect(reports[2]!.deferred.map((d) => d.address)).toEqual(["r3@example.com"]);
    reply.release();
    await until(() => s.received.length === 2, "the server's record of m2");
    expect(subjects(s)).toEqual(["m1", "m2"]);
  });

  it("the caller's signal before m2's final dot: thrown (Django's semantics) as an AbortError carrying the reports", async () => {
    const s = await server({ script: { onCommand: (cmd, session) => (cmd.verb === "DATA" && session.count("DATA") === 2 ? { reply: null, then: "hang" } : undefined) } });
    const controller = new AbortController();
    const client = written();
    const b = backend(s, { transcript: client.transcript });
    const pending = rejection(b.sendMessages(batchOf(3), { signal: controller.signal }));
    await until(() => client.read("queued as FAKE1") && s.commands().filter((c) => c === "DATA").length === 2, "m2's DATA");
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(AbortError);
    expect(reportsOf(error)!.map((r) => [r.message.subject, r.status, r.error?.code])).toEqual([
      ["m1", "sent", undefined],
      ["m2", "failed", "EABORTED"],
    ]);
  });
});

describe("the backend's own signal aborting mid-batch", () => {
  const hangingOnSecondData = () => server({ script: { onCommand: (cmd, session) => (cmd.verb === "DATA" && session.count("DATA") === 2 ? { reply: null, then: "hang" } : undefined) } });

  it("sendMessages rejects with an AbortError carrying the reports (it used to resolve with 0 sent and no reports)", async () => {
    const s = await hangingOnSecondData();
    const controller = new AbortController();
    const client = written();
    const b = backend(s, { signal: controller.signal, transcript: client.transcript });
    const pending = rejection(b.sendMessagesWithReport(batchOf(3)));
    await until(() => client.read("queued as FAKE1") && s.commands().filter((c) => c === "DATA").length === 2, "m2's DATA");
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(AbortError);
    expect((error as AbortError).code).toBe("EABORTED");
    expect(reportsOf(error)!.map((r) => [r.message.subject, r.status])).toEqual([
      ["m1", "sent"],
      ["m2", "failed"],
    ]);
    expect(subjects(s)).toEqual(["m1"]);
  });

  it("with stopOnError: false every message is reported: the one cut and those after it failed with EABORTED", async () => {
    const s = await hangingOnSecondData();
    const controller = new AbortController();
    const client = written();
    const b = backend(s, { signal: controller.signal, transcript: client.transcript });
    const pending = b.sendMessagesWithReport(batchOf(4), { stopOnError: false });
    await until(() => client.read("queued as FAKE1") && s.commands().filter((c) => c === "DATA").length === 2, "m2's DATA");
    controller.abort();
    const { sent, reports } = await pending;
    expect(sent).toBe(1);
    expect(reports.map((r) => [r.status, r.error?.code])).toEqual([
      ["sent", undefined],
      ["failed", "EABORTED"],
      ["failed", "EABORTED"],
      ["failed", "EABORTED"],
    ]);
    // Nothing was sent after the abort: no new connection.
    expect(s.connections).toBe(1);
  });

  it("already aborted before a closed backend connects: reported under stopOnError: false, thrown otherwise", async () => {
    const s = await server();
    const b = backend(s, { signal: AbortSignal.abort() });
    const { reports } = await b.sendMessagesWithReport(batchOf(2), { stopOnError: false });
    expect(reports.map((r) => [r.status, r.error?.code])).toEqual([
      ["failed", "EABORTED"],
      ["failed", "EABORTED"],
    ]);
    const error = await rejection(b.sendMessages(batchOf(2)));
    expect(error).toBeInstanceOf(AbortError);
    expect(reportsOf(error)!.map((r) => r.status)).toEqual(["failed"]);
    expect(s.received).toEqual([]);
  });
});

describe("signals listened to once per batch", () => {
  it("a pool of 4 lanes, each holding three messages, adds one listener to the caller's signal, not one per message (no MaxListeners warning)", async () => {
    const s = await server();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const controller = new AbortController();
      const counted = countListeners(controller.signal);
      const b = backend(s, { pool: { maxConnections: 4 }, signal: new AbortController().signal });
      const { sent } = await b.sendMessagesWithReport(batchOf(40), { stopOnError: false, signal: controller.signal });
      expect(sent).toBe(40);
      expect(counted.most).toBe(1);
      expect(counted.now).toBe(0);
      // Node reports a listener pile-up on the next tick.
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});

/** Counts the abort listeners on `signal` (added, less removed): how many at most, and how many now. */
function countListeners(signal: AbortSignal): { readonly most: number; readonly now: number } {
  let now = 0;
  let most = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args: Parameters<AbortSignal["addEventListener"]>) => {
    if (args[0] === "abort") most = Math.max(most, ++now);
    add(...args);
  };
  signal.removeEventListener = (...args: Parameters<AbortSignal["removeEventListener"]>) => {
    if (args[0] === "abort") now -= 1;
    remove(...args);
  };
  return {
    get most() {
      return most;
    },
    get now() {
      return now;
    },
  };
}

describe("a subset of the recipients, pipelined", () => {
  it("each message's envelope holds only the recipients asked for, in the commands that follow the previous final dot", async () => {
    const s = await server();
    const b = backend(s);
    const messages = [numbered(1, ["a@example.com", "b@example.com"]), numbered(2, ["c@example.com", "d@example.com", "e@example.com"]), numbered(3, ["f@example.com"])];
    const recipients = new Map([
      [messages[1]!, ["d@example.com"]],
      [messages[2]!, ["f@example.com"]],
    ]);
    const { reports } = await b.sendMessagesWithReport(messages, { recipients });
    expect(reports.map((r) => [r.status, r.accepted, r.attempts[0]!.recipients])).toEqual([
      ["sent", ["a@example.com", "b@example.com"], ["a@example.com", "b@example.com"]],
      ["sent", ["d@example.com"], ["d@example.com"]],
      ["sent", ["f@example.com"], ["f@example.com"]],
    ]);
    expect(s.received.map((m) => m.rcptTo)).toEqual([["a@example.com", "b@example.com"], ["d@example.com"], ["f@example.com"]]);
    // m2's envelope went behind m1's dot, with d only; the header still names every recipient.
    expect(clientBytesBefore(s, "queued as FAKE1")).toMatch(/\r\n\.\r\nMAIL FROM:<ann@example\.com>[^\r]*\r\nRCPT TO:<d@example\.com>\r\nDATA\r\n$/);
    expect(s.received[1]!.data.toString("latin1")).toMatch(/^To: c@example\.com, d@example\.com, e@example\.com$/m);
  });
});

describe("DKIM-signed messages, pipelined", () => {
  /** Real timers, a fixed signing time (t= is known and in the past, as dkimpy requires). */
  const signingClock: Clock = { ...systemClock, now: () => SIGNING_TIME.getTime() };

  it("each message signed on its own render, sent behind the previous dot, and re-signed when it goes again after a drop: dkimpy verifies every one", async () => {
    const s = await server({ script: { onMessage: (_m, session) => (session.id === 1 && session.count("MAIL") === 3 ? { reply: null, then: "destroy" } : undefined) } });
    const b = backend(s, { clock: signingClock, dkim: [rsaSigner(), edSigner()], failSilently: true, timeout: 10_000 });
    const messages = Array.from({ length: 6 }, (_, i) => numbered(i + 1, undefined, `Grüße, message ${i + 1}\n${"x".repeat(i * 3000)}\n.leading dot\n`));
    const { reports } = await b.sendMessagesWithReport(messages);
    expect(reports.map((r) => r.status)).toEqual(["sent", "sent", "unknown", "sent", "sent", "sent"]);
    // m4 had been pipelined behind m3's dot on the connection that dropped: it went again, once.
    expect(where(s).map(([subject]) => subject)).toEqual(["m1", "m2", "m3", "m4", "m5", "m6"]);
    expect(where(s).find(([subject]) => subject === "m4")![1]).toBe(2);
    expect(clientBytesBefore(s, "queued as FAKE1")).toContain("RCPT TO:<r2@example.com>");
    for (const m of s.received) {
      const size = Number(m.mailParams.find((p) => p.startsWith("SIZE="))!.slice(5));
      expect(size).toBe(m.data.length);
    }
    const verdicts = await verifyWithDkimpy(s.received.map((m) => ({ message: m.data, records: RECORDS })));
    expect(verdicts.map((v) => v.map((sig) => sig.ok))).toEqual(Array.from({ length: 6 }, () => [true, true]));
    // Each message's body is its own (not a neighbour's, not cut): the body hash differs per message.
    const hashes = s.received.map((m) => createHash("sha256").update(m.data.subarray(m.data.indexOf("\r\n\r\n"))).digest("hex"));
    expect(new Set(hashes).size).toBe(6);
  });
});
