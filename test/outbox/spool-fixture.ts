/**
 * What the spool tests share: a FileStore on a fresh temporary directory for each test
 * (removed after it), the message they enqueue, and small helpers to add, list and read.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect } from "vitest";
import { OutboxError } from "../../src/errors.js";
import { FileStore } from "../../src/outbox/file-store.js";
import { unchanged } from "../../src/outbox/outcome.js";
import type { NewEntry, OutboxEntry, Settlement } from "../../src/outbox/store.js";

export const T0 = Date.UTC(2026, 11, 1, 20, 0, 0);
export const MESSAGE = "Subject: s\r\nFrom: ann@example.com\r\n\r\nbody line\r\n";
/** The header block with its last line's CRLF, without the blank line. */
export const HEADER_LENGTH = MESSAGE.indexOf("\r\n\r\n") + 2;

export interface Spool {
  /** This test's spool directory. */
  dir: string;
  /** A store on `dir`; a test may replace it with one made with other options. */
  store: FileStore;
  /** Enqueues `text` through `store` (and expects it not to be a duplicate); its id. */
  add(changes?: Partial<NewEntry>, text?: string): Promise<string>;
  /** The names in `dir/sub`, sorted. */
  ls(sub: string): Promise<string[]>;
}

/** A fresh spool for each test of the calling file. */
export function useSpool(): Spool {
  const spool: Spool = {
    dir: "",
    store: undefined as unknown as FileStore,
    async add(changes = {}, text = MESSAGE) {
      const { id, duplicate } = await spool.store.add(newEntry(changes), bytesOf(text));
      expect(duplicate).toBe(false);
      return id;
    },
    async ls(sub) {
      return (await readdir(join(spool.dir, sub))).sort();
    },
  };
  beforeEach(async () => {
    spool.dir = await mkdtemp(join(tmpdir(), "missive-spool-moves-"));
    spool.store = new FileStore({ path: spool.dir, host: "this-host" });
  });
  afterEach(async () => {
    await rm(spool.dir, { recursive: true, force: true });
  });
  return spool;
}

export function newEntry(changes: Partial<NewEntry> = {}): NewEntry {
  return {
    messageId: "<a@example.com>",
    date: "Tue, 01 Dec 2026 20:00:00 +0000",
    subject: "s",
    envelope: { from: "ann@example.com", to: ["bob@example.org", "cy@example.org"] },
    fields: { from: "ann@example.com", to: ["bob@example.org"], cc: [], replyTo: [], headers: {} },
    smtputf8: false,
    eightBit: false,
    headerLength: HEADER_LENGTH,
    enqueuedAt: T0,
    route: undefined,
    priority: 0,
    notBefore: undefined,
    idempotencyKey: undefined,
    unsigned: false,
    ...changes,
  };
}

export async function* bytesOf(text: string): AsyncIterable<Uint8Array> {
  yield Buffer.from(text);
}

export async function text(iterable: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of iterable) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString();
}

/** A settlement: the entry's progress with `changes`. */
export function settlement(entry: OutboxEntry, changes: Partial<Settlement>): Settlement {
  return { ...unchanged(entry), ...changes } as Settlement;
}

export async function errorOf(promise: Promise<unknown>): Promise<OutboxError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OutboxError);
  return error as OutboxError;
}
