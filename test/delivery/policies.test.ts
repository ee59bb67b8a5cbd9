/**
 * The policies on their own, on a virtual clock: backoff and jitter, the retry policy's
 * checks, the token bucket's waits, the circuit's states. No wall-clock time is asserted.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { AbortError, BackendError, InvalidArgumentError, RateLimitedError, SmtpDeliveryUnknownError, recordStage } from "../../src/errors.js";
import { Circuit, resolveCircuitSettings } from "../../src/delivery/circuit.js";
import { TokenBucket, resolveRateLimit } from "../../src/delivery/rate-limit.js";
import { DEFAULT_RETRY, backoffDelay, resolveRetryPolicy, retryDelay, verdictOf } from "../../src/delivery/retry.js";
import { sleep } from "../../src/delivery/wait.js";
import { rejection } from "../helpers/errors.js";
import { VirtualClock, flush } from "../helpers/virtual-clock.js";

const code = { path: "retry", settings: false };

describe("the retry policy", () => {
  it("defaults: 3 attempts, 1 s doubling up to 60 s, full jitter, no deadline, unknown never resent", () => {
    expect(resolveRetryPolicy(undefined, code)).toEqual({ attempts: 3, initialDelay: 1000, factor: 2, maxDelay: 60_000, jitter: "full", deadline: undefined, retryUnknown: false });
    expect(resolveRetryPolicy({}, code)).toEqual(DEFAULT_RETRY);
  });

  it.each([
    [{ attempts: 0 }, /retry\.attempts must be an integer from 1/],
    [{ attempts: 2.5 }, /retry\.attempts/],
    [{ initialDelay: -1 }, /retry\.initialDelay must be a number of milliseconds/],
    [{ factor: 0.5 }, /retry\.factor must be a number from 1 to 100/],
    [{ maxDelay: 10, initialDelay: 100 }, /retry\.maxDelay \(10 ms\) must not be less than initialDelay/],
    [{ jitter: "some" }, /retry\.jitter must be "full", "equal" or "none"/],
    [{ deadline: 0 }, /retry\.deadline must be a number of milliseconds from 1/],
    [{ retryUnknown: "yes" }, /retry\.retryUnknown must be true or false/],
    [{ atempts: 3 }, /retry has an unknown option "atempts"/],
    ["3", /retry must be/],
  ])("refuses %j", (input, message) => {
    expect(() => resolveRetryPolicy(input, code)).toThrow(InvalidArgumentError);
    expect(() => resolveRetryPolicy(input, code)).toThrow(message);
  });

  it("backoff: initialDelay × factor^(n−1), capped at maxDelay; jitter none / equal / full", () => {
    const policy = resolveRetryPolicy({ initialDelay: 1000, factor: 3, maxDelay: 20_000, jitter: "none" }, code);
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n, () => 0.5))).toEqual([1000, 3000, 9000, 20_000, 20_000]);
    const equal = { ...policy, jitter: "equal" as const };
    expect([0, 0.5, 0.999].map((r) => backoffDelay(equal, 2, () => r))).toEqual([1500, 2250, 2998]);
    const full = { ...policy, jitter: "full" as const };
    expect([0, 0.5, 0.999].map((r) => backoffDelay(full, 2, () => r))).toEqual([0, 1500, 2997]);
  });

  it("property: every wait lies within its jitter's bounds and never exceeds maxDelay", () => {
    fc.assert(
      fc.property(
        fc.record({ initialDelay: fc.integer({ min: 0, max: 10_000 }), factor: fc.double({ min: 1, max: 10, noNaN: true }), extra: fc.integer({ min: 0, max: 100_000 }) }),
        fc.constantFrom("full", "equal", "none" as const),
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        ({ initialDelay, factor, extra }, jitter, n, r) => {
          const policy = resolveRetryPolicy({ initialDelay, factor, maxDelay: initialDelay + extra, jitter }, code);
          const base = Math.min(policy.maxDelay, initialDelay * factor ** (n - 1));
          const d = backoffDelay(policy, n, () => r);
          expect(d).toBeGreaterThanOrEqual(jitter === "equal" ? Math.floor(base / 2) : jitter === "none" ? Math.floor(base) : 0);
          expect(d).toBeLessThanOrEqual(policy.maxDelay);
        },
      ),
    );
  });

  it("retryAfter wins over a shorter backoff, not over a longer one", () => {
    const policy = resolveRetryPolicy({ jitter: "none" }, code);
    expect(retryDelay(policy, 1, new BackendError("x", { retryAfter: 5000 }), Math.random)).toBe(5000);
    expect(retryDelay(policy, 4, new BackendError("x", { retryAfter: 5000 }), Math.random)).toBe(8000);
    expect(retryDelay(policy, 1, undefined, Math.random)).toBe(1000);
  });

  it("unknown is resent only with retryUnknown", () => {
    const unknown = recordStage(new SmtpDeliveryUnknownError("x"), "final-dot", true);
    expect(verdictOf(unknown, DEFAULT_RETRY)).toBe("unknown");
    expect(verdictOf(unknown, { ...DEFAULT_RETRY, retryUnknown: true })).toBe("retry-here");
  });

  it("sleep: on the clock, and ended at once by an abort", async () => {
    const clock = new VirtualClock();
    let done = false;
    const nap = sleep(1000, clock, undefined).then(() => (done = true));
    await clock.advance(999);
    expect(done).toBe(false);
    await clock.advance(1);
    await nap;
    expect(done).toBe(true);
    const controller = new AbortController();
    const cut = rejection(sleep(60_000, clock, controller.signal));
    controller.abort();
    expect(await cut).toBeInstanceOf(AbortError);
    expect(clock.pending).toEqual([]);
  });
});

describe("the token bucket", () => {
  const limit = (o: object) => resolveRateLimit(o, { path: "rateLimit", settings: false });

  it("checks its settings: messages is required, numbers positive, burst defaults to messages", () => {
    expect(limit({ messages: 10 })).toEqual({ messages: 10, perSeconds: 1, burst: 10, maxWait: undefined });
    expect(() => limit({})).toThrow(/rateLimit\.messages is required/);
    expect(() => limit({ messages: 0 })).toThrow(/rateLimit\.messages must be a positive integer/);
    expect(() => limit({ messages: 1, perSeconds: -1 })).toThrow(/rateLimit\.perSeconds must be a positive number/);
    expect(() => limit({ messages: 1, maxWait: -5 })).toThrow(/rateLimit\.maxWait/);
    expect(() => limit({ messages: 1, per: 1 })).toThrow(/unknown option "per"/);
  });

  it("lets a burst through, then one token every perSeconds/messages, first come first served", async () => {
    const clock = new VirtualClock();
    const bucket = new TokenBucket(limit({ messages: 2, perSeconds: 1, burst: 3 }), clock);
    expect(await Promise.all([bucket.take(), bucket.take(), bucket.take()])).toEqual([0, 0, 0]);
    const order: number[] = [];
    const waits = [bucket.take(), bucket.take(), bucket.take()].map((p, i) => p.then((ms) => (order.push(i), ms)));
    expect(clock.pending.map((t) => t.ms)).toEqual([500, 1000, 1500]);
    await clock.advance(500);
    expect(order).toEqual([0]);
    await clock.advance(1000);
    expect(order).toEqual([0, 1, 2]);
    expect(await Promise.all(waits)).toEqual([500, 1000, 1500]);
    // A quiet spell refills up to the burst, never beyond.
    await clock.advance(60_000);
    expect(bucket.available).toBe(3);
  });

  it("maxWait: a wait longer than it fails at once with ERATE_LIMITED, taking nothing", async () => {
    const clock = new VirtualClock();
    const bucket = new TokenBucket(limit({ messages: 1, perSeconds: 10, maxWait: 5000 }), clock, "bulk");
    expect(await bucket.take()).toBe(0);
    const error = (await rejection(bucket.take())) as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.code).toBe("ERATE_LIMITED");
    expect(error.route).toBe("bulk");
    expect(error.retryAfter).toBe(10_000);
    expect(error.message).toContain('The rate limit of "bulk" has no token for 10000 ms, longer than its maxWait of 5000 ms');
    expect(clock.pending).toEqual([]);
    await clock.advance(6000);
    const next = bucket.take();
    expect(clock.pending.map((t) => t.ms)).toEqual([4000]);
    await clock.advance(4000);
    expect(await next).toBe(4000);
  });

  it("an aborted wait gives its reservation back", async () => {
    const clock = new VirtualClock();
    const bucket = new TokenBucket(limit({ messages: 1, perSeconds: 1 }), clock);
    await bucket.take();
    const controller = new AbortController();
    const cut = rejection(bucket.take(controller.signal));
    expect(bucket.available).toBeCloseTo(-1, 6);
    controller.abort();
    expect(await cut).toBeInstanceOf(AbortError);
    expect(bucket.available).toBeCloseTo(0, 6);
    await flush();
    expect(clock.pending).toEqual([]);
  });
});

describe("the circuit", () => {
  it("closed → open after N faults in a row → a probe after the cooldown → closed on success", async () => {
    const clock = new VirtualClock();
    const circuit = new Circuit("primary", resolveCircuitSettings({ failures: 3, cooldown: 30_000 }, { path: "circuit", settings: false })!, clock);
    expect(circuit.record("fault", false)).toBeUndefined();
    expect(circuit.record("ok", false)).toBeUndefined(); // a success in between resets the count
    expect(circuit.record("fault", false)).toBeUndefined();
    expect(circuit.record("fault", false)).toBeUndefined();
    expect(circuit.record("neutral", false)).toBeUndefined(); // says nothing about the route
    expect(circuit.record("fault", false)).toBe("opened");
    expect(circuit.state).toBe("open");
    expect(circuit.admit()).toBe("no");
    expect(circuit.reopensIn()).toBe(30_000);
    await clock.advance(29_999);
    expect(circuit.admit()).toBe("no");
    await clock.advance(1);
    expect(circuit.admit()).toBe("probe");
    expect(circuit.state).toBe("half-open");
    expect(circuit.admit()).toBe("no"); // one probe at a time
    expect(circuit.record("ok", true)).toBe("closed");
    expect([circuit.state, circuit.faults, circuit.admit()]).toEqual(["closed", 0, "yes"]);
  });

  it("a failed probe reopens it for another cooldown; a neutral probe lets the next one through", async () => {
    const clock = new VirtualClock();
    const circuit = new Circuit("primary", { failures: 1, cooldown: 1000 }, clock);
    expect(circuit.record("fault", false)).toBe("opened");
    await clock.advance(1000);
    expect(circuit.admit()).toBe("probe");
    expect(circuit.record("neutral", true)).toBeUndefined();
    expect(circuit.admit()).toBe("probe");
    expect(circuit.record("fault", true)).toBe("opened");
    expect(circuit.reopensIn()).toBe(1000);
    expect(circuit.admit()).toBe("no");
  });

  it("checks its settings; false switches circuits off", () => {
    const where = { path: "failover.circuit", settings: true };
    expect(resolveCircuitSettings(undefined, where)).toEqual({ failures: 5, cooldown: 30_000 });
    expect(resolveCircuitSettings(false, where)).toBeUndefined();
    expect(() => resolveCircuitSettings({ failures: 0 }, where)).toThrow(/failover\.circuit\.failures must be an integer/);
    expect(() => resolveCircuitSettings({ cooldown: "30s" }, where)).toThrow(/failover\.circuit\.cooldown/);
  });
});
