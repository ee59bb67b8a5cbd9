/**
 * One message through the policies, outermost first (Polly, resilience4j):
 *
 *   deadline → retry → circuit → rate limit → the attempt
 *
 * - deadline: the retry policy's `deadline` for the whole message; a wait that would pass
 *   it is not started, and a try in flight when it passes is cut (its signal aborts);
 * - retry: after a failed try, classify()'s verdict (retry.ts `verdictOf`) decides:
 *   "retry-here" waits with backoff and tries the same route; "next-route" moves to the
 *   next route at once, and when every route failed in this round, waits and starts again
 *   with the first; "give-up" and "unknown" stop (unknown is resent only with retryUnknown);
 * - circuit: a route whose circuit is open is skipped (circuit.ts);
 * - rate limit: the route's token bucket is waited for (rate-limit.ts);
 * - the attempt: the route's backend sends the message to the recipients still pending
 *   (`sendMessagesWithReport` with `recipients`), and its report goes into the ledger.
 *
 * Recipients refused for now (4xx) are the next try's recipients, alone; those accepted
 * are never sent again. Those past the server's recipient limit (452 4.5.3) go in the next
 * transaction at once, which does not count as a retry. Every decision is told to the
 * observers. No SMTP here: only reports, verdicts and the clock.
 */
import { AbortError, MissiveError, RateLimitedError, CircuitOpenError } from "../errors.js";
import { freeze } from "../mime/render.js";
import { classification } from "../errors/classify.js";
import type { Clock } from "../observe/clock.js";
import { sendWithReport, type EmailBackend } from "../backends/base.js";
import { isDeliveryError } from "../backends/output.js";
import {
  deliveredStatus,
  envelopeRecipients,
  failedReport,
  skippedReport,
  type DeliveryAttempt,
  type DeliveryReport,
  type StopReason,
} from "../backends/report.js";
import type { EmailMessage } from "../mime/message.js";
import type { Circuit, RouteOutcome } from "./circuit.js";
import type { AttemptContext, ObserverSet } from "./observer.js";
import type { TokenBucket } from "./rate-limit.js";
import { RecipientLedger } from "./recipients.js";
import { retryDelay, verdictOf, type ResolvedRetryPolicy } from "./retry.js";
import { anySignal, sleep } from "./wait.js";

/** A route as the engine sees it: a name, a backend, and the policies around it. */
export interface EngineRoute {
  readonly name: string;
  readonly backend: EmailBackend;
  readonly limiter: TokenBucket | undefined;
  readonly circuit: Circuit | undefined;
}

export interface EngineContext {
  readonly routes: readonly EngineRoute[];
  readonly retry: ResolvedRetryPolicy;
  readonly clock: Clock;
  /** Jitter's randomness, in [0, 1). */
  readonly random: () => number;
  readonly observers: ObserverSet;
  /** Called before a route's first try in a batch (opens its connection); its failure is that try's. */
  readonly prepare: (route: EngineRoute) => Promise<void>;
}

/**
 * Delivers `message` over `context.routes`, starting with the first, and returns the
 * merged report. Throws only for programming errors (a bad header or address, a bug).
 */
export async function deliverMessage(message: EmailMessage, context: EngineContext, signal: AbortSignal | undefined, only?: readonly string[]): Promise<DeliveryReport> {
  const { routes, retry, clock, observers } = context;
  const envelope = envelopeRecipients(message, only);
  if (envelope.length === 0) return skippedReport(message);

  // Frozen once: every try, on every route, sends the same Message-ID (and a resend can be recognised).
  let messageId: string | undefined = (await freeze(message)).messageId;
  const ledger = new RecipientLedger(envelope);
  const attempts: DeliveryAttempt[] = [];
  const startedAt = clock.now();
  const deadlineAt = retry.deadline === undefined ? undefined : startedAt + retry.deadline;
  const deadline = new AbortController();
  const deadlineTimer =
    retry.deadline === undefined ? undefined : clock.setTimeout(() => deadline.abort(new AbortError(`The delivery deadline of ${retry.deadline} ms passed`)), retry.deadline);
  const cut = anySignal([signal, deadline.signal]);

  let lastError: MissiveError | undefined;
  let lastReport: DeliveryReport | undefined;
  let deliveredBy: DeliveryReport | undefined;
  let lastRoute: string | undefined;
  let budget = 0; // tries that count against `attempts`
  let tries = 0; // every try, for the observers' numbering
  let waits = 0;
  let delayBefore = 0;
  let next = 0; // index of the route to try next
  let tried = new Set<number>(); // routes tried (or skipped) since the last wait
  let roundTries = 0;
  let failingOver: { from: string; error: MissiveError | undefined } | undefined;
  let stopped: StopReason | undefined;
  const context_ = (route: string | undefined, recipients: readonly string[]): AttemptContext => ({ message, messageId, route, attempt: tries, recipients });

  /** The next route of this round whose circuit lets a try through; skipped ones count as tried. */
  const choose = (recipients: readonly string[]): { index: number; probe: boolean } | undefined => {
    for (let k = 0; k < routes.length; k++) {
      const index = (next + k) % routes.length;
      if (tried.has(index)) continue;
      const route = routes[index]!;
      const admit = route.circuit?.admit() ?? "yes";
      if (admit === "no") {
        tried.add(index);
        observers.emit("skip", route.name, "circuit-open", context_(route.name, recipients));
        continue;
      }
      if (admit === "probe") observers.emit("circuitProbe", route.name);
      return { index, probe: admit === "probe" };
    }
    return undefined;
  };

  const stopFor = (): StopReason => (deadline.signal.aborted ? "deadline" : "aborted");

  try {
    for (;;) {
      if (cut.signal.aborted) {
        stopped = stopFor();
        break;
      }
      const recipients = ledger.pending(retry.retryUnknown);
      if (recipients.length === 0) {
        stopped = ledger.uncertain ? "unknown" : "delivered";
        break;
      }
      if (budget >= retry.attempts) {
        stopped = "attempts";
        break;
      }
      const pick = choose(recipients);
      if (pick === undefined) {
        // Every route failed or was skipped in this round: wait, then start again from the
        // first. A round in which every circuit was open counts as a try (so it ends).
        if (roundTries === 0) {
          const reopen = Math.min(...routes.map((r) => r.circuit?.reopensIn() ?? Number.POSITIVE_INFINITY));
          lastError = new CircuitOpenError(routes.map((r) => r.name), Number.isFinite(reopen) ? reopen : undefined);
          budget += 1;
        }
        next = 0;
        failingOver = undefined;
        const waited = await waitBeforeRetry(recipients, undefined);
        if (!waited) break;
        continue;
      }
      const route = routes[pick.index]!;
      tried.add(pick.index);
      budget += 1;
      tries += 1;
      if (failingOver !== undefined) observers.emit("failover", failingOver.from, route.name, failingOver.error, context_(route.name, recipients));
      failingOver = undefined;

      roundTries += 1;
      let tryResult: Awaited<ReturnType<typeof attempt>>;
      try {
        tryResult = await attempt(route, recipients);
      } catch (error) {
        // A programming error: nothing was learnt about the route, but its probe slot is freed.
        route.circuit?.record("neutral", pick.probe);
        throw error;
      }
      const { report, outcome } = tryResult;
      const change = route.circuit?.record(outcome, pick.probe);
      if (change === "opened") observers.emit("circuitOpen", route.name);
      if (change === "closed") observers.emit("circuitClose", route.name);
      messageId ??= report.messageId;
      lastReport = report;
      lastRoute = route.name;
      // A try cut by an abort says less than the failure that made it necessary.
      if (report.error !== undefined && !(report.error instanceof AbortError && lastError !== undefined)) lastError = report.error;
      const { accepted, overLimit } = ledger.record(report, recipients);
      if (accepted > 0) deliveredBy = report;

      if (cut.signal.aborted) {
        stopped = stopFor();
        break;
      }
      const verdict = report.error === undefined ? "retry-here" : verdictOf(report.error, retry);
      if (verdict === "give-up") {
        stopped = "gave-up";
        break;
      }
      if (verdict === "unknown") {
        stopped = "unknown";
        break;
      }
      if (ledger.pending(retry.retryUnknown).length === 0) continue; // the top of the loop says why it ends
      if (verdict === "next-route") {
        next = (pick.index + 1) % routes.length;
        failingOver = { from: route.name, error: report.error };
        continue;
      }
      // retry-here. Past the server's recipient limit with progress made: the rest at once.
      if (report.error === undefined && accepted > 0 && overLimit > 0) {
        budget -= 1;
        tried.delete(pick.index);
        next = pick.index;
        continue;
      }
      next = pick.index;
      const waited = await waitBeforeRetry(recipients, report.error);
      if (!waited) break;
    }
  } finally {
    if (deadlineTimer !== undefined) clock.clearTimeout(deadlineTimer);
    cut.dispose();
  }

  const why = stopped === "attempts" ? "not delivered: the retry policy's attempts were used up" : `not delivered (${stopped ?? "stopped"})`;
  const lists = ledger.lists(why);
  const status = ledger.uncertain ? "unknown" : deliveredStatus(lists.accepted.length, lists.rejected.length + lists.deferred.length);
  const final = deliveredBy ?? lastReport;
  // Stopped by the deadline or an abort: the failure that made retries necessary, else what stopped them.
  const stopError = stopped === "deadline" || stopped === "aborted" ? ((cut.signal.reason as unknown) instanceof AbortError ? (cut.signal.reason as AbortError) : new AbortError(why)) : undefined;
  const error = status === "sent" ? undefined : lastError !== undefined && !(lastError instanceof AbortError && stopError !== undefined) ? lastError : (stopError ?? lastError);
  return {
    message,
    messageId,
    status,
    ...lists,
    route: deliveredBy !== undefined ? attempts.findLast((a) => a.accepted.length > 0)?.route : lastRoute,
    attempts,
    error,
    reply: final?.reply,
    queueId: deliveredBy?.queueId,
    stopped,
  };

  /** One try over `route` for `recipients`: the rate limit, then the backend; its report and what it says about the route. */
  async function attempt(route: EngineRoute, recipients: readonly string[]): Promise<{ report: DeliveryReport; outcome: RouteOutcome }> {
    let waited = 0;
    const ctx = context_(route.name, recipients);
    let report: DeliveryReport;
    let at = clock.now();
    observers.emit("attempt", ctx);
    try {
      if (route.limiter !== undefined) {
        waited = await route.limiter.take(cut.signal);
        if (waited > 0) observers.emit("rateLimitWait", route.name, waited);
        at = clock.now();
      }
      await context.prepare(route);
      const sent = await sendWithReport(route.backend, [message], { signal: cut.signal, stopOnError: false, recipients: new Map([[message, recipients]]), route: route.name, attempt: ctx.attempt });
      report = sent.reports[0] ?? failedReport(message, messageId, new AbortError("The backend returned no report"), recipients, at);
    } catch (error) {
      if (!(isDeliveryError(error) || error instanceof AbortError)) throw error;
      report = failedReport(message, messageId, error as MissiveError, recipients, at);
    }
    if (report.status === "skipped") report = failedReport(message, messageId, new AbortError("The backend skipped the message"), recipients, at);
    const record: DeliveryAttempt = {
      route: route.name,
      at,
      delayMs: delayBefore + waited,
      status: report.status as DeliveryAttempt["status"],
      recipients: [...recipients],
      accepted: report.accepted.filter((a) => recipients.includes(a)),
      error: report.error,
    };
    attempts.push(record);
    delayBefore = 0;
    observers.emit("attemptEnd", ctx, { status: record.status, durationMs: Math.max(0, clock.now() - at), error: report.error });
    return { report, outcome: routeOutcome(report.error) };
  }

  /** Waits before the next try, unless the attempts or the deadline say stop; false when it stopped. */
  async function waitBeforeRetry(recipients: readonly string[], error: MissiveError | undefined): Promise<boolean> {
    if (budget >= retry.attempts) {
      stopped = "attempts";
      return false;
    }
    waits += 1;
    const delay = retryDelay(retry, waits, error ?? lastError, context.random);
    if (deadlineAt !== undefined && clock.now() + delay >= deadlineAt) {
      stopped = "deadline";
      return false;
    }
    observers.emit("retry", delay, error ?? lastError, context_(routes[next]?.name, recipients));
    try {
      await sleep(delay, clock, cut.signal);
    } catch {
      stopped = stopFor();
      return false;
    }
    delayBefore = delay;
    tried = new Set();
    roundTries = 0;
    return true;
  }
}

/** What a try says about its route: a fault (classify's routeFault), nothing (an abort, a rate limit), or that it works. */
export function routeOutcome(error: MissiveError | undefined): RouteOutcome {
  if (error === undefined) return "ok";
  if (error instanceof AbortError || error instanceof RateLimitedError || error instanceof CircuitOpenError) return "neutral";
  return classification(error).routeFault ? "fault" : "ok";
}
