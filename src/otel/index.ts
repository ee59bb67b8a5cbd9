/**
 * `missive/otel`: OpenTelemetry from missive's diagnostics channels, the way
 * `@opentelemetry/instrumentation-undici` does it for undici: the core publishes, this
 * adapter subscribes, and nothing else in missive imports `@opentelemetry/api` (an optional
 * peer dependency: `import "missive"` works without it installed).
 *
 *   import { instrument } from "missive/otel";
 *   instrument({ tracerProvider, meterProvider });   // defaults: the global providers
 *
 * - One span per delivery (`tracing:missive:deliver:*`: one message sent by one backend,
 *   so a retry or a failover is a span of its own), kind CLIENT, child of the context active
 *   where the message was sent. Attributes: `missive.backend`, `missive.route`,
 *   `missive.attempt`, `missive.recipients` (a count), `missive.message_id`,
 *   `server.address`, `server.port`, `tls.protocol.name` / `tls.protocol.version`,
 *   `missive.connection_id`, `missive.smtp.reply_code`, `missive.smtp.enhanced_code`,
 *   `missive.queue_id`, `missive.outcome`, `missive.accepted` / `rejected` / `deferred`;
 *   on failure the exception, `error.type` (the error's code) and status ERROR.
 * - `missive.messages`: a counter of messages by final outcome (`missive.outcome`,
 *   `missive.route`, `missive.backend`), from the outcome events: under failover, the
 *   message's outcome once, not each try.
 * - `missive.delivery.duration`: a histogram (ms) of the same, from first try to outcome.
 * - `missive.smtp.connections`: an up/down counter of open SMTP connections
 *   (`server.address`, `server.port`).
 *
 * `uninstrument()` unsubscribes everything (spans already started still end).
 */
import diagnosticsChannel from "node:diagnostics_channel";
import { context, metrics, SpanKind, SpanStatusCode, trace, type Attributes, type MeterProvider, type Span, type TracerProvider } from "@opentelemetry/api";
import pkg from "../../package.json" with { type: "json" };
import { CHANNEL_NAMES, EVENT_CHANNEL_NAMES } from "../observe/channels.js";
import type { DeliveryContext } from "../observe/delivery.js";
import type { MessageOutcomeEvent, SmtpCloseEvent, SmtpConnectEvent } from "../observe/events.js";

export interface InstrumentOptions {
  /** Where spans go. Default: the global tracer provider (`trace.setGlobalTracerProvider`, or the SDK's registration). */
  readonly tracerProvider?: TracerProvider | undefined;
  /** Where metrics go. Default: the global meter provider. */
  readonly meterProvider?: MeterProvider | undefined;
}

const SCOPE = "missive";
const DELIVER = `tracing:${CHANNEL_NAMES.deliver}`;
const OUTCOME_CHANNELS = [
  EVENT_CHANNEL_NAMES["message.sent"],
  EVENT_CHANNEL_NAMES["message.partial"],
  EVENT_CHANNEL_NAMES["message.failed"],
  EVENT_CHANNEL_NAMES["message.unknown"],
] as const;

let installed: (() => void) | undefined;

/** Subscribes to missive's channels and records spans and metrics. Calling it again replaces the previous instrumentation. */
export function instrument(options: InstrumentOptions = {}): void {
  uninstrument();
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE, pkg.version);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE, pkg.version);
  const messages = meter.createCounter("missive.messages", { description: "Messages by final outcome (sent, partial, failed, unknown)", unit: "{message}" });
  const duration = meter.createHistogram("missive.delivery.duration", { description: "From a message's first try to its outcome", unit: "ms" });
  const connections = meter.createUpDownCounter("missive.smtp.connections", { description: "Open SMTP connections", unit: "{connection}" });

  const spans = new WeakMap<object, Span>();
  const open = new Map<string, Attributes>();
  const subscriptions: [string, (message: unknown) => void][] = [
    [
      `${DELIVER}:start`,
      (message) => {
        const c = message as DeliveryContext;
        const span = tracer.startSpan(`deliver ${c.route ?? c.backend}`, { kind: SpanKind.CLIENT, attributes: startAttributes(c) }, context.active());
        spans.set(c, span);
      },
    ],
    [
      `${DELIVER}:error`,
      (message) => {
        const c = message as DeliveryContext;
        const span = spans.get(c);
        if (span === undefined) return;
        const error = c.error;
        if (error instanceof Error) span.recordException(error);
        const code = (error as { code?: unknown } | undefined)?.code;
        if (typeof code === "string") span.setAttribute("error.type", code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      },
    ],
    [
      `${DELIVER}:asyncEnd`,
      (message) => {
        const c = message as DeliveryContext;
        const span = spans.get(c);
        if (span === undefined) return;
        spans.delete(c);
        span.setAttributes(endAttributes(c));
        span.end();
      },
    ],
    [
      EVENT_CHANNEL_NAMES["smtp.connect"],
      (message) => {
        const e = message as SmtpConnectEvent;
        const attributes = { "server.address": e.host, "server.port": e.port };
        open.set(e.connectionId, attributes);
        connections.add(1, attributes);
      },
    ],
    [
      EVENT_CHANNEL_NAMES["smtp.close"],
      (message) => {
        // Only connections seen opening: one opened before instrument() is not counted down.
        const attributes = open.get((message as SmtpCloseEvent).connectionId);
        if (attributes === undefined) return;
        open.delete((message as SmtpCloseEvent).connectionId);
        connections.add(-1, attributes);
      },
    ],
    ...OUTCOME_CHANNELS.map(
      (name) =>
        [
          name,
          (message: unknown) => {
            const e = message as MessageOutcomeEvent;
            const attributes: Attributes = { "missive.outcome": e.event.slice("message.".length), "missive.backend": e.backend };
            if (e.route !== undefined) attributes["missive.route"] = e.route;
            messages.add(1, attributes);
            if (e.durationMs !== undefined) duration.record(e.durationMs, attributes);
          },
        ] as [string, (message: unknown) => void],
    ),
  ];

  // A subscriber's exception would become an uncaughtException (diagnostics_channel's rule): never let one out.
  const guarded = subscriptions.map(([name, fn]) => {
    const safe = (message: unknown) => {
      try {
        fn(message);
      } catch {
        // Telemetry must not break sending.
      }
    };
    diagnosticsChannel.subscribe(name, safe);
    return [name, safe] as const;
  });
  installed = () => {
    for (const [name, fn] of guarded) diagnosticsChannel.unsubscribe(name, fn);
  };
}

/** Undoes `instrument()`; nothing is recorded afterwards. */
export function uninstrument(): void {
  const undo = installed;
  installed = undefined;
  undo?.();
}

function startAttributes(c: DeliveryContext): Attributes {
  const a: Attributes = { "missive.backend": c.backend, "missive.recipients": c.recipients };
  if (c.route !== undefined) a["missive.route"] = c.route;
  if (c.attempt !== undefined) a["missive.attempt"] = c.attempt;
  if (c.messageId !== undefined) a["missive.message_id"] = c.messageId;
  return a;
}

function endAttributes(c: DeliveryContext): Attributes {
  const a: Attributes = {};
  if (c.messageId !== undefined) a["missive.message_id"] = c.messageId;
  if (c.host !== undefined) a["server.address"] = c.host;
  if (c.port !== undefined) a["server.port"] = c.port;
  if (c.connectionId !== undefined) a["missive.connection_id"] = c.connectionId;
  if (c.tlsVersion !== undefined) {
    // "TLSv1.3" → tls.protocol.name "tls", tls.protocol.version "1.3" (OpenTelemetry's TLS attributes).
    const m = /^(TLS|SSL)v(.+)$/.exec(c.tlsVersion);
    a["tls.protocol.name"] = m ? m[1]!.toLowerCase() : c.tlsVersion;
    if (m) a["tls.protocol.version"] = m[2]!;
  }
  if (c.status !== undefined) a["missive.outcome"] = c.status;
  if (c.replyCode !== undefined) a["missive.smtp.reply_code"] = c.replyCode;
  if (c.enhancedCode !== undefined) a["missive.smtp.enhanced_code"] = c.enhancedCode;
  if (c.queueId !== undefined) a["missive.queue_id"] = c.queueId;
  if (c.accepted !== undefined) a["missive.accepted"] = c.accepted;
  if (c.rejected !== undefined) a["missive.rejected"] = c.rejected;
  if (c.deferred !== undefined) a["missive.deferred"] = c.deferred;
  return a;
}
