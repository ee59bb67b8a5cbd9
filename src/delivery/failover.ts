/**
 * `FailoverBackend` (backend name "failover"): an ordered list of routes (named
 * connections, or backends given directly) with a retry policy and a circuit per route.
 *
 *   configure({ backends: { primary: "smtps://…", secondary: {…} }, backend: "failover",
 *               failover: { routes: ["primary", "secondary"], retry: { attempts: 5 }, circuit: { failures: 5, cooldown: 30_000 } } });
 *   const { reports } = await getConnection().sendMessagesWithReport(messages);
 *
 * Each message goes through engine.ts (deadline → retry → circuit → rate limit → the
 * attempt), and its report merges every attempt. As a Django backend it keeps Django's
 * semantics: `sendMessages` resolves to the count sent and, unless `failSilently`, throws
 * the first message that failed (or whose outcome is unknown) after it — the error carries
 * the reports of the messages whose outcome is known; `stopOnError: false` reports them all.
 * Route backends are opened on first use in a batch and closed after it (or kept from
 * `open()` to `close()`).
 */
import { setMaxListeners } from "node:events";
import { inspect } from "node:util";
import { BackendError, ConfigurationError, InvalidArgumentError, type MissiveError } from "../errors.js";
import { isClock, systemClock, type Clock } from "../observe/clock.js";
import { BaseEmailBackend, observationOf, type BackendOptions, type EmailBackend } from "../backends/base.js";
import { isDeliveryError } from "../backends/output.js";
import { attachReports, countsAsSent, envelopeRecipients, failedReport, type DeliveryReport, type SendOptions, type SendReport } from "../backends/report.js";
import type { EmailMessage } from "../mime/message.js";
import { getSettings } from "../settings.js";
import { Circuit, type CircuitSettings } from "./circuit.js";
import { FAILOVER_KEYS, resolveFailoverPolicies, type ResolvedFailoverSettings } from "./config.js";
import { deliverMessage, type EngineContext, type EngineRoute } from "./engine.js";
import { eventObserver } from "./event-observer.js";
import { RateLimitedBackend } from "./limited-backend.js";
import { namedRoute } from "./named.js";
import { ObserverSet, type DeliveryObserver } from "./observer.js";
import { resolveRateLimit, TokenBucket, type RateLimit } from "./rate-limit.js";
import { ownOptions, type RetryPolicy } from "./retry.js";
import { sharedCircuit } from "./state.js";
import { anySignal } from "./wait.js";

/** `sendMessagesWithReport`'s options, plus an observer for this call. */
export interface FailoverSendOptions extends SendOptions {
  readonly observer?: DeliveryObserver | undefined;
}

/** A route given as a backend rather than a name. */
export interface FailoverRoute {
  readonly name: string;
  readonly backend: EmailBackend;
  /** A token bucket for this route alone. */
  readonly rateLimit?: RateLimit | undefined;
}

export interface FailoverBackendOptions extends BackendOptions {
  /** Named connections (from `configure({ backends })`) or `{ name, backend }`, in order. Default: the `failover` setting's. */
  routes?: readonly (string | FailoverRoute)[] | undefined;
  retry?: RetryPolicy | false | undefined;
  circuit?: CircuitSettings | false | undefined;
  /** Sees every decision (see observer.ts); the `failover` setting's observer is called too. */
  observer?: DeliveryObserver | undefined;
  /** Messages of one batch in flight at once. Default 1. */
  concurrency?: number | undefined;
  /** Time for waits, deadlines, circuits and rate limits. Default: the system clock. */
  clock?: Clock | undefined;
  /** Jitter's randomness in [0, 1). Default Math.random (tests pass a seeded one). */
  random?: (() => number) | undefined;
}

const OWN_KEYS = [...FAILOVER_KEYS, "failSilently", "clock", "random", "logger", "logRecipients"];
const POLICY_KEYS = ["retry", "circuit", "observer", "concurrency"] as const;

export class FailoverBackend extends BaseEmailBackend {
  /** The routes' names, in order. */
  readonly routes: readonly string[];
  readonly settings: ResolvedFailoverSettings;
  readonly #routes: readonly EngineRoute[];
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #observers: ObserverSet;
  #open = false;
  /** Route backends opened while open (kept to close()). */
  readonly #opened = new Map<EngineRoute, Promise<boolean>>();

  constructor(options: FailoverBackendOptions = {}) {
    super(options);
    for (const key of ["username", "password"]) {
      if (Object.hasOwn(options, key) && (options as Record<string, unknown>)[key] !== undefined) {
        throw new InvalidArgumentError(`A failover backend takes no ${key}: each route has its own credentials (configure({ backends: { primary: { username, password } } }))`);
      }
    }
    const given = ownOptions(withoutFallback(options), OWN_KEYS, { path: "FailoverBackend options", settings: false }, "an object");
    const clock = given["clock"] ?? systemClock;
    if (!isClock(clock)) throw new InvalidArgumentError("FailoverBackend options.clock must be { now(), setTimeout(), clearTimeout() }");
    const random = given["random"] ?? Math.random;
    if (typeof random !== "function") throw new InvalidArgumentError("FailoverBackend options.random must be a function returning a number in [0, 1)");
    this.#clock = clock;
    this.#random = random as () => number;

    const fromSettings = given["routes"] === undefined;
    const setting = getSettings().failover;
    if (fromSettings && setting === undefined) {
      throw new ConfigurationError("failover", 'The failover backend needs its routes: configure({ failover: { routes: ["primary", "secondary"] } }) or new FailoverBackend({ routes })');
    }
    const routeInputs = fromSettings ? setting!.routes : (given["routes"] as readonly (string | FailoverRoute)[]);
    if (!Array.isArray(routeInputs) || routeInputs.length === 0) throw new InvalidArgumentError("FailoverBackend options.routes must be a non-empty list of connection names or { name, backend }");
    const names = routeInputs.map((r) => (typeof r === "string" ? r : (r as FailoverRoute)?.name));
    const where = { path: "FailoverBackend options", settings: false };
    this.settings = fromSettings ? mergePolicies(setting!, given, where) : resolveFailoverPolicies(pick(given, POLICY_KEYS), where, names as string[]);
    this.routes = Object.freeze(names as string[]);
    this.#routes = routeInputs.map((input, i) => this.#route(input, i));
    const seen = new Set<string>();
    for (const route of this.#routes) {
      if (seen.has(route.name)) throw new InvalidArgumentError(`FailoverBackend routes name "${route.name}" twice`);
      seen.add(route.name);
    }
    // The setting's observer and the one given here both see every decision (each once),
    // after the events (the logger and the event channels).
    const observers = [eventObserver(observationOf(this).sink, clock as Clock, (name) => this.#routes.find((r) => r.name === name)?.backend), fromSettings ? setting!.observer : undefined, given["observer"] as DeliveryObserver | undefined];
    this.#observers = new ObserverSet(observers.filter((o, i) => observers.indexOf(o) === i));
  }

  #route(input: string | FailoverRoute, index: number): EngineRoute {
    const circuitSettings = this.settings.circuit;
    if (typeof input === "string") {
      const named = namedRoute(input);
      if (named.kind === "failover" || named.backend instanceof FailoverBackend) {
        throw new ConfigurationError("failover.routes", `The failover route "${input}" is itself a failover backend; a route must be a backend that sends (smtp, file, …)`);
      }
      const circuit = circuitSettings === undefined ? undefined : sharedCircuit(input, circuitSettings, this.#clock);
      return { name: input, backend: named.backend, limiter: named.limiter, circuit };
    }
    if (typeof input !== "object" || input === null || typeof input.name !== "string" || input.name === "" || typeof input.backend?.sendMessages !== "function") {
      throw new InvalidArgumentError(`FailoverBackend routes[${index}] must be a connection name or { name, backend }`);
    }
    let backend = input.backend;
    let limiter: TokenBucket | undefined;
    if (backend instanceof RateLimitedBackend) {
      limiter = backend.limiter;
      backend = backend.inner;
    }
    if (backend instanceof FailoverBackend) throw new InvalidArgumentError(`FailoverBackend route "${input.name}" is itself a FailoverBackend; give the backends that send`);
    if (input.rateLimit !== undefined) limiter = new TokenBucket(resolveRateLimit(input.rateLimit, { path: `routes[${index}].rateLimit`, settings: false }), this.#clock, input.name);
    const circuit = circuitSettings === undefined ? undefined : new Circuit(input.name, circuitSettings, this.#clock);
    return { name: input.name, backend, limiter, circuit };
  }

  /** Marks the backend open: route connections opened from now on stay open until close(). */
  override async open(): Promise<boolean> {
    if (this.#open) return false;
    this.#open = true;
    return true;
  }

  /** Closes every route connection it opened. */
  override async close(): Promise<void> {
    this.#open = false;
    await this.#closeRoutes(this.#opened);
  }

  async sendMessages(messages: readonly EmailMessage[], options: FailoverSendOptions = {}): Promise<number> {
    return (await this.sendMessagesWithReport(messages, options)).sent;
  }

  override async sendMessagesWithReport(messages: readonly EmailMessage[], options: FailoverSendOptions = {}): Promise<SendReport> {
    if (messages.length === 0) return { sent: 0, reports: [] };
    const carryOn = this.failSilently || options.stopOnError === false;
    const observers = this.#observers.with(options.observer);
    const opened = this.#open ? this.#opened : new Map<EngineRoute, Promise<boolean>>();
    const context: EngineContext = {
      routes: this.#routes,
      retry: this.settings.retry,
      clock: this.#clock,
      random: this.#random,
      observers,
      beforeFinalDot: options.beforeFinalDot,
      prepare: async (route) => {
        let opening = opened.get(route);
        if (opening === undefined) {
          opening = route.backend.open();
          opened.set(route, opening);
          // A route that could not open is tried again by the next attempt.
          opening.catch(() => opened.delete(route));
        }
        await opening;
      },
    };
    const results: (DeliveryReport | undefined)[] = new Array<DeliveryReport | undefined>(messages.length).fill(undefined);
    const failures: { index: number; error: unknown }[] = [];
    // The caller's signal is listened to once per batch, not once per message in flight: with
    // more than ten at once Node would warn of a listener leak on the caller's signal.
    const stop = anySignal([options.signal]);
    setMaxListeners(Math.max(10, this.settings.concurrency + 1), stop.signal);
    const messageOptions: SendOptions = options.signal === undefined ? options : { ...options, signal: stop.signal };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (failures.length === 0 && next < messages.length) {
        const i = next++;
        const message = messages[i]!;
        let report: DeliveryReport;
        try {
          report = await this.#one(message, context, messageOptions);
        } catch (error) {
          failures.push({ index: i, error });
          return;
        }
        results[i] = report;
        observers.emit("outcome", report);
        if (!carryOn && (report.status === "failed" || report.status === "unknown")) {
          failures.push({ index: i, error: report.error ?? new BackendError(`The message was not delivered (${report.stopped ?? report.status})`) });
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.settings.concurrency, messages.length) }, worker));
    } finally {
      stop.dispose();
      if (!this.#open) await this.#closeRoutes(opened);
    }
    const reports = results.filter((r): r is DeliveryReport => r !== undefined);
    if (failures.length > 0) throw attachReports(failures.reduce((a, b) => (b.index < a.index ? b : a)).error, reports);
    return { sent: reports.filter(countsAsSent).length, reports };
  }

  /** One message: the caller's gate (a rate limit on the failover itself), then the engine. */
  async #one(message: EmailMessage, context: EngineContext, options: SendOptions): Promise<DeliveryReport> {
    if (options.beforeEach !== undefined) {
      try {
        await options.beforeEach(message, options.signal);
      } catch (error) {
        if (!isDeliveryError(error)) throw error;
        return failedReport(message, undefined, error as MissiveError, envelopeRecipients(message, options.recipients?.get(message)), this.#clock.now());
      }
    }
    return deliverMessage(message, context, options.signal, options.recipients?.get(message));
  }

  async #closeRoutes(opened: Map<EngineRoute, Promise<boolean>>): Promise<void> {
    const entries = [...opened];
    opened.clear();
    await Promise.all(
      entries.map(async ([route, opening]) => {
        // Only what this backend opened (open() true): a route backend already open stays so.
        if (await opening.catch(() => false)) await route.backend.close().catch(() => undefined);
      }),
    );
  }

  toJSON(): Record<string, unknown> {
    return { backend: "failover", routes: this.routes, retry: this.settings.retry, circuit: this.settings.circuit ?? false, concurrency: this.settings.concurrency, open: this.#open };
  }

  [inspect.custom](_depth: number, options: object, insp: typeof inspect): string {
    return `FailoverBackend ${insp(this.toJSON(), options)}`;
  }
}

/** The options without the internal settings fallback a named connection passes to every backend. */
function withoutFallback(options: object): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(options)) out[key] = (options as Record<string, unknown>)[key];
  return out;
}

function pick(o: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const key of keys) if (o[key] !== undefined) out[key] = o[key];
  return out;
}

/** The `failover` setting, with any policy the constructor's options override. */
function mergePolicies(setting: ResolvedFailoverSettings, given: Record<string, unknown>, where: { path: string; settings: boolean }): ResolvedFailoverSettings {
  const overrides = pick(given, POLICY_KEYS);
  if (Object.keys(overrides).length === 0) return setting;
  const merged = resolveFailoverPolicies(overrides, where, setting.routes);
  return Object.freeze({
    routes: setting.routes,
    retry: "retry" in overrides ? merged.retry : setting.retry,
    circuit: "circuit" in overrides ? merged.circuit : setting.circuit,
    observer: merged.observer ?? setting.observer,
    concurrency: "concurrency" in overrides ? merged.concurrency : setting.concurrency,
  });
}
