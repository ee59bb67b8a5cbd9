/**
 * The outbox on BullMQ, against Debian's redis-server (loopback, no persistence, stopped
 * after): the same Outbox API and states as the spool, the held rule over BullMQ's stall
 * retry, the size limit, and three worker processes sharing one queue.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { BullMQStore } from "../../src/bullmq/index.js";
import { EmailMessage } from "../../src/mime/message.js";
import { Outbox, type OutboxEntry, type OutboxWorker } from "../../src/outbox/index.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { messageReply, noReplyToDot, startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { startRedis, type RedisServer } from "../helpers/redis.js";

isolateEmailEnvironment();

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
let redis: RedisServer;
let fake: FakeSmtpServer | undefined;
let queues = 0;
const outboxes: Outbox[] = [];
const workers: OutboxWorker[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop({ abort: true })));
  await Promise.all(outboxes.splice(0).map((o) => o.close()));
  await fake?.close();
  fake = undefined;
});

const message = (i = 0, extra: Partial<ConstructorParameters<typeof EmailMessage>[0]> = {}) =>
  new EmailMessage({ subject: `message ${i}`, body: `body ${i}\n`, from: "ann@example.com", to: ["bob@example.org"], ...extra });

function store(options: Partial<ConstructorParameters<typeof BullMQStore>[0]> = {}): BullMQStore {
  return new BullMQStore({ connection: { host: redis.host, port: redis.port, maxRetriesPerRequest: null }, queueName: `test${++queues}`, ...options });
}

function outboxOn(s: BullMQStore): Outbox {
  const outbox = new Outbox({ store: s });
  outboxes.push(outbox);
  return outbox;
}

describe("the Outbox API on BullMQ", () => {
  it("enqueues durably and idempotently; a worker sends it; status and list as with the spool", async () => {
    fake = await startFakeServer();
    const outbox = outboxOn(store());
    const { id } = await outbox.enqueue(message(1, { cc: ["carol@example.org"] }), { idempotencyKey: "welcome-1" });
    expect(await outbox.enqueue(message(9), { idempotencyKey: "welcome-1" })).toEqual({ id, duplicate: true });
    const chunks: Uint8Array[] = [];
    for await (const chunk of (await outbox.store.read(id))!) chunks.push(chunk);
    const stored = Buffer.concat(chunks);
    expect((await outbox.status(id))!).toMatchObject({ state: "queued", attempts: 0, envelope: { from: "ann@example.com", to: ["bob@example.org", "carol@example.org"] } });
    const worker = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port }), pollInterval: 20 });
    workers.push(worker);
    await worker.start();
    await worker.idle();
    expect((await outbox.status(id))!).toMatchObject({ state: "sent", attempts: 1, accepted: ["bob@example.org", "carol@example.org"] });
    expect(fake.received).toHaveLength(1);
    // The bytes kept in Redis are the bytes sent.
    expect(fake.received[0]!.data.equals(stored)).toBe(true);
    expect(stored.toString("latin1")).toContain(`Message-ID: ${(await outbox.status(id))!.messageId}`);
    // Sent: the record stays, the bytes go.
    expect(await outbox.store.read(id)).toBeUndefined();
    expect((await outbox.list({ state: "sent" })).map((e) => e.id)).toEqual([id]);
    expect(await outbox.list({ state: "queued" })).toEqual([]);
    // BullMQ sees a completed job.
    const queue = new Queue((outbox.store as BullMQStore).queueName, { connection: { host: redis.host, port: redis.port } });
    expect(await queue.getJobState(id)).toBe("completed");
    await queue.close();
  });

  it("unknown outcome: held (a failed BullMQ job), release sends it; a 5xx: failed, retry sends it; retries to dead, purged", async () => {
    let n = 0;
    let refuse = false;
    fake = await startFakeServer({ script: { onMessage: (msg, s) => (refuse ? "554 5.7.1 no" : ++n === 1 ? noReplyToDot().onMessage!(msg, s) : undefined) } });
    const outbox = outboxOn(store());
    const held: OutboxEntry[] = [];
    const worker = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port, timeouts: { finalDot: 300 } }), pollInterval: 20, retry: { attempts: 2, initialDelay: 10, maxDelay: 10 }, observer: { held: (e) => held.push(e) } });
    workers.push(worker);
    const { id } = await outbox.enqueue(message(1));
    await worker.start();
    await worker.idle();
    expect((await outbox.status(id))!).toMatchObject({ state: "held", heldReason: expect.stringMatching(/may have been delivered/) });
    expect(held.map((e) => e.id)).toEqual([id]);
    expect((await outbox.list({ state: "held" })).map((e) => e.id)).toEqual([id]);
    await outbox.release(id);
    await worker.idle();
    expect((await outbox.status(id))!).toMatchObject({ state: "sent", attempts: 2 });

    refuse = true;
    const failed = await outbox.enqueue(message(2));
    await worker.idle();
    expect((await outbox.status(failed.id))!.state).toBe("failed");
    refuse = false;
    await outbox.retry(failed.id);
    await worker.idle();
    expect((await outbox.status(failed.id))!.state).toBe("sent");

    await fake.close();
    fake = await startFakeServer({ script: messageReply("451 4.3.0 busy") });
    const w2 = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port }), pollInterval: 5, retry: { attempts: 2, initialDelay: 10, maxDelay: 10, jitter: "none" } });
    workers.push(w2);
    const dead = await outbox.enqueue(message(3));
    await w2.start();
    const deadline = Date.now() + 10_000;
    while ((await outbox.status(dead.id))!.state !== "dead" && Date.now() < deadline) await w2.idle().then(() => new Promise((r) => setTimeout(r, 20)));
    expect((await outbox.status(dead.id))!).toMatchObject({ state: "dead", attempts: 2 });
    expect(await outbox.purge(["dead"])).toBe(1);
    expect(await outbox.status(dead.id)).toBeUndefined();
  });

  it("refuses a message over maxMessageSize before anything is queued", async () => {
    const s = store({ maxMessageSize: 2_000 });
    const outbox = outboxOn(s);
    await expect(outbox.enqueue(message(1, { body: "x".repeat(5_000) }))).rejects.toMatchObject({ name: "OutboxError", reason: "too-large" });
    expect(await outbox.list()).toEqual([]);
    expect(() => store({ maxMessageSize: 600 * 1024 * 1024 })).toThrow(/Redis's largest string/);
  });
});

describe("the held rule wins over BullMQ's stall retry", () => {
  it("a stalled job whose worker had entered the final-dot phase is held; one that had not is sent (the round counted)", async () => {
    fake = await startFakeServer();
    const s = store({ stalledInterval: 100 });
    const outbox = outboxOn(s);
    const a = await outbox.enqueue(message(1));
    const b = await outbox.enqueue(message(2));
    // A worker that takes both, enters b's final-dot phase, and dies (its locks are never renewed).
    await s.join("doomed", 300);
    const leases = await s.take("doomed", 2, Date.now());
    expect(leases.map((l) => l.entry.id).sort()).toEqual([a.id, b.id].sort());
    await s.markFinalDot("doomed", leases.find((l) => l.entry.id === b.id)!, 1);
    await s.leave("doomed");
    const held: OutboxEntry[] = [];
    const worker = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port }), leaseMs: 300, pollInterval: 20, observer: { held: (e) => held.push(e) } });
    workers.push(worker);
    await worker.start();
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && ((await outbox.status(a.id))!.state !== "sent" || (await outbox.status(b.id))!.state !== "held")) await new Promise((r) => setTimeout(r, 50));
    expect((await outbox.status(a.id))!).toMatchObject({ state: "sent", attempts: 2 });
    expect((await outbox.status(b.id))!).toMatchObject({ state: "held", heldReason: expect.stringMatching(/after the message entered its final-dot phase/) });
    expect(held.map((e) => e.id)).toEqual([b.id]);
    expect(fake.received).toHaveLength(1);
    // The dead worker's fence: it can record nothing now.
    await expect(s.markFinalDot("doomed", leases[0]!, 1)).rejects.toMatchObject({ reason: "lease-lost" });
  }, 30_000);
});

describe("worker processes sharing one queue", () => {
  const spawnWorker = (queueName: string, port: number, extra: string[] = []): ChildProcess =>
    spawn(process.execPath, ["--import", "tsx", "bin/missive.ts", "worker", "--store", `redis://127.0.0.1:${redis.port}/${queueName}`, "--url", `smtp://127.0.0.1:${port}`, "--poll-ms", "20", ...extra], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "ignore"],
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp" },
    });

  async function stopAll(children: ChildProcess[], signal: NodeJS.Signals): Promise<void> {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r)))));
  }

  it("three workers on one BullMQ queue take no message twice", async () => {
    fake = await startFakeServer({ onMessage: async () => void (await new Promise((r) => setTimeout(r, 2))) });
    const s = store();
    const outbox = outboxOn(s);
    for (let i = 0; i < 300; i++) await outbox.enqueue(message(i));
    const children = [0, 1, 2].map(() => spawnWorker(s.queueName, fake!.port, ["--concurrency", "3", "--quiet"]));
    try {
      const deadline = Date.now() + 90_000;
      while (fake.received.length < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await stopAll(children, "SIGTERM");
    }
    expect(children.map((c) => c.exitCode)).toEqual([0, 0, 0]);
    const ids = fake.received.map((r) => /^Message-ID: (.*)$/im.exec(r.data.toString("latin1"))![1]);
    expect(ids).toHaveLength(300);
    expect(new Set(ids).size).toBe(300);
    expect(await outbox.list({ state: "sent" })).toHaveLength(300);
  }, 120_000);

  it("workers SIGKILLed mid-delivery: every message sent exactly once or held, none lost", async () => {
    fake = await startFakeServer({ onMessage: async () => void (await new Promise((r) => setTimeout(r, 10 + Math.floor(Math.random() * 20)))) });
    const s = store();
    const outbox = outboxOn(s);
    const total = 150;
    for (let i = 0; i < total; i++) await outbox.enqueue(message(i));
    let kills = 0;
    for (let round = 0; round < 8; round++) {
      const child = spawnWorker(s.queueName, fake.port, ["--concurrency", "3", "--lease-ms", "500"]);
      let settled = 0;
      child.stdout!.setEncoding("utf8").on("data", (t: string) => (settled += (t.match(/ (sent|held|queued)/g) ?? []).length));
      const target = settled + 4 + round;
      const deadline = Date.now() + 30_000;
      while (settled < target && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      await new Promise((r) => setTimeout(r, round * 3));
      await stopAll([child], "SIGKILL");
      kills++;
    }
    const worker = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port, pool: { maxConnections: 3 } }), concurrency: 3, leaseMs: 500, pollInterval: 20 });
    workers.push(worker);
    await worker.start();
    const deadline = Date.now() + 60_000;
    // BullMQ returns the killed workers' jobs once their locks expire and a stall check runs.
    while (Date.now() < deadline && (await outbox.list()).some((e) => e.state === "queued" || e.state === "sending")) await new Promise((r) => setTimeout(r, 100));
    const all = await outbox.list();
    const received = new Map<string, number>();
    for (const r of fake.received) {
      const id = /^Message-ID: (.*)$/im.exec(r.data.toString("latin1"))![1]!.trim();
      received.set(id, (received.get(id) ?? 0) + 1);
    }
    const sent = all.filter((e) => e.state === "sent");
    const held = all.filter((e) => e.state === "held");
    console.log(`bullmq kill test: ${JSON.stringify({ kills, messages: all.length, sent: sent.length, held: held.length, received: fake.received.length })}`);
    expect(all).toHaveLength(total);
    expect(sent.length + held.length).toBe(total);
    for (const e of sent) expect(received.get(e.messageId), e.id).toBe(1);
    for (const e of held) expect(received.get(e.messageId) ?? 0).toBeLessThanOrEqual(1);
    expect([...received.values()].every((n) => n === 1)).toBe(true);
  }, 180_000);
});
