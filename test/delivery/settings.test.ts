/**
 * configure() checks the delivery settings at once, with errors that name the setting:
 * failover routes, retry numbers, circuits, rate limits, routing; and getConnection()
 * gives the failover, routing and rate-limited backends they describe.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { deliver, deliverMany, getConnection } from "../../src/api.js";
import { FailoverBackend } from "../../src/delivery/failover.js";
import { RateLimitedBackend } from "../../src/delivery/limited-backend.js";
import { RoutingBackend } from "../../src/delivery/routing.js";
import { ConfigurationError, InvalidArgumentError } from "../../src/errors.js";
import { configure, getSettings, resetSettings, type SettingsInput } from "../../src/settings.js";
import { EmailMessage } from "../../src/mime/message.js";
import { errorOf } from "../helpers/errors.js";
import { closeServers, fake, message } from "./helpers.js";

afterEach(async () => {
  resetSettings();
  await closeServers();
});

const two = { primary: "smtp://127.0.0.1:2525", secondary: { backend: "smtp", host: "127.0.0.1", port: 2526 } } as const;

function refused(input: SettingsInput): ConfigurationError {
  const before = getSettings();
  const error = errorOf(() => configure(input)) as ConfigurationError;
  expect(error).toBeInstanceOf(ConfigurationError);
  expect(getSettings()).toBe(before); // nothing changed
  return error;
}

describe("configure() checks the delivery settings", () => {
  it("accepts two routes, a retry policy, circuits, a rate limit and a route function", () => {
    const s = configure({
      backends: { ...two, bulk: { backend: "smtp", host: "127.0.0.1", port: 2527, rateLimit: { messages: 50, perSeconds: 1 } } },
      backend: "failover",
      failover: { routes: ["primary", "secondary"], retry: { attempts: 5, initialDelay: 1_000, factor: 2, maxDelay: 60_000, jitter: "full", deadline: 600_000 }, circuit: { failures: 5, cooldown: 30_000 } },
      route: (m) => (m.headers["X-Mail-Kind"] === "bulk" ? "bulk" : undefined),
    });
    expect(s.failover?.routes).toEqual(["primary", "secondary"]);
    expect(s.failover?.retry).toMatchObject({ attempts: 5, deadline: 600_000, retryUnknown: false });
    expect(typeof s.route).toBe("function");
  });

  it.each<[string, SettingsInput, string, RegExp]>([
    ["an unknown route name", { backends: two, failover: { routes: ["primary", "tertiary"] } }, "failover.routes", /failover\.routes names "tertiary", which is not a named connection \(backends: primary, secondary\)/],
    ["no routes", { backends: two, failover: { routes: [] } }, "failover.routes", /must be a non-empty list/],
    ["a route twice", { backends: two, failover: { routes: ["primary", "primary"] } }, "failover.routes", /names "primary" twice/],
    ["attempts 0", { backends: two, failover: { routes: ["primary"], retry: { attempts: 0 } } }, "failover.retry.attempts", /failover\.retry\.attempts must be an integer from 1 to 1000/],
    ["a negative delay", { backends: two, failover: { routes: ["primary"], retry: { initialDelay: -5 } } }, "failover.retry.initialDelay", /milliseconds/],
    ["a typo in retry", { backends: two, failover: { routes: ["primary"], retry: { attempt: 3 } as never } }, "failover.retry", /unknown option "attempt"/],
    ["a bad circuit", { backends: two, failover: { routes: ["primary"], circuit: { failures: -1 } } }, "failover.circuit.failures", /integer/],
    ["an unknown failover key", { backends: two, failover: { routes: ["primary"], retries: 3 } as never }, "failover", /unknown option "retries"/],
    [
      "a route that is itself a failover (a cycle)",
      { backends: { ...two, both: { backend: "failover", routes: ["primary", "secondary"] } }, failover: { routes: ["both", "primary"] } },
      "failover.routes",
      /names "both", which is itself a failover connection/,
    ],
    ["a named failover naming itself", { backends: { loop: { backend: "failover", routes: ["loop"] } } }, "backends.loop.routes", /itself a failover/],
    ["a bad rate limit", { backends: { bulk: { backend: "smtp", rateLimit: { messages: 0 } } } }, "backends.bulk.rateLimit.messages", /positive integer/],
    ["a rate limit with a typo", { backends: { bulk: { backend: "file", filePath: "/tmp/x", rateLimit: { messages: 5, burts: 2 } } } }, "backends.bulk.rateLimit", /unknown option "burts"/],
    ["backend failover without routes", { backend: "failover" }, "failover", /backend "failover" needs its routes/],
    ["route that is not a function", { route: "bulk" as never }, "route", /route must be a function/],
  ])("refuses %s", (_name, input, setting, message) => {
    const error = refused(input);
    expect(error.setting).toBe(setting);
    expect(error.message).toMatch(message);
  });

  it('"failover" is a backend name, not a connection name; the SMTP resolver never sees rateLimit', () => {
    expect(refused({ backends: { failover: { backend: "smtp" } } }).message).toMatch(/cannot be called "failover"/);
    expect(() => configure({ backends: { bulk: { backend: "smtp", host: "relay.example", rateLimit: { messages: 10 } } } })).not.toThrow();
    expect(refused({ backends: { bulk: { backend: "smtp", hots: "relay.example" } } }).message).toMatch(/unknown option "hots"/);
  });
});

describe("getConnection() builds what the settings describe", () => {
  it('backend: "failover" gives a FailoverBackend over the named routes; a named one too', () => {
    configure({ backends: { ...two, mail: { backend: "failover", routes: ["secondary", "primary"], retry: false } }, backend: "failover", failover: { routes: ["primary", "secondary"] } });
    const conn = getConnection();
    expect(conn).toBeInstanceOf(FailoverBackend);
    expect((conn as FailoverBackend).routes).toEqual(["primary", "secondary"]);
    const named = getConnection("mail") as FailoverBackend;
    expect(named.routes).toEqual(["secondary", "primary"]);
    expect(named.settings.retry.attempts).toBe(1);
    expect(JSON.stringify(conn)).toContain('"routes":["primary","secondary"]');
  });

  it("a FailoverBackend in code: the routes are checked too", () => {
    expect(() => new FailoverBackend({ routes: [] })).toThrow(InvalidArgumentError);
    expect(() => new FailoverBackend({ routes: ["nowhere"] })).toThrow(/no named connection "nowhere"/);
    const inner = new FailoverBackend({ routes: [{ name: "a", backend: getConnection("dummy") }] });
    expect(() => new FailoverBackend({ routes: [{ name: "nested", backend: inner }] })).toThrow(/itself a FailoverBackend/);
    expect(() => new FailoverBackend({ routes: [{ name: "a", backend: getConnection("dummy") }], retry: { attempts: -1 } })).toThrow(/FailoverBackend options\.retry\.attempts/);
    expect(() => new FailoverBackend({ routes: [{ name: "a", backend: getConnection("dummy") }], retrys: 1 } as never)).toThrow(/unknown option "retrys"/);
  });

  it("a named connection with rateLimit comes behind its limit", () => {
    configure({ backends: { bulk: { backend: "dummy", rateLimit: { messages: 5 } } } });
    const conn = getConnection("bulk");
    expect(conn).toBeInstanceOf(RateLimitedBackend);
    expect((conn as RateLimitedBackend).limiter.limit).toEqual({ messages: 5, perSeconds: 1, burst: 5, maxWait: undefined });
  });
});

describe("routing: route(message) picks a named connection; undefined keeps the default", () => {
  it("password resets through the transactional provider, newsletters through the bulk relay", async () => {
    const dir = await mkdtemp(join(tmpdir(), "missive-route-"));
    try {
      const transactional = await fake();
      configure({
        backend: "smtp",
        host: "127.0.0.1",
        port: transactional.port,
        localName: "client.test",
        backends: { bulk: { backend: "file", filePath: join(dir, "bulk") } },
        route: (m) => (m.headers["X-Mail-Kind"] === "bulk" ? "bulk" : undefined),
      });
      expect(getConnection()).toBeInstanceOf(RoutingBackend);
      const reset = new EmailMessage({ subject: "Reset", body: "x", from: "app@example.com", to: ["zoe@example.org"] });
      const news = new EmailMessage({ subject: "News", body: "x", from: "news@example.com", to: ["zoe@example.org"], headers: { "X-Mail-Kind": "bulk" } });
      const reports = await deliverMany([news, reset]);
      expect(reports.map((r) => [r.message.subject, r.status, r.route])).toEqual([
        ["News", "sent", "bulk"],
        ["Reset", "sent", undefined],
      ]);
      expect(transactional.received.map((m) => m.rcptTo)).toEqual([["zoe@example.org"]]);
      expect(await readdir(join(dir, "bulk"))).toHaveLength(1);
      // sendMail and EmailMessage#send route too.
      expect(await news.send()).toBe(1);
      expect(await readdir(join(dir, "bulk"))).toHaveLength(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a route that names no connection is a ConfigurationError before anything is sent", async () => {
    const server = await fake();
    configure({ host: "127.0.0.1", port: server.port, localName: "client.test", route: () => "nowhere" });
    const error = await deliver(message()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).message).toMatch(/route\(\) returned "nowhere", which is not a named connection/);
    expect(server.connections).toBe(0);
  });
});
