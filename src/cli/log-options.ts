/**
 * `--log-level` and `--log-format` of `missive send` and `missive check`: missive's events
 * (src/observe/events.ts) on stderr, as JSON lines or as text, from a small logger of the
 * shape every backend takes (pino's level methods, `isLevelEnabled`, `child`).
 */
import { LOG_LEVELS, type Logger, type LogLevel } from "../observe/log.js";

export const LOG_CLI_OPTIONS = {
  "log-level": { type: "string" },
  "log-format": { type: "string" },
} as const;

export const LOG_CLI_HELP = `Logging (to stderr):
  --log-level LEVEL  trace, debug, info, warn or error: each connection (TLS, AUTH), each
                     message's outcome; debug adds the SMTP dialogue (AUTH redacted)
  --log-format FMT   json (one JSON object per line) or text (default); alone, it means
                     --log-level info`;

const FORMATS = ["json", "text"] as const;
export type LogFormat = (typeof FORMATS)[number];

/** The logger the flags ask for, or undefined without them; a bad value is a usage error (`fail`). */
export function loggerFromArgs(
  values: { readonly "log-level"?: string | undefined; readonly "log-format"?: string | undefined },
  fail: (message: string) => Error,
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger | undefined {
  const level = values["log-level"];
  const format = values["log-format"];
  if (level === undefined && format === undefined) return undefined;
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) throw fail(`--log-level must be one of ${LOG_LEVELS.join(", ")}`);
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) throw fail(`--log-format must be json or text`);
  return new LineLogger((level as LogLevel | undefined) ?? "info", (format as LogFormat | undefined) ?? "text", {}, write);
}

/** One line per record: JSON (`level`, `time`, the bindings, the record, `msg`) or text (`time LEVEL event key=value ... msg`). */
export class LineLogger implements Logger {
  readonly #threshold: number;
  readonly #level: LogLevel;
  readonly #format: LogFormat;
  readonly #bindings: Readonly<Record<string, unknown>>;
  readonly #write: (line: string) => void;

  constructor(level: LogLevel, format: LogFormat, bindings: Readonly<Record<string, unknown>>, write: (line: string) => void) {
    this.#level = level;
    this.#threshold = LOG_LEVELS.indexOf(level);
    this.#format = format;
    this.#bindings = bindings;
    this.#write = write;
  }

  isLevelEnabled(level: string): boolean {
    const rank = LOG_LEVELS.indexOf(level as LogLevel);
    return rank !== -1 && rank >= this.#threshold;
  }

  child(bindings: Record<string, unknown>): LineLogger {
    return new LineLogger(this.#level, this.#format, { ...this.#bindings, ...bindings }, this.#write);
  }

  trace(obj: object, msg?: string): void {
    this.#log("trace", obj, msg);
  }

  debug(obj: object, msg?: string): void {
    this.#log("debug", obj, msg);
  }

  info(obj: object, msg?: string): void {
    this.#log("info", obj, msg);
  }

  warn(obj: object, msg?: string): void {
    this.#log("warn", obj, msg);
  }

  error(obj: object, msg?: string): void {
    this.#log("error", obj, msg);
  }

  #log(level: LogLevel, obj: object, msg: string | undefined): void {
    if (!this.isLevelEnabled(level)) return;
    const time = new Date().toISOString();
    const fields: Record<string, unknown> = { ...this.#bindings, ...obj };
    if (this.#format === "json") {
      this.#write(`${JSON.stringify({ level, time, ...fields, ...(msg !== undefined ? { msg } : {}) })}\n`);
      return;
    }
    const { event, ...rest } = fields;
    const pairs = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`);
    const head = [time, level.toUpperCase().padEnd(5), ...(event === undefined ? [] : [String(event)])].join(" ");
    this.#write(`${[head, ...pairs].join(" ")}${msg !== undefined ? ` - ${msg}` : ""}\n`);
  }
}
