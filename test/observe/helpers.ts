// Shared by the observability tests: a real pino writing JSON lines into memory, a
// subscriber to every channel missive publishes on, and the forms a secret takes on the wire.
import diagnosticsChannel from "node:diagnostics_channel";
import { Writable } from "node:stream";
import pino from "pino";
import { CHANNEL_NAMES, EVENT_CHANNEL_NAMES } from "../../src/observe/channels.js";

export interface PinoCapture {
  readonly logger: pino.Logger;
  /** Every line written so far, parsed. */
  records(): Record<string, unknown>[];
  /** The raw text written so far. */
  text(): string;
}

/** pino at `level`, writing to a stream held in memory (each line parsed as JSON by `records`). */
export function capturePino(level: pino.LevelWithSilent = "info"): PinoCapture {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString("utf8"));
      callback();
    },
  });
  const logger = pino({ level }, stream);
  return {
    logger,
    text: () => chunks.join(""),
    records: () =>
      chunks
        .join("")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** The keys of a record that are missive's (pino's own level, time, pid, hostname and msg left out). */
export function ownKeys(record: Record<string, unknown>): string[] {
  return Object.keys(record)
    .filter((k) => !["level", "time", "pid", "hostname", "msg"].includes(k))
    .sort();
}

export interface ChannelCapture {
  /** [channel name, payload] in publishing order. */
  readonly messages: [string, unknown][];
  stop(): void;
}

/** Subscribes to every event channel, the part-one channels and the delivery TracingChannel. */
export function captureChannels(): ChannelCapture {
  const names = [
    ...Object.values(EVENT_CHANNEL_NAMES),
    CHANNEL_NAMES.smtpCommand,
    CHANNEL_NAMES.smtpReply,
    CHANNEL_NAMES.messageSent,
    ...["start", "end", "asyncStart", "asyncEnd", "error"].map((e) => `tracing:${CHANNEL_NAMES.deliver}:${e}`),
  ];
  const messages: [string, unknown][] = [];
  const listeners = names.map((name) => {
    // A tracing context is one object mutated along the way: keep a copy of each moment.
    const fn = (message: unknown) => messages.push([name, name.startsWith("tracing:") ? { ...(message as object) } : message]);
    diagnosticsChannel.subscribe(name, fn);
    return [name, fn] as const;
  });
  return {
    messages,
    stop: () => {
      for (const [name, fn] of listeners) diagnosticsChannel.unsubscribe(name, fn);
    },
  };
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** A password as it can leave the client: itself, and inside AUTH PLAIN and LOGIN payloads. */
export function passwordForms(user: string, password: string): string[] {
  return [password, b64(`\0${user}\0${password}`), b64(password), b64(`${user}\0${user}\0${password}`)];
}

/** An OAuth 2 token as it can leave the client: itself and the XOAUTH2 initial response. */
export function tokenForms(user: string, token: string): string[] {
  return [token, b64(`user=${user}\x01auth=Bearer ${token}\x01\x01`)];
}
