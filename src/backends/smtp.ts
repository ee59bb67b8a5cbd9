import { inspect } from "node:util";
import { AbortError, MissiveError, SmtpCapabilityError, SmtpError, SmtpTimeoutError, recordStage } from "../errors.js";
import { classify } from "../errors/classify.js";
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
import { withDefaultFromAdvice } from "./default-from.js";
import type { DkimSetting } from "../dkim/options.js";
import { isDeliveryError, serialize } from "./output.js";
import {
  attachReports,
  countsAsSent,
  deliveredStatus,
  envelopeRecipients,
  failedReport,
  skippedReport,
  sortRefusals,
  type DeliveryReport,
  type SendOptions,
  type SendReport,
} from "./report.js";

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

/** Part one's names for the report types, which every backend now shares (report.ts). */
export type { RefusedRecipient } from "./report.js";
export type SmtpMessageReport = DeliveryReport;
export type SmtpSendReport = SendReport;

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
  /** The TLS mode given (the `tls` option or setting); undefined: decided from host and port. */
  readonly tls: TlsMode | undefined;
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
  reports: DeliveryReport[] = [];
  /** The whole-message deadline (ms), when set. */
  readonly deadline: number | undefined;

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
    this.tls = input["tls"] as TlsMode | undefined;
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
    this.deadline = this.#config.deadline;
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

  async sendMessages(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<number> {
    return (await this.sendMessagesWithReport(messages, options)).sent;
  }

  /**
   * As `sendMessages`, with what happened to each message (also left in `reports`). An open
   * backend takes several calls at once (they share its pool's connections); a closed one
   * opens for the call and closes after it, one call at a time.
   */
  override async sendMessagesWithReport(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<SendReport> {
    if (this.#isOpen) return this.#sendOver(this.#pool!, messages, options);
    return serialize(this, async () => {
      if (this.#isOpen) return this.#sendOver(this.#pool!, messages, options);
      // Checked before connecting: a message with a bad header or address fails here,
      // and a batch with nobody to send to does not connect at all.
      const recipients = messages.map((m) => envelopeRecipients(m, options.recipients?.get(m)));
      if (recipients.every((r) => r.length === 0)) {
        const reports = messages.map(skippedReport);
        this.reports = reports;
        return { sent: 0, reports };
      }
      try {
        await this.#openOrThrow();
      } catch (err) {
        // One report per message: each failed with the connection's error.
        const at = this.#config.clock.now();
        const reports = messages.map((message, i) => (recipients[i]!.length === 0 ? skippedReport(message) : failedReport(message, undefined, err as MissiveError, recipients[i]!, at)));
        this.reports = reports;
        if (!(this.#carriesOn(options) && isDeliveryError(err))) {
          const first = reports.findIndex((r) => r.status !== "skipped");
          throw attachReports(err, reports.slice(0, first + 1));
        }
        return { sent: 0, reports };
      }
      try {
        return await this.#sendOver(this.#pool!, messages, options, recipients);
      } finally {
        await this.#close();
      }
    });
  }

  /** Whether a failed message lets the others go on (reported) rather than stopping the batch (thrown). */
  #carriesOn(options: SendOptions): boolean {
    return this.failSilently || options.stopOnError === false;
  }

  async #sendOver(pool: SmtpPool, messages: readonly EmailMessage[], options: SendOptions, known?: readonly string[][]): Promise<SendReport> {
    const reports: DeliveryReport[] = [];
    this.reports = reports;
    if (messages.length === 0) return { sent: 0, reports };
    const recipients = known ?? messages.map((m) => envelopeRecipients(m, options.recipients?.get(m)));
    await this.#sendBatch(pool, messages, recipients, options, reports);
    return { sent: reports.filter(countsAsSent).length, reports };
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
   * settle, then the earliest failure in input order is thrown, carrying the reports of the
   * messages whose outcome is known.
   */
  async #sendBatch(pool: SmtpPool, messages: readonly EmailMessage[], recipients: readonly string[][], options: SendOptions, reports: DeliveryReport[]): Promise<void> {
    const results: (DeliveryReport | undefined)[] = new Array<DeliveryReport | undefined>(messages.length).fill(undefined);
    const failures: { index: number; error: unknown }[] = [];
    const stop = new AbortController();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (failures.length === 0 && next < messages.length) {
        const i = next++;
        const message = messages[i]!;
        if (recipients[i]!.length === 0) {
          results[i] = skippedReport(message);
          continue;
        }
        try {
          results[i] = await this.#deliver(message, recipients[i]!, pool, stop, options);
        } catch (error) {
          // A wait cancelled because another message failed: this one never started.
          if (stop.signal.aborted && error instanceof AbortError && !(options.signal?.aborted ?? false)) return;
          failures.push({ index: i, error });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(pool.maxConnections, messages.length) }, worker));
    // On a failure `reports` keeps, in input order, the messages whose outcome is known.
    for (const report of results) if (report !== undefined) reports.push(report);
    if (failures.length > 0) {
      const first = failures.reduce((a, b) => (b.index < a.index ? b : a));
      const failed = isDeliveryError(first.error) || first.error instanceof AbortError ? [failedReport(messages[first.index]!, undefined, first.error as MissiveError, recipients[first.index]!, this.#config.clock.now())] : [];
      const known = results.map((r, i) => (i === first.index ? failed[0] : r)).filter((r): r is DeliveryReport => r !== undefined);
      throw attachReports(first.error, known);
    }
  }

  /**
   * One message: wait for the caller's gate (a rate limit), lease a connection, render the
   * message for its extensions (the SMTPUTF8 check, the 7bit/8bit policy, the envelope),
   * send it to `recipients`, and turn the outcome into its report. The caller's signal and
   * the backend's `deadline` cut the wait or the transaction (the connection is dropped).
   * Throws what the batch does not carry on after.
   */
  async #deliver(message: EmailMessage, recipients: readonly string[], pool: SmtpPool, stop: AbortController, options: SendOptions): Promise<DeliveryReport> {
    const clock = this.#config.clock;
    const at = clock.now();
    let messageId: string | undefined;
    let sender: string | undefined;
    let lease: Lease | undefined;
    // `cut` ends this message (the caller's signal, the deadline); `stop` only cancels waits.
    const cut = new AbortController();
    let timedOut = false;
    const user = options.signal;
    const onUserAbort = () => cut.abort(user?.reason);
    if (user?.aborted) onUserAbort();
    else user?.addEventListener("abort", onUserAbort, { once: true });
    const deadline = this.deadline;
    const timer = deadline === undefined ? undefined : clock.setTimeout(() => ((timedOut = true), cut.abort()), deadline);
    const waits = linkedSignal(stop.signal, cut.signal);
    const onCut = () => lease?.client.destroy();
    cut.signal.addEventListener("abort", onCut, { once: true });
    try {
      if (waits.signal.aborted) throw new AbortError("The send was aborted before this message", { cause: user?.reason });
      await options.beforeEach?.(message, waits.signal);
      lease = await pool.acquire(waits.signal);
      if (cut.signal.aborted) throw new AbortError("The send was aborted before this message", { cause: user?.reason });
      const caps = lease.capabilities;
      const smtputf8 = message.needsSmtpUtf8();
      if (smtputf8 && !caps.smtputf8) {
        throw new SmtpCapabilityError("SMTPUTF8", `The message has an address with a non-ASCII local part, which needs SMTPUTF8, but ${this.host} does not offer it`);
      }
      // Signed here, on this connection's render: SIZE counts the signature, and a signing error comes before MAIL FROM.
      const rendered = await signForDestination(await render(await freeze(message), this.#policy(caps, smtputf8)), message, this.#dkim, this.#config.clock);
      messageId = rendered.messageId;
      sender = rendered.envelope.from;
      const only = new Set(recipients);
      const envelope: Envelope = { from: rendered.envelope.from, to: rendered.envelope.to.filter((a) => only.has(a)), eightBit: rendered.eightBit, smtputf8: rendered.smtputf8 };
      if (rendered.size !== undefined) envelope.size = rendered.size;
      if (this.dsn !== undefined) envelope.dsn = this.dsn;
      const result = await lease.client.sendMail(envelope, renderedChunks(rendered));
      publishSent({ backend: "smtp", message, messageId, recipients: result.accepted });
      const { rejected, deferred } = sortRefusals(result.rejected);
      const status = deliveredStatus(result.accepted.length, rejected.length + deferred.length);
      return {
        message,
        messageId,
        status,
        accepted: result.accepted,
        rejected,
        deferred,
        route: undefined,
        attempts: [{ route: undefined, at, delayMs: 0, status, recipients: envelope.to, accepted: result.accepted }],
        error: undefined,
        reply: replyOf(result.reply),
        queueId: result.queueId,
      };
    } catch (caught) {
      let err = withDefaultFromAdvice(caught, sender);
      // The caller's signal or the deadline cut it: say that, unless the message may already be delivered.
      if (cut.signal.aborted && classify(caught) !== "unknown") err = timedOut ? messageTimeout(deadline!, caught) : new AbortError("The send was aborted", { cause: user?.reason ?? caught });
      if (stop.signal.aborted && err instanceof AbortError && !cut.signal.aborted) throw err;
      const reportable = isDeliveryError(err) || err instanceof AbortError;
      if (!(this.#carriesOn(options) && reportable)) {
        // Cancel the other workers' waits before this connection goes back to the pool.
        stop.abort();
        throw err;
      }
      return failedReport(message, messageId, err as MissiveError, recipients, at);
    } finally {
      if (timer !== undefined) clock.clearTimeout(timer);
      user?.removeEventListener("abort", onUserAbort);
      cut.signal.removeEventListener("abort", onCut);
      waits.dispose();
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
      tls: this.tls,
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
const SETTINGS_KEYS = ["host", "username", "password", "timeout", "sslKeyfile", "sslCertfile", "localName", "tlsOptions"] as const;

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
  const tlsGiven = input["useTls"] !== undefined || input["useSsl"] !== undefined || input["tls"] !== undefined;
  if (!tlsGiven) {
    input["useTls"] = s.useTls;
    input["useSsl"] = s.useSsl;
    if (s.tls !== undefined) input["tls"] = s.tls;
  }
  if (input["port"] === undefined && portFromSettings && isSettingExplicit("port")) input["port"] = s.port;
  return input;
}

/** The deadline passed while the message was on its way: a timeout at the step it had reached. */
function messageTimeout(deadline: number, cause: unknown): SmtpTimeoutError {
  const e = cause as Partial<SmtpError>;
  const error = new SmtpTimeoutError("message", deadline, { command: e.command, cause, hint: "the message took longer than the backend's deadline, and the connection was dropped" });
  return recordStage(error, e.stage ?? "connect", e.bodySent ?? false);
}

/** A signal that aborts when any of `signals` does, and `dispose()` to stop listening. */
function linkedSignal(...signals: AbortSignal[]): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  for (const s of signals) {
    if (s.aborted) controller.abort();
    else s.addEventListener("abort", onAbort, { once: true });
  }
  return { signal: controller.signal, dispose: () => signals.forEach((s) => s.removeEventListener("abort", onAbort)) };
}

function replyOf(reply: { code: number; enhancedCode?: string | undefined; text: string }): DeliveryReport["reply"] {
  return { code: reply.code, enhancedCode: reply.enhancedCode, text: reply.text };
}
