/**
 * A clock whose timers fire only when the test says so: each `setTimeout` is recorded with
 * its delay in `timers`, and runs when the test calls its `fire()`. `now()` stays 0.
 */
import type { Clock, TimerHandle } from "../../src/observe/clock.js";

export function manualClock(): Clock & { timers: { ms: number; fire(): void }[] } {
  const timers: { ms: number; fire(): void }[] = [];
  return {
    timers,
    now: () => 0,
    setTimeout: (callback: () => void, ms: number): TimerHandle => {
      const timer = { ms, fire: () => (timers.splice(timers.indexOf(timer), 1), callback()) };
      timers.push(timer);
      return timer;
    },
    clearTimeout: (handle: TimerHandle) => {
      const i = timers.indexOf(handle as never);
      if (i !== -1) timers.splice(i, 1);
    },
  };
}
