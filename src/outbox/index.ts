/**
 * missive/outbox: durable, asynchronous sending. `new Outbox({ store })`, `enqueue`, the
 * worker, the spool store, and the stored message every backend can send.
 */
export { Outbox, outboxStore } from "./outbox.js";
export type { OutboxOptions, EnqueueOptions, Enqueued, OutboxStatus } from "./outbox.js";
export { OutboxWorker } from "./worker.js";
export type { OutboxWorkerOptions, OutboxObserver } from "./worker.js";
export { FileStore } from "./file-store.js";
export { spoolPath } from "./config.js";
export type { FileStoreOptions } from "./file-store.js";
export { nodeSpoolFs } from "./spool-fs.js";
export type { SpoolFileSystem, SpoolFileHandle } from "./spool-fs.js";
export { StoredMessage } from "./stored-message.js";
export { OUTBOX_STATES, FINISHED_STATES, STORE_FORMAT, isOutboxStore } from "./store.js";
export type { OutboxState, OutboxEntry, OutboxStore, NewEntry, EntryProgress, Lease, Settlement, ListFilter, Recovered, StoredReport, StoredAttempt, StoredError, StoredFields } from "./store.js";
export { OUTBOX_RETRY, settlementOf } from "./outcome.js";
export { encodeEntry, decodeEntry } from "./record.js";
export { OutboxError } from "../errors.js";
export type { OutboxProblem } from "../errors.js";
