import { inspect } from "node:util";
import { AbortError, MissiveError, SmtpCapabilityError } from "../errors.js";
import type { EmailMessage } from "../mime/message.js";
import { policies, type Policy } from "../mime/policy.js";
import { freeze, render, renderedChunks, renderedSmallBytes, type Rendered } from "../mime/render.js";
import { getSettings, type Settings, type TlsMode } from "../settings.js";
import type { Capabilities } from "../smtp/capabilities.js";
import { SmtpClient, type DsnOptions, type Envelope, type MessageBody, type SendResult } from "../smtp/client.js";
import { deriveSmtpConfig, own, resolveSmtpConfig, type ResolvedSmtpConfig } from "../smtp/config.js";
import { ANNOUNCE, DATA_WRITTEN, type Announcement } from "../smtp/pipeline.js";
import { SmtpPool, type Lease } from "../smtp/pool.js";
import type { TranscriptHook } from "../smtp/transcript.js";
import { noteConnection, type DeliveryContext, type DeliveryObservation, type DeliveryStart } from "../observe/delivery.js";
import { BaseEmailBackend, observationOf, publishSent, SETTINGS_FALLBACK } from "./base.js";
import { backendDkim, signForDestination, type CheckedDkim } from "./dkim.js";
import { withDefaultFromAdvice } from "./default-from.js";
import { endingAfter, finalDotHook } from "./final-dot.js";
import { BatchSignals, MessageCut } from "./message-cut.js";
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

import { poolSettings, withSettings, type SmtpBackendOptions, type SmtpPoolSettings } from "./smtp-options.js";
export type { SmtpBackendOptions, SmtpPoolSettings } from "./smtp-options.js";

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
    // The connections' events go to this backend's logger (its option, else the setting).
    if (this.logger !== undefined) input["logger"] = this.logger;
    input["logRecipients"] = this.logRecipients;
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
        const carriesOn = this.#carriesOn(options) && (isDeliveryError(err) || err instanceof AbortError);
        const first = reports.findIndex((r) => r.status !== "skipped");
        // Each message given a report was a delivery that failed at the connection: observed as such.
        for (const [i, report] of (carriesOn ? reports : reports.slice(0, first + 1)).entries()) {
          if (report.status !== "skipped") await observationOf(this).reported({ recipients: recipients[i]!, route: options.route, attempt: options.attempt, message: report.message }, report);
        }
        if (!carriesOn) throw attachReports(err, reports.slice(0, first + 1));
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
   * order. Each passes a message's gate (`beforeEach`), leases a connection and keeps it
   * for a run of messages (`#lane`). After a failure that is thrown (not reported) no
   * further message starts (waiting gates and leases are cancelled before the failed
   * message's connection is given back); the ones in flight settle, then the earliest
   * failure in input order is thrown, carrying the reports of the messages whose outcome is
   * known.
   */
  async #sendBatch(pool: SmtpPool, messages: readonly EmailMessage[], recipients: readonly string[][], options: SendOptions, reports: DeliveryReport[]): Promise<void> {
    const results: (DeliveryReport | undefined)[] = new Array<DeliveryReport | undefined>(messages.length).fill(undefined);
    const failures: { index: number; error: unknown }[] = [];
    const stop = new AbortController();
    const signals = new BatchSignals(stop.signal, [options.signal, this.#config.signal]);
    // Messages withdrawn from a connection that failed before they started: they go first, on another.
    const again: Slot[] = [];
    // The observed deliveries' ends (src/observe/delivery.ts), each settled with its slot.
    const observed: Promise<unknown>[] = [];
    let next = 0;
    const batch: Batch = {
      options,
      stop,
      take: () => {
        if (stop.signal.aborted) return undefined;
        const withdrawn = again.shift();
        if (withdrawn !== undefined) {
          withdrawn.cut.resume();
          return withdrawn;
        }
        while (next < messages.length) {
          const i = next++;
          if (recipients[i]!.length > 0) return this.#slot(i, messages[i]!, recipients[i]!, signals, options, observed);
          results[i] = skippedReport(messages[i]!);
        }
        return undefined;
      },
      giveBack: (slot) => {
        slot.lane = undefined;
        slot.ready = false;
        slot.prepared = undefined;
        if (stop.signal.aborted) {
          // Never started, and nothing more starts: not reported.
          slot.cut.dispose();
          slot.observed?.end(CANCELLED);
          return;
        }
        // Waiting for a connection again counts towards its deadline.
        slot.cut.resume();
        again.push(slot);
      },
      settle: (slot, outcome) => {
        slot.cut.dispose();
        slot.observed?.end(outcome);
        if (outcome.report !== undefined) results[slot.index] = outcome.report;
        else if (!outcome.cancelled) failures.push({ index: slot.index, error: outcome.error });
      },
    };
    const worker = async (): Promise<void> => {
      for (let slot = batch.take(); slot !== undefined; slot = batch.take()) {
        let lease: Lease;
        try {
          // The gate first: a connection is not held while a message waits for its token.
          await this.#admit(slot, options);
          lease = await pool.acquire(slot.cut.waits);
        } catch (error) {
          batch.settle(slot, this.#outcome(slot, { error }, batch));
          continue;
        }
        try {
          await this.#lane(lease, slot, batch);
        } finally {
          lease.release();
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(pool.maxConnections, messages.length) }, worker));
    } finally {
      for (const slot of again.splice(0)) {
        slot.cut.dispose();
        slot.observed?.end(CANCELLED);
      }
      signals.dispose();
    }
    // Each message's trace and outcome event are out before the batch answers.
    await Promise.all(observed);
    // On a failure `reports` keeps, in input order, the messages whose outcome is known.
    for (const report of results) if (report !== undefined) reports.push(report);
    if (failures.length > 0) {
      const first = failures.reduce((a, b) => (b.index < a.index ? b : a));
      const failed = isDeliveryError(first.error) || first.error instanceof AbortError ? [failedReport(messages[first.index]!, undefined, first.error as MissiveError, recipients[first.index]!, this.#config.clock.now())] : [];
      const known = results.map((r, i) => (i === first.index ? failed[0] : r)).filter((r): r is DeliveryReport => r !== undefined);
      throw attachReports(first.error, known);
    }
  }

  /** A message as the batch carries it; its deadline starts now, and so does its observed delivery. */
  #slot(index: number, message: EmailMessage, recipients: readonly string[], signals: BatchSignals, options: SendOptions, observed: Promise<unknown>[]): Slot {
    const cut = new MessageCut(signals, this.deadline, this.#config.clock);
    const admitted = options.beforeEach === undefined && !cut.waitsEnded;
    const slot: Slot = { index, message, recipients, at: this.#config.clock.now(), cut, admitted, gate: admitted ? PASSED : undefined, lane: undefined, messageId: undefined };
    const observation = observationOf(this);
    const start = { recipients, route: options.route, attempt: options.attempt, message };
    if (observation.wanted(start)) observed.push(this.#observe(slot, observation, start));
    return slot;
  }

  /**
   * One message's delivery as observed (its trace, its outcome event): it starts when the
   * batch takes the message and ends when the slot settles. The message may move between
   * lanes meanwhile; it stays one delivery. A message the batch never started (it stopped
   * first) ends with its cut's error and no outcome, as a wait cancelled by another
   * message's failure does.
   */
  #observe(slot: Slot, observation: DeliveryObservation, start: DeliveryStart): Promise<unknown> {
    let end!: (outcome: Outcome) => void;
    const settled = new Promise<Outcome>((resolve) => (end = resolve));
    slot.observed = { context: undefined, end };
    const work = async (context: DeliveryContext | undefined): Promise<DeliveryReport> => {
      slot.observed!.context = context;
      if (context !== undefined && slot.messageId !== undefined) context.messageId = slot.messageId;
      const outcome = await settled;
      if (outcome.report !== undefined) return outcome.report;
      if (!outcome.cancelled) throw outcome.error;
      slot.observed!.cancelled = true;
      throw slot.cut.notStarted();
    };
    const thrown = (error: unknown): DeliveryReport | undefined => {
      if (slot.observed!.cancelled || !(isDeliveryError(error) || error instanceof AbortError)) return undefined;
      return failedReport(slot.message, slot.messageId, error as MissiveError, slot.recipients, slot.at);
    };
    return observation.run(start, work, thrown).catch(() => undefined);
  }

  /**
   * The caller's gate (`beforeEach`: a rate limit's token), awaited before any byte of the
   * message leaves: its MAIL FROM is neither sent nor pipelined before. Once per message: a
   * message withdrawn from a failed connection keeps the token it took.
   */
  #admit(slot: Slot, options: SendOptions): Promise<void> {
    slot.gate ??= (async () => {
      if (slot.cut.waitsEnded) throw slot.cut.notStarted();
      await options.beforeEach?.(slot.message, slot.cut.waits);
      slot.admitted = true;
    })();
    // Several lanes may wait on it in turn; a rejection is each one's to handle.
    slot.gate.catch(() => undefined);
    return slot.gate;
  }

  /**
   * Messages over one leased connection, starting with `first` (its gate passed): up to
   * LANE_DEPTH held at once, so that while one is on the wire the next ones pass their
   * gates, are rendered, and are announced to the client so that their MAIL, RCPT and DATA
   * can follow the previous final dot (src/smtp/pipeline.ts). The messages behind the
   * first are taken by `feed`, which runs beside the loop below; more are rendered once the
   * current message's end of data is written, so that rendering overlaps the server reading
   * the message. Each message starts as the one before settles.
   *
   * The run ends when no message is left, a failure stops the batch, the connection can
   * carry no more (maxMessagesPerConnection) or is no longer usable, or the next message is
   * still waiting at its gate (the connection is not held idle through a rate limit's wait).
   * Messages held but not started are then withdrawn (commands already pipelined drop the
   * connection) and given back to the batch, which sends them over another lease — or, when
   * the batch stopped, never.
   */
  async #lane(lease: Lease, first: Slot, batch: Batch): Promise<void> {
    const client = lease.client;
    const caps = lease.capabilities;
    const lane: object = {};
    // A connection the pool made counts its messages from zero.
    let room = this.#config.pool.maxMessagesPerConnection - client.transactions;
    const window: Slot[] = [];
    let open = true;
    let feeding: Promise<void> | undefined;
    let rendering = false;
    let woken: (() => void) | undefined;
    const wake = () => {
      const resolve = woken;
      woken = undefined;
      resolve?.();
    };
    const hold = (slot: Slot) => {
      noteConnection(slot.observed?.context, { host: this.host, port: this.port, connectionId: client.connectionId, tlsVersion: client.tlsInfo?.protocol });
      slot.lane = lane;
      window.push(slot);
      room -= 1;
    };
    const feed = async (): Promise<void> => {
      while (open && room > 0 && window.length < LANE_DEPTH) {
        const slot = batch.take();
        if (slot === undefined) break;
        hold(slot);
        if (!slot.admitted) {
          let refused: { readonly error: unknown } | undefined;
          try {
            await this.#admit(slot, batch.options);
          } catch (error) {
            refused = { error };
          }
          // Given back while it waited (the run ended): whoever holds it now handles its gate.
          if (slot.lane !== lane) break;
          slot.failure ??= refused;
        }
        rendering = true;
        await this.#render(slot, caps);
        rendering = false;
        if (!open) break;
        if (slot.prepared !== undefined && window[0] !== slot) {
          // Its turn comes after the messages before it: meanwhile its deadline waits too.
          slot.cut.pause();
          slot.announcement = client[ANNOUNCE](slot.prepared.envelope);
        }
        slot.ready = true;
        wake();
      }
    };
    const refill = () => {
      feeding ??= feed().then(
        () => {
          feeding = undefined;
          wake();
        },
        (error: unknown) => {
          // A bug, not a delivery outcome: the message being fed fails with it.
          rendering = false;
          feeding = undefined;
          const slot = window.at(-1);
          if (slot !== undefined && slot.ready !== true) {
            slot.failure ??= { error };
            slot.ready = true;
          }
          wake();
        },
      );
    };
    hold(first);
    await this.#render(first, caps);
    first.ready = true;
    try {
      while (window.length > 0) {
        const head = window[0]!;
        if (head.ready !== true) {
          // Still at its gate (a rate limit's wait): the run ends, the lease goes back meanwhile.
          if (!head.admitted || feeding === undefined) break;
          await new Promise<void>((resolve) => (woken = resolve));
          continue;
        }
        if (head.sending === undefined && head.failure === undefined) {
          if (batch.stop.signal.aborted) break;
          this.#start(head, client, batch.options);
        }
        refill();
        const outcome = await this.#sent(head, batch);
        window.shift();
        batch.settle(head, outcome);
        // Nothing more starts here: the batch stops, or the connection failed (then the rest go on another).
        if (batch.stop.signal.aborted || client.state !== "ready") break;
        const following = window[0];
        if (following?.ready === true && following.failure === undefined) {
          this.#start(following, client, batch.options);
          // Render more once its end of data is out (with the commands pipelined behind it):
          // then the CPU work overlaps the server reading the message, not a short reply due.
          await client[DATA_WRITTEN]();
        }
      }
    } finally {
      open = false;
      // A render in progress is for this connection: let it finish before its message moves on.
      if (rendering) await feeding;
      for (const slot of window.splice(0)) {
        slot.announcement?.withdraw();
        slot.announcement = undefined;
        // A message that failed before it could start has its outcome; the others go on another lease.
        if (slot.ready === true && slot.failure !== undefined && !batch.stop.signal.aborted) batch.settle(slot, await this.#sent(slot, batch));
        else batch.giveBack(slot);
      }
    }
  }

  /**
   * Renders one message for the lease's extensions (the SMTPUTF8 check, the 7bit/8bit
   * policy), signs that render when DKIM applies, and makes its envelope for the recipients
   * it is sent to. A failure is kept for its outcome.
   */
  async #render(slot: Slot, caps: Capabilities): Promise<void> {
    if (slot.failure !== undefined) return;
    const message = slot.message;
    try {
      if (slot.cut.cut) throw slot.cut.notStarted();
      const smtputf8 = message.needsSmtpUtf8();
      if (smtputf8 && !caps.smtputf8) {
        throw new SmtpCapabilityError("SMTPUTF8", `The message has an address with a non-ASCII local part, which needs SMTPUTF8, but ${this.host} does not offer it`);
      }
      // Signed here, on this connection's render: SIZE counts the signature, and a signing error comes before MAIL FROM.
      const rendered = await signForDestination(await render(await freeze(message), this.#policy(caps, smtputf8)), message, this.#dkim, this.#config.clock);
      slot.messageId = rendered.messageId;
      if (slot.observed?.context !== undefined) slot.observed.context.messageId = slot.messageId;
      if (slot.cut.cut) throw slot.cut.notStarted();
      const only = new Set(slot.recipients);
      const envelope: Envelope = { from: rendered.envelope.from, to: rendered.envelope.to.filter((a) => only.has(a)), eightBit: rendered.eightBit, smtputf8: rendered.smtputf8 };
      if (rendered.size !== undefined) envelope.size = rendered.size;
      if (this.dsn !== undefined) envelope.dsn = this.dsn;
      slot.prepared = { rendered, envelope };
    } catch (error) {
      slot.failure = { error };
    }
  }

  /**
   * The message's body as the client reads it: the bytes of the render made for this
   * connection. With `beforeFinalDot` the body ends only once the hook resolved: the client
   * writes the final dot (or BDAT LAST) after the body ends (src/backends/final-dot.ts).
   */
  #body(slot: Slot, options: SendOptions): MessageBody {
    const hook = finalDotHook(options, slot.message);
    // A small message held in memory goes as one buffer: no generators per chunk.
    if (hook === undefined) {
      const whole = renderedSmallBytes(slot.prepared!.rendered, SMALL_BODY);
      if (whole !== undefined) return whole;
    }
    const chunks = renderedChunks(slot.prepared!.rendered);
    return hook === undefined ? chunks : endingAfter(chunks, hook);
  }

  /**
   * Starts a rendered message on the lane's connection (its commands may be out already,
   * pipelined). One cut while it waited its turn (the caller's signal) never starts.
   */
  #start(slot: Slot, client: SmtpClient, options: SendOptions): void {
    const announcement = slot.announcement;
    slot.announcement = undefined;
    if (slot.cut.cut) {
      // Its commands, if already out, leave the server after 354: withdrawing drops the connection.
      announcement?.withdraw();
      slot.failure = { error: slot.cut.notStarted() };
      return;
    }
    slot.cut.resume();
    slot.cut.onWire(() => client.destroy());
    slot.sending = client.sendMail(slot.prepared!.envelope, this.#body(slot, options));
    slot.sending.catch(() => undefined);
  }

  async #sent(slot: Slot, batch: Batch): Promise<Outcome> {
    if (slot.sending === undefined) return this.#outcome(slot, { error: slot.failure!.error }, batch);
    let result: SendResult;
    try {
      result = await slot.sending;
    } catch (error) {
      return this.#outcome(slot, { error }, batch);
    }
    return this.#outcome(slot, { result }, batch);
  }

  /**
   * What became of one message, the one place its report is made: the server's verdict
   * (sent or partial, refused recipients sorted into rejected and deferred), or its failure
   * — a cut says so (a timeout at the step reached, or an abort; "unknown" after the final
   * dot) — as a "failed"/"unknown" report when the batch carries on, else the error that
   * stops the batch. A wait cancelled because another message stopped the batch is neither.
   */
  #outcome(slot: Slot, settled: { readonly result: SendResult } | { readonly error: unknown }, batch: Batch): Outcome {
    const { message, messageId, recipients, at } = slot;
    if ("result" in settled) {
      const result = settled.result;
      const envelope = slot.prepared!.envelope;
      publishSent({ backend: "smtp", message, messageId: messageId!, recipients: result.accepted });
      const { rejected, deferred } = sortRefusals(result.rejected);
      const status = deliveredStatus(result.accepted.length, rejected.length + deferred.length);
      return {
        report: {
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
        },
      };
    }
    const err = withDefaultFromAdvice(slot.cut.explain(settled.error), slot.prepared?.envelope.from);
    const stop = batch.stop;
    if (stop.signal.aborted && err instanceof AbortError && !slot.cut.cut) return { cancelled: true };
    const reportable = isDeliveryError(err) || err instanceof AbortError;
    if (!(this.#carriesOn(batch.options) && reportable)) {
      // Cancel the other messages' waits before this connection goes back to the pool.
      stop.abort();
      return { error: err };
    }
    return { report: failedReport(message, messageId, err as MissiveError, recipients, at) };
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

function replyOf(reply: { code: number; enhancedCode?: string | undefined; text: string }): DeliveryReport["reply"] {
  return { code: reply.code, enhancedCode: reply.enhancedCode, text: reply.text };
}

/** A body in memory up to this size is handed to the client with its header block as one buffer. */
const SMALL_BODY = 64 * 1024;

/** Messages one lane holds at once: the one on the wire and the next two. */
const LANE_DEPTH = 3;

/** The gate of a message sent without `beforeEach`. */
const PASSED: Promise<void> = Promise.resolve();

/** One batch, as its workers and lanes see it. */
interface Batch {
  readonly options: SendOptions;
  readonly stop: AbortController;
  /** The next message to send (withdrawn ones first, then input order), or undefined when none is left or the batch stops. */
  take(): Slot | undefined;
  /** A message held but not started goes back to be sent over another lease (dropped once the batch stops). */
  giveBack(slot: Slot): void;
  settle(slot: Slot, outcome: Outcome): void;
}

/** How a message the batch never started ends its observed delivery. */
const CANCELLED: Outcome = { cancelled: true };

type Outcome =
  | { readonly report: DeliveryReport; readonly error?: undefined; readonly cancelled?: undefined }
  | { readonly report?: undefined; readonly error: unknown; readonly cancelled?: undefined }
  | { readonly report?: undefined; readonly error?: undefined; readonly cancelled: true };

/** A message on its way: gated, rendered for its lane's connection, announced to the client, then sent. */
interface Slot {
  readonly index: number;
  readonly message: EmailMessage;
  /** The envelope recipients it is sent to (`options.recipients` may narrow them). */
  readonly recipients: readonly string[];
  /** When it started (its attempt's `at`). */
  readonly at: number;
  readonly cut: MessageCut;
  /** Its gate passed. */
  admitted: boolean;
  gate: Promise<void> | undefined;
  /** The lane that holds it. */
  lane: object | undefined;
  /** The Message-ID of its render (the same in every render). */
  messageId: string | undefined;
  prepared?: { readonly rendered: Rendered; readonly envelope: Envelope } | undefined;
  /** Why it failed before it was sent (its gate, its render, a cut). */
  failure?: { readonly error: unknown } | undefined;
  /** Rendered (or failed to be) on its lane: it may start. */
  ready?: boolean;
  announcement?: Announcement | undefined;
  sending?: Promise<SendResult> | undefined;
  /** Its observed delivery, when something observes: the trace's context, and how it ends. */
  observed?: { context: DeliveryContext | undefined; cancelled?: boolean; end(outcome: Outcome): void } | undefined;
}
