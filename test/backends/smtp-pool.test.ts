import net from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { SmtpBackend, type SmtpBackendOptions } from "../../src/backends/smtp.js";
import { InvalidArgumentError, SmtpConnectError, SmtpError, SmtpRecipientsRefusedError } from "../../src/errors.js";
import type { EmailMessage } from "../../src/mime/message.js";
import { policies } from "../../src/mime/policy.js";
import { startAiosmtpd, type AiosmtpdServer, type StoredMessage } from "../helpers/aiosmtpd.js";
import { startFakeServer, type FakeSmtpServer, type ReceivedMessage, type Script } from "../helpers/fake-smtp-server.js";
import { fixedMessage } from "./helpers.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";

isolateEmailEnvironment();

/** Message i: subject "m<i>", one recipient r<i>@example.com, its own Message-ID, a non-ASCII body line. */
const numbered = (i: number, to = `r${i}@example.com`): EmailMessage =>
  fixedMessage({ subject: `m${i}`, to: [to], body: `Message ${i}\nGrüße aus Köln\n`, headers: { "Message-ID": `<m${i}@example.com>` } });
const batch = (n: number): EmailMessage[] => Array.from({ length: n }, (_, i) => numbered(i));
const subjectOf = (data: Buffer): string => /^Subject: (.*)$/m.exec(data.toString("latin1"))?.[1]?.trim() ?? "?";

describe("SmtpBackend pool against aiosmtpd", () => {
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
  const newMessages = async (n: number): Promise<StoredMessage[]> => (await server.waitForMessages(before + n)).slice(before);
  const backend = (options: SmtpBackendOptions = {}) => new SmtpBackend({ host: server.host, port: server.port, timeout: 10_000, ...options });

  it("sends a batch of 12 over more than one and at most maxConnections connections, reports in input order", async () => {
    const messages = batch(12);
    const b = backend({ pool: { maxConnections: 3 } });
    const { sent, reports } = await b.sendMessagesWithReport(messages);
    expect(sent).toBe(12);
    expect(reports.map((r) => r.message)).toEqual(messages);
    expect(reports.map((r) => r.status)).toEqual(Array(12).fill("sent"));
    expect(reports.map((r) => r.messageId)).toEqual(messages.map((_, i) => `<m${i}@example.com>`));
    expect(reports.map((r) => r.accepted)).toEqual(messages.map((_, i) => [`r${i}@example.com`]));
    expect(b.toJSON()["open"]).toBe(false);

    const stored = await newMessages(12);
    expect(stored).toHaveLength(12);
    const peers = new Set(stored.map((m) => m.peer![1]));
    expect(peers.size).toBeGreaterThan(1);
    expect(peers.size).toBeLessThanOrEqual(3);
    const bySubject = new Map(stored.map((m) => [subjectOf(m.data), m]));
    expect([...bySubject.keys()].sort()).toEqual(messages.map((_, i) => `m${i}`).sort());
    for (const [i, message] of messages.entries()) {
      const m = bySubject.get(`m${i}`)!;
      expect(m.rcptTos).toEqual([`r${i}@example.com`]);
      expect(m.mailFrom).toBe("ann@example.com");
      // Rendered for the server's 8BITMIME, exactly as without the pool.
      expect(m.mailOptions).toContain("BODY=8BITMIME");
      expect(m.data.equals(await message.asBytes(policies.eightBit))).toBe(true);
    }
  });

  it("prepares each message exactly as the one-connection path does (same bytes, same MAIL parameters)", async () => {
    await backend().sendMessages([numbered(1)]);
    await backend({ pool: true }).sendMessages([numbered(1)]);
    const [single, pooled] = await newMessages(2);
    expect(pooled!.data.equals(single!.data)).toBe(true);
    expect(pooled!.mailOptions).toEqual(single!.mailOptions);
    expect(pooled!.rcptTos).toEqual(single!.rcptTos);
  });

  it("failSilently: a message whose recipient is refused in the middle gets a failed report, the others go", async () => {
    const messages = batch(12);
    messages[5] = numbered(5, "nobody@example.com");
    const b = backend({ pool: { maxConnections: 3 }, failSilently: true });
    const { sent, reports } = await b.sendMessagesWithReport(messages);
    expect(sent).toBe(11);
    expect(reports.map((r) => r.message)).toEqual(messages);
    expect(reports.map((r) => r.status)).toEqual(messages.map((_, i) => (i === 5 ? "failed" : "sent")));
    expect(reports[5]!.error).toBeInstanceOf(SmtpRecipientsRefusedError);
    expect(reports[5]!.rejected).toEqual([expect.objectContaining({ address: "nobody@example.com", code: 550 })]);
    const stored = await newMessages(11);
    expect(stored.map((m) => subjectOf(m.data)).sort()).toEqual(messages.map((_, i) => `m${i}`).filter((s) => s !== "m5").sort());
  });

  it("an open pooled backend stays open across batches and reuses its connections; close() closes it", async () => {
    const b = backend({ pool: { maxConnections: 2 } });
    expect(await b.open()).toBe(true);
    expect(await b.open()).toBe(false);
    expect(b.client).toBeUndefined(); // no single client while pooled
    expect(await b.sendMessages(batch(4))).toBe(4);
    expect(b.toJSON()["open"]).toBe(true);
    expect(await b.sendMessages(batch(4))).toBe(4);
    await b.close();
    expect(b.toJSON()["open"]).toBe(false);
    await b.close(); // idempotent
    const stored = await newMessages(8);
    expect(new Set(stored.map((m) => m.peer![1])).size).toBeLessThanOrEqual(2);
    // Closed means closed: the next batch opens (and closes) a pool of its own.
    expect(await b.sendMessages([numbered(9)])).toBe(1);
    expect(b.toJSON()["open"]).toBe(false);
  });
});

describe("SmtpBackend pool faults (fake server)", () => {
  let fake: FakeSmtpServer | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });
  const start = async (scripts: Script[] = [], ehlo?: string[]) => {
    fake = await startFakeServer({ script: scripts, ...(ehlo ? { ehlo } : {}) });
    return fake;
  };
  const backend = (options: SmtpBackendOptions = {}) => new SmtpBackend({ host: fake!.host, port: fake!.port, timeout: 5_000, ...options });
  const subjects = (received: readonly ReceivedMessage[]) => received.map((m) => subjectOf(m.data));
  /** Delays the reply to each message's data; answers `replies[subject]` instead of 250 where given. */
  const replies = (map: Record<string, { reply?: string; delayMs?: number }>, defaultDelayMs = 0): Script => ({
    onMessage: (m) => {
      const r = map[subjectOf(m.data)];
      return { ...(r?.reply ? { reply: r.reply } : {}), delayMs: r?.delayMs ?? defaultDelayMs };
    },
  });

  it("without failSilently the error is thrown after the messages in flight settle, and the pool is closed", async () => {
    const server = await start([replies({ m1: { reply: "554 5.7.1 Rejected", delayMs: 0 } }, 80)]);
    const b = backend({ pool: { maxConnections: 3 } });
    const err = await b.sendMessages(batch(12)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect((err as SmtpError).replyCode).toBe(554);
    // m0 and m2 were in flight beside m1 and finished; nothing started after the failure.
    expect(subjects(server.received).sort()).toEqual(["m0", "m1", "m2"]);
    expect(b.reports.map((r) => r.message.subject)).toEqual(["m0", "m2"]);
    expect(b.reports.every((r) => r.status === "sent")).toBe(true);
    expect(b.toJSON()["open"]).toBe(false);
    // Every connection is closed: no socket left behind.
    await server.waitForClosed(server.connections, 3_000);
    expect(server.connections).toBeLessThanOrEqual(4);
  });

  it("throws the failure earliest in input order, not the first to happen", async () => {
    await start([replies({ m0: { reply: "554 5.7.1 first in order", delayMs: 150 }, m1: { reply: "550 5.7.1 first in time" } })]);
    const err = await backend({ pool: { maxConnections: 2 } }).sendMessages(batch(4)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect((err as SmtpError).serverText).toContain("first in order");
  });

  it("never resends a message whose outcome is unknown; failSilently reports it as unknown", async () => {
    let n = 0;
    const hangOnce: Script = { onMessage: (m) => (subjectOf(m.data) === "m2" && ++n === 1 ? { reply: null, then: "hang" } : undefined) };
    const server = await start([hangOnce]);
    const b = backend({ pool: { maxConnections: 2 }, failSilently: true, timeouts: { finalDot: 300 } });
    const { sent, reports } = await b.sendMessagesWithReport(batch(5));
    expect(sent).toBe(4);
    expect(reports.map((r) => r.status)).toEqual(["sent", "sent", "unknown", "sent", "sent"]);
    expect(subjects(server.received).filter((s) => s === "m2")).toHaveLength(1);
    await server.waitForClosed(server.connections, 3_000);
  });

  it("open() checks the server on one connection, which becomes the pool's first; more open only as messages come", async () => {
    const server = await start();
    const b = backend({ pool: { maxConnections: 2 } });
    expect(await b.open()).toBe(true);
    expect(server.connections).toBe(1);
    expect(server.commands(1).some((c) => c.startsWith("MAIL"))).toBe(false);
    expect(await b.sendMessages(batch(2))).toBe(2);
    expect(server.connections).toBe(2);
    expect(server.commands(1).some((c) => c.startsWith("MAIL"))).toBe(true);
    await b.close();
    await server.waitForClosed(2, 3_000);
  });

  it("sendMessages on a closed pooled backend opens and closes around the batch", async () => {
    const server = await start();
    const b = backend({ pool: { maxConnections: 3 } });
    expect(await b.sendMessages(batch(6))).toBe(6);
    expect(b.toJSON()["open"]).toBe(false);
    await server.waitForClosed(server.connections, 3_000);
  });

  it("a server without 8BITMIME gets 7-bit through the pool too", async () => {
    const server = await start([], ["SIZE 1000000", "PIPELINING"]);
    expect(await backend({ pool: true }).sendMessages(batch(3))).toBe(3);
    for (const m of server.received) {
      expect(m.mailParams.join(" ")).not.toContain("BODY=");
      expect(m.data.every((byte) => byte < 0x80)).toBe(true);
    }
  });

  it("maxMessagesPerConnection and idleTimeout reach the pool", async () => {
    const server = await start();
    const b = backend({ pool: { maxConnections: 1, maxMessagesPerConnection: 2, idleTimeout: 100 } });
    expect(await b.open()).toBe(true);
    expect(await b.sendMessages(batch(5))).toBe(5);
    expect(server.connections).toBe(3); // open()'s connection takes 2 messages, then 2 + 1
    // Still open, but the idle connection is closed after idleTimeout.
    await server.waitForClosed(3, 3_000);
    expect(b.toJSON()["open"]).toBe(true);
    await b.close();
  });

  it("connection refused: open() throws SmtpConnectError, or returns false with failSilently", async () => {
    // A freed port may be bound again by another test: refuse in net.connect instead.
    const refuse = vi.spyOn(net, "connect").mockImplementation(((options: net.NetConnectOpts) => {
      const socket = new net.Socket();
      const { host, port } = options as net.TcpNetConnectOpts;
      process.nextTick(() => socket.emit("error", Object.assign(new Error(`connect ECONNREFUSED ${host}:${port}`), { code: "ECONNREFUSED" })));
      return socket;
    }) as typeof net.connect);
    try {
      const opts = { host: "127.0.0.1", port: 2525, timeout: 2_000, pool: true } as const;
      await expect(new SmtpBackend(opts).sendMessages([numbered(0)])).rejects.toBeInstanceOf(SmtpConnectError);
      const quiet = new SmtpBackend({ ...opts, failSilently: true });
      expect(await quiet.open()).toBe(false);
      expect(await quiet.sendMessages([numbered(0)])).toBe(0);
      expect(refuse).toHaveBeenCalledTimes(3);
    } finally {
      refuse.mockRestore();
    }
  });
});

describe("SmtpBackend pool option", () => {
  const make = (pool: unknown) => new SmtpBackend({ host: "127.0.0.1", port: 2525, pool } as SmtpBackendOptions);

  it("is off by default; true means the pool's defaults", () => {
    expect(new SmtpBackend({ host: "127.0.0.1" }).pool).toBeUndefined();
    expect(make(false).pool).toBeUndefined();
    expect(make(true).pool).toEqual({});
    expect(make({ maxConnections: 3, idleTimeout: 1000 }).pool).toEqual({ maxConnections: 3, idleTimeout: 1000 });
    expect(make({ maxConnections: 3 }).toJSON()["pool"]).toEqual({ maxConnections: 3 });
  });

  it("rejects unknown keys and bad values; unknown top-level options are still rejected", () => {
    expect(() => make({ maxConnection: 3 })).toThrow(InvalidArgumentError);
    expect(() => make({ maxConnections: 0 })).toThrow(InvalidArgumentError);
    expect(() => make({ maxMessagesPerConnection: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => make({ idleTimeout: -1 })).toThrow(InvalidArgumentError);
    expect(() => make({ idleTimeout: 2 ** 31 })).toThrow(InvalidArgumentError);
    expect(() => make(3)).toThrow(InvalidArgumentError);
    expect(() => new SmtpBackend({ host: "127.0.0.1", pooling: true } as SmtpBackendOptions)).toThrow(InvalidArgumentError);
  });
});
