/**
 * The `outbox` setting, checked at configure() time:
 *
 *   configure({ backend: "outbox", outbox: { store: "file:///var/spool/missive", deliver: "failover" } });
 *
 * - store: a `file:` URL of a spool directory, or a store object (`new BullMQStore(...)`);
 * - deliver: what `missive worker` (and `outbox.worker()` without a backend) delivers with:
 *   a named connection or a backend name, never "outbox" itself;
 * - retry: the schedule between delivery rounds; concurrency, leaseMs: the workers' defaults.
 *
 * Imports only what checks options (errors, the retry policy, the store interface), so that
 * settings.ts can use it.
 */
import { OutboxError } from "../errors.js";
import { optionError, ownOptions, resolveRetryPolicy, type OptionSource, type RetryPolicy } from "../delivery/retry.js";
import { isOutboxStore, type OutboxStore } from "./store.js";

export interface OutboxSettings {
  readonly store: string | OutboxStore;
  readonly deliver?: string | undefined;
  readonly retry?: RetryPolicy | undefined;
  readonly concurrency?: number | undefined;
  readonly leaseMs?: number | undefined;
}

export interface ResolvedOutboxSettings {
  readonly store: string | OutboxStore;
  readonly deliver: string | undefined;
  readonly retry: RetryPolicy | undefined;
  readonly concurrency: number | undefined;
  readonly leaseMs: number | undefined;
}

export const OUTBOX_SETTING_KEYS = ["store", "deliver", "retry", "concurrency", "leaseMs"] as const;

export function resolveOutboxSettings(value: unknown, where: OptionSource): ResolvedOutboxSettings {
  const o = ownOptions(value, OUTBOX_SETTING_KEYS, where, '{ store: "file:///var/spool/missive", deliver: "failover" }');
  const store = o["store"];
  if (typeof store === "string") {
    try {
      spoolPath(store, true);
    } catch (error) {
      optionError(where, "store", `${(error as Error).message}`);
    }
  } else if (!isOutboxStore(store)) {
    optionError(where, "store", 'must be a file: URL ("file:///var/spool/missive") or a store such as new BullMQStore({ connection, queueName })');
  }
  const deliver = o["deliver"];
  if (deliver !== undefined && (typeof deliver !== "string" || deliver === "")) optionError(where, "deliver", "must name the connection (or backend) that delivers, e.g. \"failover\"");
  if (deliver === "outbox") optionError(where, "deliver", 'cannot be "outbox": the worker would enqueue every message again');
  if (o["retry"] !== undefined) resolveRetryPolicy(o["retry"], { path: `${where.path}.retry`, settings: where.settings });
  const whole = (key: string, min: number, max: number): number | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) optionError(where, key, `must be an integer from ${min} to ${max}, got ${String(v)}`);
    return v;
  };
  return Object.freeze({
    store: store as string | OutboxStore,
    deliver: deliver as string | undefined,
    retry: o["retry"] as RetryPolicy | undefined,
    concurrency: whole("concurrency", 1, 1000),
    leaseMs: whole("leaseMs", 100, 2 ** 31 - 1),
  });
}

/**
 * The directory of a `file:` URL (`file:///var/spool/missive`); with `urlOnly` false a plain
 * path is accepted as it is. OutboxError "unusable" for a URL that names no local directory.
 */
export function spoolPath(url: string, urlOnly = false): string {
  if (!url.startsWith("file:")) {
    if (urlOnly) throw new OutboxError("unusable", `must be a file: URL such as file:///var/spool/missive, not ${JSON.stringify(url)}`);
    return url;
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new OutboxError("unusable", `${JSON.stringify(url)} is not a valid file: URL (expected file:///var/spool/missive)`);
  }
  if (u.host !== "" && u.host !== "localhost") throw new OutboxError("unusable", `an outbox spool must be local (file:///path), not on ${u.host}`);
  if (u.search !== "" || u.hash !== "") throw new OutboxError("unusable", "an outbox spool URL takes no query or fragment");
  let path: string;
  try {
    path = decodeURIComponent(u.pathname);
  } catch {
    throw new OutboxError("unusable", `${JSON.stringify(url)} is badly percent-encoded`);
  }
  if (path === "" || path === "/") throw new OutboxError("unusable", "the outbox spool URL needs a directory, e.g. file:///var/spool/missive");
  return path;
}
