/**
 * missive/bullmq: the outbox on BullMQ and Redis (optional peer dependencies `bullmq` and
 * `ioredis`). Use the store with the same Outbox API as the spool:
 *
 *   import { Outbox } from "missive/outbox";
 *   import { BullMQStore } from "missive/bullmq";
 *   const outbox = new Outbox({ store: new BullMQStore({ connection: { host: "127.0.0.1", port: 6379 }, queueName: "mail" }) });
 */
export { BullMQStore } from "./store.js";
export type { BullMQStoreOptions } from "./store.js";
