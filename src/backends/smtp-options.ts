/**
 * The SMTP backend's options: their types, and how they meet the settings before the one
 * resolver (src/smtp/config.ts) checks them — every own key of the options (so that a typo
 * is refused there), the settings filling what the options leave undefined, and the `pool`
 * option as the backend keeps it.
 */
import type { DkimSetting } from "../dkim/options.js";
import type { Clock } from "../observe/clock.js";
import { isSettingExplicit, type Settings, type TlsMode } from "../settings.js";
import type { AuthMethod, AuthOptions } from "../smtp/auth.js";
import type { DsnOptions, SmtpTimeouts, SmtpTlsOptions } from "../smtp/client.js";
import { BACKEND_POOL_KEYS, own } from "../smtp/config.js";
import type { TranscriptHook } from "../smtp/transcript.js";
import type { BackendOptions } from "./base.js";

export interface SmtpBackendOptions extends BackendOptions {
  /** Default: the `host` setting (EMAIL_HOST), "localhost". */
  host?: string | undefined;
  /** Default: the `port` setting when set; else 465 with implicit TLS, 25 otherwise (Django). */
  port?: number | undefined;
  username?: string | undefined;
  password?: string | undefined;
  /** STARTTLS, required (Django's EMAIL_USE_TLS). */
  useTls?: boolean | undefined;
  /** Implicit TLS (Django's EMAIL_USE_SSL). */
  useSsl?: boolean | undefined;
  /** The TLS mode; with none (nor useTls/useSsl), a loopback host gets "none" and any other host implicit TLS on 465, required STARTTLS otherwise. */
  tls?: TlsMode | undefined;
  /** Milliseconds, for every phase (Django's EMAIL_TIMEOUT is seconds; `timeout` here is ms). */
  timeout?: number | undefined;
  /** Per-phase timeouts in ms (they win over `timeout`), or "rfc5321" for RFC 5321's longer values. */
  timeouts?: SmtpTimeouts | "rfc5321" | undefined;
  /**
   * The most one message may take, in ms, from asking for a connection to the server's
   * final reply (on top of the per-phase timeouts). When it passes the connection is
   * dropped: an SmtpTimeoutError (phase "message"), or "unknown" if the final dot had left.
   */
  deadline?: number | undefined;
  sslKeyfile?: string | undefined;
  sslCertfile?: string | undefined;
  /** Node's TLS options: ca, servername, rejectUnauthorized (true unless set to false), cert, key, minVersion. */
  tlsOptions?: SmtpTlsOptions | undefined;
  /** EHLO name. */
  localName?: string | undefined;
  /** Credentials other than a password (an OAuth 2 token, a token provider); wins over username/password. */
  auth?: AuthOptions | undefined;
  authMethod?: AuthMethod | undefined;
  /** Send credentials over plaintext to a non-loopback host. Off by default. */
  allowInsecureAuth?: boolean | undefined;
  /** Refuse to send unless the connection is encrypted (implicit TLS or STARTTLS). */
  requireTls?: boolean | undefined;
  /** Delivery status notification parameters for every message (RFC 3461). */
  dsn?: DsnOptions | undefined;
  /** Send text parts as 8bit when the server offers 8BITMIME. Default true. */
  allow8bit?: boolean | undefined;
  pipelining?: boolean | undefined;
  chunking?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Receives the SMTP dialogue (credentials redacted). */
  transcript?: TranscriptHook | undefined;
  /** Time and timers for reply deadlines and idle connections, and the DKIM signing time. Default: the system clock (tests step their own). */
  clock?: Clock | undefined;
  /**
   * DKIM signers for this backend's messages (options, a DkimSigner or a list), or `false`
   * for none. Default: the `dkim` setting. A message's own `dkim` wins over it. Each
   * message is signed on the render made for its connection, before MAIL FROM.
   */
  dkim?: DkimSetting | undefined;
  /**
   * Send each batch over several connections at once (see the class comment). Off by
   * default: one connection, messages one after another. `true` uses the defaults below.
   */
  pool?: boolean | SmtpPoolSettings | undefined;
}

/** The `pool` option of the SMTP backend. */
export interface SmtpPoolSettings {
  /** Connections open at once, and so messages in flight at once. Default 5. */
  maxConnections?: number | undefined;
  /** A connection is closed (QUIT) and replaced after this many messages. Default 100. */
  maxMessagesPerConnection?: number | undefined;
  /** A connection idle this long (ms) is closed while the backend stays open. Default 30000. */
  idleTimeout?: number | undefined;
}

/** The `pool` field: what was asked for (already checked by the resolver), `{}` for `true`. */
export function poolSettings(option: unknown): SmtpPoolSettings | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return Object.freeze({});
  const settings: SmtpPoolSettings = {};
  for (const key of BACKEND_POOL_KEYS) {
    const value = own(option as object, key);
    if (value !== undefined) settings[key] = value as number;
  }
  return Object.freeze(settings);
}

/** The keys that take a fallback from the settings when the options leave them undefined. */
const SETTINGS_KEYS = ["host", "username", "password", "timeout", "sslKeyfile", "sslCertfile", "localName", "tlsOptions"] as const;

/**
 * The options as the resolver sees them: every own key of `options` (so that a typo is
 * refused there), with the settings filling what was left undefined. The TLS choice comes
 * whole from the options when they make one, else from the settings; the port from the
 * settings only when it was set there (else the resolver derives it from the TLS mode).
 */
export function withSettings(options: SmtpBackendOptions, s: Settings, portFromSettings: boolean): Record<string, unknown> {
  const input: Record<string, unknown> = Object.create(null);
  // `dkim` is the backend's own option (signing happens here, not in SMTP).
  // `logger` and `logRecipients` are BaseEmailBackend's (the constructor passes the logger on).
  for (const key of Object.keys(options)) if (key !== "dkim" && key !== "logger" && key !== "logRecipients") input[key] = own(options, key);
  for (const key of SETTINGS_KEYS) if (input[key] === undefined && s[key] !== undefined) input[key] = s[key];
  const tlsGiven = input["useTls"] !== undefined || input["useSsl"] !== undefined || input["tls"] !== undefined;
  if (!tlsGiven) {
    input["useTls"] = s.useTls;
    input["useSsl"] = s.useSsl;
    if (s.tls !== undefined) input["tls"] = s.tls;
  }
  if (input["port"] === undefined && portFromSettings && isSettingExplicit("port")) input["port"] = s.port;
  return input;
}

