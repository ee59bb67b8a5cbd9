/**
 * The outbox on a spool directory, as a user drives it: enqueue (durable, idempotent, the
 * bytes rendered once), a worker delivering to real servers (aiosmtpd; the scripted fault
 * server for the outcomes a real server will not produce on demand), the states and what
 * moves a message between them, on a virtual clock so that waits are asserted exactly.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { InvalidArgumentError, OutboxError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { policies } from "../../src/mime/policy.js";
import { freeze, render, renderedBytes } from "../../src/mime/render.js";
import { Outbox, OutboxWorker, StoredMessage, type OutboxEntry } from "../../src/outbox/index.js";
import { MessageStore } from "../../src/preview/store.js";
import { resetSettings } from "../../src/settings.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { messageReply, noReplyToDot, recipientReplies, startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { VirtualClock } from "../helpers/virtual-clock.js";

isolateEmailEnvironment();

let dir: string;
let fake: FakeSmtpServer | undefined;
const workers: OutboxWorker[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-outbox-"));
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop({ abort: true })));
  await fake?.close();
  fake = undefined;
  await rm(dir, { recursive: true, force: true });
  resetSettings();
});

const message = (fields: Partial<ConstructorParameters<typeof EmailMessage>[0]> = {}) =>
  new EmailMessage({ subject: "Welcome", body: "Hello Bob,\nwelcome aboard.\n", from: "Ann <ann@example.com>", to: ["bob@example.org"], ...fields });

function track(worker: OutboxWorker): OutboxWorker {
  workers.push(worker);
  return worker;
}

describe("enqueue", () => {
  it("stores the 7-bit bytes with the Message-ID fixed, the envelope and the options, in queue/ID", async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    const m = message({ subject: "Grüße aus Köln", bcc: ["hidden@example.org"] });
    const { id, duplicate } = await outbox.enqueue(m, { priority: 3 });
    expect(duplicate).toBe(false);
    expect(id).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{10}$/);
    expect(await readdir(join(dir, "queue"))).toEqual([id]);
    expect((await readdir(join(dir, "queue", id))).sort()).toEqual(["message.eml", "message.json"]);
    // The bytes are the message's 7-bit render: the same Message-ID and Date it keeps.
    const stored = await readFile(join(dir, "queue", id, "message.eml"));
    expect(stored.equals(await m.asBytes())).toBe(true);
    expect(stored.every((b) => b < 0x80)).toBe(true);
    const status = (await outbox.status(id))!;
    expect(status).toMatchObject({ id, state: "queued", attempts: 0, priority: 3, subject: "Grüße aus Köln", size: stored.length, smtputf8: false });
    expect(status.messageId).toBe((await freeze(m)).messageId);
    expect(status.envelope).toEqual({ from: "ann@example.com", to: ["bob@example.org", "hidden@example.org"] });
    expect(status.pending).toEqual(["bob@example.org", "hidden@example.org"]);
    const record = JSON.parse(await readFile(join(dir, "queue", id, "message.json"), "utf8"));
    expect(record.format).toBe(1);
    expect(await readFile(join(dir, "VERSION"), "utf8")).toBe("missive-outbox 1\n");
  });

  it("stores the SMTPUTF8 form only for a message that needs it", async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    const m = message({ to: ["jürgen@exämple.org"], subject: "Grüße" });
    const { id } = await outbox.enqueue(m);
    const status = (await outbox.status(id))!;
    expect(status.smtputf8).toBe(true);
    expect(status.envelope.to).toEqual(["jürgen@exämple.org"]);
    const stored = await readFile(join(dir, "queue", id, "message.eml"));
    expect(stored.equals(await renderedBytes(await render(await freeze(m), policies.default.with({ utf8: true }))))).toBe(true);
  });

  it("the same idempotency key enqueues once, also when the enqueues race", async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    const first = await outbox.enqueue(message(), { idempotencyKey: "welcome-42" });
    const again = await outbox.enqueue(message({ subject: "changed" }), { idempotencyKey: "welcome-42" });
    expect(again).toEqual({ id: first.id, duplicate: true });
    const racing = await Promise.all(Array.from({ length: 12 }, (_, i) => outbox.enqueue(message({ subject: `race ${i}` }), { idempotencyKey: "race" })));
    expect(new Set(racing.map((r) => r.id)).size).toBe(1);
    expect(racing.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(await readdir(join(dir, "queue"))).toHaveLength(2);
    // No temporary file or half message is left behind.
    expect(await readdir(join(dir, "incoming"))).toEqual([]);
    expect((await readdir(join(dir, "keys"))).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("refuses bad input before anything is stored", async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    await expect(outbox.enqueue(message({ to: [] }))).rejects.toThrow(InvalidArgumentError);
    await expect(outbox.enqueue(message(), { priority: -1 })).rejects.toThrow(/priority/);
    await expect(outbox.enqueue(message(), { idempotencyKey: "" } as never)).rejects.toThrow(/idempotencyKey/);
    await expect(outbox.enqueue(message(), { priorty: 1 } as never)).rejects.toThrow(/unknown option "priorty"/);
    const signed = message();
    signed.dkim = { domain: "example.com", selector: "s", privateKey: (await import("node:crypto")).generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }) as string, algorithm: "ed25519-sha256" };
    await expect(outbox.enqueue(signed)).rejects.toThrow(/does not keep private keys/);
    await expect(outbox.enqueue({ subject: "x" } as never)).rejects.toThrow(/EmailMessage/);
    expect(await readdir(dir)).toEqual([]);
    expect(() => new Outbox({ store: "/var/spool/missive" })).toThrow(/file: URL/);
  });

  it("missive preview's reader shows a queued message with its envelope, in its state's folder", async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    const { id } = await outbox.enqueue(message({ bcc: ["hidden@example.org"] }));
    const preview = new MessageStore({ dir, readOnly: true });
    expect(await preview.scan()).toBe(1);
    const [shown] = preview.messages;
    expect(shown!.folder).toBe(`queue/${id}`);
    expect(shown!.subject).toBe("Welcome");
    expect(shown!.envelope).toEqual({ from: "ann@example.com", to: ["bob@example.org", "hidden@example.org"], mailParams: {} });
  });
});

describe("a stored message is usable where an EmailMessage is", () => {
  it("renders to the stored bytes for every policy that can carry them; SMTPUTF8 bytes refuse a 7-bit policy", async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    const plain = await outbox.enqueue(message());
    const utf8 = await outbox.enqueue(message({ to: ["jürgen@example.org"] }));
    await outbox.store.join("reader", 60_000, Date.now());
    const leases = new Map((await outbox.store.take("reader", 10, Date.now())).map((l) => [l.entry.id, l]));
    const lease = leases.get(plain.id)!;
    const m = new StoredMessage(lease.entry, lease);
    const bytes = await readFile(join(dir, "active", "reader", plain.id, "message.eml"));
    for (const policy of [policies.default, policies.eightBit, policies.smtputf8]) expect((await m.asBytes(policy)).equals(bytes)).toBe(true);
    expect(m.recipients()).toEqual(["bob@example.org"]);
    expect(m.subject).toBe("Welcome");
    const other = leases.get(utf8.id)!;
    const u = new StoredMessage(other.entry, other);
    expect(u.needsSmtpUtf8()).toBe(true);
    await expect(u.asBytes(policies.eightBit)).rejects.toThrow(/SMTPUTF8/);
    expect((await u.asBytes(policies.smtputf8)).toString("utf8")).toContain("To: jürgen@example.org");
  });
});

describe("a worker delivering to aiosmtpd", () => {
  let aiosmtpd: AiosmtpdServer;
  beforeAll(async () => {
    aiosmtpd = await startAiosmtpd();
  });
  afterAll(async () => {
    await aiosmtpd?.stop();
  });

  it("sends each message once with exactly the stored bytes, and records it as sent", async () => {
    const before = (await aiosmtpd.messages()).length;
    const outbox = new Outbox({ store: `file://${dir}` });
    const ids: string[] = [];
    const bytes = new Map<string, Buffer>();
    for (let i = 0; i < 3; i++) {
      const { id } = await outbox.enqueue(message({ subject: `message ${i}`, cc: ["Carol <carol@example.org>"] }));
      ids.push(id);
      bytes.set(id, await readFile(join(dir, "queue", id, "message.eml")));
    }
    const settled: OutboxEntry[] = [];
    const worker = track(outbox.worker({ backend: new SmtpBackend({ host: aiosmtpd.host, port: aiosmtpd.port, pool: { maxConnections: 2 } }), concurrency: 2, observer: { settled: (e) => settled.push(e) } }));
    await worker.start();
    await worker.idle();
    const received = (await aiosmtpd.waitForMessages(before + 3)).slice(before);
    expect(received).toHaveLength(3);
    for (const id of ids) {
      const status = (await outbox.status(id))!;
      expect(status).toMatchObject({ state: "sent", attempts: 1, pending: [], accepted: ["bob@example.org", "carol@example.org"], lastError: undefined });
      expect(status.report).toMatchObject({ status: "sent", messageId: status.messageId });
      const got = received.find((r) => r.data.toString("latin1").includes(`Message-ID: ${status.messageId}`))!;
      expect(got.data.equals(bytes.get(id)!)).toBe(true);
      expect(got.rcptTos).toEqual(["bob@example.org", "carol@example.org"]);
      // The record stays (and the final-dot marker that preceded the dot); the bytes of a sent message do not.
      expect((await readdir(join(dir, "sent", id))).sort()).toEqual(["final-dot", "message.json"]);
    }
    expect(settled.map((e) => e.state)).toEqual(["sent", "sent", "sent"]);
    expect(await readdir(join(dir, "queue"))).toEqual([]);
    await worker.stop();
    expect(await readdir(join(dir, "active"))).toEqual([]);
  });
});

describe("what a round's outcome does (scripted server, virtual clock)", () => {
  const retry = { attempts: 3, initialDelay: 1_000, factor: 2, jitter: "none" as const, deadline: 3_600_000 };
  async function setup(script: Parameters<typeof startFakeServer>[0] = {}, backendOptions: ConstructorParameters<typeof SmtpBackend>[0] = {}) {
    fake = await startFakeServer(script);
    const clock = new VirtualClock();
    const outbox = new Outbox({ store: `file://${dir}`, clock });
    const held: OutboxEntry[] = [];
    const worker = track(outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port, ...backendOptions }), clock, retry, observer: { held: (e) => held.push(e) } }));
    return { clock, outbox, worker, held };
  }

  it("a 451 to the message: queued again at the backoff, then sent; the attempts counted", async () => {
    let n = 0;
    const { clock, outbox, worker } = await setup({ onMessage: () => (++n === 1 ? "451 4.3.0 try later" : undefined) });
    const { id } = await outbox.enqueue(message());
    await worker.start();
    await worker.idle();
    const waiting = (await outbox.status(id))!;
    expect(waiting).toMatchObject({ state: "queued", attempts: 1, nextAttemptAt: clock.now() + 1_000 });
    expect(waiting.lastError).toMatchObject({ name: "SmtpError", replyCode: 451 });
    expect(await readdir(join(dir, "deferred"))).toEqual([id]);
    await clock.advance(999);
    await worker.idle();
    expect(fake!.received).toHaveLength(1);
    await clock.advance(1);
    await worker.idle();
    expect((await outbox.status(id))!).toMatchObject({ state: "sent", attempts: 2, lastError: undefined });
    expect(fake!.received).toHaveLength(2);
  });

  it("recipients: the accepted ones are never sent again, a 4xx one alone later, a 5xx one rejected for good: partial", async () => {
    let rounds = 0;
    const { clock, outbox, worker } = await setup({
      script: [
        recipientReplies({ "gone@example.org": "550 5.1.1 no such user" }),
        { onCommand: (cmd) => (cmd.verb === "RCPT" && cmd.arg.includes("later@example.org") && rounds++ === 0 ? "450 4.2.0 mailbox busy" : undefined) },
      ],
    });
    const { id } = await outbox.enqueue(message({ to: ["bob@example.org", "later@example.org", "gone@example.org"] }));
    await worker.start();
    await worker.idle();
    expect((await outbox.status(id))!).toMatchObject({ state: "queued", attempts: 1, accepted: ["bob@example.org"], pending: ["later@example.org"] });
    await clock.advance(1_000);
    await worker.idle();
    const done = (await outbox.status(id))!;
    expect(done).toMatchObject({ state: "partial", attempts: 2, accepted: ["bob@example.org", "later@example.org"], pending: [] });
    expect(done.rejected).toEqual([{ address: "gone@example.org", code: 550, enhancedCode: "5.1.1", text: "no such user" }]);
    expect(fake!.received.map((r) => r.rcptTo)).toEqual([["bob@example.org"], ["later@example.org"]]);
  });

  it("no reply after the final dot: held, never resent by itself; release sends it on purpose", async () => {
    let n = 0;
    const { clock, outbox, worker: w, held } = await setup({ script: { onMessage: (msg, session) => (++n === 1 ? noReplyToDot().onMessage!(msg, session) : undefined) } }, { timeouts: { finalDot: 300 } });
    const { id } = await outbox.enqueue(message());
    await w.start();
    await w.idle();
    const status = (await outbox.status(id))!;
    expect(status).toMatchObject({ state: "held", attempts: 1, pending: ["bob@example.org"] });
    expect(status.heldReason).toMatch(/may have been delivered/);
    expect(status.lastError).toMatchObject({ code: "EDELIVERY_UNKNOWN" });
    expect(await readdir(join(dir, "hold"))).toEqual([id]);
    await clock.advance(3_600_000);
    await w.idle();
    expect(fake!.received).toHaveLength(1);
    await expect(outbox.retry(id)).rejects.toMatchObject({ reason: "state" });
    expect((await outbox.release(id)).state).toBe("queued");
    await w.idle();
    expect((await outbox.status(id))!).toMatchObject({ state: "sent", attempts: 2 });
    expect(fake!.received).toHaveLength(2);
    expect(held.map((e) => e.id)).toEqual([id]);
    await expect(outbox.release(id)).rejects.toThrow(OutboxError);
    await expect(outbox.release("20260101T000000000Z-0000000000")).rejects.toMatchObject({ reason: "not-found" });
  });

  it("a 550 to the message: failed for good; retry(id) sends it again on purpose", async () => {
    let refuse = true;
    const { outbox, worker } = await setup({ onMessage: () => (refuse ? "554 5.7.1 rejected as spam" : undefined) });
    const { id } = await outbox.enqueue(message());
    await worker.start();
    await worker.idle();
    expect((await outbox.status(id))!).toMatchObject({ state: "failed", attempts: 1, accepted: [] });
    refuse = false;
    expect((await outbox.retry(id)).state).toBe("queued");
    await worker.idle();
    expect((await outbox.status(id))!).toMatchObject({ state: "sent", attempts: 1 });
  });

  it("transient failures past the policy's attempts: dead; purge(['dead']) deletes it and its key", async () => {
    const { clock, outbox, worker } = await setup({ script: messageReply("451 4.3.0 still busy") });
    const { id } = await outbox.enqueue(message(), { idempotencyKey: "k" });
    await worker.start();
    for (const wait of [0, 1_000, 2_000]) {
      await clock.advance(wait);
      await worker.idle();
    }
    expect((await outbox.status(id))!).toMatchObject({ state: "dead", attempts: 3 });
    expect(fake!.received).toHaveLength(3); // each refused with 451
    expect(await outbox.purge(["dead"])).toBe(1);
    expect(await outbox.status(id)).toBeUndefined();
    expect(await readdir(join(dir, "keys"))).toEqual([]);
  });

  it("notBefore holds a message back; lower priority numbers go first", async () => {
    const { clock, outbox, worker } = await setup();
    const later = await outbox.enqueue(message({ subject: "later" }), { notBefore: clock.now() + 5_000 });
    await outbox.enqueue(message({ subject: "bulk" }), { priority: 10 });
    await outbox.enqueue(message({ subject: "urgent" }));
    expect(await readdir(join(dir, "deferred"))).toEqual([later.id]);
    await worker.start();
    await worker.idle();
    expect(fake!.received.map((r) => /^Subject: (.*)$/m.exec(r.data.toString("latin1"))![1])).toEqual(["urgent", "bulk"]);
    await clock.advance(5_000);
    await worker.idle();
    expect(fake!.received).toHaveLength(3);
    expect((await outbox.status(later.id))!.state).toBe("sent");
  });

  it("a message enqueued with a route goes through the worker's backend for that route", async () => {
    fake = await startFakeServer();
    const other = await startFakeServer();
    try {
      const outbox = new Outbox({ store: `file://${dir}` });
      const routed = new SmtpBackend({ host: other.host, port: other.port });
      const worker = track(outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port }), routes: (name) => (name === "bulk" ? routed : (() => { throw new Error(name); })()) }));
      await outbox.enqueue(message({ subject: "newsletter" }), { route: "bulk" });
      await outbox.enqueue(message({ subject: "receipt" }));
      await worker.start();
      await worker.idle();
      expect(other.received.map((r) => r.data.toString("latin1").includes("Subject: newsletter"))).toEqual([true]);
      expect(fake.received.map((r) => r.data.toString("latin1").includes("Subject: receipt"))).toEqual([true]);
    } finally {
      await other.close();
    }
  });

  it("stop() lets the message in flight finish and leaves the rest queued", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { outbox, worker } = await setup({ onMessage: async () => (await gate, undefined) });
    const ids = [(await outbox.enqueue(message({ subject: "one" }))).id, (await outbox.enqueue(message({ subject: "two" }))).id];
    await worker.start();
    while (fake!.commands().filter((c) => c === "DATA").length === 0) await new Promise((r) => setTimeout(r, 5));
    const stopping = worker.stop();
    release();
    await stopping;
    expect((await outbox.status(ids[0]!))!.state).toBe("sent");
    expect((await outbox.status(ids[1]!))!.state).toBe("queued");
    expect(await readdir(join(dir, "active"))).toEqual([]);
  });
});
