/**
 * The one place SMTP options are checked and decided: `resolveSmtpConfig(input, source)`.
 *
 * `configure()` (source "settings"), `SmtpBackend` ("backend") and `SmtpClient`/`SmtpPool`
 * ("client") all hand their options here, so a host with a port in it, a typo'd TLS option,
 * a fractional timeout or a user name with a line break is refused the same way whichever
 * layer was called. Every layer spells its options the same way: `tls` is the TLS mode
 * ("implicit" | "starttls" | "opportunistic" | "none", as in EMAIL_URL's `?tls=` and the
 * CLI's `--tls`), `tlsOptions` Node's TLS options (ca, servername, ...), `useSsl`/`useTls`
 * Django's aliases for the first two modes. Errors are `ConfigurationError` naming the
 * setting for "settings" and `InvalidArgumentError` otherwise, raised before anything
 * connects; a wrong value is described by its kind and size, never echoed whole (it may be
 * a certificate or a secret given in the wrong place).
 *
 * Options are read as own properties only, so a polluted `Object.prototype` cannot supply
 * one (a `rejectUnauthorized = false` or `tls = "none"` planted there changes nothing),
 * and `__proto__`, `constructor` and `prototype` are refused as keys. Every security option
 * gets an explicit default.
 *
 * The result is frozen and branded: handing a resolved config to another layer (the backend
 * to its pool, the pool to its clients) passes it through unchanged, so the decision made
 * once (port, TLS mode) is the one every connection uses.
 */
import net from "node:net";
import type tls from "node:tls";
import { FORBIDDEN_KEYS } from "../backend-registry.js";
import { ConfigurationError, InvalidArgumentError } from "../errors.js";
import { describeValue } from "../errors/options.js";
import { isClock, MAX_TIMER_MS, systemClock, type Clock } from "../observe/clock.js";
import { loggerProblem, logRecipientsProblem, type Logger, type LogRecipients } from "../observe/log.js";
import { AUTH_METHODS, Credentials, type AuthMethod } from "./auth.js";
import { assertHeloName } from "./commands.js";
import { DEFAULT_TIMEOUTS, RFC5321_TIMEOUTS, isLoopback, type DsnOptions, type SmtpTimeouts, type TlsMode } from "./options.js";
import type { TranscriptHook } from "./transcript.js";

/** Which layer's options these are; decides the option names in messages and the error class. */
export type ConfigSource = "settings" | "backend" | "client";

export const TLS_MODES: readonly TlsMode[] = ["implicit", "starttls", "opportunistic", "none"];

/** The Node TLS options missive passes on (anything else is refused as a likely typo). */
export const TLS_OPTION_KEYS = ["ca", "servername", "rejectUnauthorized", "cert", "key", "minVersion"] as const;

/** The Node TLS options after resolving: verification is an explicit boolean, never inherited. */
export interface ResolvedTlsOptions {
  readonly ca: string | Buffer | readonly (string | Buffer)[] | undefined;
  /** SNI and certificate name; undefined means "the host, unless it is an IP address". */
  readonly servername: string | undefined;
  readonly rejectUnauthorized: boolean;
  readonly cert: string | Buffer | undefined;
  readonly key: string | Buffer | undefined;
  readonly minVersion: tls.SecureVersion;
  /** PEM files read at connect when `cert`/`key` are not given (Django's EMAIL_SSL_*FILE). */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
}

export interface ResolvedPoolOptions {
  /** Connections (and so messages in flight) at once. */
  readonly maxConnections: number;
  /** A connection is closed (QUIT) and replaced after this many messages. */
  readonly maxMessagesPerConnection: number;
  /** A connection idle at least this long (ms) is probed with NOOP before reuse; 0: always. */
  readonly probeAfterIdle: number;
  /** An idle connection is closed after this long (ms); undefined: kept until the pool closes. */
  readonly idleTimeout: number | undefined;
}

export interface ResolvedSmtpConfig {
  readonly host: string;
  readonly port: number;
  readonly tlsMode: TlsMode;
  readonly tls: ResolvedTlsOptions;
  /** The EHLO name; undefined: the machine's name when it is a usable domain, else an address literal. */
  readonly localName: string | undefined;
  readonly credentials: Credentials | undefined;
  readonly authMethod: AuthMethod | undefined;
  readonly allowInsecureAuth: boolean;
  /** The TLS mode was forced to one that encrypts (the backend's `requireTls`). */
  readonly requireTls: boolean;
  readonly timeouts: Readonly<Required<SmtpTimeouts>>;
  readonly pipelining: boolean;
  readonly chunking: boolean;
  readonly chunkSize: number;
  readonly signal: AbortSignal | undefined;
  readonly lookup: net.LookupFunction | undefined;
  readonly transcript: TranscriptHook | undefined;
  readonly clock: Clock;
  /** Where the connections' events go (smtp.connect, smtp.tls, smtp.auth, the dialogue at debug, smtp.close). */
  readonly logger: Logger | undefined;
  /** How addresses appear in those events (the dialogue's MAIL FROM and RCPT TO, reply texts). */
  readonly logRecipients: LogRecipients;
  readonly pool: ResolvedPoolOptions;
  /** Backend: send text as 8bit where the server offers 8BITMIME. */
  readonly allow8bit: boolean;
  /** Backend: DSN parameters for every message. */
  readonly dsn: Readonly<DsnOptions> | undefined;
  /** Backend: the most one message may take (ms), from asking for a connection to the final reply. */
  readonly deadline: number | undefined;
  /** The layer whose options these were: hints in errors name that layer's options. */
  readonly source: ConfigSource;
}

const RESOLVED = Symbol("missive.smtp.resolvedConfig");

/** The pool's defaults (`pool: true`, or an SmtpPool without options). */
export const DEFAULT_POOL: ResolvedPoolOptions = Object.freeze({ maxConnections: 5, maxMessagesPerConnection: 100, probeAfterIdle: 1000, idleTimeout: 30_000 });

/**
 * A backend without `pool`: one connection, kept from open() to close() however long it is
 * idle (the server may drop it; the lease check then replaces it before anything is sent).
 */
export const SINGLE_CONNECTION: ResolvedPoolOptions = Object.freeze({
  maxConnections: 1,
  maxMessagesPerConnection: Number.POSITIVE_INFINITY,
  probeAfterIdle: DEFAULT_POOL.probeAfterIdle,
  idleTimeout: undefined,
});

export const DEFAULT_CHUNK_SIZE = 256 * 1024;

const COMMON_KEYS = ["host", "port", "useTls", "useSsl", "sslKeyfile", "sslCertfile", "localName", "timeout"];
const BACKEND_KEYS = [
  ...COMMON_KEYS,
  "tls", "tlsOptions", "username", "password", "auth", "authMethod", "allowInsecureAuth", "requireTls", "timeouts",
  "dsn", "allow8bit", "pipelining", "chunking", "signal", "transcript", "pool", "failSilently", "clock", "deadline",
  "logger", "logRecipients",
];
const POOL_KEYS = ["maxConnections", "maxMessagesPerConnection", "probeAfterIdle", "idleTimeout"];
/** The backend's `pool` object takes these (probeAfterIdle stays at its default there). */
export const BACKEND_POOL_KEYS = ["maxConnections", "maxMessagesPerConnection", "idleTimeout"] as const;
const CLIENT_KEYS = [
  ...COMMON_KEYS,
  "tls", "tlsOptions", "auth", "authMethod", "allowInsecureAuth", "timeouts", "pipelining", "chunking", "chunkSize",
  "signal", "lookup", "transcript", "clock", "logger", "logRecipients", ...POOL_KEYS,
];

/**
 * Spellings that were used before every layer shared one set of names (the backend's and the
 * settings' `tlsMode` for the mode): refused with the name to use, never read silently.
 */
const RENAMED: Readonly<Record<string, string>> = { tlsMode: 'tls (the TLS mode: tls: "starttls")' };

export interface ResolveContext {
  /** For "settings": where these options sit, e.g. "backends.bulk" (messages and `setting` start with it). */
  readonly path?: string;
}

/**
 * Checks `input` as the options of `source` and decides everything a connection needs.
 * Throws ConfigurationError ("settings") or InvalidArgumentError naming the option.
 * A config this function returned is returned as it is.
 */
export function resolveSmtpConfig(input: unknown, source: ConfigSource, context: ResolveContext = {}): Readonly<ResolvedSmtpConfig> {
  if (isResolvedSmtpConfig(input)) return input;
  return new Resolver(source, context.path).resolve(input);
}

export function isResolvedSmtpConfig(value: unknown): value is ResolvedSmtpConfig {
  return typeof value === "object" && value !== null && Object.prototype.hasOwnProperty.call(value, RESOLVED);
}

/** A copy of a resolved config with some runtime parts replaced (diagnostics: no credentials, a transcript hook). */
export function deriveSmtpConfig(
  config: ResolvedSmtpConfig,
  changes: { readonly credentials?: undefined; readonly transcript?: TranscriptHook | undefined },
): Readonly<ResolvedSmtpConfig> {
  const next: ResolvedSmtpConfig = { ...config };
  if ("credentials" in changes) (next as { credentials: Credentials | undefined }).credentials = undefined;
  if ("transcript" in changes) (next as { transcript: TranscriptHook | undefined }).transcript = changes.transcript;
  return brand(next);
}

function brand(config: ResolvedSmtpConfig): Readonly<ResolvedSmtpConfig> {
  Object.defineProperty(config, RESOLVED, { value: true, enumerable: false });
  return Object.freeze(config);
}

/** The value of an own property, or undefined: nothing inherited is ever read as an option. */
export function own(object: object, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(object, key) ? (object as Record<string, unknown>)[key] : undefined;
}

/**
 * Why `value` cannot be an SMTP host, or undefined when it can: a name or an IP address,
 * never `host:port` (the ":" would reach DNS as part of the name). Shared with the
 * environment parser, which names the variable instead of the option.
 */
export function hostProblem(value: unknown): string | undefined {
  if (typeof value !== "string" || value === "") return "must be a non-empty host name";
  if (/[\s\0-\x1f\x7f<>@,;"\\/]/.test(value)) return `${describeValue(value)} is not a valid host name`;
  if (value.includes(":") && !isIpv6Literal(value)) {
    return `${describeValue(value)} is not a host name: give the port separately`;
  }
  return undefined;
}

/** "::1", "[::1]" or the EHLO address literal "[IPv6:::1]". */
function isIpv6Literal(value: string): boolean {
  const bracketed = value.startsWith("[") && value.endsWith("]");
  let inner = bracketed ? value.slice(1, -1) : value;
  if (bracketed && inner.slice(0, 5).toLowerCase() === "ipv6:") inner = inner.slice(5);
  return net.isIPv6(inner);
}

/** Why `value` cannot be a timeout in ms, or undefined: Node's timers take 1 to 2^31 - 1 ms. */
export function timeoutProblem(value: unknown): string | undefined {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 1 || value > MAX_TIMER_MS) {
    return `must be a number of milliseconds from 1 to ${MAX_TIMER_MS}`;
  }
  return undefined;
}

/** Why `value` cannot be an EHLO name (RFC 5321 §4.1.3 domain or address literal), or undefined. */
export function localNameProblem(value: unknown): string | undefined {
  try {
    assertHeloName(value as string);
    return undefined;
  } catch (error) {
    // assertHeloName says `Invalid EHLO name "x": why`; keep the why.
    const why = error instanceof Error ? error.message.slice(error.message.indexOf(": ") + 2) : "";
    return `${describeValue(value)} is not a valid EHLO name: ${why}`;
  }
}

/** Why a user name, password or token cannot be used, or undefined (CR, LF, NUL forge commands or SASL fields). */
export function credentialProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return "must be a string";
  if (/[\0\r\n]/.test(value)) return "must not contain CR, LF or NUL";
  return undefined;
}

/**
 * What a greeting that never came probably means, in the options of the layer that was
 * called, or undefined when nothing suggests a cause. With implicit TLS the client speaks
 * first (the handshake) and any failure is TLS's; otherwise a server that stays silent is
 * typically one waiting for a TLS ClientHello: port 465 is the implicit-TLS submission
 * port (RFC 8314 §3.3), and other ports may be set up the same way.
 */
export function greetingTimeoutHint(config: Pick<ResolvedSmtpConfig, "port" | "tlsMode" | "source">): string | undefined {
  if (config.tlsMode === "implicit") return undefined;
  const option = config.source === "client" ? `tls: "implicit" (or useSsl: true)` : `tls: "implicit" (or useSsl: true; smtps:// in EMAIL_URL)`;
  const asked = config.tlsMode === "none" ? "plaintext" : config.tlsMode === "starttls" ? "STARTTLS" : "STARTTLS if offered";
  if (config.port === 465) {
    return `port 465 speaks implicit TLS (RFC 8314): the server is waiting for a TLS handshake, not sending a greeting; set ${option}`;
  }
  return `no greeting came on port ${config.port} (${asked} was asked for); if this port expects TLS from the first byte, set ${option}`;
}

class Resolver {
  readonly #source: ConfigSource;
  readonly #path: string | undefined;

  constructor(source: ConfigSource, path: string | undefined) {
    this.#source = source;
    this.#path = path;
  }

  resolve(input: unknown): Readonly<ResolvedSmtpConfig> {
    const o = this.#object(input, undefined);
    this.#checkKeys(o, this.#source === "client" ? CLIENT_KEYS : BACKEND_KEYS, undefined);
    const client = this.#source === "client";

    const hostValue = own(o, "host") ?? "localhost";
    const host = this.#check<string>("host", hostValue, hostProblem(hostValue));
    const portValue = own(o, "port");
    if (portValue !== undefined && (typeof portValue !== "number" || !Number.isInteger(portValue) || portValue < 1 || portValue > 65535)) {
      this.#fail("port", `${this.#label("port")} must be an integer from 1 to 65535, got ${describeValue(portValue)}`);
    }
    const requireTls = this.#boolean(o, "requireTls") ?? false;
    const { port, tlsMode } = this.#transport(o, host, portValue as number | undefined, requireTls);

    const localName = own(o, "localName");
    if (localName !== undefined) this.#check("localName", localName, localNameProblem(localName));

    const credentials = this.#credentials(o);
    const authMethod = own(o, "authMethod");
    if (authMethod !== undefined) {
      if (!(AUTH_METHODS as readonly unknown[]).includes(authMethod)) {
        this.#fail("authMethod", `${this.#label("authMethod")} must be one of ${AUTH_METHODS.join(", ")}, got ${describeValue(authMethod)}`);
      }
      if (credentials && (authMethod === "XOAUTH2") !== (credentials.kind === "token")) {
        this.#fail("authMethod", `${this.#label("authMethod")} ${String(authMethod)} does not fit the credentials given (${credentials.kind === "token" ? "a token" : "a password"})`);
      }
    }

    const chunkSize = client ? own(o, "chunkSize") : undefined;
    if (chunkSize !== undefined && (typeof chunkSize !== "number" || !Number.isSafeInteger(chunkSize) || chunkSize < 1)) {
      this.#fail("chunkSize", `${this.#label("chunkSize")} must be a positive integer`);
    }
    const signal = own(o, "signal");
    if (signal !== undefined && !(signal instanceof AbortSignal)) this.#fail("signal", `${this.#label("signal")} must be an AbortSignal`);
    const lookup = client ? own(o, "lookup") : undefined;
    if (lookup !== undefined && typeof lookup !== "function") this.#fail("lookup", `${this.#label("lookup")} must be a function (Node's dns.lookup signature)`);
    const transcript = own(o, "transcript");
    if (transcript !== undefined && typeof transcript !== "function") this.#fail("transcript", `${this.#label("transcript")} must be a function`);
    const clock = own(o, "clock");
    if (clock !== undefined && !isClock(clock)) this.#fail("clock", `${this.#label("clock")} must be { now(), setTimeout(), clearTimeout() }`);
    const logger = own(o, "logger");
    if (logger !== undefined) this.#check("logger", logger, loggerProblem(logger));
    const logRecipients = own(o, "logRecipients");
    if (logRecipients !== undefined) this.#check("logRecipients", logRecipients, logRecipientsProblem(logRecipients));
    this.#boolean(o, "failSilently");
    const deadline = client ? undefined : own(o, "deadline");
    if (deadline !== undefined) this.#check("deadline", deadline, timeoutProblem(deadline));

    return brand({
      host,
      port,
      tlsMode,
      tls: this.#tlsOptions(o),
      localName: localName as string | undefined,
      credentials,
      authMethod: authMethod as AuthMethod | undefined,
      allowInsecureAuth: this.#boolean(o, "allowInsecureAuth") ?? false,
      requireTls,
      timeouts: this.#timeouts(o),
      pipelining: this.#boolean(o, "pipelining") ?? true,
      chunking: this.#boolean(o, "chunking") ?? false,
      chunkSize: (chunkSize as number | undefined) ?? DEFAULT_CHUNK_SIZE,
      signal: signal as AbortSignal | undefined,
      lookup: lookup as net.LookupFunction | undefined,
      transcript: transcript as TranscriptHook | undefined,
      clock: (clock as Clock | undefined) ?? systemClock,
      logger: logger as Logger | undefined,
      logRecipients: (logRecipients as LogRecipients | undefined) ?? "count",
      pool: client ? this.#clientPool(o) : this.#backendPool(o),
      allow8bit: client ? true : (this.#boolean(o, "allow8bit") ?? true),
      dsn: client ? undefined : this.#dsn(o),
      deadline: deadline as number | undefined,
      source: this.#source,
    });
  }

  /**
   * Port and TLS mode, decided together. The mode: the one named (`tls`, or its
   * Django aliases useSsl → implicit and useTls → starttls); else none for a loopback host,
   * and for any other host implicit TLS on 465 and required STARTTLS on every other port
   * (plaintext to a remote host takes an explicit "none" or "opportunistic"). `requireTls`
   * turns "opportunistic" into "starttls" and refuses "none". Then the port, when none is
   * given: the one the mode implies.
   */
  #transport(o: object, host: string, explicitPort: number | undefined, requireTls: boolean): { port: number; tlsMode: TlsMode } {
    const useSsl = this.#boolean(o, "useSsl") ?? false;
    const useTls = this.#boolean(o, "useTls") ?? false;
    const modeName = "tls";
    if (useSsl && useTls) {
      this.#fail("useSsl", `${this.#label("useTls")} (STARTTLS, port 587) and ${this.#label("useSsl")} (implicit TLS, port 465) are mutually exclusive; set only one`);
    }
    const named = own(o, modeName);
    if (typeof named === "object" && named !== null) {
      // Node's TLS options where the mode goes (the backend's `tls` held them before).
      this.#fail(modeName, `${this.#label(modeName)} is the TLS mode ("implicit", "starttls", "opportunistic" or "none"); Node's TLS options (${TLS_OPTION_KEYS.join(", ")}) go in ${this.#label("tlsOptions")}`);
    }
    if (named !== undefined && !(TLS_MODES as readonly unknown[]).includes(named)) {
      this.#fail(modeName, `${this.#label(modeName)} must be "implicit", "starttls", "opportunistic" or "none", got ${describeValue(named)}`);
    }
    const alias: TlsMode | undefined = useSsl ? "implicit" : useTls ? "starttls" : undefined;
    if (named !== undefined && alias !== undefined && named !== alias) {
      this.#fail(modeName, `${this.#label(modeName)} ${describeValue(named)} contradicts ${this.#label(useSsl ? "useSsl" : "useTls")}: true`);
    }
    const requested = (named as TlsMode | undefined) ?? alias;
    let tlsMode: TlsMode;
    switch (requested) {
      case undefined:
        tlsMode = isLoopback(host) && !requireTls ? "none" : explicitPort === 465 ? "implicit" : "starttls";
        break;
      case "opportunistic":
        tlsMode = requireTls ? "starttls" : "opportunistic";
        break;
      case "none":
        if (requireTls) this.#fail("requireTls", `${this.#label("requireTls")} cannot be met with ${this.#label(modeName)} "none"`);
        tlsMode = "none";
        break;
      default:
        tlsMode = requested;
    }
    return { tlsMode, port: explicitPort ?? this.#defaultPort(tlsMode) };
  }

  /**
   * 465 for implicit TLS (RFC 8314 §3.3). STARTTLS: the bare client means message
   * submission, 587 (RFC 6409); the Django-style layers keep Django's EMAIL_PORT default of
   * 25 (pinned by their tests and the README). Plaintext: 25.
   */
  #defaultPort(mode: TlsMode): number {
    switch (mode) {
      case "implicit":
        return 465;
      case "starttls":
        return this.#source === "client" ? 587 : 25;
      case "opportunistic":
      case "none":
        return 25;
    }
  }

  #tlsOptions(o: object): ResolvedTlsOptions {
    const name = "tlsOptions";
    const given = own(o, name);
    const t = given === undefined ? Object.create(null) : this.#object(given, name);
    this.#checkKeys(t, TLS_OPTION_KEYS, name, `${name} option`);
    const rejectUnauthorized = own(t, "rejectUnauthorized");
    if (rejectUnauthorized !== undefined && typeof rejectUnauthorized !== "boolean") {
      this.#fail(name, `${this.#label(`${name}.rejectUnauthorized`)} must be true or false`);
    }
    const servername = own(t, "servername");
    if (servername !== undefined && typeof servername !== "string") this.#fail(name, `${this.#label(`${name}.servername`)} must be a string`);
    const minVersion = own(t, "minVersion");
    if (minVersion !== undefined && !["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"].includes(minVersion as string)) {
      this.#fail(name, `${this.#label(`${name}.minVersion`)} must be "TLSv1.2" or "TLSv1.3", got ${describeValue(minVersion)}`);
    }
    const pem = (key: "cert" | "key"): string | Buffer | undefined => {
      const v = own(t, key);
      if (v !== undefined && typeof v !== "string" && !Buffer.isBuffer(v)) this.#fail(name, `${this.#label(`${name}.${key}`)} must be PEM text or a Buffer`);
      return v as string | Buffer | undefined;
    };
    const ca = own(t, "ca");
    const pemLike = (v: unknown) => typeof v === "string" || Buffer.isBuffer(v);
    if (ca !== undefined && !pemLike(ca) && !(Array.isArray(ca) && ca.every(pemLike))) {
      this.#fail(name, `${this.#label(`${name}.ca`)} must be PEM text, a Buffer, or a list of them`);
    }
    const file = (key: "sslKeyfile" | "sslCertfile"): string | undefined => {
      const v = own(o, key);
      if (v !== undefined && (typeof v !== "string" || v === "")) this.#fail(key, `${this.#label(key)} must be a non-empty path`);
      return v as string | undefined;
    };
    return Object.freeze({
      ca: Array.isArray(ca) ? Object.freeze([...ca]) : (ca as string | Buffer | undefined),
      servername: servername as string | undefined,
      // Always an explicit boolean: only an own `false` switches verification off.
      rejectUnauthorized: rejectUnauthorized !== false,
      cert: pem("cert"),
      key: pem("key"),
      minVersion: (minVersion as tls.SecureVersion | undefined) ?? "TLSv1.2",
      certFile: file("sslCertfile"),
      keyFile: file("sslKeyfile"),
    });
  }

  /**
   * The defaults (DEFAULT_TIMEOUTS), or RFC 5321's with `timeouts: "rfc5321"`; then the
   * single `timeout` for every phase; then each phase given in a `timeouts` object.
   */
  #timeouts(o: object): Readonly<Required<SmtpTimeouts>> {
    const given = own(o, "timeouts");
    const single = own(o, "timeout");
    if (typeof given === "string") {
      if (given !== "rfc5321") this.#fail("timeouts", `${this.#label("timeouts")} must be an object of per-phase milliseconds or "rfc5321", got ${describeValue(given)}`);
      if (single !== undefined) this.#fail("timeouts", `${this.#label("timeout")} and ${this.#label("timeouts")}: "rfc5321" contradict each other; give one`);
      return RFC5321_TIMEOUTS;
    }
    const out: Record<keyof SmtpTimeouts, number> = { ...DEFAULT_TIMEOUTS };
    if (single !== undefined) {
      const value = this.#check<number>("timeout", single, timeoutProblem(single));
      for (const key of Object.keys(out) as (keyof SmtpTimeouts)[]) out[key] = value;
    }
    if (given !== undefined) {
      const t = this.#object(given, "timeouts");
      this.#checkKeys(t, Object.keys(DEFAULT_TIMEOUTS), "timeouts", "timeout");
      for (const key of Object.keys(t) as (keyof SmtpTimeouts)[]) {
        const value = own(t, key);
        if (value === undefined) continue;
        const problem = timeoutProblem(value);
        if (problem) this.#fail("timeouts", `${this.#label(`timeouts.${key}`)} ${problem}`);
        out[key] = value as number;
      }
    }
    return Object.freeze(out);
  }

  #credentials(o: object): Credentials | undefined {
    const source = this.#source;
    let username: unknown;
    let password: unknown;
    if (source !== "client") {
      username = own(o, "username");
      password = own(o, "password");
      if (username !== undefined) this.#check("username", username, credentialProblem(username));
      if (password !== undefined) this.#check("password", password, credentialProblem(password));
    }
    const auth = own(o, "auth");
    if (auth !== undefined) {
      const a = this.#object(auth, "auth");
      this.#checkKeys(a, ["user", "pass", "accessToken", "tokenProvider"], "auth");
      // A null-prototype copy of the own properties: Credentials never sees an inherited one.
      const copy = Object.assign(Object.create(null), Object.fromEntries(["user", "pass", "accessToken", "tokenProvider"].map((k) => [k, own(a, k)])));
      return this.#wrap("auth", () => new Credentials(copy));
    }
    // Django: a user name alone does not log in; both are needed.
    if (typeof username === "string" && username !== "" && typeof password === "string" && password !== "") {
      return this.#wrap("username", () => new Credentials({ user: username as string, pass: password as string }));
    }
    return undefined;
  }

  #clientPool(o: object): ResolvedPoolOptions {
    const count = (key: string, fallback: number): number => {
      const v = own(o, key);
      if (v === undefined) return fallback;
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) this.#fail(key, `${this.#label(key)} must be a positive integer`);
      return v as number;
    };
    const probe = own(o, "probeAfterIdle");
    // probeAfterIdle is compared with elapsed time (0 means "always probe"); idleTimeout is a timer delay.
    if (probe !== undefined && (typeof probe !== "number" || !Number.isFinite(probe) || probe < 0 || probe > MAX_TIMER_MS)) {
      this.#fail("probeAfterIdle", `${this.#label("probeAfterIdle")} must be a number of milliseconds from 0 to ${MAX_TIMER_MS}`);
    }
    const idle = own(o, "idleTimeout");
    if (idle !== undefined && timeoutProblem(idle)) this.#fail("idleTimeout", `${this.#label("idleTimeout")} ${timeoutProblem(idle)}`);
    return Object.freeze({
      maxConnections: count("maxConnections", DEFAULT_POOL.maxConnections),
      maxMessagesPerConnection: count("maxMessagesPerConnection", DEFAULT_POOL.maxMessagesPerConnection),
      probeAfterIdle: (probe as number | undefined) ?? DEFAULT_POOL.probeAfterIdle,
      idleTimeout: (idle as number | undefined) ?? DEFAULT_POOL.idleTimeout,
    });
  }

  #backendPool(o: object): ResolvedPoolOptions {
    const given = own(o, "pool");
    if (given === undefined || given === false) return SINGLE_CONNECTION;
    if (given === true) return DEFAULT_POOL;
    if (typeof given !== "object" || given === null || Array.isArray(given)) {
      this.#fail("pool", `${this.#label("pool")} must be true, false or { maxConnections, maxMessagesPerConnection, idleTimeout }`);
    }
    const p = given as object;
    this.#checkKeys(p, BACKEND_POOL_KEYS, "pool", "pool option");
    const count = (key: string, fallback: number): number => {
      const v = own(p, key);
      if (v === undefined) return fallback;
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) this.#fail("pool", `${this.#label(`pool.${key}`)} must be a positive integer`);
      return v as number;
    };
    const idle = own(p, "idleTimeout");
    if (idle !== undefined && timeoutProblem(idle)) this.#fail("pool", `${this.#label("pool.idleTimeout")} ${timeoutProblem(idle)}`);
    return Object.freeze({
      maxConnections: count("maxConnections", DEFAULT_POOL.maxConnections),
      maxMessagesPerConnection: count("maxMessagesPerConnection", DEFAULT_POOL.maxMessagesPerConnection),
      probeAfterIdle: DEFAULT_POOL.probeAfterIdle,
      idleTimeout: (idle as number | undefined) ?? DEFAULT_POOL.idleTimeout,
    });
  }

  #dsn(o: object): Readonly<DsnOptions> | undefined {
    const given = own(o, "dsn");
    if (given === undefined) return undefined;
    const d = this.#object(given, "dsn");
    this.#checkKeys(d, ["ret", "envid", "notify", "orcpt", "optional"], "dsn");
    const ret = own(d, "ret");
    if (ret !== undefined && ret !== "FULL" && ret !== "HDRS") this.#fail("dsn", `${this.#label("dsn.ret")} must be "FULL" or "HDRS"`);
    const envid = own(d, "envid");
    if (envid !== undefined && typeof envid !== "string") this.#fail("dsn", `${this.#label("dsn.envid")} must be a string`);
    const notify = own(d, "notify");
    if (notify !== undefined && !(Array.isArray(notify) && notify.every((n) => ["SUCCESS", "FAILURE", "DELAY", "NEVER"].includes(n)))) {
      this.#fail("dsn", `${this.#label("dsn.notify")} must list NEVER, or SUCCESS, FAILURE and DELAY`);
    }
    for (const key of ["orcpt", "optional"]) {
      const v = own(d, key);
      if (v !== undefined && typeof v !== "boolean") this.#fail("dsn", `${this.#label(`dsn.${key}`)} must be true or false`);
    }
    const out: DsnOptions = Object.create(null);
    for (const key of ["ret", "envid", "notify", "orcpt", "optional"] as const) {
      const v = own(d, key);
      if (v !== undefined) (out as Record<string, unknown>)[key] = key === "notify" ? Object.freeze([...(v as string[])]) : v;
    }
    return Object.freeze(out);
  }

  // --- plumbing -------------------------------------------------------------------------

  #object(value: unknown, name: string | undefined): object {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      if (name === undefined) this.#fail("options", `${this.#source === "client" ? "SMTP client" : "SMTP"} options must be an object`);
      this.#fail(name, `${this.#label(name)} must be an object`);
    }
    return value as object;
  }

  /**
   * Refuses keys outside `known`, and always `__proto__`, `constructor`, `prototype`.
   * `parent` is the option holding `object` (undefined: the top level); `kind` names what
   * the keys are in the message ("tls option", "timeout").
   */
  #checkKeys(object: object, known: readonly string[], parent: string | undefined, kind?: string): void {
    for (const key of Object.keys(object)) {
      const label = this.#label(parent === undefined ? key : `${parent}.${key}`);
      if (FORBIDDEN_KEYS.has(key)) {
        this.#fail(parent ?? key, `${label} is refused: "${key}" is never an option (it would reach Object.prototype)`);
      }
      if (known.includes(key)) continue;
      if (parent === undefined && Object.hasOwn(RENAMED, key)) this.#fail(key, `${label} is now ${RENAMED[key]}; every SMTP layer, EMAIL_URL and the CLI use the same names`);
      if (parent !== undefined) {
        this.#fail(parent, `Unknown ${kind ?? `${parent} option`} "${key}"${this.#path !== undefined ? ` in ${this.#label(parent)}` : ""}; known: ${known.join(", ")}`);
      }
      if (this.#path !== undefined) this.#fail(key, `${this.#path} has an unknown option "${key}"; an smtp backend takes: ${known.join(", ")}`);
      this.#fail(key, `Unknown SMTP ${this.#source === "client" ? "client" : "backend"} option "${key}"; known: ${known.join(", ")}`);
    }
  }

  #boolean(o: object, key: string): boolean | undefined {
    const v = own(o, key);
    if (v !== undefined && typeof v !== "boolean") this.#fail(key, `${this.#label(key)} must be true or false`);
    return v as boolean | undefined;
  }

  #check<T>(key: string, value: unknown, problem: string | undefined): T {
    if (problem !== undefined) this.#fail(key, `${this.#label(key)} ${problem}`);
    return value as T;
  }

  /** Runs `make`, turning its InvalidArgumentError into this layer's error for `key`. */
  #wrap<T>(key: string, make: () => T): T {
    try {
      return make();
    } catch (error) {
      if (error instanceof InvalidArgumentError) this.#fail(key, this.#path !== undefined ? `${this.#path}: ${error.message}` : error.message);
      throw error;
    }
  }

  #label(name: string): string {
    return this.#path === undefined ? name : `${this.#path}.${name}`;
  }

  #fail(option: string, message: string): never {
    if (this.#source === "settings") throw new ConfigurationError(this.#path === undefined ? option : `${this.#path}.${option}`, message);
    throw new InvalidArgumentError(message);
  }
}
