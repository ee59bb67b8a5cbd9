/**
 * SASL for SMTP AUTH (RFC 4954) as a tiny strategy interface: `start()` gives the initial
 * response (or none), `next(challenge)` answers each 334 challenge. Mechanisms work on
 * raw bytes; the client does the base64 and bounds the number of challenges.
 *
 * Secrets live in `Credentials`, whose private fields never show in `JSON.stringify`,
 * `util.inspect`, string conversion or an error.
 */
import { createHmac } from "node:crypto";
import { inspect } from "node:util";
import { InvalidArgumentError, SmtpAuthError, SmtpCapabilityError } from "../errors.js";
import { REDACTED } from "./transcript.js";

export type AuthMethod = "PLAIN" | "LOGIN" | "CRAM-MD5" | "XOAUTH2";

export type AuthOptions =
  | { user: string; pass: string }
  | { user: string; accessToken: string }
  | { user: string; tokenProvider: () => Promise<string> | string };

/** A user name and a password or OAuth 2 token, that redacts itself everywhere it could leak. */
export class Credentials {
  readonly #user: string;
  readonly #pass: string | undefined;
  readonly #token: (() => Promise<string> | string) | undefined;

  constructor(options: AuthOptions) {
    // Own properties only: an inherited `pass` or `accessToken` (a polluted prototype) is never a secret.
    const own = (key: string): unknown => (typeof options === "object" && options !== null && Object.hasOwn(options, key) ? (options as Record<string, unknown>)[key] : undefined);
    const user = own("user");
    if (typeof user !== "string") {
      throw new InvalidArgumentError("auth must be { user, pass } or { user, accessToken } or { user, tokenProvider }");
    }
    this.#user = user;
    const pass = own("pass");
    const accessToken = own("accessToken");
    const tokenProvider = own("tokenProvider");
    if (pass !== undefined) {
      if (typeof pass !== "string") throw new InvalidArgumentError("auth.pass must be a string");
      assertSaslField(user, "auth.user", false);
      assertSaslField(pass, "auth.pass", false);
      this.#pass = pass;
    } else if (accessToken !== undefined) {
      if (typeof accessToken !== "string") throw new InvalidArgumentError("auth.accessToken must be a string");
      assertSaslField(user, "auth.user", true);
      assertSaslField(accessToken, "auth.accessToken", true);
      this.#token = () => accessToken;
    } else if (typeof tokenProvider === "function") {
      assertSaslField(user, "auth.user", true);
      this.#token = tokenProvider as () => Promise<string> | string;
    } else {
      throw new InvalidArgumentError("auth needs a pass, an accessToken or a tokenProvider");
    }
  }

  /** The user name is not secret (it appears in the AUTH reply texts of many servers). */
  get user(): string {
    return this.#user;
  }

  get kind(): "password" | "token" {
    return this.#pass !== undefined ? "password" : "token";
  }

  /** The password; only mechanisms call this. */
  revealPassword(): string {
    if (this.#pass === undefined) throw new InvalidArgumentError("These credentials hold a token, not a password");
    return this.#pass;
  }

  /** The OAuth 2 access token (awaiting the provider when there is one); only XOAUTH2 calls this. */
  async revealToken(): Promise<string> {
    if (this.#token === undefined) throw new InvalidArgumentError("These credentials hold a password, not a token");
    const token = await this.#token();
    if (typeof token !== "string" || token.length === 0) {
      throw new SmtpAuthError("The OAuth 2 token provider returned no token");
    }
    assertSaslField(token, "The OAuth 2 token provider's token", true);
    return token;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/**
 * A user name, password or token must not carry a character that separates fields of the
 * SASL message it goes into: NUL separates PLAIN's fields (RFC 4616 §2), CR and LF end a
 * LOGIN or CRAM-MD5 line, and \x01 separates XOAUTH2's key/value pairs. Any of them could
 * forge a field (`"user\0admin"`), so they are refused before anything is sent. The message
 * names the field and the character, never the value.
 */
function assertSaslField(value: string, field: string, xoauth2: boolean): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const what = c === 0 ? "NUL" : c === 0x0d ? "a carriage return (CR)" : c === 0x0a ? "a line feed (LF)" : c === 0x01 && xoauth2 ? "\\x01 (XOAUTH2's field separator)" : undefined;
    if (what !== undefined) throw new InvalidArgumentError(`${field} contains ${what}, which would forge SASL fields; credentials must not contain NUL, CR or LF${xoauth2 ? " (nor \\x01 for XOAUTH2)" : ""}`);
  }
}

export interface SaslMechanism {
  readonly name: AuthMethod;
  /** The initial response sent with `AUTH <name>` (RFC 4954 §4), or null to wait for a challenge. */
  start(): Promise<Uint8Array | null>;
  /** The answer to a (base64-decoded) 334 challenge. */
  next(challenge: Buffer): Promise<Uint8Array>;
}

/** RFC 4616 PLAIN: `authzid NUL authcid NUL passwd`, sent as the initial response. */
export class PlainMechanism implements SaslMechanism {
  readonly name = "PLAIN";
  readonly #credentials: Credentials;
  constructor(credentials: Credentials) {
    this.#credentials = credentials;
  }
  async start(): Promise<Uint8Array> {
    return Buffer.from(`\0${this.#credentials.user}\0${this.#credentials.revealPassword()}`, "utf8");
  }
  async next(_challenge: Buffer): Promise<Uint8Array> {
    // A server that sends a challenge after an initial response gets an empty answer, then fails.
    return Buffer.alloc(0);
  }
}

/** The LOGIN mechanism (draft-murchison-sasl-login): user name, then password, one per challenge. */
export class LoginMechanism implements SaslMechanism {
  readonly name = "LOGIN";
  readonly #credentials: Credentials;
  #step = 0;
  constructor(credentials: Credentials) {
    this.#credentials = credentials;
  }
  async start(): Promise<null> {
    this.#step = 0;
    return null;
  }
  async next(_challenge: Buffer): Promise<Uint8Array> {
    // The challenge texts vary ("Username:", "User Name"); answer by position, like every client.
    this.#step += 1;
    if (this.#step === 1) return Buffer.from(this.#credentials.user, "utf8");
    if (this.#step === 2) return Buffer.from(this.#credentials.revealPassword(), "utf8");
    throw new SmtpAuthError("The server sent more LOGIN challenges than a user name and a password");
  }
}

/** RFC 2195 CRAM-MD5: `user SP hex(HMAC-MD5(password, challenge))`. */
export class CramMd5Mechanism implements SaslMechanism {
  readonly name = "CRAM-MD5";
  readonly #credentials: Credentials;
  constructor(credentials: Credentials) {
    this.#credentials = credentials;
  }
  async start(): Promise<null> {
    return null;
  }
  async next(challenge: Buffer): Promise<Uint8Array> {
    const digest = createHmac("md5", this.#credentials.revealPassword()).update(challenge).digest("hex");
    return Buffer.from(`${this.#credentials.user} ${digest}`, "utf8");
  }
}

/**
 * Google/Microsoft XOAUTH2: `user=<user>^Aauth=Bearer <token>^A^A` as the initial response.
 * On failure the server sends a 334 with a JSON error; the client must answer with an
 * empty line, after which the server sends the final 5xx.
 */
export class XOAuth2Mechanism implements SaslMechanism {
  readonly name = "XOAUTH2";
  readonly #credentials: Credentials;
  constructor(credentials: Credentials) {
    this.#credentials = credentials;
  }
  async start(): Promise<Uint8Array> {
    const token = await this.#credentials.revealToken();
    return Buffer.from(`user=${this.#credentials.user}\x01auth=Bearer ${token}\x01\x01`, "utf8");
  }
  async next(_challenge: Buffer): Promise<Uint8Array> {
    return Buffer.alloc(0);
  }
}

export function createMechanism(name: AuthMethod, credentials: Credentials): SaslMechanism {
  switch (name) {
    case "PLAIN":
      return new PlainMechanism(credentials);
    case "LOGIN":
      return new LoginMechanism(credentials);
    case "CRAM-MD5":
      return new CramMd5Mechanism(credentials);
    case "XOAUTH2":
      return new XOAuth2Mechanism(credentials);
  }
}

export const AUTH_METHODS: readonly AuthMethod[] = ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"];

/** Strongest first, for password credentials. */
const PASSWORD_PREFERENCE: readonly AuthMethod[] = ["CRAM-MD5", "PLAIN", "LOGIN"];

/**
 * Picks the mechanism: the one named if the server offers it, else XOAUTH2 for a token,
 * else the strongest of CRAM-MD5 > PLAIN > LOGIN that both sides know.
 */
export function chooseMechanism(offered: ReadonlySet<string>, credentials: Credentials, preferred?: AuthMethod): AuthMethod {
  const list = [...offered].join(", ");
  if (offered.size === 0) {
    throw new SmtpCapabilityError("AUTH", "The server does not offer AUTH, but credentials were given; it may accept mail without them, or only after STARTTLS");
  }
  if (preferred !== undefined) {
    if (!AUTH_METHODS.includes(preferred)) {
      throw new InvalidArgumentError(`authMethod must be one of ${AUTH_METHODS.join(", ")}, got ${JSON.stringify(preferred)}`);
    }
    if ((preferred === "XOAUTH2") !== (credentials.kind === "token")) {
      throw new InvalidArgumentError(
        preferred === "XOAUTH2" ? "authMethod XOAUTH2 needs auth.accessToken or auth.tokenProvider" : `authMethod ${preferred} needs auth.pass`,
      );
    }
    if (!offered.has(preferred)) {
      throw new SmtpAuthError(`The server does not offer AUTH ${preferred}; it offers ${list}`);
    }
    return preferred;
  }
  if (credentials.kind === "token") {
    if (offered.has("XOAUTH2")) return "XOAUTH2";
    throw new SmtpAuthError(`An OAuth 2 token was given but the server does not offer XOAUTH2; it offers ${list}`);
  }
  for (const m of PASSWORD_PREFERENCE) if (offered.has(m)) return m;
  throw new SmtpAuthError(`No AUTH mechanism in common: the server offers ${list}; missive supports ${PASSWORD_PREFERENCE.join(", ")} for passwords`);
}

/** At most this many 334 challenges per AUTH exchange. */
export const MAX_CHALLENGES = 5;

/** The base64 text of a 334 challenge (RFC 4954 §4), decoded; anything else is an SmtpAuthError. */
export function decodeChallenge(text: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed)) {
    throw new SmtpAuthError("The server sent an AUTH challenge that is not base64");
  }
  return Buffer.from(trimmed, "base64");
}
