import { inspect } from "node:util";
import {
  AbortError,
  MissiveError,
  SmtpCapabilityError,
  SmtpDeliveryUnknownError,
  SmtpError,
  SmtpRecipientsRefusedError,
} from "../errors.js";
import type { EmailMessage } from "../mime/message.js";
import { policies, type Policy } from "../mime/policy.js";
import { freeze, render, renderedChunks } from "../mime/render.js";
import { getSettings, isSettingExplicit, type Settings, type TlsMode } from "../settings.js";
import type { AuthMethod, AuthOptions } from "../smtp/auth.js";
import type { Capabilities } from "../smtp/capabilities.js";
import { SmtpClient, type DsnOptions, type Envelope, type SmtpTimeouts, type SmtpTlsOptions } from "../smtp/client.js";
import { BACKEND_POOL_KEYS, deriveSmtpConfig, own, resolveSmtpConfig, type ResolvedSmtpConfig } from "../smtp/config.js";
import { SmtpPool, type Lease } from "../smtp/pool.js";
import type { TranscriptHook } from "../smtp/transcript.js";
import type { Clock } from "../observe/clock.js";
import { BaseEmailBackend, publishSent, SETTINGS_FALLBACK, type BackendOptions } from "./base.js";
import { backendDkim, signForDestination, type CheckedDkim } from "./dkim.js";
import type { DkimSetting } from "../dkim/options.js";
import { isDeliveryError, serialize } from "./output.js";

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
  /** Explicit TLS mode; with none (nor useTls/useSsl), a loopback host gets "none" and any other host implicit TLS on 465, required STARTTLS otherwise. */
  tlsMode?: TlsMode | undefined;
  /** Milliseconds, for every phase (Django's EMAIL_TIMEOUT is seconds; `timeout` here is ms). */
  timeout?: number | undefined;
  /** Per-phase timeouts in ms; they win over `timeout`. */
  timeouts?: SmtpTimeouts | undefined;
  sslKeyfile?: string | undefined;
  sslCertfile?: string | undefined;
  /** TLS options: ca, servername, rejectUnauthorized (true unless set to false), cert, key, minVersion. */
  tls?: SmtpTlsOptions | undefined;
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

/** A recipient the server refused, as the report gives it. */
export interface RefusedRecipient {
  readonly address: string;
  readonly code: number;
  readonly enhancedCode: string | undefined;
  readonly text: string;
}

/** What happened to one message. */
export interface SmtpMessageReport {
  readonly message: EmailMessage;
  /** The Message-ID header as sent; undefined when the message was not rendered. */
  readonly messageId: string | undefined;
  /**
   * "sent" (2xx after the data), "skipped" (no recipients), "failed" (see `error`), or
   * "unknown": the data went out but no reply came, so it may have been delivered — do not
   * resend it blindly. Only `failSilently` produces "failed"/"unknown" reports; otherwise
   * the error is thrown.
   */
  readonly status: "sent" | "skipped" | "failed" | "unknown";
  readonly accepted: readonly string[];
  readonly rejected: readonly RefusedRecipient[];
  /** The server's final reply (after the data), or the reply that failed the message. */
  readonly reply: { readonly code: number; readonly enhancedCode: string | undefined; readonly text: string } | undefined;
  /** The server's queue id when its reply named one. */
  readonly queueId: string | undefined;
  readonly error: MissiveError | undefined;
}

export interface SmtpSendReport {
  readonly sent: number;
  readonly reports: readonly SmtpMessageReport[];
}

/**
 * Django's SMTP backend over missive's own client. Every message goes out through a lease
 * from an `SmtpPool` that lives from `open()` to `close()` (`sendMessages` opens and closes
 * it itself when it was not open). Without `pool` that pool has one connection, kept until
 * `close()`: today's single connection; with `pool`, up to `maxConnections`.
 *
 * `open()` leases the first connection (greeting, TLS, AUTH) and gives it back, so that a
 * bad server or credentials fail there. Each message is rendered after its lease is
 * acquired, for that connection's extensions (8BITMIME, SMTPUTF8), so a batch never
 * renders more messages than there are connections. Messages start in input order, at most
 * `maxConnections` in flight; reports stay in input order. Without `failSilently` the first
 * failure stops new messages from starting, the ones in flight finish, and the failure
 * earliest in input order is thrown.
 *
 * Nothing is resent. A connection the server closed while idle (or that holds a reply
 * nobody asked for, or fails the NOOP probe after `probeAfterIdle`) is replaced by the lease
 * check before any byte of the next message leaves; a failure during a message is reported
 * with its `stage` and `bodySent`, and what to do about it is classify()'s answer, which a
 * delivery engine acts on. A message whose outcome is unknown (no reply after the data) is
 * never resent.
 */
export class SmtpBackend extends BaseEmailBackend {
  readonly host: string;
  readonly port: number;
  readonly username: string | undefined;
  readonly useTls: boolean;
  readonly useSsl: boolean;
  readonly tlsMode: TlsMode | undefined;
  readonly timeout: number | undefined;
  readonly sslKeyfile: string | undefined;
  readonly sslCertfile: string | undefined;
  readonly localName: string | undefined;
  readonly requireTls: boolean;
  readonly allow8bit: boolean;
  readonly dsn: DsnOptions | undefined;
  /** The pool settings when pooling is on (`{}` for `pool: true`: the pool's defaults). */
  readonly pool: Readonly<SmtpPoolSettings> | undefined;
  /** One report per message of the last `sendMessages` call. */
  reports: SmtpMessageReport[] = [];

  readonly #password: string | undefined;
  readonly #config: ResolvedSmtpConfig;
  /** While open: the pool every message is leased from. */
  #pool: SmtpPool | undefined;
  /** This backend's `dkim`, else the setting's (src/backends/dkim.ts). */
  readonly #dkim: CheckedDkim;

  /**
   * Options not given fall back to the settings (Django). Everything is checked now by the
   * resolver every SMTP layer shares (src/smtp/config.ts), which also decides the port and
   * the TLS mode: an InvalidArgumentError here, before anything connects.
   */
  constructor(options: SmtpBackendOptions = {}) {
    super(options);
    const fallback = (options as { [SETTINGS_FALLBACK]?: Settings })[SETTINGS_FALLBACK];
    const input = withSettings(options, fallback ?? getSettings(), fallback === undefined);
    this.#config = resolveSmtpConfig(input, "backend");
    this.host = this.#config.host;
    this.port = this.#config.port;
    this.username = input["username"] as string | undefined;
    this.#password = input["password"] as string | undefined;
    this.useTls = (input["useTls"] as boolean | undefined) ?? false;
    this.useSsl = (input["useSsl"] as boolean | undefined) ?? false;
    this.tlsMode = input["tlsMode"] as TlsMode | undefined;
    this.timeout = input["timeout"] as number | undefined;
    this.sslKeyfile = input["sslKeyfile"] as string | undefined;
    this.sslCertfile = input["sslCertfile"] as string | undefined;
    this.localName = input["localName"] as string | undefined;
    // requireTls is met by the TLS mode alone: the resolver turns it into "implicit" or
    // required "starttls", and SmtpClient.connect() fails before AUTH when that mode
    // cannot be had (no TLS at the greeting; STARTTLS not offered, refused or failed).
    this.requireTls = this.#config.requireTls;
    this.allow8bit = this.#config.allow8bit;
    this.dsn = this.#config.dsn;
    this.pool = poolSettings(own(options, "pool"));
    this.#dkim = backendDkim(options);
  }

  /**
   * A new, unconnected client with this backend's options (what `open()` uses), for
   * diagnostics such as `missive check`. `auth: false` leaves the credentials out.
   */
  createClient(overrides: { auth?: false; transcript?: TranscriptHook } = {}): SmtpClient {
    const changes: { credentials?: undefined; transcript?: TranscriptHook } = {};
    if (overrides.auth === false) changes.credentials = undefined;
    if (overrides.transcript !== undefined) changes.transcript = overrides.transcript;
    return new SmtpClient(deriveSmtpConfig(this.#config, changes));
  }

  /** Whether credentials (username/password or `auth`) were given. */
  get hasCredentials(): boolean {
    return this.#config.credentials !== undefined;
  }

  /**
   * The connection's client while open without `pool` (for capabilities, TLS details);
   * undefined when closed or pooled (then the pool holds several).
   */
  get client(): SmtpClient | undefined {
    return this.pool === undefined ? this.#pool?.clients[0] : undefined;
  }

  /**
   * Connects (greeting, EHLO, STARTTLS, AUTH). Resolves to true when it opened a new
   * connection, false when one was already open — or when connecting failed and
   * `failSilently` is set (then `sendMessages` sends nothing and returns 0).
   */
  override async open(): Promise<boolean> {
    return serialize(this, () => this.#open());
  }

  /** QUIT and close; never throws. Safe to call when nothing is open. */
  override async close(): Promise<void> {
    return serialize(this, () => this.#close());
  }

  async sendMessages(messages: readonly EmailMessage[]): Promise<number> {
    return (await this.sendMessagesWithReport(messages)).sent;
  }

  /** As `sendMessages`, with what happened to each message (also left in `reports`). */
  async sendMessagesWithReport(messages: readonly EmailMessage[]): Promise<SmtpSendReport> {
    return serialize(this, async () => {
      const reports: SmtpMessageReport[] = [];
      this.reports = reports;
      if (messages.length === 0) return { sent: 0, reports };
      // Checked before connecting: a message with a bad header or address fails here,
      // and a batch with nobody to send to does not connect at all.
      const recipients = messages.map((m) => m.recipients());
      if (recipients.every((r) => r.length === 0)) {
        for (const message of messages) reports.push(skipped(message));
        return { sent: 0, reports };
      }
      const wasOpen = this.#isOpen;
      if (!wasOpen) {
        try {
          await this.#openOrThrow();
        } catch (err) {
          if (!(this.failSilently && isDeliveryError(err))) throw err;
          // One report per message: each failed with the connection's error.
          messages.forEach((message, i) => reports.push(recipients[i]!.length === 0 ? skipped(message) : failed(message, undefined, err as SmtpError)));
          return { sent: 0, reports };
        }
      }
      try {
        const sent = await this.#sendBatch(this.#pool!, messages, recipients, reports);
        return { sent, reports };
      } finally {
        if (!wasOpen) await this.#close();
      }
    });
  }

  get #isOpen(): boolean {
    return this.#pool !== undefined;
  }

  async #open(): Promise<boolean> {
    try {
      return await this.#openOrThrow();
    } catch (err) {
      if (this.failSilently && isDeliveryError(err)) return false;
      throw err;
    }
  }

  async #openOrThrow(): Promise<boolean> {
    if (this.#isOpen) return false;
    const pool = new SmtpPool(this.#config);
    try {
      // The first connection: the check that the server, TLS and AUTH work. It stays in the
      // pool, idle, for the first message.
      (await pool.acquire()).release();
    } catch (err) {
      await pool.close();
      throw err;
    }
    this.#pool = pool;
    return true;
  }

  async #close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.close();
  }

  /**
   * The batch: as many workers as the pool has connections take the messages in input
   * order, each leasing a connection, rendering the message for it, sending, and giving the
   * lease back. After a failure that is thrown (not reported) no further message starts
   * (waiting leases are cancelled before the failed one is given back); the ones in flight
   * settle, then the earliest failure in input order is thrown.
   */
  async #sendBatch(pool: SmtpPool, messages: readonly EmailMessage[], recipients: readonly string[][], reports: SmtpMessageReport[]): Promise<number> {
    const results: (SmtpMessageReport | undefined)[] = new Array(messages.length);
    const failures: { index: number; error: unknown }[] = [];
    const stop = new AbortController();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (failures.length === 0 && next < messages.length) {
        const i = next++;
        const message = messages[i]!;
        if (recipients[i]!.length === 0) {
          results[i] = skipped(message);
          continue;
        }
        try {
          results[i] = await this.#deliver(message, pool, stop);
        } catch (error) {
          // A wait cancelled because another message failed: this one never started.
          if (stop.signal.aborted && error instanceof AbortError) return;
          failures.push({ index: i, error });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(pool.maxConnections, messages.length) }, worker));
    // On a failure `reports` keeps, in input order, the messages whose outcome is known.
    for (const report of results) if (report !== undefined) reports.push(report);
    if (failures.length > 0) throw failures.reduce((a, b) => (b.index < a.index ? b : a)).error;
    return reports.filter((r) => r.status === "sent").length;
  }

  /**
   * One message: lease a connection, render the message for its extensions (the SMTPUTF8
   * check, the 7bit/8bit policy, the envelope), send it, and turn the outcome into its
   * report. Throws what `failSilently` does not cover.
   */
  async #deliver(message: EmailMessage, pool: SmtpPool, stop: AbortController): Promise<SmtpMessageReport> {
    let messageId: string | undefined;
    let lease: Lease | undefined;
    try {
      lease = await pool.acquire(stop.signal);
      const caps = lease.capabilities;
      const smtputf8 = message.needsSmtpUtf8();
      if (smtputf8 && !caps.smtputf8) {
        throw new SmtpCapabilityError("SMTPUTF8", `The message has an address with a non-ASCII local part, which needs SMTPUTF8, but ${this.host} does not offer it`);
      }
      // Signed here, on this connection's render: SIZE counts the signature, and a signing error comes before MAIL FROM.
      const rendered = await signForDestination(await render(await freeze(message), this.#policy(caps, smtputf8)), message, this.#dkim, this.#config.clock);
      messageId = rendered.messageId;
      const envelope: Envelope = { ...rendered.envelope, eightBit: rendered.eightBit, smtputf8: rendered.smtputf8 };
      if (rendered.size !== undefined) envelope.size = rendered.size;
      if (this.dsn !== undefined) envelope.dsn = this.dsn;
      const result = await lease.client.sendMail(envelope, renderedChunks(rendered));
      publishSent({ backend: "smtp", message, messageId, recipients: result.accepted });
      return {
        message,
        messageId,
        status: "sent",
        accepted: result.accepted,
        rejected: result.rejected.map(refused),
        reply: replyOf(result.reply),
        queueId: result.messageId,
        error: undefined,
      };
    } catch (err) {
      if (stop.signal.aborted && err instanceof AbortError) throw err;
      if (!(this.failSilently && isDeliveryError(err))) {
        // Cancel the other workers' waits before this connection goes back to the pool.
        stop.abort();
        throw err;
      }
      return failed(message, messageId, err as SmtpError);
    } finally {
      lease?.release();
    }
  }

  #policy(caps: Capabilities, smtputf8: boolean): Policy {
    const eightBit = this.allow8bit && caps.eightBitMime;
    if (smtputf8) return policies.smtputf8.with({ allow8bit: eightBit });
    return eightBit ? policies.eightBit : policies.default;
  }

  toJSON(): Record<string, unknown> {
    return {
      backend: "smtp",
      host: this.host,
      port: this.port,
      username: this.username,
      password: this.#password === undefined ? undefined : "<redacted>",
      useTls: this.useTls,
      useSsl: this.useSsl,
      tlsMode: this.tlsMode,
      timeout: this.timeout,
      failSilently: this.failSilently,
      pool: this.pool,
      open: this.#isOpen,
    };
  }

  [inspect.custom](_depth: number, options: object, insp: typeof inspect): string {
    return `SmtpBackend ${insp(this.toJSON(), options)}`;
  }
}

/** The `pool` field: what was asked for (already checked by the resolver), `{}` for `true`. */
function poolSettings(option: unknown): SmtpPoolSettings | undefined {
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
const SETTINGS_KEYS = ["host", "username", "password", "timeout", "sslKeyfile", "sslCertfile", "localName", "tls"] as const;

/**
 * The options as the resolver sees them: every own key of `options` (so that a typo is
 * refused there), with the settings filling what was left undefined. The TLS choice comes
 * whole from the options when they make one, else from the settings; the port from the
 * settings only when it was set there (else the resolver derives it from the TLS mode).
 */
function withSettings(options: SmtpBackendOptions, s: Settings, portFromSettings: boolean): Record<string, unknown> {
  const input: Record<string, unknown> = Object.create(null);
  // `dkim` is the backend's own option (signing happens here, not in SMTP).
  for (const key of Object.keys(options)) if (key !== "dkim") input[key] = own(options, key);
  for (const key of SETTINGS_KEYS) if (input[key] === undefined && s[key] !== undefined) input[key] = s[key];
  const tlsGiven = input["useTls"] !== undefined || input["useSsl"] !== undefined || input["tlsMode"] !== undefined;
  if (!tlsGiven) {
    input["useTls"] = s.useTls;
    input["useSsl"] = s.useSsl;
    if (s.tlsMode !== undefined) input["tlsMode"] = s.tlsMode;
  }
  if (input["port"] === undefined && portFromSettings && isSettingExplicit("port")) input["port"] = s.port;
  return input;
}

function skipped(message: EmailMessage): SmtpMessageReport {
  return { message, messageId: undefined, status: "skipped", accepted: [], rejected: [], reply: undefined, queueId: undefined, error: undefined };
}

/** The report of a message that failed (or whose outcome is unknown) with `error`. */
function failed(message: EmailMessage, messageId: string | undefined, error: MissiveError): SmtpMessageReport {
  const e = error as Partial<SmtpError>;
  return {
    message,
    messageId,
    status: error instanceof SmtpDeliveryUnknownError ? "unknown" : "failed",
    accepted: [],
    rejected: error instanceof SmtpRecipientsRefusedError ? error.rejected.map(refused) : [],
    reply: e.replyCode !== undefined ? { code: e.replyCode, enhancedCode: e.enhancedCode, text: e.serverText ?? "" } : undefined,
    queueId: undefined,
    error,
  };
}

function refused(r: { address: string; reply: { code: number; enhancedCode?: string | undefined; text: string } }): RefusedRecipient {
  return { address: r.address, code: r.reply.code, enhancedCode: r.reply.enhancedCode, text: r.reply.text };
}

function replyOf(reply: { code: number; enhancedCode?: string | undefined; text: string }): SmtpMessageReport["reply"] {
  return { code: reply.code, enhancedCode: reply.enhancedCode, text: reply.text };
}
