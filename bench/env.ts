/**
 * What every benchmark shares: the environment line printed with the figures, medians, CPU
 * time, and the table of ratios against their targets that `npm run bench` prints last.
 *
 * Figures are same-run ratios: missive and a reference measured alternately in one process
 * on the same data, the ratio taken pair by pair and its median reported, so that a machine
 * whose speed drifts (shared cores, other load) moves both sides of each pair alike.
 */
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root (the benchmarks run from bench/ under tsx, or bundled elsewhere: bench/bundle.mjs). */
export const ROOT = ((): string => {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === "missive") return dir;
    if (dirname(dir) === dir) throw new Error("the missive repository was not found above the benchmarks");
  }
})();

export function environment(): string {
  const cpu = cpus();
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  return `node ${process.version}, ${cpu[0]?.model.trim() ?? "unknown CPU"} (${cpu.length} cores), load average ${load}`;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Wall and CPU (user + system) milliseconds of `task`. */
export async function timed(task: () => Promise<unknown> | unknown): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await task();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Operations per second of a synchronous loop: the best of `rounds` timings of `n` calls. */
export function opsPerSecond(n: number, rounds: number, call: (i: number) => unknown): number {
  let best = Infinity;
  let sink = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) if (call(i) !== undefined) sink++;
    best = Math.min(best, performance.now() - t0);
  }
  if (sink < 0) console.log(sink);
  return (n / best) * 1000;
}

/**
 * The ratio ours/reference of two throughput measurements taken alternately `pairs` times
 * (reference first in each pair), with the median of each side and of the pairwise ratios.
 */
export async function paired(pairs: number, reference: () => Promise<number> | number, ours: () => Promise<number> | number): Promise<{ reference: number; ours: number; ratio: number }> {
  const refs: number[] = [];
  const mine: number[] = [];
  const ratios: number[] = [];
  for (let p = 0; p < pairs; p++) {
    const r = await reference();
    const o = await ours();
    refs.push(r);
    mine.push(o);
    ratios.push(o / r);
  }
  return { reference: median(refs), ours: median(mine), ratio: median(ratios) };
}

export interface Target {
  readonly name: string;
  readonly value: number;
  /** "x" for a ratio (ours / reference), "ms" for a cost. */
  readonly unit: "x" | "ms";
  readonly op: ">=" | "<=" | "~";
  readonly target: number;
}

const results: Target[] = [];

/** Records a figure for the final table. */
export function report(target: Target): void {
  results.push(target);
}

function met(t: Target): string {
  if (t.op === "~") return Math.abs(t.value - t.target) <= 0.1 * t.target ? "ok" : "off";
  return (t.op === ">=" ? t.value >= t.target : t.value <= t.target) ? "met" : "MISSED";
}

export function printTargets(): void {
  if (results.length === 0) return;
  const width = Math.max(...results.map((r) => r.name.length));
  const show = (n: number, unit: Target["unit"]) => (unit === "x" ? `${n.toFixed(2)}x` : `${n.toFixed(3)} ms`);
  console.log(`# targets (${environment()})`);
  for (const r of results) {
    console.log(`${r.name.padEnd(width)}  ${show(r.value, r.unit).padStart(9)}   target ${r.op} ${show(r.target, r.unit).padEnd(9)} ${met(r)}`);
  }
}
