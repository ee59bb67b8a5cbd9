/**
 * missive/otel with the real OpenTelemetry SDK (in-memory span exporter, a metric reader
 * collected on demand): one span per delivery and the metric points for each outcome the
 * scripted fault server can give — sent (over STARTTLS), partial, failed, unknown — and,
 * over failover, one span per try but the message counted once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { DataPointType, MeterProvider, MetricReader, type DataPoint, type Histogram } from "@opentelemetry/sdk-metrics";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { FailoverBackend } from "../../src/delivery/failover.js";
import { EmailMessage } from "../../src/mime/message.js";
import { instrument, uninstrument } from "../../src/otel/index.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { dropAfterDot, messageReply, recipientReplies, startFakeServer, type FakeServerOptions, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { closeServers, deadPort, servers } from "../delivery/helpers.js";

class TestReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

let certs: TestCerts;
beforeAll(async () => {
  certs = await makeTestCerts();
});
afterEach(() => uninstrument());
afterAll(closeServers);

async function server(options: FakeServerOptions = {}): Promise<FakeSmtpServer> {
  const s = await startFakeServer(options);
  servers.push(s);
  return s;
}

function setup() {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  instrument({ tracerProvider, meterProvider });
  const points = async (name: string) => {
    const { resourceMetrics } = await reader.collect();
    const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
    return (metric?.dataPoints ?? []) as DataPoint<unknown>[];
  };
  return { exporter, points, metricType: async (name: string) => (await reader.collect()).resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name)?.dataPointType };
}

const message = (to: string[], subject: string) => new EmailMessage({ subject, body: "Hello", from: "ann@example.com", to });

describe("missive/otel", () => {
  it("a span and metric points for sent, partial, failed and unknown deliveries", async () => {
    const [tlsServer, partialServer, failedServer, unknownServer] = await Promise.all([
      server({ tls: "starttls", key: certs.server.key, cert: certs.server.cert }),
      server({ script: [recipientReplies({ "gone@example.org": "550 5.1.1 no such user" })] }),
      server({ script: [messageReply("554 5.7.1 rejected as spam")] }),
      server({ script: [dropAfterDot()] }),
    ]);
    const { exporter, points, metricType } = setup();
    const send = (s: FakeSmtpServer, m: EmailMessage, extra: object = {}) =>
      new SmtpBackend({ host: "localhost", port: s.port, timeout: 3000, localName: "client.test", ...extra }).sendMessagesWithReport([m], { stopOnError: false });
    const reports = [
      (await send(tlsServer, message(["bob@example.org"], "sent"), { useTls: true, tlsOptions: { ca: certs.ca } })).reports[0]!,
      (await send(partialServer, message(["bob@example.org", "gone@example.org"], "partial"))).reports[0]!,
      (await send(failedServer, message(["bob@example.org"], "failed"))).reports[0]!,
      (await send(unknownServer, message(["bob@example.org"], "unknown"))).reports[0]!,
    ];
    expect(reports.map((r) => r.status)).toEqual(["sent", "partial", "failed", "unknown"]);

    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(["deliver smtp", "deliver smtp", "deliver smtp", "deliver smtp"]);
    expect(spans.map((s) => s.attributes["missive.outcome"])).toEqual(["sent", "partial", "failed", "unknown"]);
    expect(spans.every((s) => s.kind === SpanKind.CLIENT)).toBe(true);
    const [sent, partial, failed, unknown] = spans as [(typeof spans)[number], ...typeof spans];
    expect(sent.attributes).toMatchObject({
      "missive.backend": "smtp",
      "server.address": "localhost",
      "server.port": tlsServer.port,
      "tls.protocol.name": "tls",
      "tls.protocol.version": expect.stringMatching(/^1\.[23]$/),
      "missive.smtp.reply_code": 250,
      "missive.recipients": 1,
      "missive.accepted": 1,
      "missive.message_id": reports[0]!.messageId,
      "missive.connection_id": expect.stringMatching(/^c\d+$/),
    });
    expect(sent.status.code).toBe(SpanStatusCode.UNSET);
    expect(partial!.attributes).toMatchObject({ "missive.recipients": 2, "missive.accepted": 1, "missive.rejected": 1, "missive.smtp.reply_code": 250, "server.port": partialServer.port });
    expect(partial!.attributes["tls.protocol.version"]).toBeUndefined();
    expect(failed!.attributes).toMatchObject({ "missive.smtp.reply_code": 554, "missive.smtp.enhanced_code": "5.7.1", "error.type": "ESMTP_REPLY" });
    expect(failed!.status).toMatchObject({ code: SpanStatusCode.ERROR, message: expect.stringContaining("554") });
    expect(failed!.events.map((e) => e.name)).toEqual(["exception"]);
    expect(unknown!.attributes).toMatchObject({ "error.type": "EDELIVERY_UNKNOWN", "missive.deferred": 1 });
    expect(unknown!.attributes["missive.smtp.reply_code"]).toBeUndefined();
    expect(unknown!.status.code).toBe(SpanStatusCode.ERROR);

    const counted = await points("missive.messages");
    expect(Object.fromEntries(counted.map((p) => [p.attributes["missive.outcome"], p.value]))).toEqual({ sent: 1, partial: 1, failed: 1, unknown: 1 });
    expect(counted.every((p) => p.attributes["missive.backend"] === "smtp")).toBe(true);
    expect(await metricType("missive.delivery.duration")).toBe(DataPointType.HISTOGRAM);
    const durations = await points("missive.delivery.duration");
    expect(durations.map((p) => [p.attributes["missive.outcome"], (p.value as Histogram).count]).sort()).toEqual([["failed", 1], ["partial", 1], ["sent", 1], ["unknown", 1]]);
    // Every connection closed again: the up/down counter is back at zero for each server.
    const connections = await points("missive.smtp.connections");
    expect(connections.map((p) => [p.attributes["server.port"], p.value]).sort()).toEqual(
      [tlsServer, partialServer, failedServer, unknownServer].map((s) => [s.port, 0]).sort(),
    );
  });

  it("counts open connections while a backend is open", async () => {
    const s = await server();
    const { points } = setup();
    const backend = new SmtpBackend({ host: "127.0.0.1", port: s.port, timeout: 3000, pool: { maxConnections: 2 } });
    await backend.open();
    expect((await points("missive.smtp.connections")).map((p) => p.value)).toEqual([1]);
    await backend.close();
    expect((await points("missive.smtp.connections")).map((p) => p.value)).toEqual([0]);
  });

  it("over failover: a span per try (route, attempt), the message counted once with its route", async () => {
    const good = await server();
    const { exporter, points } = setup();
    const primary = new SmtpBackend({ host: "127.0.0.1", port: await deadPort(), timeout: 3000 });
    const secondary = new SmtpBackend({ host: "127.0.0.1", port: good.port, timeout: 3000 });
    const backend = new FailoverBackend({ routes: [{ name: "primary", backend: primary }, { name: "secondary", backend: secondary }], retry: { attempts: 2 } });
    const { reports } = await backend.sendMessagesWithReport([message(["bob@example.org"], "failover")]);
    expect(reports[0]!.status).toBe("sent");
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => [s.name, s.attributes["missive.route"], s.attributes["missive.attempt"], s.attributes["missive.outcome"], s.attributes["error.type"]])).toEqual([
      ["deliver primary", "primary", 1, "failed", "ECONNECT"],
      ["deliver secondary", "secondary", 2, "sent", undefined],
    ]);
    const counted = await points("missive.messages");
    expect(counted.map((p) => [p.attributes, p.value])).toEqual([[{ "missive.outcome": "sent", "missive.backend": "failover", "missive.route": "secondary" }, 1]]);
  });

  it("uninstrument() stops recording", async () => {
    const s = await server();
    const { exporter, points } = setup();
    const send = () => new SmtpBackend({ host: "127.0.0.1", port: s.port, timeout: 3000 }).sendMessages([message(["bob@example.org"], "x")]);
    await send();
    uninstrument();
    await send();
    expect(exporter.getFinishedSpans()).toHaveLength(1);
    expect((await points("missive.messages")).map((p) => p.value)).toEqual([1]);
  });
});
