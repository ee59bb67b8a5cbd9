/**
 * The logger adapter and the event sink on their own: what a logger must be, how
 * recipients are shown, levels checked before anything is built, bindings carried by
 * pino's child (or merged for a logger without one), a broken logger ignored, channels
 * published only when subscribed; and the isolation of missive/otel (no other module
 * imports @opentelemetry).
 */
import diagnosticsChannel from "node:diagnostics_channel";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { EVENT_CHANNEL_NAMES, eventChannels } from "../../src/observe/channels.js";
import { EVENTS, EventSink } from "../../src/observe/events.js";
import { LogTarget, loggerProblem, logRecipientsProblem, recipientsField, type Logger } from "../../src/observe/log.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { startFakeServer } from "../helpers/fake-smtp-server.js";
import { capturePino } from "./helpers.js";

function recording(options: { enabled?: (level: string) => boolean; child?: boolean } = {}) {
  const calls: [string, Record<string, unknown>, string | undefined][] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const logger: Logger = {
      trace: (o, m) => calls.push(["trace", { ...bindings, ...o }, m]),
      debug: (o, m) => calls.push(["debug", { ...bindings, ...o }, m]),
      info: (o, m) => calls.push(["info", { ...bindings, ...o }, m]),
      warn: (o, m) => calls.push(["warn", { ...bindings, ...o }, m]),
      error: (o, m) => calls.push(["error", { ...bindings, ...o }, m]),
    };
    if (options.enabled) logger.isLevelEnabled = options.enabled;
    if (options.child) logger.child = (b) => make({ ...bindings, ...b });
    return logger;
  };
  return { logger: make({}), calls };
}

describe("loggers", () => {
  it("any object with the five level methods; isLevelEnabled and child must be functions when present", () => {
    expect(loggerProblem(recording().logger)).toBeUndefined();
    expect(loggerProblem(capturePino().logger)).toBeUndefined();
    expect(loggerProblem(console)).toBeUndefined();
    expect(loggerProblem(undefined)).toMatch(/must be a logger/);
    expect(loggerProblem({ info() {}, warn() {}, error() {} })).toBe("must be a logger with trace, debug, info, warn and error methods; it has no trace, debug");
    expect(loggerProblem({ ...recording().logger, child: 1 })).toBe("has child that is not a function");
    expect(logRecipientsProblem("hash")).toBeUndefined();
    expect(logRecipientsProblem("all")).toBe('must be one of "count", "domain", "hash", "full"');
  });

  it("recipients: a count, each domain once, stable hashes, or the addresses", () => {
    const to = ["Bob@Example.org", "zoe@example.org", "ann@other.test"];
    expect(recipientsField(to, "count")).toBe(3);
    expect(recipientsField(to, "domain")).toEqual(["example.org", "other.test"]);
    const hashes = recipientsField(to, "hash") as string[];
    expect(hashes.every((h) => /^[0-9a-f]{16}$/.test(h))).toBe(true);
    expect(recipientsField(["bob@example.org"], "hash")).toEqual([hashes[0]]);
    expect(new Set(hashes).size).toBe(3);
    expect(recipientsField(to, "full")).toEqual(to);
  });

  it("a level that is off builds nothing and calls nothing; a logger without isLevelEnabled gets every level", () => {
    const quiet = recording({ enabled: (level) => level !== "debug" && level !== "trace" });
    const sink = new EventSink(quiet.logger);
    expect(sink.wants("smtp.command")).toBe(false);
    expect(sink.wants("smtp.connect")).toBe(true);
    sink.emit("smtp.command", { connectionId: "c1", host: "h", port: 25, command: "NOOP" });
    expect(quiet.calls).toEqual([]);
    const loud = recording();
    new EventSink(loud.logger).emit("smtp.command", { connectionId: "c1", host: "h", port: 25, command: "NOOP" });
    expect(loud.calls).toEqual([["debug", { event: "smtp.command", connectionId: "c1", host: "h", port: 25, command: "NOOP" }, EVENTS["smtp.command"].msg]]);
  });

  it("bindings go through child() when the logger has it, else into each record; undefined fields are left out", () => {
    for (const child of [true, false]) {
      const r = recording({ child });
      new EventSink(r.logger).child({ connectionId: "c9", host: "h", port: 587 }).emit("smtp.auth", { mechanism: "PLAIN", durationMs: undefined });
      expect(r.calls).toEqual([["info", { connectionId: "c9", host: "h", port: 587, event: "smtp.auth", mechanism: "PLAIN" }, "authenticated"]]);
    }
    const pino = capturePino("info");
    new EventSink(pino.logger).child({ connectionId: "c9", host: "h", port: 587 }).emit("smtp.auth", { mechanism: "PLAIN" });
    expect(pino.records()).toEqual([expect.objectContaining({ level: 30, connectionId: "c9", host: "h", port: 587, event: "smtp.auth", mechanism: "PLAIN", msg: "authenticated" })]);
  });

  it("a logger that throws (in a method, its level check or child) changes nothing", () => {
    const broken: Logger = {
      ...recording().logger,
      info: () => {
        throw new Error("disk full");
      },
      isLevelEnabled: () => {
        throw new Error("no");
      },
      child: () => {
        throw new Error("no child");
      },
    };
    const target = new LogTarget(broken);
    expect(target.enabled("info")).toBe(false);
    expect(() => new LogTarget({ ...broken, isLevelEnabled: undefined } as never).write("info", { a: 1 }, "m")).not.toThrow();
    expect(() => target.child({ a: 1 }).write("info", {}, "m")).not.toThrow();
  });

  it("a channel gets the full record (bindings included) only while subscribed", () => {
    const got: unknown[] = [];
    const listener = (m: unknown) => got.push(m);
    const sink = new EventSink(undefined).child({ connectionId: "c3", host: "h", port: 25 });
    expect(sink.wants("smtp.close")).toBe(false);
    diagnosticsChannel.subscribe(EVENT_CHANNEL_NAMES["smtp.close"], listener);
    try {
      expect(sink.wants("smtp.close")).toBe(true);
      sink.emit("smtp.close", { reason: "quit", messages: 2 });
    } finally {
      diagnosticsChannel.unsubscribe(EVENT_CHANNEL_NAMES["smtp.close"], listener);
    }
    sink.emit("smtp.close", { reason: "quit", messages: 3 });
    expect(got).toEqual([{ event: "smtp.close", connectionId: "c3", host: "h", port: 25, reason: "quit", messages: 2 }]);
  });

  it("addresses in an error's message are shown as logRecipients says", () => {
    const error = Object.assign(new Error("The server refused every recipient (bob@example.org: 550 5.1.1 <bob@example.org> unknown; Zoe@Other.test: 550)"), { code: "ERCPT_REFUSED" });
    expect(new EventSink(undefined).failure(error).error).toBe("The server refused every recipient ([address]: 550 5.1.1 <[address]> unknown; [address]: 550)");
    expect(new EventSink(undefined, "domain").failure(error).error).toBe("The server refused every recipient ([address]@example.org: 550 5.1.1 <[address]@example.org> unknown; [address]@other.test: 550)");
    expect(new EventSink(undefined, "hash").failure(error).error).toMatch(/^The server refused every recipient \(\[address [0-9a-f]{16}\]: 550/);
    expect(new EventSink(undefined, "full").failure(error).error).toBe(error.message);
    expect(new EventSink(undefined).failure(error).errorCode).toBe("ERCPT_REFUSED");
  });

  it("every event has a level, a message and a channel", () => {
    expect(Object.keys(EVENT_CHANNEL_NAMES).sort()).toEqual(Object.keys(EVENTS).sort());
    for (const [name, channel] of Object.entries(EVENT_CHANNEL_NAMES)) {
      expect(channel).toBe(`missive:event:${name}`);
      expect(eventChannels[name as keyof typeof eventChannels].name).toBe(channel);
    }
  });
});

describe("the bare SMTP client", () => {
  it("takes a logger for its connections' events; each connect is a new connection id", async () => {
    const server = await startFakeServer();
    const capture = capturePino("info");
    try {
      const client = new SmtpClient({ host: "127.0.0.1", port: server.port, logger: capture.logger, localName: "client.test" });
      await client.connect();
      const first = client.connectionId;
      await client.quit();
      await client.connect();
      await client.quit();
      expect(client.connectionId).not.toBe(first);
      expect(capture.records().map((r) => [r["event"], r["connectionId"]])).toEqual([
        ["smtp.connect", first],
        ["smtp.close", first],
        ["smtp.connect", client.connectionId],
        ["smtp.close", client.connectionId],
      ]);
      expect(() => new SmtpClient({ host: "127.0.0.1", logger: {} as never })).toThrow(/^logger must be a logger/);
    } finally {
      await server.close();
    }
  });
});

describe("missive/otel stays apart", () => {
  it("no module outside src/otel imports @opentelemetry or src/otel", () => {
    const root = fileURLToPath(new URL("../../src/", import.meta.url));
    const files = (function walk(dir: string): string[] {
      return readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? walk(path) : path.endsWith(".ts") ? [path] : [];
      });
    })(root);
    const offenders = files
      .filter((f) => !relative(root, f).startsWith("otel/"))
      .filter((f) => /from\s+["'](@opentelemetry\/[^"']+|[./]+(?:\/otel)(?:\/index)?\.js)["']|import\(\s*["']@opentelemetry/.test(readFileSync(f, "utf8")));
    expect(offenders).toEqual([]);
    expect(files.length).toBeGreaterThan(50);
  });
});
