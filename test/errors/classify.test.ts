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
  EncodingError,
  InvalidAddressError,
  InvalidArgumentError,
  MailCatcherTimeoutError,
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

// [what, error, verdict, transient (= retryable), words of the row that decided]
const table: [string, unknown, Verdict, boolean, string][] = [
  // route level: another server may work
  ["connect: refused (ECONNREFUSED)", at(new SmtpConnectError("x", { cause: errno("ECONNREFUSED") }), "connect"), "next-route", true, "cannot connect, dropped"],
  ["connect: name does not resolve (ENOTFOUND)", at(new SmtpConnectError("x", { cause: errno("ENOTFOUND") }), "connect"), "next-route", false, "does not resolve"],
  ["connect: timeout", at(new SmtpTimeoutError("connect", 10), "connect"), "next-route", true, "cannot connect, dropped"],
  ["connect failure without a stage (the connection used alone): name does not resolve", new SmtpConnectError("x", { cause: errno("EAI_NONAME") }), "next-route", false, "does not resolve"],
  ["connect failure without a stage: refused", new SmtpConnectError("x", { cause: errno("ECONNREFUSED") }), "next-route", true, "cannot connect, dropped"],
  ["greeting 421", at(new SmtpConnectError("x", { reply: reply(421) }), "greeting"), "next-route", true, "answered 4xx"],
  ["greeting 554", at(new SmtpConnectError("x", { reply: reply(554) }), "greeting"), "next-route", false, "answered 5xx"],
  ["greeting never came (timeout)", at(new SmtpTimeoutError("greeting", 10), "greeting"), "next-route", true, "cannot connect, dropped"],
  ["closed before the greeting", at(new SmtpConnectError("x", { cause: new SmtpClosedError("x") }), "greeting"), "next-route", true, "cannot connect, dropped"],
  ["EHLO 554", at(new SmtpError("x", { reply: reply(554) }), "ehlo"), "next-route", false, "answered 5xx"],
  ["EHLO reply trickled past its deadline", at(new SmtpTimeoutError("command", 10), "ehlo"), "next-route", true, "cannot connect, dropped"],
  ["EHLO reply malformed", at(new SmtpProtocolError("x"), "ehlo"), "next-route", true, "cannot connect, dropped"],
  ["STARTTLS refused 454", at(new SmtpTlsError("x", { reply: reply(454) }), "tls"), "next-route", true, "answered 4xx"],
  ["STARTTLS refused 554", at(new SmtpTlsError("x", { reply: reply(554) }), "tls"), "next-route", false, "answered 5xx"],
  ["STARTTLS not offered", at(new SmtpTlsError("x"), "tls"), "next-route", false, "certificate, version"],
  ["TLS: untrusted certificate", at(new SmtpTlsError("x", { tlsCode: "DEPTH_ZERO_SELF_SIGNED_CERT" }), "tls"), "next-route", false, "certificate, version"],
  ["TLS: reset during the handshake (ECONNRESET)", at(new SmtpTlsError("x", { tlsCode: "ECONNRESET" }), "tls"), "next-route", true, "during the handshake"],
  ["TLS: closed during the handshake", at(new SmtpTlsError("x", { cause: new SmtpClosedError("x") }), "tls"), "next-route", true, "during the handshake"],
  ["TLS: handshake timeout", at(new SmtpTimeoutError("tls", 10), "tls"), "next-route", true, "cannot connect, dropped"],
  ["AUTH 535", at(new SmtpAuthError("x", { reply: reply(535) }), "auth"), "next-route", false, "answered 5xx"],
  ["AUTH 454", at(new SmtpAuthError("x", { reply: reply(454) }), "auth"), "next-route", true, "answered 4xx"],
  ["AUTH in plaintext refused", at(new SmtpAuthError("x"), "auth"), "next-route", false, "AUTH impossible"],
  ["no extension the message needs", new SmtpCapabilityError("SMTPUTF8", "x"), "next-route", false, "lacks an extension"],
  ["a rate limit with no token within maxWait", new RateLimitedError("bulk", 5000, 1000), "next-route", true, "rate limit"],
  ["every route's circuit open", new CircuitOpenError(["primary", "secondary"], 30_000), "next-route", true, "circuit is open"],
  // per message: the same server, later
  ["MAIL 451", at(new SmtpError("x", { reply: reply(451) }), "mail"), "retry-here", true, "4xx to the message"],
  ["RCPT all 452", at(refused(452, 451), "rcpt"), "retry-here", true, "all with 4xx"],
  ["DATA 451", at(new SmtpError("x", { reply: reply(451) }), "data"), "retry-here", true, "4xx to the message"],
  ["DATA answered 250", at(new SmtpError("x", { reply: reply(250) }), "data"), "retry-here", true, "odd 2xx/3xx"],
  ["421 at MAIL", at(new SmtpError("x", { reply: reply(421) }), "mail"), "retry-here", true, "421: the server is closing"],
  ["421 after the final dot", at(new SmtpError("x", { reply: reply(421) }), "final-dot", true), "retry-here", true, "421: the server is closing"],
  ["451 after the final dot", at(new SmtpError("x", { reply: reply(451) }), "final-dot", true), "retry-here", true, "4xx to the message"],
  ["drop at MAIL", at(new SmtpClosedError("x"), "mail"), "retry-here", true, "before the final dot"],
  ["drop during the body", at(new SmtpClosedError("x"), "body", true), "retry-here", true, "before the final dot"],
  ["data-block timeout", at(new SmtpTimeoutError("data", 10), "body", true), "retry-here", true, "before the final dot"],
  ["a reply nobody asked for, mid-body", at(new SmtpProtocolError("x", { reply: reply(250) }), "body", true), "retry-here", true, "odd 2xx/3xx"],
  ["a closed connection found before the message", at(new SmtpClosedError("x"), "noop"), "retry-here", true, "before the final dot"],
  ["a connection closed without a stage (the pool closing)", new SmtpClosedError("x"), "retry-here", true, "before the final dot"],
  // for good
  ["MAIL 553", at(new SmtpError("x", { reply: reply(553) }), "mail"), "give-up", false, "5xx to the message"],
  ["RCPT all refused, some 5xx", at(refused(550, 452), "rcpt"), "give-up", false, "some for good"],
  ["DATA 554", at(new SmtpError("x", { reply: reply(554) }), "data"), "give-up", false, "5xx to the message"],
  ["552 after the final dot", at(new SmtpError("x", { reply: reply(552) }), "final-dot", true), "give-up", false, "5xx to the message"],
  ["bad header", new BadHeaderError("Subject", "x"), "give-up", false, "bad input"],
  ["bad argument", new InvalidArgumentError("x"), "give-up", false, "bad input"],
  ["bad setting", new ConfigurationError("port", "x"), "give-up", false, "bad input"],
  ["aborted", new AbortError(), "give-up", false, "cancelled"],
  ["a bug (plain Error)", new Error("Internal error"), "give-up", false, "not a missive error"],
  ["a TypeError", new TypeError("x"), "give-up", false, "not a missive error"],
  ["not an error at all", "oops", "give-up", false, "not a missive error"],
  ["a backend's failure", new BackendError("disk full"), "give-up", false, "a backend's own failure ("],
  ["a backend's failure it calls transient", new BackendError("rate limited", { retryable: true }), "retry-here", true, "transient by its word"],
  // unknown: may have been delivered
  ["final dot sent, no reply", at(new SmtpDeliveryUnknownError("x", { cause: new SmtpTimeoutError("final-dot", 10) }), "final-dot", true), "unknown", false, "final dot sent, no reply"],
  ["final dot sent, no reply (not yet wrapped)", at(new SmtpTimeoutError("final-dot", 10), "final-dot", true), "unknown", false, "no reply after the final dot"],
  // each socket error that means "the network dropped it" during the TLS handshake
  ...["ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT", "ENETRESET", "EHOSTUNREACH", "ENETUNREACH"].map(
    (code): [string, unknown, Verdict, boolean, string] => [`TLS: ${code} during the handshake`, at(new SmtpTlsError("x", { tlsCode: code }), "tls"), "next-route", true, "during the handshake"],
  ),
  ["TLS: an unknown socket error during the handshake", at(new SmtpTlsError("x", { tlsCode: "EWHATEVER" }), "tls"), "next-route", false, "certificate, version"],
  ["connect: EINVAL (a name that is no host name)", at(new SmtpConnectError("x", { cause: errno("EINVAL") }), "connect"), "next-route", false, "does not resolve"],
  ["connect stage, not a connect error, name does not resolve", at(new SmtpClosedError("x", { cause: errno("ENOTFOUND") }), "connect"), "next-route", false, "does not resolve"],
  ["a socket error EINVAL after connecting is not a name problem", at(new SmtpClosedError("x", { cause: errno("EINVAL") }), "mail"), "retry-here", true, "before the final dot"],
  ["closed at the greeting, the socket said ECONNRESET", at(new SmtpConnectError("x", { cause: errno("ECONNRESET") }), "greeting"), "next-route", true, "cannot connect, dropped"],
  // the 4xx and 5xx bounds, exactly
  ["MAIL 400", at(new SmtpError("x", { reply: reply(400) }), "mail"), "retry-here", true, "4xx to the message"],
  ["MAIL 499", at(new SmtpError("x", { reply: reply(499) }), "mail"), "retry-here", true, "4xx to the message"],
  ["MAIL 500", at(new SmtpError("x", { reply: reply(500) }), "mail"), "give-up", false, "5xx to the message"],
  ["MAIL 399 (an odd reply)", at(new SmtpError("x", { reply: reply(399) }), "mail"), "retry-here", true, "odd 2xx/3xx"],
  ["greeting 400", at(new SmtpConnectError("x", { reply: reply(400) }), "greeting"), "next-route", true, "answered 4xx"],
  ["greeting 499", at(new SmtpConnectError("x", { reply: reply(499) }), "greeting"), "next-route", true, "answered 4xx"],
  ["greeting 500", at(new SmtpConnectError("x", { reply: reply(500) }), "greeting"), "next-route", false, "answered 5xx"],
  ["EHLO answered 250 where 220 was due (an odd reply at a route stage)", at(new SmtpError("x", { reply: reply(250) }), "ehlo"), "next-route", true, "cannot connect, dropped"],
  // the other kinds of bad input, and the rest
  ["bad address", new InvalidAddressError("a@", "x"), "give-up", false, "bad input"],
  ["bad encoding", new EncodingError("x"), "give-up", false, "bad input"],
  ["malformed reply at MAIL (no reply kept)", at(new SmtpProtocolError("x"), "mail"), "retry-here", true, "before the final dot"],
  ["RCPT refused with an empty list", at(new SmtpRecipientsRefusedError([]), "rcpt"), "give-up", false, "some for good"],
  ["the mail catcher's timeout (no row of its own)", new MailCatcherTimeoutError(100, 0), "give-up", false, "anything else"],
  ["a retryable hint on anything but a backend error is ignored", new MissiveError("EINVALID", "x", { retryable: true }), "give-up", false, "bad input"],
  ["a hint of false on a backend error", new BackendError("x", { retryable: false }), "give-up", false, "a backend's own failure ("],
  ["a missive error whose cause is null", at(new SmtpClosedError("x", { cause: null }), "mail"), "retry-here", true, "before the final dot"],
  ["a TLS error with a reply and a reset, no stage: the reply decides", new SmtpTlsError("x", { reply: reply(554), tlsCode: "ECONNRESET" }), "next-route", false, "certificate, version"],
  ["AUTH answered 250 where 235 or 334 was due (an odd reply): the route, for now", at(new SmtpAuthError("x", { reply: reply(250) }), "auth"), "next-route", true, "cannot connect, dropped"],
  ["a 451 whose cause is a closed connection is no TLS handshake", at(new SmtpError("x", { reply: reply(451), cause: new SmtpClosedError("x") }), "mail"), "retry-here", true, "4xx to the message"],
];

describe("classify", () => {
  it.each(table)("%s → %s", (_what, error, verdict, transient, rule) => {
    expect(classify(error)).toBe(verdict);
    expect(classification(error).transient).toBe(transient);
    expect(classification(error).rule).toContain(rule);
    if (error instanceof MissiveError) {
      expect(error.retryable).toBe(transient);
      expect(error.classification.verdict).toBe(verdict);
    }
  });

  it("every row of the table is reached by a case above (no dead rows)", () => {
    const reached = new Set(table.map(([, error]) => classification(error).rule));
    const rows = CLASSIFICATION_RULES.map((r) => r.rule);
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
    // the bounds of 2xx, exactly
    expect(recipientVerdict({ code: 200 })).toBe("accepted");
    expect(recipientVerdict({ code: 299 })).toBe("accepted");
    expect(recipientVerdict({ code: 199 })).toBe("rejected");
    expect(recipientVerdict({ code: 300 })).toBe("rejected");
    // 4.5.3 means "too many recipients" only with 452
    expect(recipientVerdict({ code: 451, enhancedCode: "4.5.3" })).toBe("deferred");
  });

  it("reads an error of another copy of missive by its brands (Symbol.for), and fields of the wrong type as absent", () => {
    const kinds = Symbol.for("missive.error.kinds");
    const hint = Symbol.for("missive.error.retryHint");
    const foreign = (fields: Record<string | symbol, unknown>, brands = ["SmtpError", "MissiveError"]) => ({ [kinds]: brands, message: "x", ...fields });
    expect(classification(foreign({ code: "EBACKEND", [hint]: true }, ["BackendError", "MissiveError"]))).toMatchObject({ verdict: "retry-here", transient: true });
    expect(classification(foreign({ code: "ECLOSED", stage: "mail" }))).toMatchObject({ verdict: "retry-here", rule: expect.stringContaining("before the final dot") });
    // a code that is no string: not a missive error after all
    expect(classification(foreign({ code: 42 })).rule).toContain("not a missive error");
    // an unbranded object with a code (a Node system error) is not a missive error either
    expect(classification(errno("ECLOSED")).rule).toContain("not a missive error");
    // a reply code given as a string is no reply code: "550" must not read as 5xx
    expect(classification(foreign({ code: "ECLOSED", stage: "mail", replyCode: "550" }))).toMatchObject({ verdict: "retry-here", transient: true });
    // refused recipients whose reply code is missing or no number count as refused for good
    const rcpt = (rejected: unknown[]) => foreign({ code: "ERCPT_REFUSED", stage: "rcpt", rejected });
    expect(classify(rcpt([{ reply: { code: 450 } }, { reply: { code: 451 } }]))).toBe("retry-here");
    expect(classify(rcpt([{ reply: { code: 450 } }, { reply: { code: "451" } }]))).toBe("give-up");
    expect(classify(rcpt([{ reply: { code: 450 } }, {}]))).toBe("give-up");
    // a cause that is null is no socket error and no closed connection
    expect(classification(foreign({ code: "ECONNECT", stage: "connect", cause: null }))).toMatchObject({ verdict: "next-route", transient: true });
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
