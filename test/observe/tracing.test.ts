/**
 * `TracingChannel("missive:deliver")`: every delivery of every backend is one operation,
 * start → end → asyncStart → asyncEnd (error before asyncStart when it failed or its
 * outcome is unknown), all with the same context object, whether the failure is reported
 * or thrown, and whether it happened on the wire or before (a connection that cannot be
 * opened, a route the delivery engine could not open). With nobody listening and no logger,
 * nothing is computed: not even a clock read.
 */
import diagnosticsChannel from "node:diagnostics_channel";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BaseEmailBackend } from "../../src/backends/base.js";
import { ConsoleBackend } from "../../src/backends/console.js";
import { DummyBackend } from "../../src/backends/dummy.js";
import { FileBackend } from "../../src/backends/file.js";
import { MemoryBackend } from "../../src/backends/memory.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { FailoverBackend } from "../../src/delivery/failover.js";
import { BackendError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import type { DeliveryContext } from "../../src/observe/delivery.js";
import { systemClock, type Clock } from "../../src/observe/clock.js";
import { clearOutbox } from "../../src/testing.js";
import { dropAfterDot, messageReply, recipientReplies } from "../helpers/fake-smtp-server.js";
import { closeServers, deadPort, fake } from "../delivery/helpers.js";

const EVENTS = ["start", "end", "asyncStart", "asyncEnd", "error"] as const;
type Seen = { event: (typeof EVENTS)[number]; context: DeliveryContext; status: string | undefined };

let seen: Seen[] = [];
const listeners = EVENTS.map((event) => [`tracing:missive:deliver:${event}`, (m: unknown) => seen.push({ event, context: m as DeliveryContext, status: (m as DeliveryContext).status })] as const);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-tracing-"));
});
afterEach(() => {
  for (const [name, fn] of listeners) diagnosticsChannel.unsubscribe(name, fn);
  seen = [];
});
afterAll(async () => {
  clearOutbox();
  await closeServers();
  await rm(dir, { recursive: true, force: true });
});

function listen(): void {
  for (const [name, fn] of listeners) diagnosticsChannel.subscribe(name, fn);
}

/** The operations seen, in order of their start, as "event event …" with the context's final status. */
function operations(): { events: string; context: DeliveryContext }[] {
  const contexts: DeliveryContext[] = [];
  for (const s of seen) if (!contexts.includes(s.context)) contexts.push(s.context);
  return contexts.map((context) => ({ events: seen.filter((s) => s.context === context).map((s) => s.event).join(" "), context }));
}

const OK = "start end asyncStart asyncEnd";
const FAILED = "start end error asyncStart asyncEnd";
const message = (to: string[] = ["bob@example.org"], body = "Hello") => new EmailMessage({ subject: "s", body, from: "ann@example.com", to });

describe("missive:deliver", () => {
  it("SMTP: sent, partial, failed and unknown — each an operation, error for failed and unknown", async () => {
    const [plain, refusing, rejecting, dropping] = await Promise.all([
      fake(),
      fake({ script: [recipientReplies({ "gone@example.org": "550 5.1.1 no such user" })] }),
      fake({ script: [messageReply("554 5.7.1 no")] }),
      fake({ script: [dropAfterDot()] }),
    ]);
    listen();
    const send = (port: number, m: EmailMessage) => new SmtpBackend({ host: "127.0.0.1", port, timeout: 3000 }).sendMessagesWithReport([m], { stopOnError: false });
    await send(plain.port, message());
    await send(refusing.port, message(["bob@example.org", "gone@example.org"]));
    await send(rejecting.port, message());
    await send(dropping.port, message());
    const ops = operations();
    expect(ops.map((o) => [o.events, o.context.status])).toEqual([
      [OK, "sent"],
      [OK, "partial"],
      [FAILED, "failed"],
      [FAILED, "unknown"],
    ]);
    // The context as subscribers see it: what was known at the start, then the connection, then the outcome.
    const first = seen.find((s) => s.event === "start")!;
    expect(first.context).toMatchObject({ backend: "smtp", recipients: 1, route: undefined, attempt: undefined });
    expect(ops[0]!.context).toMatchObject({ host: "127.0.0.1", port: plain.port, connectionId: expect.stringMatching(/^c\d+$/), status: "sent", replyCode: 250, accepted: 1 });
    expect(ops[2]!.context.error).toMatchObject({ code: "ESMTP_REPLY", replyCode: 554 });
    expect(ops[3]!.context.error).toMatchObject({ code: "EDELIVERY_UNKNOWN" });
    // No message object, no body: the context is data about the delivery only.
    for (const { context } of ops) expect(Object.keys(context)).not.toContain("message");
  });

  it("a failure that is thrown (stopOnError) and a connection that cannot be opened are operations too", async () => {
    const rejecting = await fake({ script: [messageReply("554 5.7.1 no")] });
    const dead = await deadPort();
    listen();
    await expect(new SmtpBackend({ host: "127.0.0.1", port: rejecting.port, timeout: 3000 }).sendMessages([message()])).rejects.toMatchObject({ code: "ESMTP_REPLY" });
    await expect(new SmtpBackend({ host: "127.0.0.1", port: dead, timeout: 3000 }).sendMessages([message(), message()])).rejects.toMatchObject({ code: "ECONNECT" });
    const { reports } = await new SmtpBackend({ host: "127.0.0.1", port: dead, timeout: 3000 }).sendMessagesWithReport([message(), message()], { stopOnError: false });
    expect(reports.map((r) => r.status)).toEqual(["failed", "failed"]);
    // Thrown: one operation; not opened, stopping: the first message only; not opened, carrying on: both.
    expect(operations().map((o) => [o.events, o.context.status, (o.context.error as { code?: string }).code])).toEqual([
      [FAILED, "failed", "ESMTP_REPLY"],
      [FAILED, "failed", "ECONNECT"],
      [FAILED, "failed", "ECONNECT"],
      [FAILED, "failed", "ECONNECT"],
    ]);
  });

  it("SMTP runs of messages per connection: one operation per message, a message moved to another connection after a drop included", async () => {
    // The connection drops after m2's final dot (m2's outcome unknown); m3, whose commands may
    // already be pipelined behind that dot, goes again over a new connection: still one delivery.
    const s = await fake({ script: [{ onMessage: (_m, session) => (session.id === 1 && session.count("MAIL") >= 2 ? { reply: null, then: "destroy" } : undefined) }] });
    listen();
    const numbered = (i: number) => new EmailMessage({ subject: `m${i}`, body: "Hello", from: "ann@example.com", to: [`r${i}@example.org`], headers: { "Message-ID": `<m${i}@example.com>` } });
    const { reports } = await new SmtpBackend({ host: "127.0.0.1", port: s.port, timeout: 3000 }).sendMessagesWithReport([1, 2, 3].map(numbered), { stopOnError: false });
    expect(reports.map((r) => r.status)).toEqual(["sent", "unknown", "sent"]);
    const ops = operations();
    expect(ops.map((o) => [o.events, o.context.status, o.context.messageId])).toEqual([
      [OK, "sent", "<m1@example.com>"],
      [FAILED, "unknown", "<m2@example.com>"],
      [OK, "sent", "<m3@example.com>"],
    ]);
    expect(ops[1]!.context.connectionId).toBe(ops[0]!.context.connectionId);
    expect(ops[2]!.context.connectionId).toMatch(/^c\d+$/);
    expect(ops[2]!.context.connectionId).not.toBe(ops[0]!.context.connectionId);
    expect(s.received.map((m) => [/^Subject: (.*)$/m.exec(m.data.toString("latin1"))?.[1], m.conn])).toEqual([
      ["m1", 1],
      ["m2", 1],
      ["m3", 2],
    ]);
  });

  it("console, file, memory, dummy and a custom backend: one operation per message", async () => {
    class Flaky extends BaseEmailBackend {
      calls = 0;
      async sendMessages(): Promise<number> {
        this.calls += 1;
        if (this.calls === 2) throw new BackendError("the service said no");
        return this.calls === 3 ? 0 : 1;
      }
    }
    listen();
    await new ConsoleBackend({ stream: new PassThrough().resume() }).sendMessages([message()]);
    await new FileBackend({ filePath: dir }).sendMessages([message()]);
    await new MemoryBackend().sendMessages([message()]);
    await new DummyBackend().sendMessages([message()]);
    const flaky = new Flaky({ failSilently: true });
    await flaky.sendMessagesWithReport([message(), message(), message()]);
    expect(operations().map((o) => [o.context.backend, o.events, o.context.status])).toEqual([
      ["console", OK, "sent"],
      ["file", OK, "sent"],
      ["memory", OK, "sent"],
      ["dummy", OK, "sent"],
      ["Flaky", OK, "sent"],
      ["Flaky", FAILED, "failed"],
      ["Flaky", FAILED, "failed"],
    ]);
  });

  it("under failover: one operation per try with its route and number, a route that could not be opened included", async () => {
    const good = await fake();
    const primary = new SmtpBackend({ host: "127.0.0.1", port: await deadPort(), timeout: 3000 });
    const secondary = new SmtpBackend({ host: "127.0.0.1", port: good.port, timeout: 3000 });
    listen();
    const backend = new FailoverBackend({ routes: [{ name: "primary", backend: primary }, { name: "secondary", backend: secondary }], retry: { attempts: 2 } });
    await backend.sendMessages([message()]);
    expect(operations().map((o) => [o.context.route, o.context.attempt, o.context.backend, o.events, o.context.status])).toEqual([
      ["primary", 1, "smtp", FAILED, "failed"],
      ["secondary", 2, "smtp", OK, "sent"],
    ]);
  });

  it("with nobody listening and no logger nothing is computed, not even a clock read", async () => {
    let reads = 0;
    const counting: Clock = { ...systemClock, now: () => ((reads += 1), Date.now()) };
    const silent = {
      isLevelEnabled: () => false,
      ...Object.fromEntries(["trace", "debug", "info", "warn", "error"].map((level) => [level, () => { throw new Error(`${level} was called`); }])),
    } as never;
    await new MemoryBackend({ clock: counting, logger: silent } as never).sendMessages([message()]);
    expect(reads).toBe(0);
    listen();
    await new MemoryBackend({ clock: counting, logger: silent } as never).sendMessages([message()]);
    expect(reads).toBe(2);
    expect(operations()).toHaveLength(1);
  });
});
