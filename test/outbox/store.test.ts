/**
 * The store interface's own definitions (src/outbox/store.ts): the states a message moves
 * through, which of them are finished, the record format, and how a store given to the
 * outbox is recognised.
 */
import { describe, expect, it } from "vitest";
import { FINISHED_STATES, isOutboxStore, OUTBOX_STATES, STORE_FORMAT } from "../../src/outbox/store.js";

const METHODS = ["open", "close", "add", "join", "renew", "leave", "take", "markFinalDot", "settle", "recover", "get", "list", "update", "purge", "read"];
const store = (): Record<string, unknown> => Object.fromEntries(METHODS.map((m) => [m, () => undefined]));

describe("the store's definitions", () => {
  it("the states in order, the finished ones, and format 1", () => {
    expect(OUTBOX_STATES).toStrictEqual(["queued", "sending", "sent", "partial", "failed", "dead", "held"]);
    expect(FINISHED_STATES).toStrictEqual(["sent", "partial", "failed", "dead", "held"]);
    expect(STORE_FORMAT).toBe(1);
  });

  it("isOutboxStore: an object with every method is a store; missing one, or one not a function, it is not", () => {
    expect(isOutboxStore(store())).toBe(true);
    expect(isOutboxStore({ ...store(), watch: () => () => undefined, extra: 1 })).toBe(true);
    for (const method of METHODS) {
      const s = store();
      delete s[method];
      expect(isOutboxStore(s), `without ${method}`).toBe(false);
      expect(isOutboxStore({ ...store(), [method]: "not a function" }), `${method} a string`).toBe(false);
    }
    for (const value of [null, undefined, "store", 1, () => undefined, [], {}]) expect(isOutboxStore(value)).toBe(false);
  });
});
