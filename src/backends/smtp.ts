import { inspect } from "node:util";
import {
  MissiveError,
  SmtpCapabilityError,
  SmtpClosedError,
  SmtpDeliveryUnknownError,
  SmtpError,
  SmtpRecipientsRefusedError,
} from "../errors.js";
import type { EmailMessage } from "../mime/message.js";
import { policies, type Policy } from "../mime/policy.js";
import { getSettings, isSettingExplicit, type Settings, type TlsMode } from "../settings.js";
import type { AuthMethod, AuthOptions } from "../smtp/auth.js";
import type { Capabilities } from "../smtp/capabilities.js";
import { SmtpClient, type DsnOptions, type Envelope, type SendResult, type SmtpTimeouts, type SmtpTlsOptions } from "../smtp/client.js";
import { BACKEND_POOL_KEYS, deriveSmtpConfig, own, resolveSmtpConfig, type ResolvedSmtpConfig } from "../smtp/config.js";
import { SmtpPool } from "../smtp/pool.js";
import type { TranscriptHook } from "../smtp/transcript.js";
import { BaseEmailBackend, publishSent, SETTINGS_FALLBACK, type BackendOptions } from "./base.js";
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
  /** Explicit TLS mode; see DESIGN "Security defaults" for what happens when none is given. */
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
 * Django's SMTP backend over missive's own client. One connection lives from `open()` to
 * `close()`; `sendMessages` opens and closes it itself when it was not open. A connection
 * the server dropped while idle is reconnected once, and a message is retried on the new
 * connection only when none of its bytes had been sent; a message whose outcome is unknown
 * (no reply after the data) is never resent.
 *
 * With `pool`, an `SmtpPool` lives from `open()` to `close()` instead. `open()` still makes
 * one connection (greeting, TLS, AUTH) so that a bad server or credentials fail there, and
 * because the server's extensions decide how messages are rendered (8BITMIME, SMTPUTF8);
 * it then closes it, and the pool connects as messages need it. A batch goes out with up to
 * `maxConnections` messages in flight; reports stay in input order. Without `failSilently`,
 * the first failure stops new messages from starting, the ones in flight finish, and the
 * failure earliest in input order is thrown.
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
  #client: SmtpClient | undefined;
  /** While open with pooling: the pool and the extensions learnt by `open()`'s connection. */
  #pooled: { readonly pool: SmtpPool; readonly capabilities: Capabilities } | undefined;

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

  /** The connection's client while open (for capabilities, TLS details); undefined when closed or pooled. */
  get client(): SmtpClient | undefined {
    return this.#client;
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
      let sent = 0;
      try {
        if (this.#pooled !== undefined) {
          sent = await this.#sendPooled(this.#pooled, messages, recipients, reports);
          return { sent, reports };
        }
        for (const [i, message] of messages.entries()) {
          if (recipients[i]!.length === 0) {
            reports.push(skipped(message));
            continue;
          }
          const report = await this.#sendOne(message, wasOpen || i > 0);
          reports.push(report);
          if (report.status === "sent") sent++;
        }
      } finally {
        if (!wasOpen) await this.#close();
      }
      return { sent, reports };
    });
  }

  get #isOpen(): boolean {
    return this.#client !== undefined || this.#pooled !== undefined;
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
    const client = new SmtpClient(this.#config);
    try {
      await this.#connect(client);
    } catch (err) {
      client.destroy();
      throw err;
    }
    if (this.pool === undefined) {
      this.#client = client;
      return true;
    }
    // This connection is the check that the server, TLS and AUTH work, the source of the
    // capabilities every pooled message is rendered for, and the pool's first connection.
    const pool = new SmtpPool(this.#config);
    pool.adopt(client);
    this.#pooled = { pool, capabilities: client.capabilities! };
    return true;
  }

  /** Connects; `requireTls` is already guaranteed by the TLS mode (see the constructor). */
  async #connect(client: SmtpClient): Promise<void> {
    await client.connect();
  }

  async #close(): Promise<void> {
    const client = this.#client;
    const pooled = this.#pooled;
    this.#client = undefined;
    this.#pooled = undefined;
    await client?.close();
    await pooled?.pool.close();
  }

  async #sendOne(message: EmailMessage, reused: boolean): Promise<SmtpMessageReport> {
    const client = this.#client!;
    return this.#deliver(message, {
      capabilities: async () => {
        // The server may have dropped the connection since the last message (idle timeout).
        if (client.state === "closed") await this.#connect(client);
        return client.capabilities!;
      },
      send: async (envelope, body, bodyStarted) => {
        try {
          return await client.sendMail(envelope, body);
        } catch (err) {
          // A connection the server closed while we were not looking: reconnect once and
          // retry, but only if no byte of this message went out (so it cannot be sent twice).
          if (!(reused && !bodyStarted() && droppedConnection(err, client))) throw err;
          await this.#connect(client);
          return client.sendMail(envelope, body);
        }
      },
    });
  }

  /**
   * The batch through the pool: `maxConnections` workers take the messages in input order,
   * so that at most that many are rendered and in flight at once. After a failure that is
   * thrown (not reported), no further message starts; the ones in flight settle before the
   * earliest failure in input order is thrown, so nothing is left running. The pool only
   * replaces a connection found dead before a transaction starts, and resends nothing.
   */
  async #sendPooled(
    { pool, capabilities }: { readonly pool: SmtpPool; readonly capabilities: Capabilities },
    messages: readonly EmailMessage[],
    recipients: readonly string[][],
    reports: SmtpMessageReport[],
  ): Promise<number> {
    const transport: Transport = { capabilities: () => capabilities, send: (envelope, body) => pool.sendMail(envelope, body) };
    const results: (SmtpMessageReport | undefined)[] = new Array(messages.length);
    const failures: { index: number; error: unknown }[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (failures.length === 0 && next < messages.length) {
        const i = next++;
        const message = messages[i]!;
        try {
          results[i] = recipients[i]!.length === 0 ? skipped(message) : await this.#deliver(message, transport);
        } catch (error) {
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
   * One message, the same way over the one connection or through the pool: the SMTPUTF8
   * check, the rendering policy from the server's extensions, the envelope; then the
   * transport sends it and the outcome becomes its report. Throws what `failSilently`
   * does not cover.
   */
  async #deliver(message: EmailMessage, transport: Transport): Promise<SmtpMessageReport> {
    let messageId: string | undefined;
    try {
      const caps = await transport.capabilities();
      const smtputf8 = message.needsSmtpUtf8();
      if (smtputf8 && !caps.smtputf8) {
        throw new SmtpCapabilityError("SMTPUTF8", `The message has an address with a non-ASCII local part, which needs SMTPUTF8, but ${this.host} does not offer it`);
      }
      const prepared = await message.prepare(this.#policy(caps, smtputf8));
      messageId = prepared.messageId;
      const needsUtf8 = smtputf8 || prepared.smtputf8;
      const { from, to } = message.envelope({ smtputf8: needsUtf8 });
      const envelope: Envelope = { from, to, eightBit: prepared.eightBit, smtputf8: needsUtf8 };
      if (prepared.size !== undefined) envelope.size = prepared.size;
      if (this.dsn !== undefined) envelope.dsn = this.dsn;
      let started = false;
      const body: AsyncIterable<Uint8Array> = {
        async *[Symbol.asyncIterator]() {
          started = true;
          yield* prepared.chunks();
        },
      };
      const result = await transport.send(envelope, body, () => started);
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
      if (!(this.failSilently && isDeliveryError(err))) throw err;
      return failed(message, messageId, err as SmtpError);
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

/** How `#deliver` reaches the server: the backend's one connection, or the pool. */
interface Transport {
  /** The server's extensions, which decide how the message is rendered. */
  capabilities(): Capabilities | Promise<Capabilities>;
  /** `bodyStarted()` tells whether any byte of the body was pulled (so may have left). */
  send(envelope: Envelope, body: AsyncIterable<Uint8Array>, bodyStarted: () => boolean): Promise<SendResult>;
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
  for (const key of Object.keys(options)) input[key] = own(options, key);
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

function droppedConnection(err: unknown, client: SmtpClient): boolean {
  if (err instanceof SmtpClosedError) return true;
  // 421 (RFC 5321 §3.8): the server is closing the channel, e.g. after an idle timeout.
  return err instanceof SmtpError && err.replyCode === 421 && client.state === "closed";
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
