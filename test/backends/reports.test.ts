/**
 * Every backend reports each message in one shape; Django's bulk semantics keep their
 * count and stop at the first failure, but the thrown error carries the reports; a pooled
 * send with stopOnError: false reports every message; the SMTP backend's whole-message
 * deadline.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { BaseEmailBackend, sendWithReport, type EmailBackend } from "../../src/backends/base.js";
import { ConsoleBackend } from "../../src/backends/console.js";
import { DummyBackend } from "../../src/backends/dummy.js";
import { FileBackend } from "../../src/backends/file.js";
import { MemoryBackend } from "../../src/backends/memory.js";
import { reportsOf, type DeliveryReport } from "../../src/backends/report.js";
import { classify } from "../../src/errors/classify.js";
import { BackendError, SmtpRecipientsRefusedError, SmtpTimeoutError } from "../../src/errors.js";
import type { EmailMessage } from "../../src/mime/message.js";
import { clearOutbox } from "../../src/testing.js";
import { rejection } from "../helpers/errors.js";
import { hangOn, noReplyToDot, recipientReplies } from "../helpers/fake-smtp-server.js";
import { VirtualClock } from "../helpers/virtual-clock.js";
import { closeServers, fake, message, smtp } from "../delivery/helpers.js";

afterEach(async () => {
  clearOutbox();
  await closeServers();
});

const KEYS = ["accepted", "attempts", "deferred", "error", "message", "messageId", "queueId", "rejected", "reply", "route", "status"];

describe("one report shape from every backend", () => {
  it("console, file, memory, dummy and smtp: sent, the envelope accepted, one attempt", async () => {
    const dir = await mkdtemp(join(tmpdir(), "missive-reports-"));
    const server = await fake();
    try {
      const backends: [string, EmailBackend][] = [
        ["console", new ConsoleBackend({ stream: new PassThrough().resume() })],
        ["file", new FileBackend({ filePath: dir })],
        ["memory", new MemoryBackend()],
        ["dummy", new DummyBackend()],
        ["smtp", smtp(server.port)],
      ];
      for (const [name, backend] of backends) {
        const m = message(["bob@example.org", "carol@example.org"], name);
        const { sent, reports } = await sendWithReport(backend, [m]);
        expect(sent, name).toBe(1);
        const r = reports[0]!;
        expect(Object.keys(r).sort(), name).toEqual(KEYS);
        expect([r.status, r.messageId, r.accepted, r.rejected, r.deferred, r.error], name).toEqual(["sent", `<${(m.headers["Message-ID"] ?? "").slice(1, -1)}>`, ["bob@example.org", "carol@example.org"], [], [], undefined]);
        expect(r.attempts.map((a) => [a.route, a.status, a.recipients.length, a.accepted.length, a.delayMs]), name).toEqual([[undefined, "sent", 2, 2, 0]]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a custom backend built on sendMessages gets reports from BaseEmailBackend", async () => {
    class Api extends BaseEmailBackend {
      calls: string[] = [];
      async sendMessages(messages: readonly EmailMessage[]): Promise<number> {
        const m = messages[0]!;
        this.calls.push(m.subject);
        if (m.subject.endsWith("3")) throw new BackendError("the provider said 500");
        return m.to.length > 1 ? 0 : 1;
      }
    }
    const api = new Api();
    const batch = [message(["a@example.org"]), message(["a@example.org", "b@example.org"]), message(["c@example.org"])];
    batch[2]!.subject = "ends in 3";
    const { sent, reports } = await api.sendMessagesWithReport(batch, { stopOnError: false });
    expect(sent).toBe(1);
    expect(reports.map((r) => [r.status, r.error?.code])).toEqual([
      ["sent", undefined],
      ["failed", "EBACKEND"],
      ["failed", "EBACKEND"],
    ]);
    expect(reports[1]!.error!.message).toMatch(/reported the message as not sent/);
    expect(reports[2]!.rejected.map((x) => x.address)).toEqual(["c@example.org"]);
    expect(api.calls).toHaveLength(3);
    // A backend that only implements the EmailBackend interface is reported the same way.
    const bare: EmailBackend = { open: async () => false, close: async () => {}, sendMessages: async (ms) => ms.length, [Symbol.asyncDispose]: async () => {} };
    expect((await sendWithReport(bare, [message()])).reports[0]!.status).toBe("sent");
  });
});

describe("Django's bulk semantics, with reports", () => {
  const refusing = () => fake({ script: recipientReplies({ "nobody@example.org": "550 5.1.1 No such user" }) });

  it("sendMessages stops at the first failure; the thrown error carries the reports known so far", async () => {
    const server = await refusing();
    const batch = [message(["a@example.org"]), message(["nobody@example.org"]), message(["c@example.org"])];
    const error = await rejection(smtp(server.port).sendMessages(batch));
    expect(error).toBeInstanceOf(SmtpRecipientsRefusedError);
    const reports = reportsOf(error)!;
    expect(reports.map((r) => [r.message, r.status])).toEqual([
      [batch[0], "sent"],
      [batch[1], "failed"],
    ]);
    expect((error as Error & { reports?: readonly DeliveryReport[] }).reports).toBe(reports);
    expect(JSON.stringify(error)).not.toContain("reports");
    expect(server.received.map((m) => m.rcptTo)).toEqual([["a@example.org"]]);
  });

  it("a pooled send with stopOnError: false carries on and reports every message, in order", async () => {
    const server = await refusing();
    const pooled = smtp(server.port, { pool: { maxConnections: 3 } });
    const batch = Array.from({ length: 9 }, (_, i) => message([i % 3 === 1 ? "nobody@example.org" : `r${i}@example.org`]));
    const { sent, reports } = await pooled.sendMessagesWithReport(batch, { stopOnError: false });
    expect(sent).toBe(6);
    expect(reports.map((r) => r.status)).toEqual(["sent", "failed", "sent", "sent", "failed", "sent", "sent", "failed", "sent"]);
    expect(reports.map((r) => r.message)).toEqual(batch);
  });

  it("the console and file backends stop the same way; failSilently carries on", async () => {
    const stream = new PassThrough();
    stream.destroy();
    const broken = new ConsoleBackend({ stream });
    const error = await rejection(broken.sendMessages([message(), message()]));
    expect(error).toBeInstanceOf(BackendError);
    expect(reportsOf(error)!.map((r) => r.status)).toEqual(["failed"]);
    const quiet = new ConsoleBackend({ stream, failSilently: true });
    expect((await quiet.sendMessagesWithReport([message(), message()])).reports.map((r) => r.status)).toEqual(["failed", "failed"]);
  });
});

describe("the SMTP backend's whole-message deadline", () => {
  it("a server that stops answering mid-message: a timeout at the step reached (retry-here), the connection dropped", async () => {
    const server = await fake({ script: hangOn("DATA") });
    const clock = new VirtualClock();
    const backend = smtp(server.port, { deadline: 20_000, clock, timeout: 60_000 });
    const pending = backend.sendMessagesWithReport([message()], { stopOnError: false });
    const until = Date.now() + 5000;
    while (!server.commands().includes("DATA") && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    await clock.advance(20_000);
    const r = (await pending).reports[0]!;
    expect(r.status).toBe("failed");
    expect(r.error).toBeInstanceOf(SmtpTimeoutError);
    expect((r.error as SmtpTimeoutError).phase).toBe("message");
    expect((r.error as SmtpTimeoutError).stage).toBe("data");
    expect(r.error!.message).toMatch(/^SMTP message timed out after 20000 ms.*longer than the backend's deadline/);
    expect(classify(r.error)).toBe("retry-here");
    expect(r.deferred.map((d) => d.address)).toEqual(["bob@example.org"]);
  });

  it("after the final dot the outcome is unknown, deadline or not", async () => {
    const server = await fake({ script: noReplyToDot() });
    const clock = new VirtualClock();
    const backend = smtp(server.port, { deadline: 20_000, clock, timeout: 60_000 });
    const pending = backend.sendMessagesWithReport([message()], { stopOnError: false });
    const until = Date.now() + 5000;
    while (server.received.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    await clock.advance(20_000);
    const r = (await pending).reports[0]!;
    expect(r.status).toBe("unknown");
    expect(r.error?.code).toBe("EDELIVERY_UNKNOWN");
  });

  it("deadline is checked like every option", () => {
    expect(() => smtp(25, { deadline: 0 })).toThrow(/deadline must be a number of milliseconds/);
    expect(smtp(25, { deadline: 90_000 }).deadline).toBe(90_000);
  });
});
