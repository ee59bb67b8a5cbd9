/**
 * What the message constructor and its methods take from a JavaScript caller (no type
 * checker): unknown keys are refused, Django's None is an empty body or subject, a Date is
 * a header value, and attachAlternative says what it needs.
 */
import { describe, expect, it } from "vitest";
import { InvalidAddressError, InvalidArgumentError } from "../../src/errors.js";
import { EmailMessage, EmailMultiAlternatives } from "../../src/mime/message.js";
import { parseOneWithPython } from "../helpers/python-oracle.js";
import { errorOf } from "../helpers/errors.js";
import { FIXED_DATE, seededRandom } from "./fixture-cases.js";

const base = () => ({ subject: "s", body: "b", from: "ann@example.com", to: ["bob@example.org"], clock: () => FIXED_DATE, random: seededRandom("options") });
const headerBlock = (bytes: Buffer) => bytes.toString("latin1").slice(0, bytes.indexOf("\r\n\r\n") + 2);
/** Options as a JSON config file or a JavaScript caller would give them. */
const fromJson = (json: string) => JSON.parse(json) as never;

describe("unknown option keys are refused, naming the key and the known ones", () => {
  it("EmailMessage: a typo'd key from a plain object", () => {
    const e = errorOf(() => new EmailMessage(fromJson('{"subject":"s","body":"b","prioritty":"high"}')));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toMatch(/^Unknown EmailMessage option "prioritty" \(did you mean "priority"\?\); known: subject, body, from, to, .*listUnsubscribe.*priority$/);
  });

  it("EmailMultiAlternatives too, and a key nothing is near gets no suggestion", () => {
    const e = errorOf(() => new EmailMultiAlternatives(fromJson('{"subject":"s","template":"x"}')));
    expect(e.message).toMatch(/^Unknown EmailMessage option "template"; known: /);
  });

  it("alternatives on an EmailMessage (one body) is refused rather than dropped", () => {
    const e = errorOf(() => new EmailMessage({ alternatives: [{ content: "<p>x</p>", mimetype: "text/html" }] }));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toMatch(/EmailMultiAlternatives/);
    expect(new EmailMultiAlternatives({ alternatives: [{ content: "<p>x</p>", mimetype: "text/html" }] }).alternatives).toHaveLength(1);
  });

  it("a non-object is refused with its kind, never its text", () => {
    const e = errorOf(() => new EmailMessage("-----BEGIN CERTIFICATE-----\nMIIB...\n" as never));
    expect(e.message).toMatch(/options object .* got a string of \d+ characters/);
    expect(e.message).not.toContain("BEGIN");
  });

  it("attachment objects, in attach() and in the attachments option", () => {
    const attachment = fromJson('{"filename":"a.txt","content":"hi","mimeType":"text/plain"}');
    expect(errorOf(() => new EmailMessage().attach(attachment)).message).toMatch(/^Unknown attachment key "mimeType" \(did you mean "mimetype"\?\); known: filename, content, mimetype, disposition, contentId$/);
    expect(errorOf(() => new EmailMessage({ attachments: [attachment] })).message).toMatch(/Unknown attachment key "mimeType"/);
    expect(errorOf(() => (new EmailMessage().attachments = [attachment])).message).toMatch(/Unknown attachment key "mimeType"/);
  });

  it("alternative objects, attachFile and send options", async () => {
    expect(errorOf(() => new EmailMultiAlternatives().attachAlternative(fromJson('{"content":"<p>x</p>","type":"text/html"}'))).message).toMatch(/^Unknown alternative key "type"/);
    expect(errorOf(() => new EmailMultiAlternatives({ alternatives: [fromJson('{"content":"x","mimetype":"text/html","charset":"utf-8"}')] })).message).toMatch(/Unknown alternative key "charset"/);
    expect(errorOf(() => new EmailMessage().attachFile("/nonexistent.txt", undefined, fromJson('{"contentID":"logo"}'))).message).toMatch(/^Unknown attachFile option "contentID" \(did you mean "contentId"\?\)/);
    await expect(new EmailMessage({ ...base() }).send(fromJson('{"failSilenty":true}'))).rejects.toThrow(/^Unknown send option "failSilenty" \(did you mean "failSilently"\?\)/);
  });

  it("nested list options keep their own check (listUnsubscribe keys)", () => {
    expect(() => new EmailMessage(fromJson('{"listUnsubscribe":{"url":"https://example.com/u","oneclick":true}}'))).toThrow(/listUnsubscribe takes url, mailto and oneClick, not "oneclick"/);
  });
});

describe("body and subject: null or undefined is empty (Django's None)", () => {
  it("in the constructor and on assignment", async () => {
    const msg = new EmailMessage({ ...base(), subject: null, body: null });
    expect(msg.subject).toBe("");
    expect(msg.body).toBe("");
    msg.subject = "x";
    msg.body = "y";
    msg.subject = undefined;
    msg.body = null;
    expect([msg.subject, msg.body]).toEqual(["", ""]);
    expect(headerBlock(await msg.asBytes())).toContain("Subject: \r\n");
  });

  it("any other non-string is still refused", () => {
    expect(() => new EmailMessage({ body: 5 as never })).toThrow(/body must be a string/);
    expect(() => new EmailMessage({ subject: ["a"] as never })).toThrow(/subject must be a string/);
  });
});

describe("a Date as a header value", () => {
  const when = new Date(Date.UTC(2027, 0, 2, 3, 4, 5));

  it("is written as an RFC 5322 date in UTC, like the Date header missive adds (byte-exact)", async () => {
    const msg = new EmailMessage({ ...base(), headers: { Date: when, Expires: new Date(Date.UTC(2027, 11, 31, 23, 59, 59)) } });
    expect(msg.headers).toEqual({ Date: "Sat, 2 Jan 2027 03:04:05 +0000", Expires: "Fri, 31 Dec 2027 23:59:59 +0000" });
    const head = headerBlock(await msg.asBytes());
    expect(head).toContain("\r\nDate: Sat, 2 Jan 2027 03:04:05 +0000\r\n");
    expect(head).toContain("\r\nExpires: Fri, 31 Dec 2027 23:59:59 +0000\r\n");
    expect(head.match(/^Date:/gm)).toHaveLength(1);
    // The generated Date header has the same form (the injected clock is UTC too).
    expect(headerBlock(await new EmailMessage(base()).asBytes())).toContain("\r\nDate: Sat, 21 Nov 2026 09:30:00 +0000\r\n");
  });

  it("Python's email package reads it as the same instant", async () => {
    const parsed = await parseOneWithPython(await new EmailMessage({ ...base(), headers: { Date: when } }).asBytes());
    expect(new Date(parsed.dateIso!).getTime()).toBe(when.getTime());
  });

  it("an invalid Date is refused when set", () => {
    expect(() => new EmailMessage({ headers: { Date: new Date(Number.NaN) } })).toThrow(/header Date is an invalid Date/);
  });
});

describe("attachAlternative needs both arguments", () => {
  it.each([
    ["a null MIME type", ["<p>Hi</p>", null], /^attachAlternative\(content, mimetype\) needs a MIME type such as "text\/html", got null$/],
    ["no MIME type", ["<p>Hi</p>"], /needs a MIME type such as "text\/html", got undefined$/],
    ["an empty MIME type", ["<p>Hi</p>", ""], /needs a MIME type such as "text\/html", got ""$/],
    ["no content", [], /^attachAlternative\(content, mimetype\) needs the content as a string or bytes, got undefined$/],
    ["null content", [null, "text/html"], /needs the content as a string or bytes, got null$/],
    ["an object without a MIME type", [{ content: "<p>x</p>" }], /^attachAlternative\(\{ content, mimetype \}\) needs a MIME type/],
  ])("%s is an InvalidArgumentError saying what is needed", (_name, args, message) => {
    const alt = new EmailMultiAlternatives();
    const e = errorOf(() => (alt.attachAlternative as (...a: unknown[]) => unknown)(...args));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toMatch(message);
    expect(alt.alternatives).toHaveLength(0);
  });
});

describe("a local part alone (Django #15042) is refused with what to write instead", () => {
  it.each([
    ["From", { from: "tester", to: ["bob@example.org"] }],
    ["To", { from: "ann@example.com", to: ["localpartonly"] }],
    ["To, in a list string", { from: "ann@example.com", to: "bob@example.org, tester" }],
  ])("%s", async (_field, fields) => {
    const e = await (async () => {
      try {
        await new EmailMessage({ ...base(), ...fields }).asBytes();
      } catch (error) {
        return error as Error;
      }
      throw new Error("expected a refusal");
    })();
    expect(e).toBeInstanceOf(InvalidAddressError);
    expect(e.message).toMatch(/missing "@" in "(tester|localpartonly)" at offset \d+: an address needs a domain \(RFC 5322 addr-spec is local-part@domain\); write "\1@example\.com", or "\1@localhost" for a mailbox on this machine$/);
  });
});
