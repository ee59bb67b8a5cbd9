/**
 * The delivery engine against scripted fault servers: each failure ends where the
 * decision table says — retried here with backoff, moved to the next route at once, given
 * up, or reported unknown — and the report shows every attempt. Waits run on a virtual
 * clock (their lengths are asserted exactly, no wall time passes).
 */
import { afterEach, describe, expect, it } from "vitest";
import { FailoverBackend } from "../../src/delivery/failover.js";
import { reportsOf } from "../../src/backends/report.js";
import { BaseEmailBackend } from "../../src/backends/base.js";
import { BackendError, SmtpConnectError, SmtpError } from "../../src/errors.js";
import type { EmailMessage } from "../../src/mime/message.js";
import { rejection } from "../helpers/errors.js";
import { dropAfterDot, messageReply, replyOn, shutdownOn } from "../helpers/fake-smtp-server.js";
import { VirtualClock } from "../helpers/virtual-clock.js";
import { closeServers, deadPort, fake, message, messageIdOf, recorder, smtp } from "./helpers.js";

afterEach(closeServers);

const steady = { jitter: "none", initialDelay: 1000, factor: 2, maxDelay: 60_000 } as const;

function failover(routes: { name: string; port: number; options?: Parameters<typeof smtp>[1] }[], extra: Partial<ConstructorParameters<typeof FailoverBackend>[0]> = {}) {
  const clock = new VirtualClock({ auto: true });
  const observer = recorder();
  const backend = new FailoverBackend({
    routes: routes.map((r) => ({ name: r.name, backend: smtp(r.port, r.options) })),
    retry: { attempts: 4, ...steady },
    circuit: false,
    clock,
    observer,
    ...extra,
  });
  return { backend, clock, observer };
}

describe("failover across routes", () => {
  it("a dead primary: the message moves to the secondary at once, no wait", async () => {
    const secondary = await fake();
    const { backend, observer, clock } = failover([
      { name: "primary", port: await deadPort() },
      { name: "secondary", port: secondary.port },
    ]);
    const { sent, reports } = await backend.sendMessagesWithReport([message(["bob@example.org"])]);
    expect(sent).toBe(1);
    const r = reports[0]!;
    expect(r).toMatchObject({ status: "sent", route: "secondary", accepted: ["bob@example.org"], rejected: [], deferred: [], stopped: "delivered", error: undefined });
    expect(r.attempts.map((a) => [a.route, a.status, a.delayMs, a.error?.code])).toEqual([
      ["primary", "failed", 0, "ECONNECT"],
      ["secondary", "sent", 0, undefined],
    ]);
    expect(r.attempts[0]!.error).toBeInstanceOf(SmtpConnectError);
    expect(clock.armed.filter((t) => t.ms > 0)).toEqual([]);
    expect(observer.lines).toEqual([
      "attempt 1 primary [1]",
      "attemptEnd 1 primary failed ECONNECT",
      "failover primary→secondary ECONNECT",
      "attempt 2 secondary [1]",
      "attemptEnd 2 secondary sent -",
      "outcome sent secondary delivered",
    ]);
    expect(secondary.received).toHaveLength(1);
    expect(messageIdOf(secondary.received[0]!.data)).toBe(r.messageId);
  });

  it("421 at the greeting: next route at once", async () => {
    const primary = await fake({ greeting: { reply: "421 4.3.2 Too busy, try later", then: "close" } });
    const secondary = await fake();
    const { backend } = failover([
      { name: "primary", port: primary.port },
      { name: "secondary", port: secondary.port },
    ]);
    const r = (await backend.sendMessagesWithReport([message()])).reports[0]!;
    expect(r.status).toBe("sent");
    expect(r.attempts.map((a) => [a.route, a.error?.code, (a.error as SmtpError | undefined)?.replyCode, a.delayMs])).toEqual([
      ["primary", "ECONNECT", 421, 0],
      ["secondary", undefined, undefined, 0],
    ]);
    expect(primary.received).toHaveLength(0);
    expect(secondary.received).toHaveLength(1);
  });

  it("AUTH refused on one route only: the other route delivers", async () => {
    const primary = await fake({ users: { app: "right" } });
    const secondary = await fake({ users: { app: "other" } });
    const { backend } = failover([
      { name: "primary", port: primary.port, options: { username: "app", password: "wrong" } },
      { name: "secondary", port: secondary.port, options: { username: "app", password: "other" } },
    ]);
    const r = (await backend.sendMessagesWithReport([message()])).reports[0]!;
    expect(r.status).toBe("sent");
    expect(r.route).toBe("secondary");
    expect(r.attempts.map((a) => [a.route, a.error?.code, (a.error as SmtpError | undefined)?.replyCode, (a.error as SmtpError | undefined)?.stage])).toEqual([
      ["primary", "EAUTH", 535, "auth"],
      ["secondary", undefined, undefined, undefined],
    ]);
    expect(JSON.stringify(r.attempts[0]!.error)).not.toContain("wrong");
    expect(secondary.received[0]!.authUser).toBe("app");
  });

  it("every route failing: waits with backoff, then starts again from the first", async () => {
    const { backend, observer } = failover(
      [
        { name: "primary", port: await deadPort() },
        { name: "secondary", port: await deadPort() },
      ],
      { retry: { attempts: 4, ...steady } },
    );
    const r = (await backend.sendMessagesWithReport([message()], { stopOnError: false })).reports[0]!;
    expect(r.status).toBe("failed");
    expect(r.stopped).toBe("attempts");
    expect(r.attempts.map((a) => [a.route, a.delayMs])).toEqual([
      ["primary", 0],
      ["secondary", 0],
      ["primary", 1000],
      ["secondary", 0],
    ]);
    expect(r.error?.code).toBe("ECONNECT");
    expect(r.deferred.map((d) => d.address)).toEqual(["bob@example.org"]);
    expect(observer.lines.filter((l) => l.startsWith("retry") || l.startsWith("failover"))).toEqual([
      "failover primary→secondary ECONNECT",
      "retry 1000 ECONNECT",
      "failover primary→secondary ECONNECT",
    ]);
  });
});

describe("retried on the same route", () => {
  it("451 then success: one wait of initialDelay, delivered once, no failover", async () => {
    const primary = await fake({ script: replyOn("MAIL", "451 4.3.0 Try again later", { conn: 1 }) });
    const secondary = await fake();
    const { backend, clock } = failover([
      { name: "primary", port: primary.port },
      { name: "secondary", port: secondary.port },
    ]);
    const r = (await backend.sendMessagesWithReport([message()])).reports[0]!;
    expect(r.status).toBe("sent");
    expect(r.attempts.map((a) => [a.route, a.status, a.delayMs, (a.error as SmtpError | undefined)?.replyCode])).toEqual([
      ["primary", "failed", 0, 451],
      ["primary", "sent", 1000, undefined],
    ]);
    expect(r.attempts[1]!.at - r.attempts[0]!.at).toBe(1000);
    expect(clock.armed.map((t) => t.ms)).toEqual([1000]);
    expect(primary.received).toHaveLength(1);
    expect(secondary.connections).toBe(0);
  });

  it("452 past recipient 100: the first 100 accepted, the other 50 alone in a second transaction at once", async () => {
    const server = await fake({
      script: {
        onCommand: (cmd, s) => (cmd.verb === "RCPT" && s.rcptTo.length >= 100 ? "452 4.5.3 Too many recipients" : undefined),
      },
    });
    const { backend, clock } = failover([{ name: "relay", port: server.port }]);
    const to = Array.from({ length: 150 }, (_, i) => `r${i}@example.org`);
    const r = (await backend.sendMessagesWithReport([message(to)])).reports[0]!;
    expect(r.status).toBe("sent");
    expect(r.accepted).toEqual(to);
    expect(r.deferred).toEqual([]);
    expect(r.attempts.map((a) => [a.recipients.length, a.accepted.length, a.status, a.delayMs])).toEqual([
      [150, 100, "partial", 0],
      [50, 50, "sent", 0],
    ]);
    expect(server.received.map((m) => m.rcptTo.length)).toEqual([100, 50]);
    expect(server.received[1]!.rcptTo).toEqual(to.slice(100));
    // The same message both times: one Message-ID.
    expect(server.received.map((m) => messageIdOf(m.data))).toEqual([r.messageId, r.messageId]);
    expect(clock.armed).toEqual([]);
  });

  it("a recipient deferred with 450: retried alone after the backoff; the accepted one is never sent again", async () => {
    let tries = 0;
    const server = await fake({
      script: {
        onCommand: (cmd) => (cmd.verb === "RCPT" && cmd.arg.includes("busy@") && ++tries === 1 ? "450 4.2.1 Mailbox busy" : undefined),
      },
    });
    const { backend } = failover([{ name: "relay", port: server.port }]);
    const r = (await backend.sendMessagesWithReport([message(["ok@example.org", "busy@example.org"])])).reports[0]!;
    expect(r.status).toBe("sent");
    expect(r.attempts.map((a) => [a.recipients, a.accepted, a.delayMs])).toEqual([
      [["ok@example.org", "busy@example.org"], ["ok@example.org"], 0],
      [["busy@example.org"], ["busy@example.org"], 1000],
    ]);
    expect(server.received.map((m) => m.rcptTo)).toEqual([["ok@example.org"], ["busy@example.org"]]);
  });
});

describe("not retried", () => {
  it("a drop after the final dot: unknown, one attempt, not retried, not failed over", async () => {
    const primary = await fake({ script: dropAfterDot() });
    const secondary = await fake();
    const { backend, clock, observer } = failover([
      { name: "primary", port: primary.port },
      { name: "secondary", port: secondary.port },
    ]);
    const r = (await backend.sendMessagesWithReport([message(["a@example.org", "b@example.org"])], { stopOnError: false })).reports[0]!;
    expect(r.status).toBe("unknown");
    expect(r.stopped).toBe("unknown");
    expect(r.error?.code).toBe("EDELIVERY_UNKNOWN");
    expect(r.attempts).toHaveLength(1);
    expect(r.accepted).toEqual([]);
    expect(r.deferred.map((d) => [d.address, d.code])).toEqual([
      ["a@example.org", undefined],
      ["b@example.org", undefined],
    ]);
    expect(primary.received).toHaveLength(1);
    expect(secondary.connections).toBe(0);
    expect(clock.armed).toEqual([]);
    expect(observer.lines.at(-1)).toBe("outcome unknown primary unknown");
  });

  it("a 5xx to the message: failed, rejected with that reply, not retried, not failed over", async () => {
    const primary = await fake({ script: messageReply("554 5.7.1 Message rejected as spam") });
    const secondary = await fake();
    const { backend } = failover([
      { name: "primary", port: primary.port },
      { name: "secondary", port: secondary.port },
    ]);
    const r = (await backend.sendMessagesWithReport([message(["a@example.org"])], { stopOnError: false })).reports[0]!;
    expect(r).toMatchObject({ status: "failed", stopped: "gave-up", accepted: [], deferred: [] });
    expect(r.rejected).toEqual([{ address: "a@example.org", code: 554, enhancedCode: "5.7.1", text: "Message rejected as spam" }]);
    expect(r.attempts).toHaveLength(1);
    expect(secondary.connections).toBe(0);
  });

  it("a 5xx to MAIL FROM: given up at once", async () => {
    const primary = await fake({ script: replyOn("MAIL", "553 5.7.1 Sender not allowed") });
    const secondary = await fake();
    const { backend } = failover([
      { name: "primary", port: primary.port },
      { name: "secondary", port: secondary.port },
    ]);
    const r = (await backend.sendMessagesWithReport([message()], { stopOnError: false })).reports[0]!;
    expect([r.status, r.stopped, r.attempts.length, r.rejected[0]?.code]).toEqual(["failed", "gave-up", 1, 553]);
    expect(secondary.connections).toBe(0);
  });
});

describe("the retry policy's limits", () => {
  it("a deadline ends the retries with the last error, without starting a wait that would pass it", async () => {
    const server = await fake({ script: { onCommand: (cmd) => (cmd.verb === "MAIL" ? "451 4.3.0 Busy" : undefined) } });
    const clock = new VirtualClock({ auto: true, autoMaxMs: 4_999 });
    const backend = new FailoverBackend({ routes: [{ name: "relay", backend: smtp(server.port) }], retry: { attempts: 10, deadline: 5_000, ...steady }, circuit: false, clock });
    const r = (await backend.sendMessagesWithReport([message()], { stopOnError: false })).reports[0]!;
    expect(r.status).toBe("failed");
    expect(r.stopped).toBe("deadline");
    expect(r.attempts.map((a) => a.delayMs)).toEqual([0, 1000, 2000]);
    expect((r.error as SmtpError).replyCode).toBe(451);
    // The deadline timer was armed and then cleared; the 4 s wait was never started.
    expect(clock.armed.map((t) => t.ms)).toEqual([5000, 1000, 2000]);
    expect(clock.pending).toEqual([]);
  });

  it("attempts: 1 means one try; the error says why it was not delivered", async () => {
    const server = await fake({ script: replyOn("MAIL", "451 4.3.0 Busy") });
    const { backend } = failover([{ name: "relay", port: server.port }], { retry: { attempts: 1 } });
    const r = (await backend.sendMessagesWithReport([message()], { stopOnError: false })).reports[0]!;
    expect([r.status, r.stopped, r.attempts.length]).toEqual(["failed", "attempts", 1]);
    expect(r.deferred[0]).toMatchObject({ address: "bob@example.org", code: 451 });
  });

  it("an AbortSignal ends a backoff wait at once", async () => {
    const server = await fake({ script: replyOn("MAIL", "451 4.3.0 Busy") });
    const clock = new VirtualClock();
    const backend = new FailoverBackend({ routes: [{ name: "relay", backend: smtp(server.port) }], retry: { attempts: 5, ...steady }, circuit: false, clock });
    const controller = new AbortController();
    const pending = backend.sendMessagesWithReport([message()], { stopOnError: false, signal: controller.signal });
    const deadline = Date.now() + 5000;
    while (clock.pending.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(clock.pending.map((t) => t.ms)).toEqual([1000]);
    controller.abort();
    const r = (await pending).reports[0]!;
    expect([r.status, r.stopped, r.attempts.length]).toEqual(["failed", "aborted", 1]);
    expect((r.error as SmtpError).replyCode).toBe(451);
    expect(clock.pending).toEqual([]);
  });

  it("retryUnknown: true resends an unknown outcome, with the same Message-ID", async () => {
    const server = await fake({ script: { onMessage: (m) => (m.conn === 1 ? { reply: null, then: "destroy" } : undefined) } });
    const { backend } = failover([{ name: "relay", port: server.port }], { retry: { attempts: 3, retryUnknown: true, ...steady } });
    const r = (await backend.sendMessagesWithReport([message()])).reports[0]!;
    expect(r.status).toBe("sent");
    expect(r.attempts.map((a) => [a.status, a.delayMs])).toEqual([
      ["unknown", 0],
      ["sent", 1000],
    ]);
    expect(server.received.map((m) => messageIdOf(m.data))).toEqual([r.messageId, r.messageId]);
  });

  it("retryAfter on an error is honoured: a custom backend that says how long to wait", async () => {
    class Throttled extends BaseEmailBackend {
      calls = 0;
      async sendMessages(messages: readonly EmailMessage[]): Promise<number> {
        this.calls += 1;
        if (this.calls === 1) throw new BackendError("429 from the provider's API", { retryable: true, retryAfter: 7_500 });
        return messages.length;
      }
    }
    const clock = new VirtualClock({ auto: true });
    const api = new Throttled();
    const backend = new FailoverBackend({ routes: [{ name: "api", backend: api }], retry: { attempts: 3, ...steady }, circuit: false, clock });
    const r = (await backend.sendMessagesWithReport([message()])).reports[0]!;
    expect(r.status).toBe("sent");
    expect(r.attempts.map((a) => [a.status, a.delayMs, a.error?.code])).toEqual([
      ["failed", 0, "EBACKEND"],
      ["sent", 7500, undefined],
    ]);
    expect(api.calls).toBe(2);
  });
});

describe("Django's semantics on a failover backend", () => {
  it("sendMessages stops at the first failed message and throws it, carrying the reports known so far", async () => {
    const server = await fake({ script: { onCommand: (cmd) => (cmd.verb === "RCPT" && cmd.arg.includes("nobody@") ? "550 5.1.1 No such user" : undefined) } });
    const { backend } = failover([{ name: "relay", port: server.port }], { retry: { attempts: 1 } });
    const batch = [message(["a@example.org"]), message(["nobody@example.org"]), message(["c@example.org"])];
    const error = await rejection(backend.sendMessages(batch));
    expect(error.name).toBe("SmtpRecipientsRefusedError");
    expect(reportsOf(error)?.map((r) => r.status)).toEqual(["sent", "failed"]);
    expect(server.received.map((m) => m.rcptTo)).toEqual([["a@example.org"]]);
    // stopOnError: false carries on and reports every message.
    const all = await backend.sendMessagesWithReport(batch, { stopOnError: false });
    expect(all.reports.map((r) => r.status)).toEqual(["sent", "failed", "sent"]);
    expect(all.sent).toBe(2);
    // failSilently: the count, no throw.
    const quiet = new FailoverBackend({ routes: [{ name: "relay", backend: smtp(server.port) }], retry: { attempts: 1 }, circuit: false, failSilently: true });
    expect(await quiet.sendMessages(batch)).toBe(2);
  });

  it("a 421 while sending (the server shutting down) is retried on the same route after the backoff", async () => {
    const server = await fake({ script: shutdownOn("DATA", { conn: 1 }) });
    const { backend } = failover([{ name: "relay", port: server.port }]);
    const r = (await backend.sendMessagesWithReport([message()])).reports[0]!;
    expect(r.attempts.map((a) => [a.route, (a.error as SmtpError | undefined)?.replyCode, a.delayMs])).toEqual([
      ["relay", 421, 0],
      ["relay", undefined, 1000],
    ]);
  });
});
