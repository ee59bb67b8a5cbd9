/**
 * The logger adapter. missive logs through any object with pino's level methods
 * (`logger.info(obj, msg)`): pino itself, or anything shaped like it. Nothing is logged by
 * default.
 *
 * - Levels are checked before anything is built: `isLevelEnabled(level)` when the logger
 *   has it (pino does), so a record for a level that is off is never formatted. A logger
 *   without it gets every level.
 * - `child(bindings)` is used when the logger has it (pino's way of carrying a connection's
 *   id on every line); otherwise the bindings are merged into each record.
 * - Records are built from known fields only, never from the objects they describe, so a
 *   credential, a token, an AUTH payload or a message body has no way into one.
 *   Recipients appear as `logRecipients` says: a count by default.
 * - A logger that throws is ignored: logging never changes what is sent.
 *
 * Ground floor: imports nothing of missive.
 */
import { createHash } from "node:crypto";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

type LogMethod = (obj: object, msg?: string) => void;

/** What missive needs of a logger: pino's level methods, and optionally its level check and child loggers. */
export interface Logger {
  trace: LogMethod;
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  isLevelEnabled?(level: string): boolean;
  child?(bindings: Record<string, unknown>): Logger;
}

/**
 * How recipients appear in records: "count" (default, how many), "domain" (their domains,
 * each once, sorted), "hash" (the first 16 hex digits of the SHA-256 of each lower-cased
 * address: the same address gives the same hash, so lines can be matched up without
 * writing addresses down; a pseudonym, not anonymity, since anyone can hash a guess),
 * "full" (the addresses).
 */
export type LogRecipients = "count" | "domain" | "hash" | "full";
export const LOG_RECIPIENTS: readonly LogRecipients[] = ["count", "domain", "hash", "full"];

/** A recipients field as `logRecipients` makes it. */
export type RecipientsField = number | readonly string[];

/** Why `value` cannot be a logger, or undefined when it can. */
export function loggerProblem(value: unknown): string | undefined {
  if (typeof value !== "object" && typeof value !== "function") return "must be a logger: an object with trace, debug, info, warn and error methods (pino, for one)";
  if (value === null) return "must be a logger: an object with trace, debug, info, warn and error methods (pino, for one)";
  const missing = LOG_LEVELS.filter((level) => typeof (value as Record<string, unknown>)[level] !== "function");
  if (missing.length > 0) return `must be a logger with trace, debug, info, warn and error methods; it has no ${missing.join(", ")}`;
  for (const optional of ["isLevelEnabled", "child"]) {
    const fn = (value as Record<string, unknown>)[optional];
    if (fn !== undefined && typeof fn !== "function") return `has ${optional} that is not a function`;
  }
  return undefined;
}

/** Why `value` cannot be a `logRecipients` setting, or undefined. */
export function logRecipientsProblem(value: unknown): string | undefined {
  return (LOG_RECIPIENTS as readonly unknown[]).includes(value) ? undefined : `must be one of ${LOG_RECIPIENTS.map((r) => `"${r}"`).join(", ")}`;
}

/** `addresses` as `mode` shows them. */
export function recipientsField(addresses: readonly string[], mode: LogRecipients): RecipientsField {
  switch (mode) {
    case "count":
      return addresses.length;
    case "domain":
      return [...new Set(addresses.map(domainOf))].sort();
    case "hash":
      return addresses.map((a) => createHash("sha256").update(a.toLowerCase()).digest("hex").slice(0, 16));
    case "full":
      return [...addresses];
  }
}

function domainOf(address: string): string {
  const at = address.lastIndexOf("@");
  return at === -1 ? "" : address.slice(at + 1).toLowerCase();
}

/**
 * A logger as missive writes to it: the level check, the write (errors swallowed), and
 * bindings carried either by the logger's own child or merged into each record.
 */
export class LogTarget {
  readonly #logger: Logger;
  /** Bindings the logger does not carry itself (it has no `child`). */
  readonly #pending: Readonly<Record<string, unknown>> | undefined;

  constructor(logger: Logger, pending?: Readonly<Record<string, unknown>>) {
    this.#logger = logger;
    this.#pending = pending;
  }

  enabled(level: LogLevel): boolean {
    const check = this.#logger.isLevelEnabled;
    if (typeof check !== "function") return true;
    try {
      return check.call(this.#logger, level) === true;
    } catch {
      return false;
    }
  }

  write(level: LogLevel, record: Record<string, unknown>, msg: string): void {
    try {
      this.#logger[level](this.#pending === undefined ? record : { ...this.#pending, ...record }, msg);
    } catch {
      // A broken logger must not change what is delivered.
    }
  }

  /** A target whose every record carries `bindings` (through `logger.child` when there is one). */
  child(bindings: Readonly<Record<string, unknown>>): LogTarget {
    const make = this.#logger.child;
    if (typeof make === "function") {
      try {
        const child = make.call(this.#logger, bindings);
        if (loggerProblem(child) === undefined) return new LogTarget(child, this.#pending);
      } catch {
        // fall back to merging the bindings into each record
      }
    }
    return new LogTarget(this.#logger, { ...this.#pending, ...bindings });
  }
}
