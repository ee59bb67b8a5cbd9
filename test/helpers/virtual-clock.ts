// A Clock whose time moves only when the test says so (`advance`), or, in auto mode, by
// itself to the next armed timer as soon as the event loop has nothing else to do this
// turn: waits (backoff, rate limits) then take no wall time and their lengths can be
// asserted exactly. `autoMaxMs` keeps long timers (a deadline) from firing by themselves.
// Nothing here imports src/ beyond the Clock type.
import type { Clock, TimerHandle } from "../../src/observe/clock.js";

interface Timer {
  readonly due: number;
  readonly seq: number;
  readonly ms: number;
  readonly callback: () => void;
}

export interface VirtualClockOptions {
  /** Start time (ms since the epoch). Default 2026-01-01T00:00:00Z. */
  start?: number;
  /** Fire armed timers by themselves, earliest first (time jumps to each). Default false. */
  auto?: boolean;
  /** In auto mode, timers longer than this are left for `advance`. Default: none. */
  autoMaxMs?: number;
}

export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers: Timer[] = [];
  readonly #auto: boolean;
  readonly #autoMaxMs: number;
  #pumping = false;
  /** Every timer ever armed: its length and the time it was armed at. */
  readonly armed: { readonly ms: number; readonly at: number }[] = [];

  constructor(options: VirtualClockOptions = {}) {
    this.#now = options.start ?? Date.UTC(2026, 0, 1);
    this.#auto = options.auto ?? false;
    this.#autoMaxMs = options.autoMaxMs ?? Number.POSITIVE_INFINITY;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer: Timer = { due: this.#now + Math.max(0, ms), seq: this.#seq++, ms, callback };
    this.#timers.push(timer);
    this.#timers.sort((a, b) => a.due - b.due || a.seq - b.seq);
    this.armed.push({ ms, at: this.#now });
    if (this.#auto) this.#schedulePump();
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    const i = this.#timers.indexOf(handle as Timer);
    if (i !== -1) this.#timers.splice(i, 1);
  }

  /** Timers armed and not yet fired, soonest first. */
  get pending(): readonly { readonly ms: number; readonly due: number }[] {
    return this.#timers.map((t) => ({ ms: t.ms, due: t.due }));
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order (promise callbacks run between). */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await flush();
      const next = this.#timers[0];
      if (next === undefined || next.due > target) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.due);
      next.callback();
    }
    this.#now = target;
    await flush();
  }

  #schedulePump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    setImmediate(() => {
      this.#pumping = false;
      const i = this.#timers.findIndex((t) => t.ms <= this.#autoMaxMs);
      if (i === -1) return;
      const [next] = this.#timers.splice(i, 1);
      this.#now = Math.max(this.#now, next!.due);
      next!.callback();
      if (this.#timers.some((t) => t.ms <= this.#autoMaxMs)) this.#schedulePump();
    });
  }
}

/** Lets pending promise callbacks run (a few turns of the microtask queue and one macrotask). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
}

/** A seeded PRNG in [0, 1) (mulberry32): the same seed, the same sequence. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
