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
import { freeze, render, renderedChunks, type Rendered } from "../mime/render.js";
import { getSettings, isSettingExplicit, type Settings, type TlsMode } from "../settings.js";
import type { AuthMethod, AuthOptions } from "../smtp/auth.js";
import type { Capabilities } from "../smtp/capabilities.js";
import { SmtpClient, type DsnOptions, type Envelope, type SendResult, type SmtpTimeouts, type SmtpTlsOptions } from "../smtp/client.js";
import { BACKEND_POOL_KEYS, deriveSmtpConfig, own, resolveSmtpConfig, type ResolvedSmtpConfig } from "../smtp/config.js";
import { ANNOUNCE, DATA_WRITTEN, type Announcement } from "../smtp/pipeline.js";
import { SmtpPool, type Lease } from "../smtp/pool.js";
import type { TranscriptHook } from "../smtp/transcript.js";
import type { Clock } from "../observe/clock.js";
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
  /** Time and timers for reply deadlines and idle connections. Default: the system clock (tests step their own). */
  clock?: Clock | undefined;
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
 * acquired, for that connection's extensions (8BITMIME, SMTPUTF8); a lease carries a run of
 * messages, the next two rendered while one is on the wire (at most three per connection at
 * once), their commands pipelined behind the previous message's final dot when the server
 * offers PIPELINING. Messages start in input order, one at a time per connection; reports
 * stay in input order. Without `failSilently` the first failure stops new messages from
 * starting, the ones in flight finish, and the failure earliest in input order is thrown
 * (a message whose commands were already pipelined is given up and that connection dropped).
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
   * order. Each leases a connection and keeps it for a run of messages (`#lane`), rendering
   * the next ones while the current one is on the wire. After a failure that is thrown (not
   * reported) no further message starts (waiting leases are cancelled before the failed one
   * is given back); the ones in flight settle, then the earliest failure in input order is
   * thrown.
   */
  async #sendBatch(pool: SmtpPool, messages: readonly EmailMessage[], recipients: readonly string[][], reports: SmtpMessageReport[]): Promise<number> {
    const results: (SmtpMessageReport | undefined)[] = new Array(messages.length);
    const failures: { index: number; error: unknown }[] = [];
    const stop = new AbortController();
    // Messages that were rendered on a connection that closed before they started: they go first, on another.
    const again: number[] = [];
    let next = 0;
    const batch: Batch = {
      messages,
      stop,
      take: () => {
        if (failures.length > 0) return undefined;
        if (again.length > 0) return again.shift();
        while (next < messages.length) {
          const i = next++;
          if (recipients[i]!.length > 0) return i;
          results[i] = skipped(messages[i]!);
        }
        return undefined;
      },
      settle: (index, outcome) => {
        if (outcome.report !== undefined) results[index] = outcome.report;
        // A wait cancelled because another message failed: this one never started.
        else if (!(stop.signal.aborted && outcome.error instanceof AbortError)) failures.push({ index, error: outcome.error });
      },
    };
    const worker = async (): Promise<void> => {
      for (let i = batch.take(); i !== undefined; i = batch.take()) {
        let lease: Lease;
        try {
          lease = await pool.acquire(stop.signal);
        } catch (error) {
          batch.settle(i, this.#outcome(messages[i]!, undefined, error, stop));
          continue;
        }
        try {
          again.push(...(await this.#lane(lease, i, batch)));
        } finally {
          lease.release();
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
   * Messages over one leased connection, starting with `first`: up to LANE_DEPTH rendered
   * at once, so that while one is on the wire the next ones are rendered, and announced to
   * the client so that their MAIL, RCPT and DATA can follow the previous final dot
   * (src/smtp/pipeline.ts). It renders more once the current message's end of data is
   * written, so that rendering overlaps the server reading the message. The run ends when no message is left, a
   * failure stops the batch, the connection can carry no more (maxMessagesPerConnection)
   * or is no longer usable; messages rendered but not started are given up (withdrawn) and,
   * when the connection failed under them, returned to be sent on another.
   */
  async #lane(lease: Lease, first: number, batch: Batch): Promise<number[]> {
    const client = lease.client;
    // A connection the pool made counts its messages from zero.
    let room = this.#config.pool.maxMessagesPerConnection - client.transactions;
    const window: LaneSlot[] = [];
    let claimed: number | undefined = first;
    const start = (slot: LaneSlot) => {
      if (slot.prepared === undefined) return;
      slot.announcement = undefined;
      slot.sending = client.sendMail(slot.prepared.envelope, renderedChunks(slot.prepared.rendered));
      slot.sending.catch(() => undefined);
    };
    const refill = async () => {
      while (window.length < LANE_DEPTH && claimed !== undefined) {
        const slot = await this.#prepareSlot(claimed, batch.messages[claimed]!, lease.capabilities);
        window.push(slot);
        room -= 1;
        claimed = room > 0 ? batch.take() : undefined;
        if (window.length === 1) start(slot);
        else if (slot.prepared !== undefined) slot.announcement = client[ANNOUNCE](slot.prepared.envelope);
      }
    };
    await refill();
    while (window.length > 0) {
      const head = window.shift()!;
      const outcome = await this.#sent(head, batch.stop);
      batch.settle(head.index, outcome);
      if (batch.stop.signal.aborted || client.state !== "ready") {
        // Nothing more starts here: the batch stops, or the connection failed (then the rest go on another).
        for (const slot of window) slot.announcement?.withdraw();
        const left = window.map((slot) => slot.index);
        if (claimed !== undefined) left.push(claimed);
        return batch.stop.signal.aborted ? [] : left;
      }
      const following = window[0];
      if (following !== undefined) {
        start(following);
        // Render more once its end of data is out (with the commands pipelined behind it):
        // then the CPU work overlaps the server reading the message, not a short reply due.
        await client[DATA_WRITTEN]();
      }
      await refill();
    }
    return claimed === undefined ? [] : [claimed];
  }

  /** Renders one message for the lease's extensions (the SMTPUTF8 check, the 7bit/8bit policy, the envelope). */
  async #prepareSlot(index: number, message: EmailMessage, caps: Capabilities): Promise<LaneSlot> {
    try {
      const smtputf8 = message.needsSmtpUtf8();
      if (smtputf8 && !caps.smtputf8) {
        throw new SmtpCapabilityError("SMTPUTF8", `The message has an address with a non-ASCII local part, which needs SMTPUTF8, but ${this.host} does not offer it`);
      }
      const rendered = await render(await freeze(message), this.#policy(caps, smtputf8));
      const envelope: Envelope = { ...rendered.envelope, eightBit: rendered.eightBit, smtputf8: rendered.smtputf8 };
      if (rendered.size !== undefined) envelope.size = rendered.size;
      if (this.dsn !== undefined) envelope.dsn = this.dsn;
      return { index, message, prepared: { rendered, envelope } };
    } catch (error) {
      return { index, message, error };
    }
  }

  /** The outcome of one message: its report, or the error `failSilently` does not cover. */
  async #sent(slot: LaneSlot, stop: AbortController): Promise<Outcome> {
    const messageId = slot.prepared?.rendered.messageId;
    if (slot.sending === undefined) return this.#outcome(slot.message, messageId, slot.error, stop);
    try {
      const result = await slot.sending;
      const message = slot.message;
      publishSent({ backend: "smtp", message, messageId: messageId!, recipients: result.accepted });
      return {
        report: {
          message,
          messageId,
          status: "sent",
          accepted: result.accepted,
          rejected: result.rejected.map(refused),
          reply: replyOf(result.reply),
          queueId: result.messageId,
          error: undefined,
        },
      };
    } catch (error) {
      return this.#outcome(slot.message, messageId, error, stop);
    }
  }

  /** A failure: a "failed"/"unknown" report under `failSilently`, else the error (and the batch stops). */
  #outcome(message: EmailMessage, messageId: string | undefined, err: unknown, stop: AbortController): Outcome {
    if (stop.signal.aborted && err instanceof AbortError) return { error: err };
    if (!(this.failSilently && isDeliveryError(err))) {
      // Cancel the other workers' waits before this connection goes back to the pool.
      stop.abort();
      return { error: err };
    }
    return { report: failed(message, messageId, err as SmtpError) };
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

/** Messages one lane has rendered at once: the one on the wire and the next two. */
const LANE_DEPTH = 3;

/** One batch, as its lanes see it. */
interface Batch {
  readonly messages: readonly EmailMessage[];
  readonly stop: AbortController;
  /** The next message to send (input order), or undefined when none is left or the batch stops. */
  take(): number | undefined;
  settle(index: number, outcome: Outcome): void;
}

type Outcome = { readonly report: SmtpMessageReport; readonly error?: undefined } | { readonly report?: undefined; readonly error: unknown };

/** A message in a lane: rendered (or failed to), announced to the client, then sent. */
interface LaneSlot {
  readonly index: number;
  readonly message: EmailMessage;
  readonly prepared?: { readonly rendered: Rendered; readonly envelope: Envelope };
  readonly error?: unknown;
  announcement?: Announcement | undefined;
  sending?: Promise<SendResult>;
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
