import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { ConfigurationError } from "./errors.js";
import { describeValue } from "./errors/options.js";
import { processWide } from "./process-state.js";
import { BUILTIN_BACKENDS, FORBIDDEN_KEYS, backendNames, isBackendName, type BackendClassLike } from "./backend-registry.js";
import type { SmtpTlsOptions } from "./smtp/client.js";
import { hostProblem, localNameProblem, own, resolveSmtpConfig, TLS_MODES as SMTP_TLS_MODES } from "./smtp/config.js";
import { parseMailbox } from "./mime/address.js";
import { setMessageDefaults } from "./mime/defaults.js";
import { DkimSigner, dkimSetting, signerNamed, toSigners, type DkimSetting } from "./dkim/options.js";
import type { EmailMessage } from "./mime/message.js";
import { resolveFailoverSettings, type FailoverSettings, type ResolvedFailoverSettings } from "./delivery/config.js";
import { resolveRateLimit } from "./delivery/rate-limit.js";
import { resetDeliveryState } from "./delivery/state.js";
import { loggerProblem, logRecipientsProblem, type Logger, type LogRecipients } from "./observe/log.js";
import { resolveOutboxSettings, type OutboxSettings, type ResolvedOutboxSettings } from "./outbox/config.js";

/**
 * Process-wide settings, after Django's EMAIL_* settings.
 *
 * Where a value comes from, first match wins: `configure({...})`, then the environment
 * (`EMAIL_URL`, then the individual `EMAIL_*` variables, which override the URL's parts),
 * then the defaults below. The environment is read when the settings are first needed
 * and again after `resetSettings()`.
 *
 * Units: the `timeout` setting is in milliseconds like every JS option; `EMAIL_TIMEOUT`
 * and `EMAIL_URL`'s `?timeout=` are in seconds, as Django's EMAIL_TIMEOUT is.
 *
 * The SMTP settings, and every named connection whose backend is "smtp", are checked by
 * the same resolver the SMTP backend and client use (src/smtp/config.ts), at `configure()`
 * time. Settings are read from own properties only and stored in null-prototype objects;
 * `__proto__`, `constructor` and `prototype` are refused as keys anywhere.
 */

// Redaction (see the end of the file); defined first because DEFAULT_SETTINGS uses it.
/** Keys whose values are secrets in the built-in backends' options and the settings. */
const SECRET_KEY = /key$|pass|secret|token|credential|auth|^pfx$/i;
const REDACTED = "<redacted>";
/** Past this depth nothing is printed, not even a redacted copy. */
const MAX_DEPTH = 4;
/** Non-enumerable on redacting objects: their own view, used when they are nested in another. */
const VIEW = Symbol("missive.settings.view");

/** How the SMTP connection is protected (README "Security defaults"). */
export type TlsMode = "implicit" | "starttls" | "opportunistic" | "none";
export const TLS_MODES: readonly TlsMode[] = SMTP_TLS_MODES;

/**
 * Picks the named connection for a message (`configure({ route })`): a name from `backends`,
 * or undefined for the default backend.
 */
export type RouteFunction = (message: EmailMessage) => string | undefined;

/** A named connection: a backend and its options (`{ backend: "smtp", host, ... }`). */
export interface NamedBackendConfig {
  readonly backend: string | BackendClassLike;
  readonly [option: string]: unknown;
}

export interface Settings {
  /** The default backend: a built-in or registered name, or a backend class. */
  readonly backend: string | BackendClassLike;
  readonly host: string;
  readonly port: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** STARTTLS (Django's EMAIL_USE_TLS). */
  readonly useTls: boolean;
  /** Implicit TLS (Django's EMAIL_USE_SSL). */
  readonly useSsl: boolean;
  /** The TLS mode (as EMAIL_URL's `?tls=`); `useTls`/`useSsl` are Django's shorthands for "starttls"/"implicit". */
  readonly tls: TlsMode | undefined;
  /** Milliseconds; undefined leaves the SMTP client's per-phase defaults. */
  readonly timeout: number | undefined;
  readonly sslKeyfile: string | undefined;
  readonly sslCertfile: string | undefined;
  /** Node TLS options for the SMTP connection (ca, servername, rejectUnauthorized, ...). */
  readonly tlsOptions: Readonly<SmtpTlsOptions> | undefined;
  /** The name the SMTP client gives in EHLO. */
  readonly localName: string | undefined;
  readonly defaultFrom: string;
  readonly serverEmail: string;
  readonly admins: readonly string[];
  readonly managers: readonly string[];
  readonly subjectPrefix: string;
  readonly defaultCharset: string;
  readonly messageIdDomain: string | undefined;
  /** Directory of the file backend. */
  readonly filePath: string | undefined;
  /** Named connections, for `getConnection(name)`; `default`, when given, replaces the top-level backend. */
  readonly backends: Readonly<Record<string, NamedBackendConfig>>;
  /**
   * DKIM signers for every backend that writes bytes (smtp, file, console), named
   * connections included: checked when configured, kept as ready signers (they print
   * redacted). A backend's or a message's own `dkim` replaces it; `false`: no signing.
   */
  readonly dkim: readonly DkimSigner[] | false | undefined;
  /** The failover backend's routes and policies (`backend: "failover"`). */
  readonly failover: ResolvedFailoverSettings | undefined;
  /** Picks a named connection per message for the default connection; undefined: the default backend. */
  readonly route: RouteFunction | undefined;
  /**
   * Where every backend's events go (named connections included), unless a backend has its
   * own `logger`: pino, or any object with its level methods. Undefined: nothing is logged.
   */
  readonly logger: Logger | undefined;
  /** How recipients appear in log records and event payloads: "count" (default), "domain", "hash" or "full". */
  readonly logRecipients: LogRecipients;
  /** The outbox (`backend: "outbox"`): its store, and what `missive worker` delivers with. */
  readonly outbox: ResolvedOutboxSettings | undefined;
}

/** What `configure()` takes: any subset of the settings; named connections may be URLs. */
export type SettingsInput = {
  -readonly [K in keyof Settings]?: K extends "backends"
    ? Record<string, NamedBackendConfig | string>
    : K extends "admins" | "managers"
      ? readonly string[]
      : K extends "dkim"
        ? DkimSetting | undefined
      : K extends "failover"
        ? FailoverSettings | undefined
      : K extends "outbox"
        ? OutboxSettings | undefined
        : Settings[K] | undefined;
};

export const DEFAULT_SETTINGS: Settings = finish({
  backend: "smtp",
  host: "localhost",
  port: 25,
  username: undefined,
  password: undefined,
  useTls: false,
  useSsl: false,
  tls: undefined,
  timeout: undefined,
  sslKeyfile: undefined,
  sslCertfile: undefined,
  tlsOptions: undefined,
  localName: undefined,
  defaultFrom: "webmaster@localhost",
  serverEmail: "root@localhost",
  admins: Object.freeze([]),
  managers: Object.freeze([]),
  subjectPrefix: "[missive] ",
  defaultCharset: "utf-8",
  messageIdDomain: undefined,
  filePath: undefined,
  backends: Object.freeze({}),
  dkim: undefined,
  failover: undefined,
  route: undefined,
  logger: undefined,
  logRecipients: "count",
  outbox: undefined,
});

const KEYS = Object.keys(DEFAULT_SETTINGS) as (keyof Settings)[];

/**
 * What configure() was given, what the environment said, and their merge: one per process,
 * shared by the ESM and CJS builds (see process-state.ts).
 */
const state = processWide("settings.v1", () => ({
  configured: Object.create(null) as SettingsInput,
  fromEnvironment: undefined as SettingsInput | undefined,
  current: undefined as Settings | undefined,
}));

/** The current settings: a frozen copy whose secrets do not show in `util.inspect` or JSON. */
export function getSettings(): Settings {
  if (state.current === undefined) {
    state.fromEnvironment ??= settingsFromEnvironment(process.env);
    state.current = merge(merge(DEFAULT_SETTINGS, state.fromEnvironment, "env"), state.configured, "configure");
    pushMessageDefaults(state.current);
  }
  return state.current;
}

/**
 * Merges `changes` into the current settings and validates the result. A key given as
 * `undefined` goes back to its environment or default value. `backends` is replaced as a
 * whole. Throws `ConfigurationError` naming the setting; on error nothing changes.
 */
export function configure(changes: SettingsInput): Settings {
  if (typeof changes !== "object" || changes === null || Array.isArray(changes)) {
    throw new ConfigurationError("configure", "configure() takes an object of settings, e.g. configure({ host: \"smtp.example.com\" })");
  }
  state.fromEnvironment ??= settingsFromEnvironment(process.env);
  const nextConfigured: Record<string, unknown> = Object.assign(Object.create(null), state.configured);
  for (const key of Object.keys(changes)) {
    refuseForbidden(key, key);
    const value = own(changes, key);
    if (value === undefined) delete nextConfigured[key];
    else nextConfigured[key] = value;
  }
  const next = merge(merge(DEFAULT_SETTINGS, state.fromEnvironment, "env"), nextConfigured as SettingsInput, "configure");
  state.configured = nextConfigured as SettingsInput;
  state.current = next;
  pushMessageDefaults(next);
  return next;
}

/** Whether a setting was given through `configure()` or the environment (rather than defaulted). */
export function isSettingExplicit(key: keyof Settings): boolean {
  getSettings();
  return state.configured[key] !== undefined || state.fromEnvironment?.[key] !== undefined;
}

/** Forgets `configure()` calls and re-reads the environment (for tests). */
export function resetSettings(): void {
  resetDeliveryState();
  state.configured = Object.create(null);
  state.fromEnvironment = undefined;
  state.current = undefined;
  try {
    getSettings();
  } catch {
    // An invalid environment is reported by the next getSettings() call, not here.
    state.fromEnvironment = undefined;
    state.current = undefined;
    pushMessageDefaults(DEFAULT_SETTINGS);
  }
}

function pushMessageDefaults(s: Settings): void {
  setMessageDefaults({ from: s.defaultFrom, charset: s.defaultCharset, messageIdDomain: s.messageIdDomain });
}

// ---------------------------------------------------------------------------------------
// Validation

type Source = "env" | "configure";

/** The settings that are SMTP options: resolveSmtpConfig checks them, alone and together. */
const SMTP_SETTINGS = ["host", "port", "username", "password", "useTls", "useSsl", "tls", "timeout", "sslKeyfile", "sslCertfile", "tlsOptions", "localName"] as const;

function merge(base: Settings, changes: SettingsInput, source: Source): Settings {
  const out: Record<string, unknown> = Object.assign(Object.create(null), base);
  for (const key of Object.keys(changes)) {
    refuseForbidden(key, key);
    if (key === "tlsMode") throw new ConfigurationError(key, 'tlsMode is now tls (the TLS mode: tls: "starttls"); Node\'s TLS options are tlsOptions. Every SMTP layer, EMAIL_URL and the CLI use the same names');
    if (!(KEYS as string[]).includes(key)) {
      throw new ConfigurationError(key, `Unknown setting "${key}"; known settings: ${KEYS.join(", ")}`);
    }
    const value = own(changes, key);
    out[key] = value === undefined ? DEFAULT_SETTINGS[key as keyof Settings] : validateSetting(key as keyof Settings, value, source);
  }
  const smtp: Record<string, unknown> = Object.create(null);
  for (const key of SMTP_SETTINGS) if (out[key] !== undefined) smtp[key] = out[key];
  resolveSmtpConfig(smtp, "settings");
  checkRoutes(out, source);
  return finish(out as unknown as Settings);
}

/**
 * The failover routes name named connections that exist and that send themselves (a route
 * that is a failover would nest one inside another, and could loop); `backend: "failover"`
 * needs its routes.
 */
function checkRoutes(s: Record<string, unknown>, source: Source): void {
  const backends = s["backends"] as Readonly<Record<string, NamedBackendConfig>>;
  const names = Object.keys(backends);
  const check = (routes: readonly string[], setting: string) => {
    for (const name of routes) {
      const config = Object.hasOwn(backends, name) ? backends[name] : undefined;
      if (config === undefined) throw new ConfigurationError(setting, `${setting} names "${name}", which is not a named connection (backends: ${names.join(", ") || "none"})`);
      if (config.backend === "failover") {
        throw new ConfigurationError(setting, `${setting} names "${name}", which is itself a failover connection; routes must be backends that send (smtp, file, …), never another failover`);
      }
    }
  };
  const failover = s["failover"] as ResolvedFailoverSettings | undefined;
  if (failover !== undefined) check(failover.routes, "failover.routes");
  for (const name of names) {
    const config = backends[name]!;
    if (config.backend === "failover") check(own(config, "routes") as string[], `backends.${name}.routes`);
  }
  if (source === "configure" && s["backend"] === "failover" && failover === undefined && !Object.hasOwn(backends, "default")) {
    throw new ConfigurationError("failover", 'backend "failover" needs its routes: configure({ failover: { routes: ["primary", "secondary"] } })');
  }
  checkOutbox(s, backends, source);
}

/** `backend: "outbox"` needs the outbox's store; `outbox.deliver` names something that delivers (never an outbox). */
function checkOutbox(s: Record<string, unknown>, backends: Readonly<Record<string, NamedBackendConfig>>, source: Source): void {
  const outbox = s["outbox"] as ResolvedOutboxSettings | undefined;
  if (source === "configure" && s["backend"] === "outbox" && outbox === undefined) {
    throw new ConfigurationError("outbox", 'backend "outbox" needs its store: configure({ outbox: { store: "file:///var/spool/missive", deliver: "failover" } })');
  }
  const deliver = outbox?.deliver;
  if (deliver === undefined) return;
  const named = Object.hasOwn(backends, deliver) ? backends[deliver] : undefined;
  if (named?.backend === "outbox") throw new ConfigurationError("outbox.deliver", `outbox.deliver names "${deliver}", an outbox connection: the worker would enqueue every message again`);
  if (named === undefined && !isBackendName(deliver)) {
    throw new ConfigurationError("outbox.deliver", `outbox.deliver names "${deliver}", which is neither a named connection (${Object.keys(backends).join(", ") || "none"}) nor a backend (${backendNames().join(", ")})`);
  }
  if (deliver === "failover" && named === undefined && s["failover"] === undefined) {
    throw new ConfigurationError("outbox.deliver", 'outbox.deliver is "failover", which needs its routes: configure({ failover: { routes: [...] } })');
  }
}

/** `__proto__`, `constructor` and `prototype` never name a setting or an option. */
function refuseForbidden(key: string, setting: string): void {
  if (FORBIDDEN_KEYS.has(key)) {
    throw new ConfigurationError(setting, `"${key}" is refused as a setting or option name everywhere (it would reach Object.prototype)`);
  }
}

function validateSetting(key: keyof Settings, value: unknown, source: Source): unknown {
  switch (key) {
    case "backend":
      if (typeof value === "function") return value;
      if (typeof value !== "string" || value === "") throw new ConfigurationError(key, "backend must be a backend name or a backend class");
      // A name from the environment may be registered by the application later; it is
      // resolved when a connection is made. configure() comes after registration.
      if (source === "configure" && !isBackendName(value)) {
        throw new ConfigurationError(key, `Unknown backend "${value}"; known: ${backendNames().join(", ")} (register others with registerBackend)`);
      }
      return value;
    case "host":
    case "port":
    case "username":
    case "password":
    case "useTls":
    case "useSsl":
    case "tls":
    case "timeout":
    case "sslKeyfile":
    case "sslCertfile":
    case "localName":
      // SMTP options: checked together, by the rules every SMTP layer shares, in merge().
      return value;
    case "tlsOptions":
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new ConfigurationError(key, "tlsOptions must be an object of TLS options (ca, servername, rejectUnauthorized, cert, key, minVersion)");
      }
      // A null-prototype copy of its own properties; its keys and values are checked in merge().
      return Object.freeze(ownCopy(value));
    case "filePath":
      if (typeof value !== "string" || value === "") throw new ConfigurationError(key, `${key} must be a non-empty path`);
      return value;
    case "messageIdDomain":
      return hostName(key, value);
    case "defaultFrom":
    case "serverEmail":
      return address(key, value);
    case "admins":
    case "managers":
      return addressList(key, value);
    case "subjectPrefix":
      if (typeof value !== "string") throw new ConfigurationError(key, "subjectPrefix must be a string");
      if (/[\0\r\n]/.test(value)) throw new ConfigurationError(key, "subjectPrefix must not contain CR, LF or NUL");
      return value;
    case "defaultCharset":
      if (typeof value !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.:+-]*$/.test(value)) {
        throw new ConfigurationError(key, "defaultCharset must be a charset name such as \"utf-8\"");
      }
      return value.toLowerCase();
    case "backends":
      return namedBackends(value);
    case "dkim":
      return dkimSetting(value, key);
    case "failover":
      return resolveFailoverSettings(value, { path: "failover", settings: true });
    case "route":
      if (typeof value !== "function") throw new ConfigurationError(key, "route must be a function (message) => name of a connection, or undefined for the default");
      return value;
    case "logger":
      return logger(key, value);
    case "logRecipients":
      return logRecipients(key, value);
    case "outbox":
      return resolveOutboxSettings(value, { path: "outbox", settings: true });
  }
}

function logger(setting: string, value: unknown): Logger {
  const problem = loggerProblem(value);
  if (problem !== undefined) throw new ConfigurationError(setting, `${setting} ${problem}`);
  return value as Logger;
}

function logRecipients(setting: string, value: unknown): LogRecipients {
  const problem = logRecipientsProblem(value);
  if (problem !== undefined) throw new ConfigurationError(setting, `${setting} ${problem}`);
  return value as LogRecipients;
}

/** The longest delay Node's timers take; `timeout` (ms) must fit. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A host name (the SMTP resolver's rule: never `host:port`); `key` names the setting or variable. */
function hostName(key: string, value: unknown): string {
  const problem = hostProblem(value);
  if (problem) throw new ConfigurationError(key, `${key} ${problem}${problem.includes("port separately") ? " (port, EMAIL_PORT, or in EMAIL_URL)" : ""}`);
  return value as string;
}

/** A null-prototype copy of an object's own enumerable properties. */
function ownCopy<T extends object>(value: T): T {
  const copy = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value)) copy[key] = own(value, key);
  return copy as T;
}

function address(key: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") throw new ConfigurationError(key, `${key} must be an email address`);
  try {
    parseMailbox(value, key);
  } catch (err) {
    throw new ConfigurationError(key, `${key} is not a valid address ("user@domain" or "Name <user@domain>"): ${(err as Error).message}`);
  }
  return value.trim();
}

function addressList(key: string, value: unknown): readonly string[] {
  // Django's ADMINS and MANAGERS are lists and it says so: one string is too easily meant as
  // a list of one, or is a comma-separated list that a typo turns into something else.
  if (typeof value === "string") {
    const example = describeValue(value).startsWith('"') ? `[${describeValue(value)}]` : '["ann@example.com"]';
    throw new ConfigurationError(key, `${key} must be a list of addresses, not one string: write ${example} ("Name <addr>" allowed in each)`);
  }
  if (!Array.isArray(value)) throw new ConfigurationError(key, `${key} must be a list of addresses ("Name <addr>" allowed)`);
  return Object.freeze(value.map((item, i) => address(`${key}[${i}]`, item)));
}

function namedBackends(value: unknown): Readonly<Record<string, NamedBackendConfig>> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigurationError("backends", "backends must be an object of named connections, e.g. { bulk: \"smtp://relay:25\" }");
  }
  const out: Record<string, NamedBackendConfig> = Object.create(null);
  for (const name of Object.keys(value)) {
    const setting = `backends.${name}`;
    refuseForbidden(name, setting);
    const spec = own(value, name);
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(name)) throw new ConfigurationError(setting, `Connection name "${name}" is not valid`);
    if ((BUILTIN_BACKENDS as readonly string[]).includes(name)) {
      throw new ConfigurationError(setting, `A named connection cannot be called "${name}": that is a backend name`);
    }
    let config: NamedBackendConfig;
    if (typeof spec === "string") {
      config = ownCopy(backendFromUrl(spec, setting));
    } else if (typeof spec === "object" && spec !== null && !Array.isArray(spec)) {
      for (const key of Object.keys(spec)) refuseForbidden(key, `${setting}.${key}`);
      config = ownCopy(spec as NamedBackendConfig);
      const backend = config.backend;
      if (typeof backend !== "function" && !(typeof backend === "string" && isBackendName(backend))) {
        throw new ConfigurationError(`${setting}.backend`, `${setting}.backend must be a known backend name (${backendNames().join(", ")}) or a backend class`);
      }
    } else {
      throw new ConfigurationError(setting, `${setting} must be an EMAIL_URL string or { backend, ...options }`);
    }
    // Any backend's `dkim`, made ready signers now (a bad key fails at configure()).
    if (own(config, "dkim") !== undefined) (config as Record<string, unknown>)["dkim"] = dkimSetting(own(config, "dkim"), `${setting}.dkim`);
    // Any backend's `logger` and `logRecipients` (BaseEmailBackend takes them), checked now.
    if (own(config, "logger") !== undefined) logger(`${setting}.logger`, own(config, "logger"));
    if (own(config, "logRecipients") !== undefined) logRecipients(`${setting}.logRecipients`, own(config, "logRecipients"));
    // `rateLimit` is the delivery layer's, on any backend: checked here, never passed to the backend.
    if (own(config, "rateLimit") !== undefined) resolveRateLimit(own(config, "rateLimit"), { path: `${setting}.rateLimit`, settings: true });
    // `dkim` is the backend's, not an SMTP option: the backend keeps it from the resolver too.
    const options: Record<string, unknown> = Object.create(null);
    for (const key of Object.keys(config)) if (!["backend", "rateLimit", "dkim", "logger", "logRecipients"].includes(key)) options[key] = own(config, key);
    if (config.backend === "smtp") {
      // The options an SmtpBackend will get: checked now, by the resolver the backend uses,
      // so that `hots: "x"` fails at configure() rather than at getConnection("bulk").
      resolveSmtpConfig(options, "settings", { path: setting });
    }
    if (config.backend === "failover") {
      resolveFailoverSettings(options, { path: setting, settings: true }, ["failSilently", "clock", "random"]);
    }
    // A custom backend's options mean nothing to us, so any of them may be a secret.
    const custom = typeof config.backend === "function" || !(BUILTIN_BACKENDS as readonly string[]).includes(config.backend);
    out[name] = redacting(Object.freeze(config), custom ? "all-but-backend" : "secret-keys") as NamedBackendConfig;
  }
  return Object.freeze(out);
}

// ---------------------------------------------------------------------------------------
// EMAIL_URL and the EMAIL_* variables

/**
 * Parses an EMAIL_URL into backend options:
 * `smtp://user:pass@host:587?tls=starttls&timeout=10`, `smtps://host` (implicit TLS, port
 * 465), `submission://host` (STARTTLS, port 587), `console:`, `file:///dir`, `memory:`,
 * `dummy:`. User and password are percent-decoded; `timeout` is in seconds.
 * `setting` names the source in errors (the URL itself is never echoed: it may hold a password).
 */
export function backendFromUrl(url: string, setting = "EMAIL_URL"): NamedBackendConfig {
  const parsed = emailUrlSettings(url, setting);
  const out: Record<string, unknown> = Object.create(null);
  out["backend"] = parsed.backend ?? "smtp";
  for (const key of Object.keys(parsed)) if (key !== "backend" && own(parsed, key) !== undefined) out[key] = own(parsed, key);
  return out as NamedBackendConfig;
}

function emailUrlSettings(url: string, setting: string): SettingsInput {
  if (typeof url !== "string" || url.trim() === "") throw new ConfigurationError(setting, `${setting} must be a URL such as smtp://user:pass@host:587?tls=starttls`);
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    throw new ConfigurationError(setting, `${setting} is not a valid URL (expected e.g. smtp://user:pass@host:587?tls=starttls, console:, file:///var/mail)`);
  }
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  const params = new Map<string, string>();
  for (const [k, v] of u.searchParams) {
    if (params.has(k)) throw new ConfigurationError(setting, `${setting} gives the query parameter "${k}" twice`);
    params.set(k, v);
  }
  const allow = (...names: string[]) => {
    for (const k of params.keys()) {
      if (!names.includes(k)) {
        throw new ConfigurationError(setting, `${setting} has an unknown query parameter "${k}"${names.length ? ` (known for ${scheme}: ${names.join(", ")})` : ""}`);
      }
    }
  };
  switch (scheme) {
    case "console":
    case "memory":
    case "dummy":
      allow();
      if (u.host || (u.pathname && u.pathname !== "/" && u.pathname !== "")) {
        throw new ConfigurationError(setting, `${setting} "${scheme}:" takes no host or path`);
      }
      return { backend: scheme };
    case "file": {
      allow();
      if (u.host && u.host !== "localhost") throw new ConfigurationError(setting, `${setting} file URLs must be local (file:///path)`);
      const path = decode(u.pathname, setting, "path");
      if (path === "" || path === "/") {
        throw new ConfigurationError(setting, `${setting} file URL needs a directory, e.g. file:///var/mail`);
      }
      return { backend: "file", filePath: path };
    }
    case "smtp":
    case "smtps":
    case "submission": {
      allow("tls", "timeout", "local_name");
      const out: SettingsInput = Object.assign(Object.create(null), { backend: "smtp" });
      if (!u.hostname) throw new ConfigurationError(setting, `${setting} needs a host, e.g. ${scheme}://mail.example.com`);
      if (u.pathname && u.pathname !== "/") throw new ConfigurationError(setting, `${setting} takes no path after the host`);
      out.host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
      if (u.username) out.username = decode(u.username, setting, "user name");
      if (u.password) out.password = decode(u.password, setting, "password");
      let mode: TlsMode | undefined = scheme === "smtps" ? "implicit" : scheme === "submission" ? "starttls" : undefined;
      const tls = params.get("tls");
      if (tls !== undefined) {
        const m = tls.toLowerCase();
        if (!(TLS_MODES as readonly string[]).includes(m)) throw new ConfigurationError(setting, `${setting} ?tls= must be one of ${TLS_MODES.join(", ")}`);
        if (mode !== undefined && m !== mode) throw new ConfigurationError(setting, `${setting} ?tls=${m} contradicts the ${scheme}: scheme`);
        mode = m as TlsMode;
      }
      if (mode === "implicit") out.useSsl = true;
      else if (mode === "starttls") out.useTls = true;
      else if (mode !== undefined) out.tls = mode;
      if (u.port === "0") throw new ConfigurationError(setting, `${setting} port must be from 1 to 65535`);
      // Without a port in the URL, `port` stays unset so that the backend derives it from
      // the TLS mode in effect (465 with implicit TLS, else 25), even when EMAIL_USE_SSL or
      // configure() changes the mode later. "submission" names its port (587, RFC 6409).
      if (u.port) out.port = Number(u.port);
      else if (scheme === "submission") out.port = 587;
      const timeout = params.get("timeout");
      if (timeout !== undefined) out.timeout = seconds(timeout, `${setting} ?timeout=`, setting);
      const localName = params.get("local_name");
      if (localName !== undefined) {
        const problem = localNameProblem(localName);
        if (problem) throw new ConfigurationError(setting, `${setting} ?local_name= ${problem}`);
        out.localName = localName;
      }
      return out;
    }
    default:
      throw new ConfigurationError(setting, `${setting} has an unsupported scheme "${scheme}:" (use smtp, smtps, submission, console, file, memory or dummy)`);
  }
}

function decode(value: string, setting: string, what: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new ConfigurationError(setting, `${setting} has a badly percent-encoded ${what}`);
  }
}

function seconds(value: string, what: string, setting: string): number {
  const n = /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : NaN;
  const ms = Math.round(n * 1000);
  if (!Number.isFinite(ms) || ms < 1 || ms > MAX_TIMEOUT_MS) {
    throw new ConfigurationError(setting, `${what} must be a number of seconds from 0.001 to ${Math.floor(MAX_TIMEOUT_MS / 1000)}, e.g. 10 or 2.5`);
  }
  return ms;
}

function bool(value: string, setting: string): boolean {
  switch (value.trim().toLowerCase()) {
    case "1": case "true": case "yes": case "on": return true;
    case "0": case "false": case "no": case "off": return false;
    default: throw new ConfigurationError(setting, `${setting} must be true or false (also 1/0, yes/no, on/off)`);
  }
}

/** Django's dotted backend paths, accepted in EMAIL_BACKEND for people moving over. */
const DJANGO_BACKENDS: Record<string, string> = {
  "django.core.mail.backends.smtp.EmailBackend": "smtp",
  "django.core.mail.backends.console.EmailBackend": "console",
  "django.core.mail.backends.filebased.EmailBackend": "file",
  "django.core.mail.backends.locmem.EmailBackend": "memory",
  "django.core.mail.backends.dummy.EmailBackend": "dummy",
};

/** The environment variables read, in the order they are applied. */
export const ENVIRONMENT_VARIABLES = [
  "EMAIL_URL", "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD",
  "EMAIL_USE_TLS", "EMAIL_USE_SSL", "EMAIL_TIMEOUT", "EMAIL_SSL_KEYFILE", "EMAIL_SSL_CERTFILE",
  "EMAIL_FILE_PATH", "EMAIL_SUBJECT_PREFIX", "DEFAULT_FROM_EMAIL", "SERVER_EMAIL",
  "EMAIL_DKIM_DOMAIN", "EMAIL_DKIM_SELECTOR", "EMAIL_DKIM_PRIVATE_KEY", "EMAIL_DKIM_PRIVATE_KEY_FILE",
] as const;

/**
 * Settings from the environment. An empty variable counts as unset. Each value is checked
 * here, so that an error names the variable rather than the setting it feeds.
 */
export function settingsFromEnvironment(env: NodeJS.ProcessEnv): SettingsInput {
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v;
  };
  const out: SettingsInput = Object.create(null);
  const url = get("EMAIL_URL");
  if (url !== undefined) Object.assign(out, emailUrlSettings(url, "EMAIL_URL"));

  const backend = get("EMAIL_BACKEND");
  if (backend !== undefined) {
    const name = DJANGO_BACKENDS[backend.trim()] ?? backend.trim();
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(name)) throw new ConfigurationError("EMAIL_BACKEND", "EMAIL_BACKEND must be a backend name such as smtp, console, file, memory or dummy");
    out.backend = name;
  }
  const host = get("EMAIL_HOST");
  if (host !== undefined) out.host = hostName("EMAIL_HOST", host.trim());
  const port = get("EMAIL_PORT");
  if (port !== undefined) {
    const n = /^\s*\d{1,5}\s*$/.test(port) ? Number(port) : NaN;
    if (!(n >= 1 && n <= 65535)) throw new ConfigurationError("EMAIL_PORT", "EMAIL_PORT must be an integer from 1 to 65535");
    out.port = n;
  }
  const user = get("EMAIL_HOST_USER");
  if (user !== undefined) out.username = user;
  const password = env["EMAIL_HOST_PASSWORD"];
  if (password !== undefined && password !== "") {
    if (/[\0\r\n]/.test(password)) throw new ConfigurationError("EMAIL_HOST_PASSWORD", "EMAIL_HOST_PASSWORD must not contain CR, LF or NUL");
    out.password = password;
  }
  const useTls = get("EMAIL_USE_TLS");
  const useSsl = get("EMAIL_USE_SSL");
  if (useTls !== undefined) {
    out.useTls = bool(useTls, "EMAIL_USE_TLS");
    if (out.useTls) {
      out.useSsl = false;
      delete out.tls;
    }
  }
  if (useSsl !== undefined) {
    out.useSsl = bool(useSsl, "EMAIL_USE_SSL");
    if (out.useSsl) {
      if (useTls !== undefined && out.useTls) {
        throw new ConfigurationError("EMAIL_USE_SSL", "EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive; set only one to true");
      }
      out.useTls = false;
      delete out.tls;
    }
  }
  const timeout = get("EMAIL_TIMEOUT");
  if (timeout !== undefined) out.timeout = seconds(timeout, "EMAIL_TIMEOUT", "EMAIL_TIMEOUT");
  const keyfile = get("EMAIL_SSL_KEYFILE");
  if (keyfile !== undefined) out.sslKeyfile = keyfile;
  const certfile = get("EMAIL_SSL_CERTFILE");
  if (certfile !== undefined) out.sslCertfile = certfile;
  const filePath = get("EMAIL_FILE_PATH");
  if (filePath !== undefined) out.filePath = filePath;
  const prefix = env["EMAIL_SUBJECT_PREFIX"];
  if (prefix !== undefined) {
    if (/[\0\r\n]/.test(prefix)) throw new ConfigurationError("EMAIL_SUBJECT_PREFIX", "EMAIL_SUBJECT_PREFIX must not contain CR, LF or NUL");
    out.subjectPrefix = prefix;
  }
  const from = get("DEFAULT_FROM_EMAIL");
  if (from !== undefined) out.defaultFrom = address("DEFAULT_FROM_EMAIL", from);
  const server = get("SERVER_EMAIL");
  if (server !== undefined) out.serverEmail = address("SERVER_EMAIL", server);
  const dkim = dkimFromEnvironment(get);
  if (dkim !== undefined) out.dkim = dkim;
  return out;
}

/**
 * The `dkim` setting from EMAIL_DKIM_DOMAIN, EMAIL_DKIM_SELECTOR and the key, either
 * EMAIL_DKIM_PRIVATE_KEY (the PEM itself; literal "\n" are read as line breaks) or
 * EMAIL_DKIM_PRIVATE_KEY_FILE (a path, read now). For two signatures (RSA and Ed25519),
 * EMAIL_DKIM_SELECTOR and EMAIL_DKIM_PRIVATE_KEY_FILE take comma-separated lists, in pairs.
 * Every mistake names the variable.
 */
function dkimFromEnvironment(get: (name: string) => string | undefined): DkimSigner[] | undefined {
  const domain = get("EMAIL_DKIM_DOMAIN");
  const selector = get("EMAIL_DKIM_SELECTOR");
  const pem = get("EMAIL_DKIM_PRIVATE_KEY");
  const file = get("EMAIL_DKIM_PRIVATE_KEY_FILE");
  if (domain === undefined && selector === undefined && pem === undefined && file === undefined) return undefined;
  if (domain === undefined) throw new ConfigurationError("EMAIL_DKIM_DOMAIN", "EMAIL_DKIM_DOMAIN is required with the other EMAIL_DKIM_* variables (the signing domain, e.g. example.com)");
  if (selector === undefined) throw new ConfigurationError("EMAIL_DKIM_SELECTOR", "EMAIL_DKIM_SELECTOR is required with the other EMAIL_DKIM_* variables (the key's selector, e.g. s2026)");
  if ((pem === undefined) === (file === undefined)) {
    throw new ConfigurationError("EMAIL_DKIM_PRIVATE_KEY", "DKIM from the environment needs exactly one of EMAIL_DKIM_PRIVATE_KEY (the PEM) and EMAIL_DKIM_PRIVATE_KEY_FILE (its path)");
  }
  const selectors = selector.split(",").map((s) => s.trim());
  const keyVariable = file !== undefined ? "EMAIL_DKIM_PRIVATE_KEY_FILE" : "EMAIL_DKIM_PRIVATE_KEY";
  const keys: (string | Buffer)[] = file === undefined ? [pem!] : file.split(",").map((path) => readKeyFile(path.trim()));
  if (keys.length !== selectors.length) {
    throw new ConfigurationError(keyVariable, `EMAIL_DKIM_SELECTOR names ${selectors.length} selector(s) and ${keyVariable} gives ${keys.length} key(s); give them in pairs (comma-separated, in the same order)`);
  }
  const names = { domain: "EMAIL_DKIM_DOMAIN", selector: "EMAIL_DKIM_SELECTOR", privateKey: keyVariable };
  const signers = selectors.map((s, i) => signerNamed({ domain, selector: s, privateKey: keys[i]! }, "EMAIL_DKIM", names));
  try {
    return toSigners(signers);
  } catch (error) {
    throw error instanceof ConfigurationError ? new ConfigurationError("EMAIL_DKIM_SELECTOR", error.message) : error;
  }
}

function readKeyFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigurationError("EMAIL_DKIM_PRIVATE_KEY_FILE", `EMAIL_DKIM_PRIVATE_KEY_FILE ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Redaction: secrets never show in util.inspect or JSON.

type Redaction = "secret-keys" | "all-but-backend";

function redactedView(value: unknown, depth = 0): unknown {
  if (typeof value === "function") return `[class ${(value as { name?: string }).name || "anonymous"}]`;
  if (typeof value !== "object" || value === null) return value;
  if (depth > MAX_DEPTH) return "[Object]";
  const own = (value as { [VIEW]?: (depth: number) => unknown })[VIEW];
  if (typeof own === "function") return own(depth);
  if (Array.isArray(value)) return value.map((v) => redactedView(v, depth + 1));
  // A signer prints itself with its key redacted.
  if (value instanceof DkimSigner) return value.toJSON();
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return "<bytes>";
  return secretKeysView(value, depth);
}

function secretKeysView(value: object, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    // A logger prints as what it is, not as its internals (a pino instance holds streams).
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null ? REDACTED : k === "logger" && v !== undefined && v !== null ? "[logger]" : redactedView(v, depth + 1);
  }
  return out;
}

function allButBackendView(value: Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k === "backend" ? redactedView(v, depth + 1) : v === undefined ? undefined : REDACTED;
  }
  return out;
}

function redacting<T extends object>(obj: T, redaction: Redaction = "secret-keys"): T {
  if (Object.isFrozen(obj) || Object.getPrototypeOf(obj) !== null) obj = ownCopy(obj);
  const view = (depth: number): unknown =>
    redaction === "secret-keys" ? secretKeysView(obj, depth) : allButBackendView(obj as Record<string, unknown>, depth);
  Object.defineProperty(obj, VIEW, { value: view, enumerable: false });
  Object.defineProperty(obj, "toJSON", { value: () => view(0), enumerable: false });
  Object.defineProperty(obj, inspect.custom, {
    value: (_depth: number, options: object, insp: typeof inspect) => insp(view(0), options),
    enumerable: false,
  });
  return Object.freeze(obj);
}

function finish(s: Settings): Settings {
  return redacting(ownCopy(s));
}

/** A copy of `options` safe to print: every secret-looking key replaced by `<redacted>`. */
export function redact<T>(options: T): T {
  return redactedView(options) as T;
}

// The message model reads DEFAULT_FROM_EMAIL & co. from the moment missive is loaded.
resetSettings();
