import { describe, expect, it } from "vitest";
import { inspect } from "node:util";
import { Credentials, CramMd5Mechanism, LoginMechanism, PlainMechanism, XOAuth2Mechanism, chooseMechanism } from "../../src/smtp/auth.js";
import { InvalidArgumentError, SmtpAuthError, SmtpCapabilityError } from "../../src/errors.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { getConnection } from "../../src/api.js";
import { errorOf } from "../helpers/errors.js";

const b64 = (u: Uint8Array | null) => (u === null ? null : Buffer.from(u).toString("base64"));

describe("SASL mechanisms produce the RFC bytes", () => {
  it("PLAIN (RFC 4616): NUL user NUL pass as the initial response", async () => {
    const m = new PlainMechanism(new Credentials({ user: "tim", pass: "tanstaaftanstaaf" }));
    expect(Buffer.from((await m.start())!).toString("latin1")).toBe("\0tim\0tanstaaftanstaaf");
    expect(b64(await m.start())).toBe("AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
  });

  it("LOGIN: user then password, no initial response, bounded", async () => {
    const m = new LoginMechanism(new Credentials({ user: "tim", pass: "secret" }));
    expect(await m.start()).toBeNull();
    expect(Buffer.from(await m.next(Buffer.from("Username:"))).toString()).toBe("tim");
    expect(Buffer.from(await m.next(Buffer.from("Password:"))).toString()).toBe("secret");
    await expect(m.next(Buffer.from("More:"))).rejects.toBeInstanceOf(SmtpAuthError);
  });

  it("CRAM-MD5 matches the RFC 2195 example", async () => {
    const m = new CramMd5Mechanism(new Credentials({ user: "tim", pass: "tanstaaftanstaaf" }));
    expect(await m.start()).toBeNull();
    const challenge = Buffer.from("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+", "base64");
    expect(challenge.toString()).toBe("<1896.697170952@postoffice.reston.mci.net>");
    const response = await m.next(challenge);
    expect(Buffer.from(response).toString()).toBe("tim b913a602c7eda7a495b4e6e7334d3890");
    expect(b64(response)).toBe("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
  });

  it("XOAUTH2 with a token and with an async provider; empty answer to the error challenge", async () => {
    const expected = "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01";
    const fixed = new XOAuth2Mechanism(new Credentials({ user: "someuser@example.com", accessToken: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg" }));
    expect(Buffer.from((await fixed.start())!).toString()).toBe(expected);
    let calls = 0;
    const provided = new XOAuth2Mechanism(
      new Credentials({ user: "someuser@example.com", tokenProvider: async () => (calls++, "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg") }),
    );
    expect(Buffer.from((await provided.start())!).toString()).toBe(expected);
    expect(calls).toBe(1);
    expect((await provided.next(Buffer.from('{"status":"401"}'))).length).toBe(0);
  });
});

describe("Credentials never leak", () => {
  it("redacts itself in JSON, inspect and strings", () => {
    const c = new Credentials({ user: "u", pass: "hunter2" });
    expect(JSON.stringify({ c })).toBe('{"c":"<redacted>"}');
    expect(inspect(c)).toBe("<redacted>");
    expect(inspect({ nested: { c } }, { depth: 5 })).not.toContain("hunter2");
    expect(String(c)).toBe("<redacted>");
    expect(Object.keys(c)).toEqual([]);
    const t = new Credentials({ user: "u", accessToken: "tok-secret" });
    expect(inspect(t, { showHidden: true })).not.toContain("tok-secret");
  });
  it("rejects malformed options", () => {
    expect(() => new Credentials({ user: "u" } as never)).toThrow(InvalidArgumentError);
  });
});

describe("chooseMechanism", () => {
  const pw = new Credentials({ user: "u", pass: "p" });
  const tok = new Credentials({ user: "u", accessToken: "t" });
  it("picks the strongest both know: CRAM-MD5 > PLAIN > LOGIN; XOAUTH2 for tokens", () => {
    expect(chooseMechanism(new Set(["LOGIN", "PLAIN", "CRAM-MD5"]), pw)).toBe("CRAM-MD5");
    expect(chooseMechanism(new Set(["LOGIN", "PLAIN"]), pw)).toBe("PLAIN");
    expect(chooseMechanism(new Set(["LOGIN"]), pw)).toBe("LOGIN");
    expect(chooseMechanism(new Set(["PLAIN", "XOAUTH2"]), tok)).toBe("XOAUTH2");
  });
  it("honours a named method", () => {
    expect(chooseMechanism(new Set(["LOGIN", "PLAIN", "CRAM-MD5"]), pw, "LOGIN")).toBe("LOGIN");
  });
  it("says what was offered when nothing fits", () => {
    expect(() => chooseMechanism(new Set(["GSSAPI", "NTLM"]), pw)).toThrow(/offers GSSAPI, NTLM/);
    expect(() => chooseMechanism(new Set(["PLAIN"]), tok)).toThrow(SmtpAuthError);
    expect(() => chooseMechanism(new Set(["PLAIN"]), pw, "CRAM-MD5")).toThrow(/offers PLAIN/);
    expect(() => chooseMechanism(new Set(), pw)).toThrow(SmtpCapabilityError);
    expect(() => chooseMechanism(new Set(["PLAIN"]), pw, "XOAUTH2")).toThrow(InvalidArgumentError);
  });
});

describe("credentials that would forge SASL fields are refused before connecting", () => {
  const forging = ["user\0admin", "user\r\nRSET", "user\nx", "user\rx"];

  it.each(forging)("user %j, in the client's auth, for every kind of secret", (user) => {
    expect(() => new SmtpClient({ auth: { user, pass: "pw" } })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ auth: { user, accessToken: "tok" } })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ auth: { user, tokenProvider: () => "tok" } })).toThrow(InvalidArgumentError);
  });

  it.each(["pw\0admin", "pw\r\n", "p\nw"])("password %j", (pass) => {
    expect(() => new SmtpClient({ auth: { user: "u", pass } })).toThrow(InvalidArgumentError);
  });

  it("XOAUTH2: \\x01 (its field separator) in the user or the token", () => {
    expect(() => new SmtpClient({ auth: { user: "u\x01auth=Bearer evil", accessToken: "tok" } })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ auth: { user: "u", accessToken: "tok\x01\x01" } })).toThrow(InvalidArgumentError);
    expect(() => new SmtpClient({ auth: { user: "u", accessToken: "tok\n" } })).toThrow(InvalidArgumentError);
  });

  it("XOAUTH2: a token provider's token is checked before it is sent", async () => {
    const m = new XOAuth2Mechanism(new Credentials({ user: "u", tokenProvider: async () => "tok\x01user=admin" }));
    await expect(m.start()).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("the messages never echo the secret", () => {
    const error = errorOf(() => new SmtpClient({ auth: { user: "u", pass: "hunter2\0x" } }));
    expect(error.message).not.toContain("hunter2");
  });

  it("through the SMTP backend and getConnection (not only configure())", () => {
    expect(() => new SmtpBackend({ host: "127.0.0.1", username: "user\0admin", password: "pw" })).toThrow(InvalidArgumentError);
    expect(() => new SmtpBackend({ host: "127.0.0.1", username: "u", password: "pw\r\nQUIT" })).toThrow(InvalidArgumentError);
    expect(() => new SmtpBackend({ host: "127.0.0.1", auth: { user: "u", accessToken: "t\x01" } })).toThrow(InvalidArgumentError);
    expect(() => getConnection("smtp", { host: "127.0.0.1", username: "u\nx", password: "pw" })).toThrow(InvalidArgumentError);
  });
});
