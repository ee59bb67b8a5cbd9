/**
 * The "outbox" backend and setting (sendMail and friends enqueue), the worker's default
 * backend from `outbox.deliver`, and DKIM applied at send time to the stored bytes (judged
 * by dkimpy).
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deliver, getConnection, sendMail, sendMassMail } from "../../src/api.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { ConfigurationError, InvalidArgumentError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { systemClock } from "../../src/observe/clock.js";
import { Outbox } from "../../src/outbox/index.js";
import { OutboxBackend } from "../../src/outbox/backend.js";
import { configure, resetSettings } from "../../src/settings.js";
import { edSigner, RECORDS, SIGNING_TIME } from "../dkim/helpers.js";
import { verifyWithDkimpy } from "../helpers/dkim-oracle.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";

isolateEmailEnvironment();

let dir: string;
let fake: FakeSmtpServer | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-outbox-backend-"));
});
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  resetSettings();
  await rm(dir, { recursive: true, force: true });
});

describe('backend "outbox"', () => {
  it("sendMail enqueues (1: durably queued); deliver's report says sent with the outbox id as queueId; sendMassMail counts the queued", async () => {
    configure({ backend: "outbox", outbox: { store: `file://${dir}` } });
    expect(await sendMail({ subject: "Welcome", message: "Hi", from: "app@example.com", to: ["zoe@example.org"] })).toBe(1);
    const report = await deliver({ subject: "Receipt", message: "Thanks", from: "app@example.com", to: ["zoe@example.org"] });
    expect(report).toMatchObject({ status: "sent", accepted: ["zoe@example.org"] });
    expect(await readdir(join(dir, "queue"))).toContain(report.queueId);
    expect(await sendMassMail([["A", "a", "app@example.com", ["x@example.org"]], ["B", "b", "app@example.com", ["y@example.org"]]])).toBe(2);
    const outbox = new Outbox({ store: `file://${dir}` });
    expect((await outbox.list()).map((e) => e.subject)).toEqual(["Welcome", "Receipt", "A", "B"]);
    expect(getConnection()).toBeInstanceOf(OutboxBackend);
  });

  it("is checked at configure() time", () => {
    expect(() => configure({ backend: "outbox" })).toThrow(ConfigurationError);
    expect(() => configure({ backend: "outbox" })).toThrow(/needs its store/);
    expect(() => configure({ outbox: { store: "ftp://spool" } })).toThrow(/outbox.store must be a file: URL/);
    expect(() => configure({ outbox: { store: "file:///" } })).toThrow(/needs a directory/);
    expect(() => configure({ outbox: { store: `file://${dir}`, deliver: "outbox" } })).toThrow(/cannot be "outbox"/);
    expect(() => configure({ outbox: { store: `file://${dir}`, deliver: "nowhere" } })).toThrow(/neither a named connection/);
    expect(() => configure({ outbox: { store: `file://${dir}`, deliver: "failover" } })).toThrow(/needs its routes/);
    expect(() => configure({ outbox: { store: `file://${dir}`, retry: { atempts: 3 } as never } })).toThrow(/unknown option "atempts"/);
    expect(() => configure({ outbox: { store: `file://${dir}`, sotre: 1 } as never })).toThrow(/unknown option "sotre"/);
    expect(() => configure({ backends: { queue: { backend: "outbox" } }, outbox: { store: `file://${dir}`, deliver: "queue" } })).toThrow(/an outbox connection/);
    expect(() => configure({ outbox: { store: `file://${dir}`, concurrency: 0 } })).toThrow(/concurrency must be an integer/);
    configure({ backends: { relay: "smtp://127.0.0.1:2525" }, outbox: { store: `file://${dir}`, deliver: "relay" } });
  });

  it("outbox.worker() delivers with outbox.deliver; a worker is never given the outbox backend", async () => {
    fake = await startFakeServer();
    configure({ backend: "outbox", backends: { relay: `smtp://127.0.0.1:${fake.port}` }, outbox: { store: `file://${dir}`, deliver: "relay" } });
    await sendMail({ subject: "queued", message: "hi", from: "app@example.com", to: ["zoe@example.org"] });
    const outbox = new Outbox({ store: `file://${dir}` });
    expect(() => outbox.worker({ backend: getConnection() })).toThrow(InvalidArgumentError);
    const worker = outbox.worker();
    await worker.start();
    await worker.idle();
    await worker.stop();
    expect(fake.received).toHaveLength(1);
    expect((await outbox.list({ state: "sent" })).map((e) => e.subject)).toEqual(["queued"]);
    resetSettings();
    expect(() => new Outbox({ store: `file://${dir}` }).worker()).toThrow(/needs the backend that delivers/);
  });
});

describe("DKIM at send time", () => {
  it("the worker's backend signs the stored bytes for the server it sends to; dkimpy verifies; nothing signed is stored", async () => {
    fake = await startFakeServer();
    const outbox = new Outbox({ store: `file://${dir}` });
    const { id } = await outbox.enqueue(new EmailMessage({ subject: "Signed — später", body: "Grüße\n.a dot line\n", from: "Ann <ann@example.com>", to: ["bob@example.org"] }));
    const unsigned = new EmailMessage({ subject: "not signed", body: "x", from: "ann@example.com", to: ["bob@example.org"] });
    unsigned.dkim = false;
    await outbox.enqueue(unsigned);
    const stored = await readdir(join(dir, "queue", id));
    expect(stored).toEqual(["message.eml", "message.json"]);
    const clock = { ...systemClock, now: () => SIGNING_TIME.getTime() };
    const worker = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port, dkim: edSigner(), clock }) });
    await worker.start();
    await worker.idle();
    await worker.stop();
    expect(fake.received).toHaveLength(2);
    const [signed, plain] = fake.received;
    expect(signed!.data.toString("latin1")).toMatch(/^DKIM-Signature: v=1; a=ed25519-sha256;/);
    expect(plain!.data.toString("latin1")).not.toMatch(/DKIM-Signature/);
    const [verdict] = await verifyWithDkimpy([{ message: signed!.data, records: RECORDS }]);
    expect(verdict).toMatchObject([{ ok: true }]);
  });
});
