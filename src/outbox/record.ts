/**
 * An outbox entry as a JSON record, with its format version: written by every store (the
 * spool's `message.json`, a BullMQ job's data), read back with every field checked. A
 * record that does not parse or lacks a field is "corrupt"; one from a newer format is
 * "version" (written by a newer missive: left alone, never guessed at).
 *
 * The record also carries `receivedAt`, `envelope.mailParams` and `session`, the fields of
 * the mail catcher's `.json` sidecar, so that `missive preview SPOOL` shows each queued
 * message with its envelope.
 */
import { OutboxError } from "../errors.js";
import { OUTBOX_STATES, STORE_FORMAT, type OutboxEntry, type OutboxState } from "./store.js";

export function encodeEntry(entry: OutboxEntry): Buffer {
  const record = {
    format: STORE_FORMAT,
    ...entry,
    receivedAt: new Date(entry.enqueuedAt).toISOString(),
    envelope: { from: entry.envelope.from, to: entry.envelope.to, mailParams: {} },
    session: null,
  };
  return Buffer.from(`${JSON.stringify(record, (_key, value: unknown) => (value === undefined ? null : value), 2)}\n`, "utf8");
}

/** The record's format version, or undefined when it has none that can be read. */
export function recordFormat(value: unknown): number | undefined {
  const format = typeof value === "object" && value !== null ? (value as { format?: unknown }).format : undefined;
  return typeof format === "number" && Number.isInteger(format) && format > 0 ? format : undefined;
}

/** Parses a record; OutboxError "corrupt" or "version" (with `id` when known). */
export function decodeEntry(bytes: Buffer | string, where: string, id?: string): OutboxEntry {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === "string" ? bytes : bytes.toString("utf8"));
  } catch (error) {
    throw new OutboxError("corrupt", `${where}: the record is not valid JSON (${(error as Error).message}); it may be truncated`, { id, cause: error });
  }
  const format = recordFormat(value);
  if (format === undefined) throw new OutboxError("corrupt", `${where}: the record has no format version`, { id });
  if (format > STORE_FORMAT) {
    throw new OutboxError("version", `${where}: the record is in format ${format}, written by a newer missive; this one reads format ${STORE_FORMAT} (upgrade missive to handle it; it is left as it is)`, { id });
  }
  const r = value as Record<string, unknown>;
  const problem = (field: string): never => {
    throw new OutboxError("corrupt", `${where}: the record's "${field}" is missing or invalid`, { id });
  };
  const str = (field: string): string => (typeof r[field] === "string" ? (r[field] as string) : problem(field));
  const optStr = (field: string): string | undefined => (r[field] == null ? undefined : typeof r[field] === "string" ? (r[field] as string) : problem(field));
  const num = (field: string): number => (typeof r[field] === "number" && Number.isFinite(r[field]) ? (r[field] as number) : problem(field));
  const optNum = (field: string): number | undefined => (r[field] == null ? undefined : num(field));
  const bool = (field: string): boolean => (typeof r[field] === "boolean" ? (r[field] as boolean) : problem(field));
  const strings = (value: unknown, field: string): string[] => (Array.isArray(value) && value.every((v) => typeof v === "string") ? (value as string[]) : problem(field));
  const list = (field: string): unknown[] => (Array.isArray(r[field]) ? (r[field] as unknown[]) : problem(field));
  const object = (field: string): Record<string, unknown> => (typeof r[field] === "object" && r[field] !== null && !Array.isArray(r[field]) ? (r[field] as Record<string, unknown>) : problem(field));
  const optObject = (field: string): Record<string, unknown> | undefined => (r[field] == null ? undefined : object(field));

  const state = str("state");
  if (!(OUTBOX_STATES as readonly string[]).includes(state)) problem("state");
  const envelope = object("envelope");
  const from = typeof envelope["from"] === "string" ? envelope["from"] : problem("envelope");
  const to = strings(envelope["to"], "envelope");
  const fields = object("fields");
  const headers = typeof fields["headers"] === "object" && fields["headers"] !== null ? (fields["headers"] as Record<string, string>) : problem("fields");
  const interrupted = optStr("interrupted");
  if (interrupted !== undefined && interrupted !== "before-final-dot" && interrupted !== "after-final-dot") problem("interrupted");
  const rejected = list("rejected") as OutboxEntry["rejected"];
  return {
    id: str("id"),
    state: state as OutboxState,
    messageId: str("messageId"),
    date: str("date"),
    subject: str("subject"),
    envelope: { from, to },
    fields: {
      from: fields["from"] ?? undefined,
      to: Array.isArray(fields["to"]) ? fields["to"] : [],
      cc: Array.isArray(fields["cc"]) ? fields["cc"] : [],
      replyTo: Array.isArray(fields["replyTo"]) ? fields["replyTo"] : [],
      headers,
    },
    smtputf8: bool("smtputf8"),
    eightBit: bool("eightBit"),
    headerLength: num("headerLength"),
    size: num("size"),
    enqueuedAt: num("enqueuedAt"),
    route: optStr("route"),
    priority: num("priority"),
    notBefore: optNum("notBefore"),
    idempotencyKey: optStr("idempotencyKey"),
    unsigned: bool("unsigned"),
    attempts: num("attempts"),
    nextAttemptAt: optNum("nextAttemptAt"),
    pending: strings(r["pending"], "pending"),
    accepted: strings(r["accepted"], "accepted"),
    rejected: rejected.map((o) => ({ ...(o as OutboxEntry["rejected"][number]), code: (o as { code?: number | null }).code ?? undefined, enhancedCode: (o as { enhancedCode?: string | null }).enhancedCode ?? undefined })),
    lastError: optObject("lastError") as OutboxEntry["lastError"],
    report: optObject("report") as OutboxEntry["report"],
    heldReason: optStr("heldReason"),
    interrupted: interrupted as OutboxEntry["interrupted"],
    updatedAt: num("updatedAt"),
  };
}
