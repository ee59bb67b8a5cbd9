/**
 * The delivery engine's decisions as log records and channel payloads (through its
 * DeliveryObserver seam): failover, retry with its exact wait, circuits opening, skipping,
 * probing and closing, rate-limit waits, and one outcome per message — with the route
 * backends' own records of each try at debug level. Waits run on a virtual clock.
 */
import diagnosticsChannel from "node:diagnostics_channel";
import { afterEach, describe, expect, it } from "vitest";
import { FailoverBackend } from "../../src/delivery/failover.js";
import { EVENT_CHANNEL_NAMES } from "../../src/observe/channels.js";
import type { MissiveEvent } from "../../src/observe/events.js";
import { replyOn } from "../helpers/fake-smtp-server.js";
import { VirtualClock } from "../helpers/virtual-clock.js";
import { closeServers, deadPort, fake, message, smtp } from "../delivery/helpers.js";
import { capturePino, ownKeys } from "./helpers.js";

afterEach(closeServers);

const ENGINE = new Set(["message.retry", "message.failover", "route.skip", "route.circuit_open", "route.circuit_probe", "route.circuit_close", "ratelimit.wait", "message.sent", "message.partial", "message.failed", "message.unknown"]);

describe("engine events", () => {
  it("failover, then a retry with its wait, then the outcome once; each try's record at debug", async () => {
    const secondary = await fake({ script: [replyOn("MAIL", "451 4.3.0 Try again", { nth: 1, conn: 1 })] });
    const clock = new VirtualClock({ auto: true });
    const capture = capturePino("debug");
    const backend = new FailoverBackend({
      routes: [
        { name: "primary", backend: smtp(await deadPort(), { logger: capture.logger }) },
        { name: "secondary", backend: smtp(secondary.port, { logger: capture.logger }) },
      ],
      retry: { attempts: 4, jitter: "none", initialDelay: 250 },
      circuit: false,
      clock,
      logger: capture.logger,
    });
    const m = message(["bob@example.org"], "failover");
    const { reports } = await backend.sendMessagesWithReport([m]);
    expect(reports[0]!.status).toBe("sent");
    const records = capture.records();
    const engine = records.filter((r) => ENGINE.has(r["event"] as string));
    expect(engine.map((r) => [r["event"], r["route"], r["attempt"] ?? r["attempts"]])).toEqual([
      ["message.failover", "primary", 2],
      ["message.retry", "secondary", 2],
      ["message.sent", "secondary", 3],
    ]);
    const [failover, retry, sent] = engine as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    expect(failover).toMatchObject({ messageId: m.headers["Message-ID"], nextRoute: "secondary", errorCode: "ECONNECT", stage: "connect" });
    expect(retry).toMatchObject({ delayMs: 250, errorCode: "ESMTP_REPLY", replyCode: 451, stage: "mail", recipients: 1 });
    expect(ownKeys(sent)).toEqual(["accepted", "attempts", "backend", "deferred", "durationMs", "enhancedCode", "event", "messageId", "queueId", "recipients", "rejected", "replyCode", "route", "stopped"]);
    expect(sent).toMatchObject({ backend: "failover", attempts: 3, stopped: "delivered", recipients: 1, accepted: 1, replyCode: 250, queueId: "FAKE1" });
    expect(sent["durationMs"]).toBe(250); // the virtual clock: the retry's wait, nothing else
    // Each try, from its route backend (the first never reached a server: observed at its end).
    const tries = records.filter((r) => r["event"] === "message.attempt");
    expect(tries.map((r) => [r["route"], r["attempt"], r["status"], r["errorCode"]])).toEqual([
      ["primary", 1, "failed", "ECONNECT"],
      ["secondary", 2, "failed", "ESMTP_REPLY"],
      ["secondary", 3, "sent", undefined],
    ]);
    expect(tries[2]).toMatchObject({ backend: "smtp", host: "127.0.0.1", port: secondary.port, connectionId: expect.stringMatching(/^c\d+$/) });
    // At info, the engine's records and the connections, not the tries.
    expect(records.filter((r) => (r["level"] as number) >= 30).map((r) => r["event"])).not.toContain("message.attempt");
  });

  it("a circuit opens, its route is skipped, probed after the cooldown and closed again", async () => {
    let down = true;
    const primary = await fake({ greeting: () => (down ? { reply: "421 4.3.2 Maintenance", then: "close" } : undefined) });
    const secondary = await fake();
    const clock = new VirtualClock();
    const capture = capturePino("debug");
    const backend = new FailoverBackend({
      routes: [
        { name: "primary", backend: smtp(primary.port) },
        { name: "secondary", backend: smtp(secondary.port) },
      ],
      retry: { attempts: 3 },
      circuit: { failures: 1, cooldown: 10_000 },
      clock,
      logger: capture.logger,
    });
    await backend.sendMessages([message(), message()]);
    await clock.advance(10_000);
    down = false;
    await backend.sendMessages([message()]);
    const events = capture.records().map((r) => [r["event"], r["route"]]);
    expect(events).toEqual([
      ["route.circuit_open", "primary"],
      ["message.failover", "primary"],
      ["message.sent", "secondary"],
      ["route.skip", "primary"],
      ["message.sent", "secondary"],
      ["route.circuit_probe", "primary"],
      ["route.circuit_close", "primary"],
      ["message.sent", "primary"],
    ]);
    expect(capture.records().filter((r) => r["event"] === "route.circuit_open").map((r) => r["level"])).toEqual([40]);
  });

  it("rate-limit waits go to the logger at debug and to their channel, with nothing logged", async () => {
    const server = await fake();
    const clock = new VirtualClock({ auto: true });
    const published: MissiveEvent[] = [];
    const listener = (m: unknown) => published.push(m as MissiveEvent);
    diagnosticsChannel.subscribe(EVENT_CHANNEL_NAMES["ratelimit.wait"], listener);
    try {
      const backend = new FailoverBackend({ routes: [{ name: "relay", backend: smtp(server.port), rateLimit: { messages: 1, perSeconds: 1 } }], clock });
      await backend.sendMessages([message(), message()]);
    } finally {
      diagnosticsChannel.unsubscribe(EVENT_CHANNEL_NAMES["ratelimit.wait"], listener);
    }
    expect(published).toEqual([{ event: "ratelimit.wait", route: "relay", delayMs: 1000 }]);
  });
});
