/**
 * Circuits and rate limits inside the engine, and shared by every user of a named
 * connection; and a recording observer that sees every decision of a scripted run.
 */
import { afterEach, describe, expect, it } from "vitest";
import { getConnection } from "../../src/api.js";
import { FailoverBackend } from "../../src/delivery/failover.js";
import { configure, resetSettings } from "../../src/settings.js";
import { VirtualClock } from "../helpers/virtual-clock.js";
import { closeServers, deadPort, fake, message, recorder, smtp } from "./helpers.js";

afterEach(async () => {
  resetSettings();
  await closeServers();
});

describe("a circuit per route", () => {
  it("opens after N route failures in a row, skips the route for the cooldown, then lets one probe through", async () => {
    let down = true;
    const primary = await fake({ greeting: () => (down ? { reply: "421 4.3.2 Maintenance", then: "close" } : undefined) });
    const secondary = await fake();
    const clock = new VirtualClock();
    const observer = recorder();
    const backend = new FailoverBackend({
      routes: [
        { name: "primary", backend: smtp(primary.port) },
        { name: "secondary", backend: smtp(secondary.port) },
      ],
      retry: { attempts: 3 },
      circuit: { failures: 2, cooldown: 10_000 },
      clock,
      observer,
    });
    await backend.open();
    try {
      const first = await backend.sendMessagesWithReport([message(), message(), message()]);
      expect(first.reports.map((r) => [r.status, r.route, r.attempts.map((a) => a.route).join(",")])).toEqual([
        ["sent", "secondary", "primary,secondary"],
        ["sent", "secondary", "primary,secondary"],
        ["sent", "secondary", "secondary"],
      ]);
      expect(primary.connections).toBe(2);
      await clock.advance(10_000);
      down = false;
      const after = await backend.sendMessagesWithReport([message()]);
      expect(after.reports.map((r) => [r.status, r.route])).toEqual([["sent", "primary"]]);
    } finally {
      await backend.close();
    }
    expect(observer.lines.filter((l) => /^(skip|circuit|outcome)/.test(l))).toEqual([
      "outcome sent secondary delivered",
      "circuitOpen primary",
      "outcome sent secondary delivered",
      "skip primary circuit-open",
      "outcome sent secondary delivered",
      "circuitProbe primary",
      "circuitClose primary",
      "outcome sent primary delivered",
    ]);
  });

  it("the circuit of a named route is shared by every FailoverBackend of the process (a new one per sendMail)", async () => {
    const primary = await fake({ greeting: { reply: "554 5.3.2 Not here", then: "close" } });
    const secondary = await fake();
    const clock = new VirtualClock();
    configure({
      backends: {
        primary: { backend: "smtp", host: "127.0.0.1", port: primary.port, localName: "client.test" },
        secondary: { backend: "smtp", host: "127.0.0.1", port: secondary.port, localName: "client.test" },
      },
      backend: "failover",
      failover: { routes: ["primary", "secondary"], circuit: { failures: 1, cooldown: 60_000 } },
    });
    const one = getConnection({ clock }) as FailoverBackend;
    expect((await one.sendMessagesWithReport([message()])).reports[0]!.attempts.map((a) => a.route)).toEqual(["primary", "secondary"]);
    const observer = recorder();
    const two = getConnection({ clock, observer }) as FailoverBackend;
    expect(two).not.toBe(one);
    expect((await two.sendMessagesWithReport([message()])).reports[0]!.attempts.map((a) => a.route)).toEqual(["secondary"]);
    expect(observer.lines).toContain("skip primary circuit-open");
    expect(primary.connections).toBe(1);
    // resetSettings() forgets circuits (tests start clean).
    resetSettings();
  });

  it("every route's circuit open: the message waits for the first probe instead of failing at once", async () => {
    // Down for the first connection only: the probe after the cooldown finds it back.
    const only = await fake({ greeting: (session) => (session.id === 1 ? { reply: "421 4.3.2 Down", then: "close" } : undefined) });
    const clock = new VirtualClock({ auto: true });
    const observer = recorder();
    const backend = new FailoverBackend({ routes: [{ name: "only", backend: smtp(only.port) }], retry: { attempts: 4, jitter: "none", initialDelay: 100 }, circuit: { failures: 1, cooldown: 5_000 }, clock, observer });
    // The first try opens the circuit; the next round has no route and waits for the cooldown.
    const pending = backend.sendMessagesWithReport([message()]);
    const r = (await pending).reports[0]!;
    expect(r.status).toBe("sent");
    expect(observer.lines.filter((l) => /^(retry|circuit|skip)/.test(l))).toEqual([
      "circuitOpen only",
      "retry 100 ECONNECT",
      "skip only circuit-open",
      "retry 4900 ECIRCUIT_OPEN",
      "circuitProbe only",
      "circuitClose only",
    ]);
    expect(r.attempts.map((a) => [a.status, a.delayMs])).toEqual([
      ["failed", 0],
      ["sent", 4900],
    ]);
  });
});

describe("a circuit's probe is never left hanging", () => {
  it("the attempts running out right after a failover do not take the next route's probe slot", async () => {
    const b = await fake({ greeting: (session) => (session.id === 1 ? { reply: "421 4.3.2 Down", then: "close" } : undefined) });
    const clock = new VirtualClock();
    const backend = new FailoverBackend({
      routes: [
        { name: "a", backend: smtp(await deadPort()) },
        { name: "b", backend: smtp(b.port) },
      ],
      retry: { attempts: 1 },
      circuit: { failures: 1, cooldown: 1000 },
      clock,
    });
    const send = async () => (await backend.sendMessagesWithReport([message()], { stopOnError: false })).reports[0]!;
    expect((await send()).attempts.map((x) => x.route)).toEqual(["a"]); // a opens
    expect((await send()).attempts.map((x) => x.route)).toEqual(["b"]); // a skipped, b fails and opens
    await clock.advance(1000);
    expect((await send()).attempts.map((x) => x.route)).toEqual(["a"]); // a's probe fails; no try left for b
    const last = await send(); // a is open again; b's probe goes through and b is back
    expect([last.status, last.route]).toEqual(["sent", "b"]);
  });
});

describe("rate limits", () => {
  it("one token bucket per named connection, shared by every user of that name in the process", async () => {
    const clock = new VirtualClock({ auto: true });
    configure({ backends: { bulk: { backend: "dummy", rateLimit: { messages: 2, perSeconds: 1 }, clock } } });
    const a = getConnection("bulk");
    const b = getConnection("bulk");
    expect(a).not.toBe(b);
    const [x, y] = await Promise.all([a.sendMessages([message(), message()]), b.sendMessages([message(), message()])]);
    expect(x + y).toBe(4);
    // Two messages went at once (the burst); the others waited their turn, 0.5 s apart.
    expect(clock.armed.map((t) => t.ms)).toEqual([500, 1000]);
  });

  it("in failover: each attempt takes a token (rateLimitWait), and past maxWait the message moves on at once (ERATE_LIMITED)", async () => {
    const bulk = await fake();
    const backup = await fake();
    const clock = new VirtualClock({ auto: true, autoMaxMs: 2_000 });
    configure({
      backends: {
        // The bucket runs on the named connection's clock (the SMTP deadlines too: none is under 2 s).
        bulk: { backend: "smtp", host: "127.0.0.1", port: bulk.port, localName: "client.test", rateLimit: { messages: 1, perSeconds: 1, maxWait: 1_500 }, clock },
        backup: { backend: "smtp", host: "127.0.0.1", port: backup.port, localName: "client.test" },
      },
    });
    const observer = recorder();
    // Three at once: the first takes the token, the second waits 1 s, the third would wait 2 s.
    const backend = new FailoverBackend({ routes: ["bulk", "backup"], retry: { attempts: 2 }, circuit: { failures: 1 }, clock, observer, concurrency: 3 });
    const { reports } = await backend.sendMessagesWithReport([message(), message(), message()]);
    expect(reports.map((r) => r.route)).toEqual(["bulk", "bulk", "backup"]);
    expect(reports[1]!.attempts[0]!.delayMs).toBe(1000);
    expect(reports[2]!.attempts.map((a) => [a.route, a.error?.code])).toEqual([
      ["bulk", "ERATE_LIMITED"],
      ["backup", undefined],
    ]);
    expect(observer.lines.filter((l) => /^(rateLimitWait|failover|circuit)/.test(l))).toEqual([
      // The third message is refused its token at once (2 s > maxWait) while the second still waits for its own.
      "failover bulk→backup ERATE_LIMITED",
      "rateLimitWait bulk 1000",
    ]);
    expect(bulk.received).toHaveLength(2);
  });
});

describe("the observer sees every decision", () => {
  it("a scripted run: a refused greeting, a failover, a 451 with its backoff, a rate-limit wait, the outcomes", async () => {
    const primary = await fake({ greeting: { reply: "421 4.3.2 Busy", then: "close" } });
    let mails = 0;
    const secondary = await fake({ script: { onCommand: (cmd) => (cmd.verb === "MAIL" && ++mails === 1 ? "451 4.3.0 Try later" : undefined) } });
    const clock = new VirtualClock({ auto: true });
    const observer = recorder();
    const backend = new FailoverBackend({
      routes: [
        { name: "primary", backend: smtp(primary.port) },
        { name: "secondary", backend: smtp(secondary.port), rateLimit: { messages: 1, perSeconds: 2 } },
      ],
      retry: { attempts: 5, jitter: "none", initialDelay: 300 },
      circuit: { failures: 2, cooldown: 60_000 },
      clock,
      observer,
    });
    const { reports } = await backend.sendMessagesWithReport([message(["a@example.org"]), message(["b@example.org"])]);
    expect(reports.map((r) => r.status)).toEqual(["sent", "sent"]);
    expect(observer.lines).toEqual([
      // message 1
      "attempt 1 primary [1]",
      "attemptEnd 1 primary failed ECONNECT",
      "failover primary→secondary ECONNECT",
      "attempt 2 secondary [1]",
      "attemptEnd 2 secondary failed ESMTP_REPLY",
      "retry 300 ESMTP_REPLY",
      "attempt 3 secondary [1]",
      "rateLimitWait secondary 1700",
      "attemptEnd 3 secondary sent -",
      "outcome sent secondary delivered",
      // message 2: the primary's second fault opens its circuit
      "attempt 1 primary [1]",
      "attemptEnd 1 primary failed ECONNECT",
      "circuitOpen primary",
      "failover primary→secondary ECONNECT",
      "attempt 2 secondary [1]",
      "rateLimitWait secondary 2000",
      "attemptEnd 2 secondary sent -",
      "outcome sent secondary delivered",
    ]);
    expect(reports[0]!.attempts.map((a) => a.delayMs)).toEqual([0, 0, 2000]);
  });
});
