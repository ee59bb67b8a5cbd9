/**
 * The delivery engine's decisions as events: a DeliveryObserver that turns each call into
 * a record for the logger and the event channels (src/observe/events.ts). The failover
 * backend always has one, fed by its own logger (its option, else the `logger` setting),
 * so that a subscriber sees the decisions even when nothing is logged.
 *
 *   retry → message.retry          failover → message.failover      skip → route.skip
 *   circuitOpen / circuitProbe / circuitClose → route.circuit_open / _probe / _close
 *   rateLimitWait → ratelimit.wait  outcome → message.sent | partial | failed | unknown
 *
 * Each try's own record (host, port, connection, reply) is the route backend's
 * `message.attempt`, at debug level, through that backend's logger, and its trace the
 * backend's `missive:deliver` operation. A try that failed before it reached its backend
 * (the route could not be opened, no rate-limit token in time) is observed here at its end,
 * through the route backend's observation, so that every try has both.
 */
import { observationOf } from "../backends/base.js";
import type { Clock } from "../observe/clock.js";
import { observedTry, refusedFields } from "../observe/delivery.js";
import { OUTCOME_EVENTS, type EventSink } from "../observe/events.js";
import { failedReport, type DeliveryReport } from "../backends/report.js";
import type { DeliveryObserver } from "./observer.js";

/** `backendOf(route)`: the backend of a route, whose observation a try that never reached it goes to. */
export function eventObserver(sink: EventSink, clock: Clock, backendOf: (route: string) => object | undefined): DeliveryObserver {
  return {
    attemptEnd(context, result) {
      if (result.error === undefined || context.route === undefined || observedTry(context.message, context.attempt)) return;
      const backend = backendOf(context.route);
      if (backend === undefined) return;
      const report = failedReport(context.message, context.messageId, result.error, context.recipients, clock.now());
      void observationOf(backend).reported({ ...context, message: context.message }, report);
    },
    retry(delayMs, error, context) {
      if (!sink.wants("message.retry")) return;
      sink.emit("message.retry", {
        messageId: context.messageId,
        route: context.route,
        attempt: context.attempt,
        delayMs,
        recipients: sink.recipients(context.recipients),
        ...sink.failure(error),
      });
    },
    failover(from, to, error, context) {
      if (!sink.wants("message.failover")) return;
      sink.emit("message.failover", { messageId: context.messageId, route: from, nextRoute: to, attempt: context.attempt, ...sink.failure(error) });
    },
    skip(route, reason, context) {
      if (sink.wants("route.skip")) sink.emit("route.skip", { route, reason, messageId: context.messageId });
    },
    circuitOpen(route) {
      if (sink.wants("route.circuit_open")) sink.emit("route.circuit_open", { route });
    },
    circuitProbe(route) {
      if (sink.wants("route.circuit_probe")) sink.emit("route.circuit_probe", { route });
    },
    circuitClose(route) {
      if (sink.wants("route.circuit_close")) sink.emit("route.circuit_close", { route });
    },
    rateLimitWait(route, ms) {
      if (sink.wants("ratelimit.wait")) sink.emit("ratelimit.wait", { route, delayMs: ms });
    },
    outcome(report) {
      if (report.status === "skipped") return;
      const name = OUTCOME_EVENTS[report.status];
      if (!sink.wants(name)) return;
      sink.emit(name, outcomeFields(report, sink, clock));
    },
  };
}

function outcomeFields(report: DeliveryReport, sink: EventSink, clock: Clock) {
  const first = report.attempts[0];
  const failure = sink.failure(report.error);
  const recipients = [...report.accepted, ...report.rejected.map((r) => r.address), ...report.deferred.map((r) => r.address)];
  return {
    messageId: report.messageId,
    backend: "failover",
    route: report.route,
    attempts: report.attempts.length,
    stopped: report.stopped,
    recipients: sink.recipients(recipients),
    accepted: report.accepted.length,
    rejected: report.rejected.length,
    deferred: report.deferred.length,
    refused: refusedFields(report, sink),
    queueId: report.queueId,
    // From the first try's start, its wait for a token included.
    durationMs: first === undefined ? undefined : Math.max(0, clock.now() - (first.at - first.delayMs)),
    ...failure,
    replyCode: report.reply?.code ?? failure.replyCode,
    enhancedCode: report.reply?.enhancedCode ?? failure.enhancedCode,
  };
}
