/**
 * The stored record of an outbox entry (src/outbox/record.ts), on its own: the bytes every
 * store writes, a record read back equal to the entry written, and every way a record can
 * be unreadable (not JSON, truncated, no format, a newer format, a field missing or of the
 * wrong type) refused with OutboxError "corrupt" or "version" naming the file and field.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OutboxError } from "../../src/errors.js";
import { decodeEntry, encodeEntry, recordFormat } from "../../src/outbox/record.js";
import { OUTBOX_STATES, STORE_FORMAT, type OutboxEntry } from "../../src/outbox/store.js";

const ENTRY: OutboxEntry = {
  id: "m-1",
  state: "queued",
  messageId: "<a@example.com>",
  date: "Tue, 01 Dec 2026 20:00:00 +0000",
  subject: "Hello",
  envelope: { from: "ann@example.com", to: ["bob@example.org"] },
  fields: { from: { address: "ann@example.com" }, to: ["bob@example.org"], cc: [], replyTo: [], headers: { subject: "Hello" } },
  smtputf8: false,
  eightBit: false,
  headerLength: 120,
  size: 200,
  enqueuedAt: Date.UTC(2026, 11, 1, 20),
  route: undefined,
  priority: 0,
  notBefore: undefined,
  idempotencyKey: undefined,
  unsigned: false,
  attempts: 0,
  nextAttemptAt: undefined,
  pending: ["bob@example.org"],
  accepted: [],
  rejected: [],
  lastError: undefined,
  report: undefined,
  heldReason: undefined,
  interrupted: undefined,
  updatedAt: Date.UTC(2026, 11, 1, 20),
};

/**
 * The record of ENTRY as JSON text, changed by `change`: a field deleted when set to DELETE,
 * and written as `1e999` (which JSON.parse reads as Infinity) when set to HUGE.
 */
const DELETE = Symbol("delete");
const HUGE = Symbol("1e999");
function recordWith(change: Record<string, unknown>): string {
  const record = JSON.parse(encodeEntry(ENTRY).toString("utf8")) as Record<string, unknown>;
  for (const [key, value] of Object.entries(change)) {
    if (value === DELETE) delete record[key];
    else record[key] = value === HUGE ? "<huge>" : value;
  }
  return JSON.stringify(record).replaceAll('"<huge>"', "1e999");
}

function refusal(bytes: Buffer | string, id?: string): OutboxError {
  try {
    decodeEntry(bytes, "spool/queue/m-1/message.json", id);
  } catch (error) {
    expect(error).toBeInstanceOf(OutboxError);
    return error as OutboxError;
  }
  throw new Error("the record was accepted");
}

const corruptField = (change: Record<string, unknown>, field: string) => {
  const e = refusal(recordWith(change), "m-1");
  expect(e.reason).toBe("corrupt");
  expect(e.id).toBe("m-1");
  expect(e.message).toBe(`spool/queue/m-1/message.json: the record's "${field}" is missing or invalid`);
};

describe("the bytes of a record", () => {
  it("is pretty JSON with its format first, undefined fields as null, the catcher's sidecar fields, and a final LF", () => {
    const entry: OutboxEntry = { ...ENTRY, rejected: [{ address: "carol@example.org", code: 550, enhancedCode: undefined, text: "no" }] };
    const bytes = encodeEntry(entry);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    const text = bytes.toString("utf8");
    expect(text.startsWith('{\n  "format": 1,\n  "id": "m-1",\n  "state": "queued",\n')).toBe(true);
    expect(text.endsWith('  "receivedAt": "2026-12-01T20:00:00.000Z",\n  "session": null\n}\n')).toBe(true);
    expect(text).toContain('  "envelope": {\n    "from": "ann@example.com",\n    "to": [\n      "bob@example.org"\n    ],\n    "mailParams": {}\n  },\n');
    expect(text).toContain('  "route": null,\n');
    expect(text).toContain('"enhancedCode": null,');
    expect(text.endsWith("}\n}\n")).toBe(false);
    const record = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(record)[0]).toBe("format");
    expect(record["format"]).toBe(STORE_FORMAT);
    expect(record["session"]).toBeNull();
    expect(record["receivedAt"]).toBe("2026-12-01T20:00:00.000Z");
    expect(record["envelope"]).toEqual({ from: "ann@example.com", to: ["bob@example.org"], mailParams: {} });
  });

  it("is UTF-8: a subject outside ASCII is written as its UTF-8 bytes, not escaped", () => {
    const bytes = encodeEntry({ ...ENTRY, subject: "Grüße ✉" });
    expect(bytes.includes(Buffer.from('"subject": "Grüße ✉"', "utf8"))).toBe(true);
    expect(decodeEntry(bytes, "x").subject).toBe("Grüße ✉");
  });
});

describe("a record read back", () => {
  it("equals the entry written, from bytes or from a string", () => {
    expect(decodeEntry(encodeEntry(ENTRY), "x")).toEqual(ENTRY);
    expect(decodeEntry(encodeEntry(ENTRY).toString("utf8"), "x")).toEqual(ENTRY);
  });

  it("keeps every optional field that is set", () => {
    const entry: OutboxEntry = {
      ...ENTRY,
      state: "held",
      route: "primary",
      notBefore: 5,
      idempotencyKey: "ab".repeat(32),
      nextAttemptAt: 7,
      accepted: ["bob@example.org"],
      pending: [],
      rejected: [
        { address: "carol@example.org", code: 550, enhancedCode: "5.1.1", text: "no such user" },
        { address: "dan@example.org", code: undefined, enhancedCode: undefined, text: "" },
      ],
      lastError: { name: "SmtpError", code: "ESMTP", message: "refused", replyCode: 550 },
      report: { status: "partial", messageId: "<a@example.com>", route: "primary", accepted: [], rejected: [], deferred: [], attempts: [], at: 3 },
      heldReason: "why",
      interrupted: "after-final-dot",
      smtputf8: true,
      eightBit: true,
      unsigned: true,
    };
    const back = decodeEntry(encodeEntry(entry), "x");
    expect(back).toEqual(entry);
    expect(back.rejected[1]).toStrictEqual({ address: "dan@example.org", code: undefined, enhancedCode: undefined, text: "" });
    expect(back.interrupted).toBe("after-final-dot");
    expect(decodeEntry(encodeEntry({ ...entry, interrupted: "before-final-dot" }), "x").interrupted).toBe("before-final-dot");
  });

  it("reads a record without the optional fields (absent, not null) as undefined, and missing field lists as empty", () => {
    const lean = JSON.parse(recordWith({ route: DELETE, notBefore: DELETE, idempotencyKey: DELETE, nextAttemptAt: DELETE, lastError: DELETE, report: DELETE, heldReason: DELETE, interrupted: DELETE })) as Record<string, unknown>;
    lean["fields"] = { headers: {} };
    const back = decodeEntry(JSON.stringify(lean), "x");
    expect(back.fields).toStrictEqual({ from: undefined, to: [], cc: [], replyTo: [], headers: {} });
    for (const key of ["route", "notBefore", "idempotencyKey", "nextAttemptAt", "lastError", "report", "heldReason", "interrupted"] as const) {
      expect(back[key], key).toBeUndefined();
    }
    expect(decodeEntry(recordWith({ fields: { from: null, to: "bob", cc: 3, replyTo: {}, headers: {} } }), "x").fields).toStrictEqual({ from: undefined, to: [], cc: [], replyTo: [], headers: {} });
  });

  it("property: any entry reads back equal to itself", () => {
    const text = fc.string({ unit: "grapheme", maxLength: 40 });
    const optText = fc.option(text, { nil: undefined });
    const time = fc.integer({ min: 0, max: 8.64e15 });
    const outcome = fc.record({ address: text, code: fc.option(fc.integer({ min: 200, max: 599 }), { nil: undefined }), enhancedCode: optText, text });
    const entry = fc.record({
      id: text,
      state: fc.constantFrom(...OUTBOX_STATES),
      messageId: text,
      date: text,
      subject: text,
      envelope: fc.record({ from: text, to: fc.array(text, { maxLength: 5 }) }),
      fields: fc.record({ from: fc.option(text, { nil: undefined }), to: fc.array(text, { maxLength: 3 }), cc: fc.array(text, { maxLength: 3 }), replyTo: fc.array(text, { maxLength: 3 }), headers: fc.dictionary(text, text, { maxKeys: 3 }) }),
      smtputf8: fc.boolean(),
      eightBit: fc.boolean(),
      headerLength: fc.nat(),
      size: fc.nat(),
      enqueuedAt: time,
      route: optText,
      priority: fc.integer({ min: -100, max: 100 }),
      notBefore: fc.option(time, { nil: undefined }),
      idempotencyKey: optText,
      unsigned: fc.boolean(),
      attempts: fc.nat({ max: 100 }),
      nextAttemptAt: fc.option(time, { nil: undefined }),
      pending: fc.array(text, { maxLength: 5 }),
      accepted: fc.array(text, { maxLength: 5 }),
      rejected: fc.array(outcome, { maxLength: 5 }),
      // A code always set: an undefined inside lastError or report comes back as null (only the
      // top-level fields and the rejected outcomes are mapped back to undefined).
      lastError: fc.option(fc.record({ name: text, code: text, message: text }), { nil: undefined }),
      report: fc.constant(undefined),
      heldReason: optText,
      interrupted: fc.constantFrom(undefined, "before-final-dot" as const, "after-final-dot" as const),
      updatedAt: time,
    });
    fc.assert(
      fc.property(entry, (e) => {
        expect(decodeEntry(encodeEntry(e), "x")).toEqual(e);
      }),
      { numRuns: 200 },
    );
  });
});

describe("a record that cannot be read", () => {
  it("not JSON: corrupt, saying it may be truncated, with the parser's error as cause and the id", () => {
    const e = refusal("{not json", "m-1");
    expect(e.reason).toBe("corrupt");
    expect(e.id).toBe("m-1");
    expect(e.message).toMatch(/^spool\/queue\/m-1\/message\.json: the record is not valid JSON \(.+\); it may be truncated$/);
    expect(e.cause).toBeInstanceOf(SyntaxError);
    expect(e.message).toContain((e.cause as Error).message);
    expect(refusal(Buffer.from("")).id).toBeUndefined();
  });

  it("every truncation of a record is refused as corrupt", () => {
    const bytes = encodeEntry(ENTRY);
    // Cut before the final "}" (the LF after it may go: JSON allows no trailing white space to be required).
    const end = bytes.lastIndexOf("}");
    for (let n = 0; n < end; n++) {
      const e = refusal(bytes.subarray(0, n));
      expect(e.reason, `cut at ${n}`).toBe("corrupt");
    }
    expect(decodeEntry(bytes.subarray(0, end + 1), "x")).toEqual(ENTRY);
  });

  it("no format version, or one that is not a whole number from 1: corrupt", () => {
    for (const format of [DELETE, null, 0, -1, 1.5, "1", true]) {
      const e = refusal(recordWith({ format }), "m-1");
      expect(e.reason, String(format)).toBe("corrupt");
      expect(e.message).toBe("spool/queue/m-1/message.json: the record has no format version");
      expect(e.id).toBe("m-1");
    }
    for (const value of ["null", "[]", "3", '"text"']) expect(refusal(value).message).toMatch(/no format version$/);
  });

  it("recordFormat reads the version only when it is a whole number from 1", () => {
    expect(recordFormat({ format: 1 })).toBe(1);
    expect(recordFormat({ format: 7 })).toBe(7);
    for (const value of [null, undefined, 1, "x", [], {}, { format: 0 }, { format: -2 }, { format: 2.5 }, { format: "2" }, { format: Infinity }]) {
      expect(recordFormat(value), JSON.stringify(value)).toBeUndefined();
    }
  });

  it("a newer format: version, left alone; the format this missive writes is read", () => {
    const e = refusal(recordWith({ format: STORE_FORMAT + 1, state: "nonsense" }), "m-1");
    expect(e.reason).toBe("version");
    expect(e.id).toBe("m-1");
    expect(e.message).toBe(
      `spool/queue/m-1/message.json: the record is in format ${STORE_FORMAT + 1}, written by a newer missive; this one reads format ${STORE_FORMAT} (upgrade missive to handle it; it is left as it is)`,
    );
    expect(decodeEntry(recordWith({ format: STORE_FORMAT }), "x").id).toBe("m-1");
  });

  it("a required field missing or of the wrong type: corrupt, naming the field", () => {
    const required: Record<string, unknown[]> = {
      id: [DELETE, null, 1],
      state: [DELETE, null, 3, "lost", "QUEUED"],
      messageId: [DELETE, 1],
      date: [DELETE, 0],
      subject: [DELETE, []],
      smtputf8: [DELETE, null, "true", 1],
      eightBit: [DELETE, 0],
      unsigned: [DELETE, "false"],
      headerLength: [DELETE, null, "120", HUGE],
      size: [DELETE, "200", HUGE],
      enqueuedAt: [DELETE, "0"],
      priority: [DELETE, null],
      attempts: [DELETE, "0", true],
      updatedAt: [DELETE, {}],
      pending: [DELETE, null, "bob", [1], ["a", null]],
      accepted: [DELETE, {}, [2]],
      rejected: [DELETE, null, "none", {}],
    };
    for (const [field, values] of Object.entries(required)) {
      for (const value of values) corruptField({ [field]: value }, field);
    }
  });

  it("an optional field of the wrong type: corrupt, naming the field", () => {
    const optional: Record<string, unknown[]> = {
      route: [1, false, {}],
      idempotencyKey: [2],
      heldReason: [[]],
      notBefore: ["5", HUGE],
      nextAttemptAt: ["7", true, HUGE],
      lastError: ["boom", 3, [], true],
      report: ["sent", ["a"]],
      interrupted: ["during", 1, "before-final-dot "],
    };
    for (const [field, values] of Object.entries(optional)) {
      for (const value of values) corruptField({ [field]: value }, field);
    }
  });

  it("an envelope or fields that are not what a store writes: corrupt, naming them", () => {
    for (const envelope of [DELETE, null, "ann", [], { to: ["b"] }, { from: 1, to: ["b"] }, { from: "a" }, { from: "a", to: "b" }, { from: "a", to: [1] }, { from: "a", to: [null] }]) {
      corruptField({ envelope }, "envelope");
    }
    for (const fields of [DELETE, null, "x", [], {}, { headers: null }, { headers: "subject" }]) corruptField({ fields }, "fields");
    expect(decodeEntry(recordWith({ envelope: { from: "", to: [] } }), "x").envelope).toStrictEqual({ from: "", to: [] });
  });
});
