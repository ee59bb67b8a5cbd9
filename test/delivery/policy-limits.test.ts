/**
 * The delivery policies at their edges: every option exactly at its limit and one past it
 * (with the whole message a person reads), where each default comes from, the backoff's
 * rounding, and each circuit and bucket state on a virtual clock. No wall-clock time.
 */
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { AbortError, BackendError, ConfigurationError, InvalidArgumentError, RateLimitedError, SmtpDeliveryUnknownError, recordStage } from "../../src/errors.js";
import { Circuit, DEFAULT_CIRCUIT, resolveCircuitSettings } from "../../src/delivery/circuit.js";
import { TokenBucket, resolveRateLimit } from "../../src/delivery/rate-limit.js";
import { DEFAULT_RETRY, NO_RETRY, backoffDelay, optionError, ownOptions, resolveRetryPolicy, retryDelay, verdictOf } from "../../src/delivery/retry.js";
import { abortError, anySignal, sleep } from "../../src/delivery/wait.js";
import { MAX_TIMER_MS } from "../../src/observe/clock.js";
import { errorOf as thrown, rejection } from "../helpers/errors.js";
import { VirtualClock, flush } from "../helpers/virtual-clock.js";

const code = { path: "retry", settings: false };
const settings = { path: "EMAIL_RETRY", settings: true };

describe("option errors", () => {
  it("name the option under its path: InvalidArgumentError from code, ConfigurationError from settings", () => {
    const fromCode = thrown(() => optionError(code, "attempts", "is wrong"));
    expect(fromCode).toBeInstanceOf(InvalidArgumentError);
    expect(fromCode.message).toBe("retry.attempts is wrong");
    const fromSettings = thrown(() => optionError(settings, "attempts", "is wrong"));
    expect(fromSettings).toBeInstanceOf(ConfigurationError);
    expect(fromSettings.message).toBe("EMAIL_RETRY.attempts is wrong");
    expect((fromSettings as ConfigurationError).setting).toBe("EMAIL_RETRY.attempts");
    // the object itself (no key): the path alone
    expect(thrown(() => optionError(settings, "", "must be an object")).message).toBe("EMAIL_RETRY must be an object");
  });

  it("ownOptions: only a plain object, only known keys (the message lists them), own keys only", () => {
    for (const value of [null, [], "x", 3, true]) expect(thrown(() => ownOptions(value, ["a"], code, "{ a }")).message).toBe("retry must be { a }");
    expect(thrown(() => ownOptions({ a: 1, b: 2 }, ["a", "c"], code, "{ a, c }")).message).toBe('retry has an unknown option "b"; known: a, c');
    const inherited = Object.create({ b: 2 }) as Record<string, unknown>;
    inherited["a"] = 1;
    const out = ownOptions(inherited, ["a"], code, "{ a }");
    expect({ ...out }).toEqual({ a: 1 });
    expect(Object.getPrototypeOf(out)).toBeNull();
  });
});

describe("the retry policy's limits", () => {
  const ok = (o: object) => resolveRetryPolicy(o, code);
  const refused = (o: object) => thrown(() => resolveRetryPolicy(o, code)).message;

  it("attempts: an integer from 1 to 1000", () => {
    expect(ok({ attempts: 1 }).attempts).toBe(1);
    expect(ok({ attempts: 1000 }).attempts).toBe(1000);
    expect(refused({ attempts: 1001 })).toBe("retry.attempts must be an integer from 1 to 1000 (the first try included), got 1001");
    expect(refused({ attempts: 0 })).toBe("retry.attempts must be an integer from 1 to 1000 (the first try included), got 0");
    expect(refused({ attempts: "3" })).toContain("got 3");
    expect(refused({ attempts: 1.5 })).toContain("got 1.5");
    expect(refused({ attempts: Number.NaN })).toContain("got NaN");
  });

  it("factor: a number from 1 to 100", () => {
    expect(ok({ factor: 1 }).factor).toBe(1);
    expect(ok({ factor: 100 }).factor).toBe(100);
    expect(ok({ factor: 1.5 }).factor).toBe(1.5);
    expect(refused({ factor: 100.5 })).toBe("retry.factor must be a number from 1 to 100, got 100.5");
    expect(refused({ factor: 0.99 })).toBe("retry.factor must be a number from 1 to 100, got 0.99");
    expect(refused({ factor: Number.POSITIVE_INFINITY })).toContain("got Infinity");
    expect(refused({ factor: "2" })).toContain("got 2");
  });

  it("jitter: full, equal or none", () => {
    for (const jitter of ["full", "equal", "none"] as const) expect(ok({ jitter }).jitter).toBe(jitter);
    expect(refused({ jitter: "Full" })).toBe('retry.jitter must be "full", "equal" or "none", got "Full"');
    expect(refused({ jitter: 1 })).toBe('retry.jitter must be "full", "equal" or "none", got 1');
  });

  it("retryUnknown: true or false", () => {
    expect(ok({ retryUnknown: true }).retryUnknown).toBe(true);
    expect(ok({ retryUnknown: false }).retryUnknown).toBe(false);
    expect(refused({ retryUnknown: 1 })).toBe("retry.retryUnknown must be true or false");
  });

  it("initialDelay and maxDelay from 0, deadline from 1, each up to the longest timer", () => {
    expect(ok({ initialDelay: 0, maxDelay: 0 })).toMatchObject({ initialDelay: 0, maxDelay: 0 });
    expect(ok({ initialDelay: MAX_TIMER_MS, maxDelay: MAX_TIMER_MS })).toMatchObject({ initialDelay: MAX_TIMER_MS, maxDelay: MAX_TIMER_MS });
    expect(refused({ initialDelay: MAX_TIMER_MS + 1 })).toBe(`retry.initialDelay must be a number of milliseconds from 0 to ${MAX_TIMER_MS}, got ${MAX_TIMER_MS + 1}`);
    expect(refused({ initialDelay: -0.5 })).toBe(`retry.initialDelay must be a number of milliseconds from 0 to ${MAX_TIMER_MS}, got -0.5`);
    expect(refused({ maxDelay: Number.POSITIVE_INFINITY })).toContain("retry.maxDelay must be a number of milliseconds from 0");
    expect(refused({ maxDelay: "60s" })).toContain("got 60s");
    expect(ok({ deadline: 1 }).deadline).toBe(1);
    expect(ok({ deadline: MAX_TIMER_MS }).deadline).toBe(MAX_TIMER_MS);
    expect(refused({ deadline: 0.5 })).toBe(`retry.deadline must be a number of milliseconds from 1 to ${MAX_TIMER_MS}, got 0.5`);
    expect(refused({ deadline: MAX_TIMER_MS + 1 })).toContain("retry.deadline");
  });

  it("maxDelay: never below initialDelay (equal is fine); by default 60 s, or initialDelay when that is longer", () => {
    expect(ok({ initialDelay: 500, maxDelay: 500 })).toMatchObject({ initialDelay: 500, maxDelay: 500 });
    expect(refused({ initialDelay: 500, maxDelay: 499 })).toBe("retry.maxDelay (499 ms) must not be less than initialDelay (500 ms)");
    expect(ok({ initialDelay: 120_000 }).maxDelay).toBe(120_000);
    expect(ok({ initialDelay: 10 }).maxDelay).toBe(60_000);
    expect(refused({ maxDelay: 999 })).toBe("retry.maxDelay (999 ms) must not be less than initialDelay (1000 ms)");
  });

  it("each option given alone keeps every other default; the result is frozen", () => {
    expect(ok({ attempts: 7 })).toEqual({ ...DEFAULT_RETRY, attempts: 7 });
    expect(ok({ factor: 3 })).toEqual({ ...DEFAULT_RETRY, factor: 3 });
    expect(ok({ jitter: "none" })).toEqual({ ...DEFAULT_RETRY, jitter: "none" });
    expect(ok({ deadline: 5000 })).toEqual({ ...DEFAULT_RETRY, deadline: 5000 });
    expect(ok({ retryUnknown: true })).toEqual({ ...DEFAULT_RETRY, retryUnknown: true });
    expect(Object.isFrozen(ok({ attempts: 2 }))).toBe(true);
    expect(Object.isFrozen(DEFAULT_RETRY)).toBe(true);
    expect(NO_RETRY).toEqual({ ...DEFAULT_RETRY, attempts: 1 });
    expect(() => resolveRetryPolicy({ attempts: 0 }, settings)).toThrow(ConfigurationError);
    expect(refused([] as unknown as object)).toBe("retry must be { attempts, initialDelay, factor, maxDelay, jitter, deadline, retryUnknown }");
  });

  it("retryUnknown turns only an unknown outcome into a retry, never a failure for good or a next route", () => {
    const policy = { ...DEFAULT_RETRY, retryUnknown: true };
    expect(verdictOf(new BackendError("disk full"), policy)).toBe("give-up");
    expect(verdictOf(new RateLimitedError("bulk", 5000, 1000), policy)).toBe("next-route");
    expect(verdictOf(recordStage(new SmtpDeliveryUnknownError("x"), "final-dot", true), policy)).toBe("retry-here");
  });
});

describe("the backoff", () => {
  const policy = (o: object) => resolveRetryPolicy({ jitter: "none", ...o }, code);

  it("the first wait is initialDelay (retry 0 or below counts as the first), then × factor", () => {
    const p = policy({ initialDelay: 100, factor: 2 });
    expect([0, -3, 1, 2, 3].map((n) => backoffDelay(p, n, () => 0))).toEqual([100, 100, 100, 200, 400]);
  });

  it("whole milliseconds, rounded down, for every jitter", () => {
    const p = policy({ initialDelay: 5, factor: 1.5, maxDelay: 1000 });
    // base at retry 2 is 7.5
    expect(backoffDelay(p, 2, () => 0)).toBe(7);
    expect(backoffDelay({ ...p, jitter: "equal" }, 2, () => 0)).toBe(3); // 3.75
    expect(backoffDelay({ ...p, jitter: "equal" }, 2, () => 0.999)).toBe(7); // 3.75 + 3.746…
    expect(backoffDelay({ ...p, jitter: "full" }, 2, () => 0.999)).toBe(7); // 7.4925
    expect(backoffDelay({ ...p, jitter: "full" }, 2, () => 0.5)).toBe(3); // 3.75
  });

  it("maxDelay caps the base before the jitter", () => {
    const p = policy({ initialDelay: 1000, factor: 10, maxDelay: 5000 });
    expect(backoffDelay(p, 3, () => 0)).toBe(5000);
    expect(backoffDelay({ ...p, jitter: "full" }, 3, () => 0.5)).toBe(2500);
    expect(backoffDelay({ ...p, jitter: "equal" }, 3, () => 0)).toBe(2500);
  });

  it("retryAfter: a longer one is waited, rounded up; an equal or shorter one leaves the backoff", () => {
    const p = policy({ initialDelay: 1000 });
    expect(retryDelay(p, 1, new BackendError("x", { retryAfter: 1000.2 }), () => 0)).toBe(1001);
    expect(retryDelay(p, 1, new BackendError("x", { retryAfter: 1000 }), () => 0)).toBe(1000);
    expect(retryDelay(p, 1, new BackendError("x", { retryAfter: 999.5 }), () => 0)).toBe(1000);
    expect(retryDelay(p, 1, new BackendError("x"), () => 0)).toBe(1000);
  });
});

describe("sleep and anySignal", () => {
  it("a wait of 0 or less resolves without a timer; an aborted signal rejects before any", async () => {
    const clock = new VirtualClock();
    await sleep(0, clock, undefined);
    await sleep(-5, clock, undefined);
    expect(clock.armed).toEqual([]);
    const controller = new AbortController();
    controller.abort();
    expect(await rejection(sleep(0, clock, controller.signal))).toBeInstanceOf(AbortError);
    expect(await rejection(sleep(1000, clock, controller.signal))).toBeInstanceOf(AbortError);
    expect(clock.armed).toEqual([]);
  });

  it("a wait longer than the longest timer arms the longest timer", () => {
    const clock = new VirtualClock();
    void sleep(MAX_TIMER_MS * 2, clock, undefined);
    expect(clock.pending.map((t) => t.ms)).toEqual([MAX_TIMER_MS]);
  });

  it("an abort after the wait ended changes nothing; the reason: an AbortError as is, anything else as its cause", async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const nap = sleep(10, clock, controller.signal);
    await clock.advance(10);
    await nap;
    // the finished wait stopped listening (a long-lived signal shared by many waits keeps none of them)
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    controller.abort(); // must not throw or arm anything
    expect(clock.pending).toEqual([]);

    const own = new AbortError("mine");
    const c1 = new AbortController();
    const p1 = rejection(sleep(10, clock, c1.signal));
    c1.abort(own);
    expect(await p1).toBe(own);
    expect(clock.pending).toEqual([]);

    const c2 = new AbortController();
    const p2 = rejection(sleep(10, clock, c2.signal));
    const reason = new Error("shutdown");
    c2.abort(reason);
    const e2 = (await p2) as AbortError;
    expect(e2).toBeInstanceOf(AbortError);
    expect(e2.message).toBe("The delivery was aborted");
    expect(e2.cause).toBe(reason);

    const bare = abortError(undefined);
    expect(bare).toBeInstanceOf(AbortError);
    expect(bare.message).toBe("The delivery was aborted");
    expect(bare.cause).toBeUndefined();
  });

  it("anySignal aborts with the first signal's reason, at once when one already has, and stops listening on dispose", () => {
    const a = new AbortController();
    const b = new AbortController();
    const any = anySignal([a.signal, undefined, b.signal]);
    expect(any.signal.aborted).toBe(false);
    b.abort("b");
    expect(any.signal.aborted).toBe(true);
    expect(any.signal.reason).toBe("b");
    a.abort("a");
    expect(any.signal.reason).toBe("b");

    const done = new AbortController();
    done.abort("early");
    const already = anySignal([new AbortController().signal, done.signal]);
    expect(already.signal.reason).toBe("early");

    const c = new AbortController();
    const disposed = anySignal([c.signal]);
    disposed.dispose();
    c.abort("late");
    expect(disposed.signal.aborted).toBe(false);
  });
});

describe("the token bucket's limits", () => {
  const where = { path: "rateLimit", settings: false };
  const limit = (o: object) => resolveRateLimit(o, where);
  const refused = (o: object) => thrown(() => limit(o)).message;

  it("messages and burst: positive integers up to 1,000,000; perSeconds: a positive number up to a day", () => {
    expect(limit({ messages: 1_000_000, burst: 1_000_000 })).toEqual({ messages: 1_000_000, perSeconds: 1, burst: 1_000_000, maxWait: undefined });
    expect(refused({ messages: 1_000_001 })).toBe("rateLimit.messages must be a positive integer up to 1000000, got 1000001");
    expect(refused({ messages: 1.5 })).toBe("rateLimit.messages must be a positive integer up to 1000000, got 1.5");
    expect(refused({ messages: "5" })).toContain("got 5");
    expect(refused({ messages: Number.POSITIVE_INFINITY })).toContain("got Infinity");
    expect(refused({ messages: 1, burst: 0 })).toBe("rateLimit.burst must be a positive integer up to 1000000, got 0");
    expect(refused({ messages: 1, burst: 2.5 })).toContain("rateLimit.burst");
    expect(limit({ messages: 1, perSeconds: 86_400 }).perSeconds).toBe(86_400);
    expect(limit({ messages: 1, perSeconds: 0.5 }).perSeconds).toBe(0.5);
    expect(refused({ messages: 1, perSeconds: 86_400.5 })).toBe("rateLimit.perSeconds must be a positive number up to 86400, got 86400.5");
    expect(refused({ messages: 1, perSeconds: 0 })).toContain("got 0");
    expect(limit({ messages: 3, burst: 1 }).burst).toBe(1);
    // perSeconds need not be whole, but it must be a number
    expect(refused({ messages: 1, perSeconds: Number.NaN })).toBe("rateLimit.perSeconds must be a positive number up to 86400, got NaN");
    expect(refused({ messages: 1, perSeconds: "2" })).toBe("rateLimit.perSeconds must be a positive number up to 86400, got 2");
    expect(thrown(() => resolveRateLimit("50/s", where)).message).toBe("rateLimit must be { messages, perSeconds, burst, maxWait }");
  });

  it("maxWait: from 0 to the longest timer", () => {
    expect(limit({ messages: 1, maxWait: 0 }).maxWait).toBe(0);
    expect(limit({ messages: 1, maxWait: MAX_TIMER_MS }).maxWait).toBe(MAX_TIMER_MS);
    expect(refused({ messages: 1, maxWait: MAX_TIMER_MS + 1 })).toBe(`rateLimit.maxWait must be a number of milliseconds from 0 to ${MAX_TIMER_MS}, got ${MAX_TIMER_MS + 1}`);
    expect(refused({ messages: 1, maxWait: -0.5 })).toContain("got -0.5");
    expect(refused({ messages: 1, maxWait: Number.NaN })).toContain("got NaN");
    expect(refused({ messages: 1, maxWait: "1s" })).toContain("got 1s");
    expect(Object.isFrozen(limit({ messages: 1 }))).toBe(true);
    expect(() => resolveRateLimit({ messages: 0 }, { path: "EMAIL_RATE_LIMIT", settings: true })).toThrow(ConfigurationError);
  });

  it("a wait exactly maxWait long is waited; one millisecond more fails", async () => {
    const clock = new VirtualClock();
    const bucket = new TokenBucket(limit({ messages: 1, perSeconds: 1, maxWait: 1000 }), clock, "exact");
    expect(await bucket.take()).toBe(0);
    const wait = bucket.take();
    expect(clock.pending.map((t) => t.ms)).toEqual([1000]);
    await clock.advance(1000);
    expect(await wait).toBe(1000);
    const tight = new TokenBucket(limit({ messages: 1, perSeconds: 1, maxWait: 999 }), clock);
    await tight.take();
    const error = (await rejection(tight.take())) as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.retryAfter).toBe(1000);
    expect(tight.available).toBe(0);
  });

  it("maxWait 0: only a token that is there; a fraction of a token is no token", async () => {
    const clock = new VirtualClock();
    const bucket = new TokenBucket(limit({ messages: 4, perSeconds: 1, burst: 1, maxWait: 0 }), clock);
    expect(await bucket.take()).toBe(0);
    await clock.advance(125); // half a token
    expect(bucket.available).toBeCloseTo(0.5, 9);
    const error = (await rejection(bucket.take())) as RateLimitedError;
    expect(error.retryAfter).toBe(125); // the other half
    await clock.advance(125);
    expect(bucket.available).toBeCloseTo(1, 9);
    expect(await bucket.take()).toBe(0);
  });

  it("waits for the rest of a token, rounded up to whole milliseconds", async () => {
    const clock = new VirtualClock();
    const bucket = new TokenBucket(limit({ messages: 3, perSeconds: 1, burst: 1 }), clock);
    await bucket.take();
    await clock.advance(100); // 0.3 of a token; the rest takes 233.33 ms
    const wait = bucket.take();
    expect(clock.pending.map((t) => t.ms)).toEqual([234]);
    await clock.advance(234);
    expect(await wait).toBe(234);
  });

  it("a clock that steps back adds no tokens and takes none", async () => {
    let now = 1_000_000;
    const clock = { now: () => now, setTimeout: () => ({}) as never, clearTimeout: () => undefined };
    const bucket = new TokenBucket(limit({ messages: 1, perSeconds: 1, burst: 2 }), clock);
    await bucket.take();
    now -= 10_000;
    expect(bucket.available).toBe(1);
    now += 500;
    expect(bucket.available).toBeCloseTo(1.5, 9);
  });

  it("perSeconds stretches the rate: 2 messages per 10 s is one token every 5 s", async () => {
    const clock = new VirtualClock();
    const bucket = new TokenBucket(limit({ messages: 2, perSeconds: 10, burst: 1 }), clock);
    await bucket.take();
    const wait = bucket.take();
    expect(clock.pending.map((t) => t.ms)).toEqual([5000]);
    await clock.advance(5000);
    expect(await wait).toBe(5000);
    await flush();
  });
});

describe("the circuit's limits and states", () => {
  const where = { path: "circuit", settings: false };
  const refused = (o: object) => thrown(() => resolveCircuitSettings(o, where)).message;

  it("failures: an integer from 1 to 10000; cooldown: from 1 ms to the longest timer; each alone keeps the other's default", () => {
    expect(resolveCircuitSettings({ failures: 1 }, where)).toEqual({ failures: 1, cooldown: 30_000 });
    expect(resolveCircuitSettings({ failures: 10_000 }, where)).toEqual({ failures: 10_000, cooldown: 30_000 });
    expect(refused({ failures: 10_001 })).toBe("circuit.failures must be an integer from 1 to 10000, got 10001");
    expect(refused({ failures: 2.5 })).toBe("circuit.failures must be an integer from 1 to 10000, got 2.5");
    expect(refused({ failures: "5" })).toContain("got 5");
    expect(resolveCircuitSettings({ cooldown: 1 }, where)).toEqual({ failures: 5, cooldown: 1 });
    expect(resolveCircuitSettings({ cooldown: MAX_TIMER_MS }, where)).toEqual({ failures: 5, cooldown: MAX_TIMER_MS });
    expect(refused({ cooldown: 0.5 })).toBe(`circuit.cooldown must be a number of milliseconds from 1 to ${MAX_TIMER_MS}, got 0.5`);
    expect(refused({ cooldown: MAX_TIMER_MS + 1 })).toContain(`got ${MAX_TIMER_MS + 1}`);
    expect(refused({ cooldown: Number.POSITIVE_INFINITY })).toContain("got Infinity");
    expect(refused({ failurez: 1 })).toBe('circuit has an unknown option "failurez"; known: failures, cooldown');
    expect(thrown(() => resolveCircuitSettings(true, where)).message).toBe("circuit must be false or { failures, cooldown }");
    expect(Object.isFrozen(resolveCircuitSettings({ failures: 2 }, where))).toBe(true);
    expect(Object.isFrozen(DEFAULT_CIRCUIT)).toBe(true);
    expect(resolveCircuitSettings({}, where)).toEqual(DEFAULT_CIRCUIT);
  });

  it("exactly `failures` faults in a row open it, one fewer does not; faults while open count nothing", () => {
    const clock = new VirtualClock();
    const circuit = new Circuit("r", { failures: 3, cooldown: 100 }, clock);
    expect([circuit.state, circuit.faults, circuit.reopensIn()]).toEqual(["closed", 0, undefined]);
    circuit.record("fault", false);
    circuit.record("fault", false);
    expect([circuit.state, circuit.faults]).toEqual(["closed", 2]);
    expect(circuit.record("fault", false)).toBe("opened");
    expect([circuit.state, circuit.faults]).toEqual(["open", 3]);
    // a try admitted before it opened fails now: still open, the cooldown not restarted
    expect(circuit.record("fault", false)).toBeUndefined();
    expect(circuit.faults).toBe(3);
    expect(circuit.state).toBe("open");
  });

  it("reopensIn counts down on the clock, never below 0; a cooldown's end admits exactly one probe", async () => {
    const clock = new VirtualClock();
    const circuit = new Circuit("r", { failures: 1, cooldown: 1000 }, clock);
    circuit.record("fault", false);
    expect(circuit.reopensIn()).toBe(1000);
    await clock.advance(400);
    expect(circuit.reopensIn()).toBe(600);
    // a fault while open does not restart the cooldown
    circuit.record("fault", false);
    expect(circuit.reopensIn()).toBe(600);
    await clock.advance(5000);
    expect(circuit.reopensIn()).toBe(0);
    expect(circuit.state).toBe("open");
    expect(circuit.admit()).toBe("probe");
    expect([circuit.state, circuit.reopensIn()]).toEqual(["half-open", undefined]);
    expect(circuit.admit()).toBe("no");
    // the probe said nothing: half-open, ready for the next probe at once
    expect(circuit.record("neutral", true)).toBeUndefined();
    expect([circuit.state, circuit.reopensIn()]).toEqual(["half-open", 0]);
    expect(circuit.admit()).toBe("probe");
    // an outcome that is not the probe's leaves the probe outstanding
    expect(circuit.record("neutral", false)).toBeUndefined();
    expect(circuit.admit()).toBe("no");
    expect(circuit.record("ok", true)).toBe("closed");
    expect([circuit.state, circuit.faults, circuit.reopensIn(), circuit.admit()]).toEqual(["closed", 0, undefined, "yes"]);
    // ok while closed: nothing to report
    expect(circuit.record("ok", false)).toBeUndefined();
  });

  it("a fault in half-open reopens it from now, whoever reports it", async () => {
    const clock = new VirtualClock();
    const circuit = new Circuit("r", { failures: 2, cooldown: 1000 }, clock);
    circuit.record("fault", false);
    circuit.record("fault", false);
    await clock.advance(1500);
    expect(circuit.admit()).toBe("probe");
    expect(circuit.record("fault", false)).toBe("opened");
    expect(circuit.state).toBe("open");
    expect(circuit.reopensIn()).toBe(1000);
    await clock.advance(999);
    expect(circuit.admit()).toBe("no");
    await clock.advance(1);
    // the earlier probe was never reported as the probe: half-open waits for it
    expect(circuit.admit()).toBe("probe");
  });

  it("an ok from half-open closes it and resets the count, so `failures` more are needed", async () => {
    const clock = new VirtualClock();
    const circuit = new Circuit("r", { failures: 2, cooldown: 10 }, clock);
    circuit.record("fault", false);
    circuit.record("fault", false);
    await clock.advance(10);
    expect(circuit.admit()).toBe("probe");
    expect(circuit.record("ok", true)).toBe("closed");
    expect(circuit.record("fault", false)).toBeUndefined();
    expect(circuit.record("fault", false)).toBe("opened");
  });
});
