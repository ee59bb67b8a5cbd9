/**
 * The `logger` and `logRecipients` settings and options: checked where they are given
 * (configure(), a named connection, a backend's options), inherited by every backend that
 * has none of its own — named connections and failover included — and never printed as
 * the logger's insides.
 */
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { getConnection } from "../../src/api.js";
import { ConsoleBackend } from "../../src/backends/console.js";
import { MemoryBackend } from "../../src/backends/memory.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { FailoverBackend } from "../../src/delivery/failover.js";
import { ConfigurationError, InvalidArgumentError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { configure, getSettings, resetSettings } from "../../src/settings.js";
import { clearOutbox } from "../../src/testing.js";
import { capturePino } from "../observe/helpers.js";

afterEach(() => {
  resetSettings();
  clearOutbox();
});

const message = () => new EmailMessage({ subject: "s", body: "b", from: "a@example.org", to: ["Bob@Example.org", "zoe@example.org"] });

describe("the logger setting", () => {
  it("reaches every backend made afterwards, with the recipients as logRecipients says", async () => {
    const capture = capturePino("info");
    configure({ logger: capture.logger, logRecipients: "domain" });
    await new MemoryBackend().sendMessages([message()]);
    await getConnection("memory").sendMessages([message()]);
    expect(capture.records().map((r) => [r["event"], r["backend"], r["recipients"]])).toEqual([
      ["message.sent", "memory", ["example.org"]],
      ["message.sent", "memory", ["example.org"]],
    ]);
    expect(new SmtpBackend({ host: "127.0.0.1" }).logger).toBe(capture.logger);
    expect(new SmtpBackend({ host: "127.0.0.1" }).createClient().config.logger).toBe(capture.logger);
  });

  it("a backend's own logger and logRecipients win; a named connection keeps its own, else takes the setting's", async () => {
    const setting = capturePino("info");
    const own = capturePino("info");
    configure({
      logger: setting.logger,
      backends: { mine: { backend: "memory", logger: own.logger, logRecipients: "full" }, plain: { backend: "memory" }, relay: { backend: "smtp", host: "127.0.0.1", port: 2525, logger: own.logger } },
    });
    await new MemoryBackend({ logger: own.logger, logRecipients: "hash" }).sendMessages([message()]);
    await getConnection("mine").sendMessages([message()]);
    await getConnection("plain").sendMessages([message()]);
    expect(own.records().map((r) => r["recipients"])).toEqual([[expect.stringMatching(/^[0-9a-f]{16}$/), expect.stringMatching(/^[0-9a-f]{16}$/)], ["Bob@Example.org", "zoe@example.org"]]);
    expect(setting.records().map((r) => r["recipients"])).toEqual([2]);
    expect((getConnection("relay") as SmtpBackend).createClient().config.logger).toBe(own.logger);
    expect(new FailoverBackend({ routes: ["plain"], logger: own.logger }).logger).toBe(own.logger);
  });

  it("is checked where it is given, naming the setting or option", () => {
    expect(() => configure({ logger: {} as never })).toThrow(ConfigurationError);
    expect(() => configure({ logger: { info() {} } as never })).toThrow(/^logger must be a logger with trace, debug, info, warn and error methods; it has no trace, debug, warn, error$/);
    expect(() => configure({ logRecipients: "addresses" as never })).toThrow(/^logRecipients must be one of "count", "domain", "hash", "full"$/);
    expect(() => configure({ backends: { bulk: { backend: "console", logger: 42 } } })).toThrow(/^backends\.bulk\.logger must be a logger/);
    expect(() => configure({ backends: { bulk: { backend: "smtp", logRecipients: "x" } } })).toThrow(/^backends\.bulk\.logRecipients must be one of/);
    expect(() => new ConsoleBackend({ logger: "pino" as never })).toThrow(InvalidArgumentError);
    expect(() => new SmtpBackend({ logRecipients: "all" as never })).toThrow(/^logRecipients must be one of/);
    expect(() => new FailoverBackend({ routes: [{ name: "a", backend: new MemoryBackend() }], logger: null as never })).toThrow(/logger/);
    expect(getSettings().logger).toBeUndefined();
  });

  it("prints as [logger], not as the logger's insides", () => {
    const capture = capturePino("info");
    configure({ logger: capture.logger, backends: { bulk: { backend: "memory", logger: capture.logger } } });
    expect(inspect(getSettings(), { depth: 5 })).toContain("logger: '[logger]'");
    expect(JSON.stringify(getSettings())).toContain('"logger":"[logger]"');
    expect(inspect(getSettings(), { depth: 5 })).not.toContain("levels");
  });
});
