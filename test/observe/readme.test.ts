/**
 * The README's "Running it in production": its table of events is generated from EVENTS
 * (`UPDATE_README=1 npx vitest run test/observe/readme.test.ts` after changing one), and
 * its examples run as written, against a loopback server in place of the example host.
 */
import diagnosticsChannel from "node:diagnostics_channel";
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter } from "@opentelemetry/sdk-trace-base";
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { configure, resetSettings, sendMail, type MessageOutcomeEvent } from "../../src/index.js";
import { EVENTS } from "../../src/observe/events.js";
import { instrument, uninstrument } from "../../src/otel/index.js";
import { recipientReplies } from "../helpers/fake-smtp-server.js";
import { closeServers, fake } from "../delivery/helpers.js";
import { capturePino } from "./helpers.js";

const path = fileURLToPath(new URL("../../README.md", import.meta.url));
const START = "<!-- events:start (generated from src/observe/events.ts EVENTS; test/observe/readme.test.ts keeps it in sync) -->";
const END = "<!-- events:end -->";

function eventTable(): string {
  const rows = Object.entries(EVENTS).map(([name, e]) => `| \`${name}\` | ${e.level} | ${e.about} |`);
  return ["| event | level | what it means, and its keys |", "| --- | --- | --- |", ...rows].join("\n");
}

afterEach(async () => {
  resetSettings();
  uninstrument();
  await closeServers();
});

describe("README: Running it in production", () => {
  it("lists every event with its level and meaning, generated from EVENTS", async () => {
    const text = await readFile(path, "utf8");
    const start = text.indexOf(START);
    const end = text.indexOf(END);
    expect(start).toBeGreaterThan(-1);
    expect(end).toBeGreaterThan(start);
    const wanted = `${START}\n${eventTable()}\n${END}`;
    if (process.env.UPDATE_README === "1") await writeFile(path, text.slice(0, start) + wanted + text.slice(end + END.length));
    else expect(text.slice(start, end + END.length)).toBe(wanted);
  });

  it("pino through configure({ logger }), and a subscriber to message.failed, as written", async () => {
    const server = await fake({ script: [recipientReplies({ "zoe@example.org": "550 5.1.1 no such user" })] });
    const capture = capturePino("info");
    const pino = (options: { level: string }) => (expect(options).toEqual({ level: "info" }), capture.logger);
    configure({ host: "127.0.0.1", port: server.port });

    configure({ logger: pino({ level: "info" }) }); // every backend, named connections and failover included
    await sendMail({ subject: "Your code", message: "123456", from: "app@example.com", to: ["zoe@example.org"] }).catch(() => undefined);
    expect(capture.records().map((r) => r["event"])).toEqual(["smtp.connect", "message.failed", "smtp.close"]);

    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    let calls: unknown[][] = [];
    const listener = (record: unknown) => {
      const failed = record as MessageOutcomeEvent;
      console.error(`${failed.messageId} not delivered: ${failed.errorCode} at ${failed.stage}`);
    };
    diagnosticsChannel.subscribe("missive:event:message.failed", listener);
    try {
      await sendMail({ subject: "Your code", message: "123456", from: "app@example.com", to: ["zoe@example.org"], failSilently: true });
    } finally {
      diagnosticsChannel.unsubscribe("missive:event:message.failed", listener);
      calls = [...errors.mock.calls];
      errors.mockRestore();
    }
    expect(calls).toEqual([[expect.stringMatching(/^<\S+@\S+> not delivered: ERCPT_REFUSED at rcpt$/)]]);
  });

  it("the OpenTelemetry setup, as written", async () => {
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(new ConsoleSpanExporter())] });
    const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis: 60_000 })] });
    instrument({ tracerProvider, meterProvider }); // instrument() alone uses the global providers (what NodeSDK registers)
    expect(diagnosticsChannel.hasSubscribers("tracing:missive:deliver:start")).toBe(true);
    uninstrument();
    expect(diagnosticsChannel.hasSubscribers("tracing:missive:deliver:start")).toBe(false);
    await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
  });
});
