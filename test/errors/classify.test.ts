/**
 * classify(error) as a table: stage × reply code × error kind → verdict, and `retryable`
 * (the transient column). Every row builds the error the client would throw there.
 */
import { describe, expect, it } from "vitest";
import {
  AbortError,
  BackendError,
  BadHeaderError,
  CircuitOpenError,
  ConfigurationError,
  InvalidArgumentError,
  MissiveError,
  RateLimitedError,
  SmtpAuthError,
  SmtpCapabilityError,
  SmtpClosedError,
  SmtpConnectError,
  SmtpDeliveryUnknownError,
  SmtpError,
  SmtpProtocolError,
  SmtpRecipientsRefusedError,
  SmtpTimeoutError,
  SmtpTlsError,
  recordStage,
  type SmtpStage,
} from "../../src/errors.js";
import { CLASSIFICATION_RULES, classification, classify, recipientVerdict, type Verdict } from "../../src/errors/classify.js";

const reply = (code: number) => ({ code, lines: ["x"], text: "x" });
const at = <E>(error: E, stage: SmtpStage, bodySent = false): E => recordStage(error, stage, bodySent);
const errno = (code: string) => Object.assign(new Error(code), { code });
const refused = (...codes: number[]) => new SmtpRecipientsRefusedError(codes.map((c, i) => ({ address: `r${i}@x.org`, reply: reply(c) })));

// [what, error, verdict, transient (= retryable)]
const table: [string, unknown, Verdict, boolean][] = [
  // route level: another server may work
  ["connect: refused (ECONNREFUSED)", at(new SmtpConnectError("x", { cause: errno("ECONNREFUSED") }), "connect"), "next-route", true],
  ["connect: name does not resolve (ENOTFOUND)", at(new SmtpConnectError("x", { cause: errno("ENOTFOUND") }), "connect"), "next-route", false],
  ["connect: timeout", at(new SmtpTimeoutError("connect", 10), "connect"), "next-route", true],
  ["connect failure without a stage (the connection used alone): name does not resolve", new SmtpConnectError("x", { cause: errno("EAI_NONAME") }), "next-route", false],
  ["connect failure without a stage: refused", new SmtpConnectError("x", { cause: errno("ECONNREFUSED") }), "next-route", true],
  ["greeting 421", at(new SmtpConnectError("x", { reply: reply(421) }), "greeting"), "next-route", true],
  ["greeting 554", at(new SmtpConnectError("x", { reply: reply(554) }), "greeting"), "next-route", false],
  ["greeting never came (timeout)", at(new SmtpTimeoutError("greeting", 10), "greeting"), "next-route", true],
  ["closed before the greeting", at(new SmtpConnectError("x", { cause: new SmtpClosedError("x") }), "greeting"), "next-route", true],
  ["EHLO 554", at(new SmtpError("x", { reply: reply(554) }), "ehlo"), "next-route", false],
  ["EHLO reply trickled past its deadline", at(new SmtpTimeoutError("command", 10), "ehlo"), "next-route", true],
  ["EHLO reply malformed", at(new SmtpProtocolError("x"), "ehlo"), "next-route", true],
  ["STARTTLS refused 454", at(new SmtpTlsError("x", { reply: reply(454) }), "tls"), "next-route", true],
  ["STARTTLS refused 554", at(new SmtpTlsError("x", { reply: reply(554) }), "tls"), "next-route", false],
  ["STARTTLS not offered", at(new SmtpTlsError("x"), "tls"), "next-route", false],
  ["TLS: untrusted certificate", at(new SmtpTlsError("x", { tlsCode: "DEPTH_ZERO_SELF_SIGNED_CERT" }), "tls"), "next-route", false],
  ["TLS: reset during the handshake (ECONNRESET)", at(new SmtpTlsError("x", { tlsCode: "ECONNRESET" }), "tls"), "next-route", true],
  ["TLS: closed during the handshake", at(new SmtpTlsError("x", { cause: new SmtpClosedError("x") }), "tls"), "next-route", true],
  ["TLS: handshake timeout", at(new SmtpTimeoutError("tls", 10), "tls"), "next-route", true],
  ["AUTH 535", at(new SmtpAuthError("x", { reply: reply(535) }), "auth"), "next-route", false],
  ["AUTH 454", at(new SmtpAuthError("x", { reply: reply(454) }), "auth"), "next-route", true],
  ["AUTH in plaintext refused", at(new SmtpAuthError("x"), "auth"), "next-route", false],
  ["no extension the message needs", new SmtpCapabilityError("SMTPUTF8", "x"), "next-route", false],
  ["a rate limit with no token within maxWait", new RateLimitedError("bulk", 5000, 1000), "next-route", true],
  ["every route's circuit open", new CircuitOpenError(["primary", "secondary"], 30_000), "next-route", true],
  // per message: the same server, later
  ["MAIL 451", at(new SmtpError("x", { reply: reply(451) }), "mail"), "retry-here", true],
  ["RCPT all 452", at(refused(452, 451), "rcpt"), "retry-here", true],
  ["DATA 451", at(new SmtpError("x", { reply: reply(451) }), "data"), "retry-here", true],
  ["DATA answered 250", at(new SmtpError("x", { reply: reply(250) }), "data"), "retry-here", true],
  ["421 at MAIL", at(new SmtpError("x", { reply: reply(421) }), "mail"), "retry-here", true],
  ["421 after the final dot", at(new SmtpError("x", { reply: reply(421) }), "final-dot", true), "retry-here", true],
  ["451 after the final dot", at(new SmtpError("x", { reply: reply(451) }), "final-dot", true), "retry-here", true],
  ["drop at MAIL", at(new SmtpClosedError("x"), "mail"), "retry-here", true],
  ["drop during the body", at(new SmtpClosedError("x"), "body", true), "retry-here", true],
  ["data-block timeout", at(new SmtpTimeoutError("data", 10), "body", true), "retry-here", true],
  ["a reply nobody asked for, mid-body", at(new SmtpProtocolError("x", { reply: reply(250) }), "body", true), "retry-here", true],
  ["a closed connection found before the message", at(new SmtpClosedError("x"), "noop"), "retry-here", true],
  ["a connection closed without a stage (the pool closing)", new SmtpClosedError("x"), "retry-here", true],
  // for good
  ["MAIL 553", at(new SmtpError("x", { reply: reply(553) }), "mail"), "give-up", false],
  ["RCPT all refused, some 5xx", at(refused(550, 452), "rcpt"), "give-up", false],
  ["DATA 554", at(new SmtpError("x", { reply: reply(554) }), "data"), "give-up", false],
  ["552 after the final dot", at(new SmtpError("x", { reply: reply(552) }), "final-dot", true), "give-up", false],
  ["bad header", new BadHeaderError("Subject", "x"), "give-up", false],
  ["bad argument", new InvalidArgumentError("x"), "give-up", false],
  ["bad setting", new ConfigurationError("port", "x"), "give-up", false],
  ["aborted", new AbortError(), "give-up", false],
  ["a bug (plain Error)", new Error("Internal error"), "give-up", false],
  ["a TypeError", new TypeError("x"), "give-up", false],
  ["not an error at all", "oops", "give-up", false],
  ["a backend's failure", new BackendError("disk full"), "give-up", false],
  ["a backend's failure it calls transient", new BackendError("rate limited", { retryable: true }), "retry-here", true],
  // unknown: may have been delivered
  ["final dot sent, no reply", at(new SmtpDeliveryUnknownError("x", { cause: new SmtpTimeoutError("final-dot", 10) }), "final-dot", true), "unknown", false],
  ["final dot sent, no reply (not yet wrapped)", at(new SmtpTimeoutError("final-dot", 10), "final-dot", true), "unknown", false],
];

describe("classify", () => {
  it.each(table)("%s → %s", (_what, error, verdict, transient) => {
    expect(classify(error)).toBe(verdict);
    expect(classification(error).transient).toBe(transient);
    if (error instanceof MissiveError) {
      expect(error.retryable).toBe(transient);
      expect(error.classification.verdict).toBe(verdict);
    }
  });

  it("every row of the table is reached by a case above (no dead rows)", () => {
    const reached = new Set(table.map(([, error]) => classification(error).rule));
    const rows = CLASSIFICATION_RULES.map((r) => r.rule).filter((r) => r !== "anything else");
    const unreached = rows.filter((r) => !reached.has(r));
    expect(unreached).toEqual([]);
  });

  it("routeFault: a next-route verdict about the route counts toward its circuit; one about this message does not", () => {
    const faults: [unknown, boolean][] = [
      [at(new SmtpConnectError("x", { cause: errno("ECONNREFUSED") }), "connect"), true],
      [at(new SmtpConnectError("x", { reply: reply(421) }), "greeting"), true],
      [at(new SmtpAuthError("x", { reply: reply(535) }), "auth"), true],
      [at(new SmtpTlsError("x", { tlsCode: "DEPTH_ZERO_SELF_SIGNED_CERT" }), "tls"), true],
      [new SmtpCapabilityError("SMTPUTF8", "x"), false],
      [new RateLimitedError("bulk", 5000, 1000), false],
      [new CircuitOpenError(["a"], undefined), false],
      [at(new SmtpError("x", { reply: reply(451) }), "mail"), false],
      [at(new SmtpError("x", { reply: reply(550) }), "mail"), false],
      [new BackendError("transient", { retryable: true }), false],
    ];
    for (const [error, fault] of faults) expect(classification(error).routeFault, String((error as Error).message)).toBe(fault);
  });

  it("recipientVerdict: 2xx accepted, 452 4.5.3 over the server's limit, other 4xx deferred, 5xx rejected", () => {
    expect(recipientVerdict({ code: 250 })).toBe("accepted");
    expect(recipientVerdict({ code: 251, enhancedCode: "2.1.5" })).toBe("accepted");
    expect(recipientVerdict({ code: 452, enhancedCode: "4.5.3" })).toBe("over-limit");
    expect(recipientVerdict({ code: 452, enhancedCode: "4.2.2" })).toBe("deferred");
    expect(recipientVerdict({ code: 452 })).toBe("deferred");
    expect(recipientVerdict({ code: 450 })).toBe("deferred");
    expect(recipientVerdict({ code: 550, enhancedCode: "5.1.1" })).toBe("rejected");
    expect(recipientVerdict({ code: 354 })).toBe("rejected");
  });

  it("retryAfter: kept on the error when given, in toJSON, never negative", () => {
    expect(new BackendError("slow down", { retryable: true, retryAfter: 1500 }).retryAfter).toBe(1500);
    expect(new BackendError("slow down", { retryAfter: 1500 }).toJSON()).toMatchObject({ retryAfter: 1500 });
    expect(new BackendError("x", { retryAfter: -1 }).retryAfter).toBeUndefined();
    expect(new RateLimitedError("bulk", 2499.2, 1000).retryAfter).toBe(2500);
    expect("retryAfter" in new BackendError("x").toJSON()).toBe(false);
  });

  it("is pure: the same error, the same answer; reading it changes nothing", () => {
    const error = at(new SmtpError("x", { reply: reply(451) }), "mail");
    const before = JSON.stringify(error);
    expect([classify(error), classify(error)]).toEqual(["retry-here", "retry-here"]);
    expect(JSON.stringify(error)).toBe(before);
  });

  it("retryable shows in toJSON, from the table", () => {
    expect(at(new SmtpClosedError("x"), "mail").toJSON()).toMatchObject({ code: "ECLOSED", retryable: true, stage: "mail", bodySent: false });
    expect(new SmtpDeliveryUnknownError("x").toJSON()).toMatchObject({ retryable: false });
  });
});
