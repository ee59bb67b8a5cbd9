/**
 * The SASL pieces of AUTH on their own (src/smtp/auth.ts): which option shapes make
 * credentials and what each refusal says, the characters that would forge a SASL field
 * (per field, and \x01 only for XOAUTH2), the token provider's answers, each mechanism's
 * bytes and steps, the choice of mechanism with every message, and the base64 of a 334
 * challenge. The exchange over a socket is in auth-exchange.test.ts.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { inspect } from "node:util";
import {
  AUTH_METHODS,
  Credentials,
  CramMd5Mechanism,
  LoginMechanism,
  MAX_CHALLENGES,
  PlainMechanism,
  XOAuth2Mechanism,
  chooseMechanism,
  createMechanism,
  decodeChallenge,
  type AuthMethod,
  type AuthOptions,
} from "../../src/smtp/auth.js";
import { InvalidArgumentError, SmtpAuthError, SmtpCapabilityError } from "../../src/errors.js";
import { errorOf, rejection } from "../helpers/errors.js";

const text = (bytes: Uint8Array | null): string | null => (bytes === null ? null : Buffer.from(bytes).toString("utf8"));
const make = (options: unknown) => new Credentials(options as AuthOptions);

describe("Credentials: the shapes it takes", () => {
  it("a password, an access token or a token provider, and which kind it is", async () => {
    const password = make({ user: "u", pass: "p" });
    expect(password.user).toBe("u");
    expect(password.kind).toBe("password");
    expect(password.revealPassword()).toBe("p");
    const token = make({ user: "v", accessToken: "tok" });
    expect(token.user).toBe("v");
    expect(token.kind).toBe("token");
    expect(await token.revealToken()).toBe("tok");
    const provided = make({ user: "w", tokenProvider: () => "from-provider" });
    expect(provided.kind).toBe("token");
    expect(await provided.revealToken()).toBe("from-provider");
    expect(await make({ user: "w", tokenProvider: async () => "async" }).revealToken()).toBe("async");
  });

  it("a password wins over a token given beside it; an empty password is a password", () => {
    expect(make({ user: "u", pass: "p", accessToken: "t" }).kind).toBe("password");
    expect(make({ user: "u", pass: "" }).revealPassword()).toBe("");
  });

  it("refuses what is not an object with a string user, naming the three shapes", () => {
    const shapes = "auth must be { user, pass } or { user, accessToken } or { user, tokenProvider }";
    for (const bad of [null, undefined, "u:p", 42, {}, { user: 7, pass: "p" }, { user: null, pass: "p" }]) {
      const error = errorOf(() => make(bad));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toBe(shapes);
    }
    // A function with the right own properties is still not an options object.
    const fn = Object.assign(() => undefined, { user: "u", pass: "p" });
    expect(errorOf(() => make(fn)).message).toBe(shapes);
  });

  it("reads own properties only: inherited ones (a polluted prototype) are never the user or a secret", () => {
    const inherited = Object.create({ user: "u", pass: "from-prototype" }) as object;
    expect(errorOf(() => make(inherited)).message).toMatch(/^auth must be/);
    const ownUser = Object.assign(Object.create({ pass: "from-prototype" }) as object, { user: "u", accessToken: "own" });
    expect(make(ownUser).kind).toBe("token");
    const noSecret = Object.assign(Object.create({ pass: "p", accessToken: "t" }) as object, { user: "u" });
    expect(errorOf(() => make(noSecret)).message).toBe("auth needs a pass, an accessToken or a tokenProvider");
  });

  it("names the field of the wrong type", () => {
    expect(errorOf(() => make({ user: "u", pass: 1234 })).message).toBe("auth.pass must be a string");
    expect(errorOf(() => make({ user: "u", accessToken: 1234 })).message).toBe("auth.accessToken must be a string");
    expect(errorOf(() => make({ user: "u", accessToken: null })).message).toBe("auth.accessToken must be a string");
    expect(errorOf(() => make({ user: "u", tokenProvider: "not a function" })).message).toBe("auth needs a pass, an accessToken or a tokenProvider");
    expect(errorOf(() => make({ user: "u" }))).toBeInstanceOf(InvalidArgumentError);
  });

  it("asking a password holder for a token, or a token holder for a password, is refused", async () => {
    const password = make({ user: "u", pass: "p" });
    const error = await rejection(password.revealToken());
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toBe("These credentials hold a password, not a token");
    const token = make({ user: "u", accessToken: "t" });
    expect(errorOf(() => token.revealPassword())).toBeInstanceOf(InvalidArgumentError);
    expect(errorOf(() => token.revealPassword()).message).toBe("These credentials hold a token, not a password");
  });

  it("a token provider that gives no token, or not a string, fails AUTH with SmtpAuthError", async () => {
    for (const answer of ["", undefined, 42, null]) {
      const error = await rejection(make({ user: "u", tokenProvider: async () => answer }).revealToken());
      expect(error).toBeInstanceOf(SmtpAuthError);
      expect(error.message).toBe("The OAuth 2 token provider returned no token");
    }
    expect(await make({ user: "u", tokenProvider: () => "x" }).revealToken()).toBe("x");
  });

  it("redacts itself as JSON, as a string and in inspect, whatever it holds", () => {
    for (const c of [make({ user: "u", pass: "hunter2" }), make({ user: "u", accessToken: "tok-secret" }), make({ user: "u", tokenProvider: () => "t" })]) {
      expect(c.toJSON()).toBe("<redacted>");
      expect(`${c}`).toBe("<redacted>");
      expect(inspect(c, { showHidden: true, depth: 9 })).toBe("<redacted>");
    }
  });
});

describe("Credentials: characters that would forge a SASL field", () => {
  const forbidden: [string, string][] = [
    ["\0", "NUL"],
    ["\r", "a carriage return (CR)"],
    ["\n", "a line feed (LF)"],
  ];

  it.each(forbidden)("%j in each field names the field and the character, never the value", (ch, what) => {
    const password = "credentials must not contain NUL, CR or LF";
    const token = `${password} (nor \\x01 for XOAUTH2)`;
    const cases: [unknown, string][] = [
      [{ user: `us${ch}er`, pass: "secret-pw" }, `auth.user contains ${what}, which would forge SASL fields; ${password}`],
      [{ user: "u", pass: `secret${ch}pw` }, `auth.pass contains ${what}, which would forge SASL fields; ${password}`],
      [{ user: `us${ch}er`, accessToken: "secret-tok" }, `auth.user contains ${what}, which would forge SASL fields; ${token}`],
      [{ user: "u", accessToken: `secret${ch}tok` }, `auth.accessToken contains ${what}, which would forge SASL fields; ${token}`],
      [{ user: `us${ch}er`, tokenProvider: () => "t" }, `auth.user contains ${what}, which would forge SASL fields; ${token}`],
    ];
    for (const [options, message] of cases) {
      const error = errorOf(() => make(options));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toBe(message);
      expect(error.message).not.toContain("secret");
    }
  });

  it("the character is found wherever it is: first, last, alone", () => {
    for (const pass of ["\0abc", "abc\0", "\0", "a\0b\0c"]) {
      expect(errorOf(() => make({ user: "u", pass })).message).toMatch(/^auth\.pass contains NUL/);
    }
    expect(errorOf(() => make({ user: "u", pass: "ok\r\n" })).message).toMatch(/^auth\.pass contains a carriage return/);
  });

  it("\\x01 is refused for XOAUTH2 (its separator) and allowed in a password", () => {
    expect(make({ user: "u\x01", pass: "p\x01w" }).revealPassword()).toBe("p\x01w");
    expect(errorOf(() => make({ user: "u\x01", accessToken: "t" })).message).toBe(
      "auth.user contains \\x01 (XOAUTH2's field separator), which would forge SASL fields; credentials must not contain NUL, CR or LF (nor \\x01 for XOAUTH2)",
    );
    expect(errorOf(() => make({ user: "u", accessToken: "t\x01" })).message).toMatch(/^auth\.accessToken contains \\x01 \(XOAUTH2's field separator\)/);
    // Other control characters are not separators of any of these mechanisms.
    expect(make({ user: "u\x02\x7f", accessToken: "t\x1f\t" }).kind).toBe("token");
  });

  it("a provider's token is checked the same way, when it is asked for", async () => {
    for (const [token, what] of [...forbidden, ["\x01", "\\x01 (XOAUTH2's field separator)"]] as [string, string][]) {
      const error = await rejection(make({ user: "u", tokenProvider: () => `secret${token}` }).revealToken());
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toBe(
        `The OAuth 2 token provider's token contains ${what}, which would forge SASL fields; credentials must not contain NUL, CR or LF (nor \\x01 for XOAUTH2)`,
      );
    }
  });
});

// Credentials are made inside each test, never while the file is collected: a planted bug
// that makes the constructor throw must fail tests, not the loading of the file.
describe("the mechanisms", () => {
  const password = () => make({ user: "tim", pass: "pässword" });

  it("createMechanism makes each method by name", () => {
    const token = make({ user: "u", accessToken: "t" });
    expect(createMechanism("PLAIN", password())).toBeInstanceOf(PlainMechanism);
    expect(createMechanism("LOGIN", password())).toBeInstanceOf(LoginMechanism);
    expect(createMechanism("CRAM-MD5", password())).toBeInstanceOf(CramMd5Mechanism);
    expect(createMechanism("XOAUTH2", token)).toBeInstanceOf(XOAuth2Mechanism);
    for (const name of AUTH_METHODS) expect(createMechanism(name, name === "XOAUTH2" ? token : password()).name).toBe(name);
  });

  it("the methods known, and the challenge limit", () => {
    expect(AUTH_METHODS).toEqual(["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]);
    expect(MAX_CHALLENGES).toBe(5);
  });

  it("PLAIN: an initial response in UTF-8, and an empty answer to any challenge", async () => {
    const m = new PlainMechanism(password());
    expect(Buffer.from((await m.start())!)).toEqual(Buffer.from("\0tim\0pässword", "utf8"));
    expect(Buffer.from(await m.next(Buffer.from("anything"))).length).toBe(0);
  });

  it("LOGIN: user then password in UTF-8, then refuses a third challenge; start() begins again", async () => {
    const m = new LoginMechanism(make({ user: "tïm", pass: "pw" }));
    expect(await m.start()).toBeNull();
    expect(Buffer.from(await m.next(Buffer.alloc(0)))).toEqual(Buffer.from("tïm", "utf8"));
    expect(text(await m.next(Buffer.alloc(0)))).toBe("pw");
    const error = await rejection(m.next(Buffer.alloc(0)));
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toBe("The server sent more LOGIN challenges than a user name and a password");
    // A second exchange on the same mechanism (a retried AUTH) starts from the user name.
    expect(await m.start()).toBeNull();
    expect(text(await m.next(Buffer.alloc(0)))).toBe("tïm");
    expect(text(await m.next(Buffer.alloc(0)))).toBe("pw");
  });

  it("CRAM-MD5: the HMAC of each challenge, keyed by the UTF-8 password", async () => {
    const m = new CramMd5Mechanism(make({ user: "tim", pass: "tanstaaftanstaaf" }));
    expect(await m.start()).toBeNull();
    expect(text(await m.next(Buffer.from("<1896.697170952@postoffice.reston.mci.net>")))).toBe("tim b913a602c7eda7a495b4e6e7334d3890");
    // Another challenge, another digest (the challenge is not ignored).
    expect(text(await m.next(Buffer.from("<other@example.org>")))).not.toBe("tim b913a602c7eda7a495b4e6e7334d3890");
  });

  it("XOAUTH2: user and bearer token, asked of the provider each time", async () => {
    let calls = 0;
    const m = new XOAuth2Mechanism(make({ user: "me@example.org", tokenProvider: () => `t${++calls}` }));
    expect(text(await m.start())).toBe("user=me@example.org\x01auth=Bearer t1\x01\x01");
    expect(text(await m.start())).toBe("user=me@example.org\x01auth=Bearer t2\x01\x01");
    expect((await m.next(Buffer.from('{"status":"401"}'))).length).toBe(0);
  });
});

describe("chooseMechanism", () => {
  let pw: Credentials;
  let tok: Credentials;
  beforeEach(() => {
    pw = make({ user: "u", pass: "p" });
    tok = make({ user: "u", accessToken: "t" });
  });
  const offered = (...names: string[]) => new Set(names);

  it("no AUTH offered: SmtpCapabilityError saying why credentials may not be needed", () => {
    const error = errorOf(() => chooseMechanism(offered(), pw));
    expect(error).toBeInstanceOf(SmtpCapabilityError);
    expect((error as SmtpCapabilityError).capability).toBe("AUTH");
    expect(error.message).toMatch(/^The server does not offer AUTH, but credentials were given; it may accept mail without them, or only after STARTTLS/);
    expect(errorOf(() => chooseMechanism(offered(), tok, "XOAUTH2"))).toBeInstanceOf(SmtpCapabilityError);
  });

  it("a named method is used when offered, whatever is stronger", () => {
    expect(chooseMechanism(offered("CRAM-MD5", "PLAIN", "LOGIN"), pw, "PLAIN")).toBe("PLAIN");
    expect(chooseMechanism(offered("CRAM-MD5", "LOGIN"), pw, "LOGIN")).toBe("LOGIN");
    expect(chooseMechanism(offered("XOAUTH2", "PLAIN"), tok, "XOAUTH2")).toBe("XOAUTH2");
  });

  it("a named method that is unknown, or does not fit the credentials, is the caller's mistake", () => {
    const unknown = errorOf(() => chooseMechanism(offered("NTLM"), pw, "NTLM" as AuthMethod));
    expect(unknown).toBeInstanceOf(InvalidArgumentError);
    expect(unknown.message).toBe('authMethod must be one of PLAIN, LOGIN, CRAM-MD5, XOAUTH2, got "NTLM"');
    const xoauth = errorOf(() => chooseMechanism(offered("XOAUTH2"), pw, "XOAUTH2"));
    expect(xoauth).toBeInstanceOf(InvalidArgumentError);
    expect(xoauth.message).toBe("authMethod XOAUTH2 needs auth.accessToken or auth.tokenProvider");
    for (const name of ["PLAIN", "LOGIN", "CRAM-MD5"] as const) {
      const error = errorOf(() => chooseMechanism(offered(name), tok, name));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toBe(`authMethod ${name} needs auth.pass`);
    }
  });

  it("a named method the server does not offer: SmtpAuthError listing what it offers", () => {
    const error = errorOf(() => chooseMechanism(offered("PLAIN", "LOGIN"), pw, "CRAM-MD5"));
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toBe("The server does not offer AUTH CRAM-MD5; it offers PLAIN, LOGIN");
  });

  it("a token goes with XOAUTH2 only", () => {
    expect(chooseMechanism(offered("CRAM-MD5", "XOAUTH2"), tok)).toBe("XOAUTH2");
    const error = errorOf(() => chooseMechanism(offered("PLAIN", "LOGIN"), tok));
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toBe("An OAuth 2 token was given but the server does not offer XOAUTH2; it offers PLAIN, LOGIN");
  });

  it("a password takes CRAM-MD5, then PLAIN, then LOGIN, and never XOAUTH2", () => {
    expect(chooseMechanism(offered("LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2"), pw)).toBe("CRAM-MD5");
    expect(chooseMechanism(offered("XOAUTH2", "LOGIN", "PLAIN"), pw)).toBe("PLAIN");
    expect(chooseMechanism(offered("XOAUTH2", "LOGIN"), pw)).toBe("LOGIN");
    const error = errorOf(() => chooseMechanism(offered("XOAUTH2", "GSSAPI"), pw));
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toBe("No AUTH mechanism in common: the server offers XOAUTH2, GSSAPI; missive supports CRAM-MD5, PLAIN, LOGIN for passwords");
  });
});

describe("decodeChallenge: the base64 text of a 334", () => {
  it("decodes, with no, one or two padding characters and the whole alphabet", () => {
    expect(decodeChallenge("YWJj").toString()).toBe("abc");
    expect(decodeChallenge("YWJjZA==").toString()).toBe("abcd");
    expect(decodeChallenge("YWJjZGU=").toString()).toBe("abcde");
    expect(decodeChallenge("+/09AZaz")).toEqual(Buffer.from("+/09AZaz", "base64"));
    expect(decodeChallenge("VXNlcm5hbWU6").toString()).toBe("Username:");
  });

  it("an empty challenge is an empty one; surrounding white space is dropped", () => {
    expect(decodeChallenge("").length).toBe(0);
    expect(decodeChallenge("   ").length).toBe(0);
    expect(decodeChallenge("  YWJj \t").toString()).toBe("abc");
  });

  it("anything else is an SmtpAuthError: a character outside the alphabet anywhere, three pads, a pad inside", () => {
    for (const bad of ["Username:", "!YWJj", "YWJj!", "YW Jj", "YWJjZ===", "YW=Jj", "=YWJj", "YWJj-_", "ÿ"]) {
      const error = errorOf(() => decodeChallenge(bad));
      expect(error, bad).toBeInstanceOf(SmtpAuthError);
      expect(error.message).toBe("The server sent an AUTH challenge that is not base64");
    }
  });
});
