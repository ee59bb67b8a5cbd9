/**
 * The sending functions refuse option keys they do not know (a JavaScript caller, or options
 * read from a config file, has no type checker), and take Django's None for body and subject.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deliver, deliverMany, mailAdmins, mailManagers, sendMail, sendMassMail } from "../../src/api.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { configure, resetSettings } from "../../src/settings.js";
import { outbox, setupTestMail } from "../../src/testing.js";
import { rejection } from "../helpers/errors.js";

const fromJson = (json: string) => JSON.parse(json) as never;
let restore: () => void;
beforeEach(() => {
  restore = setupTestMail();
  configure({ admins: ["admin@example.com"], managers: ["manager@example.com"] });
});
afterEach(() => {
  restore();
  resetSettings();
});

describe("unknown option keys", () => {
  it.each([
    ["sendMail", () => sendMail(fromJson('{"subject":"s","message":"m","to":["a@example.com"],"fail_silently":true}')), /^Unknown sendMail option "fail_silently" \(did you mean "failSilently"\?\); known: subject, message, from, .*authPassword, connection$/],
    ["sendMail, a message field", () => sendMail(fromJson('{"subject":"s","body":"m","to":["a@example.com"]}')), /^Unknown sendMail option "body"; known: /],
    ["sendMassMail", () => sendMassMail([["s", "m", null, ["a@example.com"]]], fromJson('{"conection":null}')), /^Unknown sendMassMail option "conection" \(did you mean "connection"\?\); known: failSilently, authUser, authPassword, connection$/],
    ["mailAdmins", () => mailAdmins("s", "m", fromJson('{"htm":"<p>x</p>"}')), /^Unknown mailAdmins option "htm" \(did you mean "html"\?\); known: html, failSilently, connection$/],
    ["mailManagers", () => mailManagers("s", "m", fromJson('{"failsilently":true}')), /^Unknown mailManagers option "failsilently" \(did you mean "failSilently"\?\)/],
    ["deliver fields", () => deliver(fromJson('{"subject":"s","message":"m","to":["a@example.com"],"prority":"high"}')), /^Unknown deliver field "prority" \(did you mean "priority"\?\)/],
    ["deliverMany options", () => deliverMany([new EmailMessage({ to: "a@example.com" })], fromJson('{"retries":3}')), /^Unknown deliver option "retries"; known: connection, signal, retry, observer$/],
  ])("%s: InvalidArgumentError naming the key and the known ones, nothing sent", async (_name, call, message) => {
    const error = await rejection(call());
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toMatch(message);
    expect(outbox).toHaveLength(0);
  });

  it("the known keys still work", async () => {
    expect(await sendMail({ subject: "s", message: "m", to: ["a@example.com"], failSilently: false, priority: "high" })).toBe(1);
    expect(await mailAdmins("s", "m", { html: "<p>m</p>" })).toBe(1);
    expect(outbox).toHaveLength(2);
  });
});

describe("Django's None", () => {
  it("sendMail with message: null and subject: null sends an empty body and subject", async () => {
    expect(await sendMail({ subject: null, message: null, to: ["a@example.com"] })).toBe(1);
    expect(outbox[0]!.subject).toBe("");
    expect(outbox[0]!.body).toBe("");
  });
});
