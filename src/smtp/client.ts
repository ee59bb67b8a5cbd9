/**
 * The SMTP client: the one place that sequences the phases of a session.
 *
 *   idle → connecting → greeting → ready ⇄ (mail → rcpt → data → ready) → closing → closed
 *
 * Every byte goes through the connection's one funnel (connection.ts): `submit()` for each
 * command, the greeting, the final dot, BDAT and QUIT, with the expected reply codes given
 * at the call site, and `writeBody()` for message bytes. A 421 at any point closes the
 * connection and fails the current step with a retryable SmtpError; a timeout, drop,
 * protocol error or abort leaves the client "closed" with every pending promise settled.
 *
 * Each error leaving a step carries `stage` (which step) and `bodySent` (whether any byte
 * of this message's body had left), recorded here, where the steps are sequenced.
 *
 * Operations are serialised: calling sendMail twice concurrently queues the second.
 *
 * The opening steps themselves (greeting, EHLO/HELO, STARTTLS, AUTH) are in handshake.ts;
 * this file decides when each runs.
 *
 * Decisions where the brief left a choice:
 * - sendMail on an "idle" client connects lazily; a "closed" client does not reconnect by
 *   itself (sendMail/noop throw a retryable SmtpClosedError), `connect()` starts afresh.
 * - DSN asked for but not offered: SmtpCapabilityError("DSN") unless `dsn.optional`.
 * - `smtputf8: true` but not offered: SmtpCapabilityError("SMTPUTF8") even for ASCII
 *   addresses, because the message itself (UTF-8 headers) needs it.
 * - "opportunistic" continues in plaintext when STARTTLS is not offered or is refused with
 *   a reply; a failed handshake is always an SmtpTlsError.
 * - An abort after the final dot is SmtpDeliveryUnknownError (cause: the AbortError),
 *   because the message may have been taken.
 * - Fewer pipelined replies than commands cannot be told from a slow server: it ends as
 *   the reply deadline's SmtpTimeoutError; more replies is an SmtpProtocolError.
 * - The transcript holds commands and replies, not the body; the end of data shows as ".".
 * - `destroy()` during `connect()` makes that connect reject with SmtpClosedError (not
 *   AbortError, which stays the answer to the caller's AbortSignal); the client is "closed".
 */
import os from "node:os";
import {
  AbortError,
  InvalidArgumentError,
  MissiveError,
  SmtpClosedError,
  SmtpDeliveryUnknownError,
  SmtpError,
  SmtpProtocolError,
  SmtpRecipientsRefusedError,
  quoteReply,
  recordRecipients,
  recordStage,
  type RejectedRecipient,
  type SmtpStage,
} from "../errors.js";
import type { Credentials } from "./auth.js";
import { Capabilities } from "./capabilities.js";
import * as cmd from "./commands.js";
import { resolveSmtpConfig, type ResolvedSmtpConfig } from "./config.js";
import { SmtpConnection, abortError, type Submission, type TlsInfo } from "./connection.js";
import { DataEncoder, bdatChunks, bodyChunks, type BodySource } from "./data-stream.js";
import { ConnectionEvents } from "../observe/connection-events.js";
import { channelSink, EventSink } from "../observe/events.js";
import { renderEnvelope, validateEnvelope, type Envelope } from "./envelope.js";
import { authenticate, hello, readGreeting, starttls, type HandshakeSession } from "./handshake.js";
import { ANNOUNCE, Announcements, DATA_WRITTEN, pipelinedCommands, type Announcement } from "./pipeline.js";
import { addressLiteral, buildTlsOptions, type SmtpClientOptions, type SmtpTimeouts, type TlsMode } from "./options.js";
import { queueId, type SmtpReply } from "./reply.js";
import { Transcript } from "./transcript.js";

export { DEFAULT_TIMEOUTS, addressLiteral, isLoopback } from "./options.js";
export type { DsnOptions, SmtpClientOptions, SmtpTimeouts, SmtpTlsOptions, TlsMode } from "./options.js";
export type { ResolvedSmtpConfig } from "./config.js";
export type { Envelope } from "./envelope.js";

export type SmtpState = "idle" | "connecting" | "greeting" | "ready" | "mail" | "rcpt" | "data" | "closing" | "closed";

export type MessageBody = BodySource;

export interface SendResult {
  accepted: string[];
  rejected: RejectedRecipient[];
  /** The reply after the final dot (or BDAT LAST). */
  reply: SmtpReply;
  /**
   * The server's queue id when its reply names one ("queued as X", "id=X"). Not the
   * Message-ID header: that is `messageId` in every report.
   */
  queueId?: string;
}

/** A command's reply, or the SmtpError of a reply it did not expect (the connection still usable). */
type Outcome = { readonly reply: SmtpReply; readonly refusal?: undefined } | { readonly reply?: undefined; readonly refusal: SmtpError };

export class SmtpClient {
  readonly host: string;
  readonly port: number;
  readonly tlsMode: TlsMode;
  readonly timeouts: Readonly<Required<SmtpTimeouts>>;
  readonly #config: ResolvedSmtpConfig;
  readonly #credentials: Credentials | undefined;
  readonly #transcript: Transcript;
  /** Where each connection's events go (the logger of the config, and the event channels). */
  readonly #sink: EventSink;
  /** The current connection's events (smtp.connect, smtp.tls, smtp.auth, the dialogue, smtp.close). */
  #events: ConnectionEvents | undefined;
  #state: SmtpState = "idle";
  #conn: SmtpConnection | undefined;
  #capabilities: Capabilities | undefined;
  #greeting: SmtpReply | undefined;
  #authenticatedAs: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #connecting: Promise<void> | undefined;
  /** The connect attempt in progress; `destroy()` aborts it. */
  #attempt: AbortController | undefined;
  /** The step in progress, recorded on errors that leave it. */
  #stage: SmtpStage = "connect";
  /** Whether any byte of the current message's body has left. */
  #bodySent = false;
  #transactions = 0;
  /** Envelopes of the messages to follow, whose commands may go out behind a final dot (pipeline.ts). */
  readonly #announced = new Announcements();
  /** The current message's final dot is written and its reply not yet in. */
  #finalPending = false;
  /** Operations queued or running (#serialize). */
  #operations = 0;
  /** Callers of [DATA_WRITTEN] waiting for the next end of data (or for the client to be idle). */
  #dataWaiters: (() => void)[] = [];
  /** Listens on `signal` only while a connection exists, so a long-lived signal collects no listeners. */
  readonly #onAbort = () => this.#abort();
  /** What the opening steps (handshake.ts) read from and record on this client. */
  readonly #session: HandshakeSession = (() => {
    const client = this;
    return {
      get host() { return client.host; },
      get port() { return client.port; },
      get tlsMode() { return client.tlsMode; },
      get timeouts() { return client.timeouts; },
      get config() { return client.#config; },
      get conn() { return client.#conn; },
      get secure() { return client.secure; },
      get events() { return client.#events; },
      get greeting() { return client.#greeting; },
      set greeting(reply) { client.#greeting = reply; },
      get capabilities() { return client.#capabilities; },
      set capabilities(caps) { client.#capabilities = caps; },
      get authenticatedAs() { return client.#authenticatedAs; },
      set authenticatedAs(user) { client.#authenticatedAs = user; },
      localName: () => client.#localName(),
      exchange: (line, stage, expect, display) => client.#exchange(line, stage, expect, display),
      at: (stage, step) => client.#at(stage, step),
    };
  })();

  /**
   * Options are checked here (config.ts, the one resolver every layer shares): a bad host,
   * port, TLS option, timeout, EHLO name or credential throws InvalidArgumentError now. A
   * config resolved by a backend or pool is taken as it is.
   */
  constructor(options: SmtpClientOptions | ResolvedSmtpConfig = {}) {
    const config = resolveSmtpConfig(options, "client");
    this.#config = config;
    this.host = config.host;
    this.tlsMode = config.tlsMode;
    this.port = config.port;
    this.timeouts = config.timeouts;
    this.#credentials = config.credentials;
    this.#transcript = new Transcript(config.transcript, this.host, this.port);
    this.#sink = config.logger === undefined && config.logRecipients === "count" ? channelSink : new EventSink(config.logger, config.logRecipients);
  }

  /** The resolved options this client connects with. */
  get config(): ResolvedSmtpConfig {
    return this.#config;
  }

  get state(): SmtpState {
    return this.#state;
  }

  /** What the server advertised in its last EHLO (after STARTTLS: the post-TLS EHLO only). */
  get capabilities(): Capabilities | undefined {
    return this.#capabilities;
  }

  get secure(): boolean {
    return this.#conn?.secure ?? false;
  }

  get tlsInfo(): TlsInfo | undefined {
    return this.#conn?.tlsInfo;
  }

  get greeting(): SmtpReply | undefined {
    return this.#greeting;
  }

  get authenticatedAs(): string | undefined {
    return this.#authenticatedAs;
  }

  /** The id every event of the current (or last) connection carries; undefined before the first connect. */
  get connectionId(): string | undefined {
    return this.#events?.connectionId;
  }

  /** Messages started on this client (MAIL FROM sent or about to be), over all its connections. */
  get transactions(): number {
    return this.#transactions;
  }

  /** Bytes of a reply nobody asked for are waiting (a pool does not reuse such a connection). */
  get hasUnreadInput(): boolean {
    return this.#conn?.hasUnreadInput ?? false;
  }

  /**
   * Connects, reads the greeting, says EHLO (HELO if EHLO is not recognised), does STARTTLS
   * as the TLS mode asks and AUTH when credentials were given. Idempotent: resolves at once
   * when ready, joins a connect in progress, and reconnects a closed client. On failure the
   * client is closed.
   */
  connect(): Promise<void> {
    if (this.#state === "ready" || this.#state === "mail" || this.#state === "rcpt" || this.#state === "data") return Promise.resolve();
    if (this.#connecting) return this.#connecting;
    const attempt = this.#doConnect();
    this.#connecting = attempt;
    const clear = () => {
      if (this.#connecting === attempt) this.#connecting = undefined;
    };
    attempt.then(clear, clear);
    return attempt;
  }

  /** Sends one message. Connects first if the client is idle. */
  sendMail(envelope: Envelope, body: MessageBody): Promise<SendResult> {
    try {
      validateEnvelope(envelope);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#serialize(async () => {
      this.#checkAborted();
      if (this.#state === "idle" || this.#connecting) await this.connect();
      this.#requireReady("mail");
      return this.#transaction(envelope, body);
    });
  }

  /** NOOP: a cheap probe that the connection is alive. Throws SmtpClosedError (retryable) if not. */
  noop(): Promise<SmtpReply> {
    return this.#serialize(async () => {
      this.#requireReady("noop");
      this.#requireNothingAhead();
      return this.#exchange(cmd.noop(), "noop", [250]);
    });
  }

  /** RSET: abandons any transaction; the connection stays usable. */
  reset(): Promise<SmtpReply> {
    return this.#serialize(async () => {
      this.#requireReady("rset");
      this.#requireNothingAhead();
      return this.#exchange(cmd.rset(), "rset", [250]);
    });
  }

  /** QUIT, then close. Never throws for a server that does not answer or already hung up. */
  quit(): Promise<void> {
    return this.#serialize(() => this.#quit(this.timeouts.command));
  }

  /** QUIT if the connection is usable, waiting at most 5 s for the reply; then destroy. */
  close(): Promise<void> {
    return this.#serialize(() => this.#quit(Math.min(this.timeouts.command, 5_000)));
  }

  /**
   * Closes the socket now. Anything pending rejects with SmtpClosedError, including a
   * `connect()` in progress (at whatever step it is: reading key files, TCP, TLS, greeting,
   * EHLO, AUTH); the client stays "closed" and no socket is left open.
   */
  destroy(): void {
    this.#attempt?.abort(new SmtpClosedError(`The client was destroyed while connecting to ${this.host}:${this.port}`));
    this.#teardown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Internal (pipeline.ts): resolves at the next end of data written, or once nothing is left to do. */
  [DATA_WRITTEN](): Promise<void> {
    if (this.#operations === 0) return Promise.resolve();
    return new Promise((resolve) => this.#dataWaiters.push(resolve));
  }

  #dataWritten(): void {
    for (const resolve of this.#dataWaiters.splice(0)) resolve();
  }

  /**
   * Internal (pipeline.ts): the envelope of the sendMail that will follow the current one,
   * so that its MAIL, RCPT and DATA can go out behind the current message's final dot.
   */
  [ANNOUNCE](envelope: Envelope): Announcement {
    const announcement = this.#announced.add(envelope, () => this.#teardown());
    // The current message's final dot is out already: the commands go now, right behind it.
    if (this.#finalPending && this.#conn && !this.#conn.closed) this.#submitWithNext(this.#conn, undefined);
    return announcement;
  }

  // --- connect ------------------------------------------------------------------------

  async #doConnect(): Promise<void> {
    this.#checkAborted();
    this.#teardown();
    this.#announced.connectionLost();
    this.#state = "connecting";
    this.#capabilities = undefined;
    this.#greeting = undefined;
    this.#authenticatedAs = undefined;
    this.#bodySent = false;
    // One controller per attempt: aborted by destroy() or by the caller's signal, checked
    // after every await and passed to the TCP connect and the TLS handshakes.
    const attempt = new AbortController();
    this.#attempt = attempt;
    const config = this.#config;
    const userSignal = config.signal;
    const forward = () => attempt.abort(abortError(userSignal));
    userSignal?.addEventListener("abort", forward, { once: true });
    const checkpoint = () => {
      if (attempt.signal.aborted) throw attemptError(attempt.signal);
    };
    const events = new ConnectionEvents(this.#sink, this.host, this.port, config.clock);
    this.#events = events;
    const transactionsBefore = this.#transactions;
    try {
      const tlsOptions = await this.#at("tls", () => buildTlsOptions(config));
      checkpoint();
      const connectStarted = events.startOf("smtp.connect");
      const conn = await this.#at("connect", () =>
        SmtpConnection.open({
          host: this.host,
          port: this.port,
          timeoutMs: this.timeouts.connect,
          signal: attempt.signal,
          lookup: config.lookup,
          clock: config.clock,
          transcript: this.#transcript.forConnection(events),
        }),
      );
      this.#conn = conn;
      events.connected(connectStarted, conn.localAddress);
      userSignal?.addEventListener("abort", this.#onAbort, { once: true });
      conn.onClose((reason) => {
        userSignal?.removeEventListener("abort", this.#onAbort);
        events.closed(reason, this.#state === "closing", this.#transactions - transactionsBefore);
        if (this.#conn === conn) this.#state = "closed";
      });
      checkpoint();
      if (this.tlsMode === "implicit") {
        const tlsStarted = events.startOf("smtp.tls");
        await this.#at("tls", () => conn.startTls(tlsOptions, this.timeouts.connect, attempt.signal));
        events.tls(conn.tlsInfo, tlsStarted, false);
      }
      checkpoint();
      this.#state = "greeting";
      await this.#at("greeting", () => readGreeting(this.#session, conn));
      checkpoint();
      await this.#at("ehlo", () => hello(this.#session));
      checkpoint();
      if ((this.tlsMode === "starttls" || this.tlsMode === "opportunistic") && !conn.secure) {
        await this.#at("tls", () => starttls(this.#session, conn, tlsOptions, attempt.signal));
        checkpoint();
      }
      if (this.#credentials) await this.#at("auth", () => authenticate(this.#session, this.#credentials!));
      checkpoint();
      this.#state = "ready";
    } catch (caught) {
      // Whatever the step reported, a destroy() or abort during the attempt is the reason.
      const error = attempt.signal.aborted ? recordStage(attemptError(attempt.signal), this.#stage, false) : caught;
      // A refusal with a reply gets a polite QUIT; a broken connection is just dropped.
      if (!attempt.signal.aborted && this.#conn && !this.#conn.closed && error instanceof SmtpError && !(error instanceof SmtpProtocolError)) {
        await this.#quit(Math.min(this.timeouts.command, 5_000));
      }
      this.#teardown();
      throw error;
    } finally {
      userSignal?.removeEventListener("abort", forward);
      if (this.#attempt === attempt) this.#attempt = undefined;
    }
  }

  // --- the mail transaction -----------------------------------------------------------

  async #transaction(envelope: Envelope, body: MessageBody): Promise<SendResult> {
    const conn = this.#requireConnection();
    this.#bodySent = false;
    const caps = this.#capabilities ?? Capabilities.none();
    const useBdat = this.#config.chunking && caps.chunking;
    const pipelined = this.#config.pipelining && caps.pipelining;
    // Its MAIL, RCPT and DATA may be out already, behind the previous message's final dot.
    const ahead = this.#announced.take(envelope);
    let mailCommand: Submission;
    let rcptCommands: readonly Submission[];
    let dataCommand: Submission | undefined;
    if (ahead !== undefined) {
      ({ mail: mailCommand, rcpts: rcptCommands, data: dataCommand } = ahead);
    } else {
      this.#transactions += 1;
      const { mail, rcpts } = await this.#at("mail", async () => renderEnvelope(envelope, caps, this.host));
      mailCommand = this.#command(mail, [250]);
      // RCPT replies are data: accepted (250, 251) or refused, recipient by recipient.
      rcptCommands = rcpts.map((line) => this.#command(line, "any"));
      dataCommand = useBdat ? undefined : this.#dataCommand();
    }

    this.#state = "mail";
    let mailOutcome: Outcome;
    const rcptReplies: SmtpReply[] = [];
    let dataOutcome: Outcome | undefined;
    if (pipelined) {
      // RFC 2920: MAIL, every RCPT and DATA in one write; replies in order.
      const [mailReply, ...rest] = ahead?.replies ?? conn.submitAll([mailCommand, ...rcptCommands, ...(dataCommand ? [dataCommand] : [])]);
      mailOutcome = await this.#outcome(mailReply!, "mail");
      for (const reply of rest.slice(0, rcptCommands.length)) rcptReplies.push((await this.#outcome(reply, "rcpt")).reply!);
      if (dataCommand) dataOutcome = await this.#outcome(rest[rcptCommands.length]!, "data");
    } else {
      mailOutcome = await this.#outcome(conn.submit(mailCommand), "mail");
      if (mailOutcome.reply) {
        this.#state = "rcpt";
        for (const rcpt of rcptCommands) rcptReplies.push((await this.#outcome(conn.submit(rcpt), "rcpt")).reply!);
      }
    }
    this.#state = "rcpt";

    if (mailOutcome.refusal) {
      await this.#abandonData(dataOutcome);
      await this.#resetAfterFailure();
      throw refused("MAIL FROM", mailOutcome.refusal);
    }
    const accepted: string[] = [];
    const rejected: RejectedRecipient[] = [];
    rcptReplies.forEach((reply, i) => {
      const address = envelope.to[i]!;
      if (reply.code === 250 || reply.code === 251) accepted.push(address);
      else rejected.push({ address, reply });
    });
    if (accepted.length === 0) {
      // A pipelined DATA may still have got 354 from a server that ignores failed RCPTs.
      await this.#abandonData(dataOutcome);
      await this.#resetAfterFailure();
      throw recordStage(new SmtpRecipientsRefusedError(rejected, { command: rcptCommands[0]?.display }), "rcpt", false);
    }

    // A failure from here on says which recipients the RCPT replies had accepted and refused.
    try {
      if (useBdat) return await this.#sendBdat(body, accepted, rejected);
      if (!pipelined) dataOutcome = await this.#outcome(conn.submit(dataCommand!), "data");
      if (dataOutcome!.refusal) {
        // The body is withheld: nothing was delivered.
        await this.#resetAfterFailure();
        throw refused("DATA", dataOutcome!.refusal);
      }
      return await this.#sendData(body, accepted, rejected);
    } catch (error) {
      // Only a connection found closed as the body starts leaves without a stage: "body".
      throw recordRecipients(recordStage(error, "body", this.#bodySent), accepted, rejected);
    }
  }

  async #sendData(body: MessageBody, accepted: string[], rejected: RejectedRecipient[]): Promise<SendResult> {
    const conn = this.#requireConnection();
    this.#state = "data";
    this.#stage = "body";
    const encoder = new DataEncoder({ dotStuff: true });
    // The body and the final dot in one write where they fit (flushed in #finalReply).
    conn.holdWrites();
    try {
      for await (const chunk of bodyChunks(body)) {
        const out = encoder.encode(chunk);
        if (out.length === 0) continue;
        this.#bodySent = true;
        await conn.writeBody(out, this.timeouts.data);
      }
    } catch (error) {
      // The body is half sent: ending DATA now would deliver a truncated message, so drop the connection.
      this.#teardown(error instanceof Error ? error : undefined);
      throw recordStage(error, "body", this.#bodySent);
    }
    const terminator = encoder.flush();
    if (conn.closed) throw recordStage(conn.failure!, "body", this.#bodySent);
    return this.#finalReply(conn, { line: terminator, display: "." }, "<end of data>", accepted, rejected, true);
  }

  async #sendBdat(body: MessageBody, accepted: string[], rejected: RejectedRecipient[]): Promise<SendResult> {
    const conn = this.#requireConnection();
    this.#state = "data";
    this.#stage = "body";
    const chunks = bdatChunks(body, this.#config.chunkSize);
    for (;;) {
      let next: IteratorResult<{ bytes: Buffer; last: boolean }>;
      try {
        next = await chunks.next();
      } catch (error) {
        this.#teardown(error instanceof Error ? error : undefined);
        throw recordStage(error, "body", this.#bodySent);
      }
      if (next.done) {
        // A bug in missive, not a delivery failure: a plain Error (failSilently never hides
        // it, nothing claims it is retryable), and the half-done transaction is dropped.
        this.#teardown();
        throw new Error("Internal error: BDAT chunks ended without LAST");
      }
      const { bytes, last } = next.value;
      const line = cmd.bdat(bytes.length, last);
      const display = line.slice(0, -2);
      if (conn.closed) throw recordStage(conn.failure!, "body", this.#bodySent);
      if (last) return this.#finalReply(conn, { line, payload: bytes, display }, display, accepted, rejected);
      this.#bodySent = true;
      const outcome = await this.#outcome(conn.submit({ line, payload: bytes, display, expect: [250], phase: "command", deadline: this.timeouts.command }), "body");
      if (outcome.refusal) {
        await this.#resetAfterFailure();
        throw refused(display, outcome.refusal);
      }
    }
  }

  /**
   * Sends the end of the message (the final dot, or BDAT LAST with its chunk) and reads the
   * server's verdict. From the moment it is written the server may have the whole message:
   * no reply (timeout, drop, abort, a protocol error that puts the reply in doubt) is
   * "unknown", never "failed". A reply is the outcome: 250 delivered, 421 the server closing,
   * anything else the message refused. After a final dot (`withNext`), the next announced
   * message's commands go in the same write (pipeline.ts).
   */
  async #finalReply(
    conn: SmtpConnection,
    end: { readonly line: string | Uint8Array; readonly payload?: Uint8Array; readonly display: string },
    shown: string,
    accepted: string[],
    rejected: RejectedRecipient[],
    withNext = false,
  ): Promise<SendResult> {
    this.#stage = "final-dot";
    this.#bodySent = true;
    let reply: SmtpReply;
    try {
      const submission: Submission = { ...end, expect: "any", phase: "final-dot", deadline: this.timeouts.finalDot };
      const verdict = withNext ? this.#submitWithNext(conn, submission)! : conn.submit(submission);
      conn.flushWrites();
      this.#dataWritten();
      this.#finalPending = withNext;
      try {
        reply = await verdict;
      } finally {
        this.#finalPending = false;
      }
    } catch (error) {
      // A 421 is a reply: the server is closing and did not take the message.
      if (error instanceof SmtpError && error.replyCode === 421 && !(error instanceof SmtpProtocolError)) throw recordStage(error, "final-dot", true);
      this.#teardown();
      throw recordStage(
        new SmtpDeliveryUnknownError(
          `The message was sent but ${this.host} did not confirm it (${(error as Error).message}); it may or may not have been delivered, so do not resend it blindly`,
          { command: shown, cause: error },
        ),
        "final-dot",
        true,
      );
    }
    if (reply.code !== 250) {
      // 552/554 after DATA: the message was refused; RSET keeps the connection usable. When
      // the next message's commands follow the dot, the reply has ended this transaction
      // (RFC 5321 §4.1.1.4) and the next one has begun: no RSET, which would land after DATA.
      if (this.#announced.ahead) {
        this.#state = "ready";
      } else {
        this.#state = "rcpt";
        await this.#resetAfterFailure();
      }
      throw recordStage(new SmtpError(`${this.host} refused the message: ${quoteReply(reply)}`, { command: shown, reply }), "final-dot", true);
    }
    this.#state = "ready";
    const id = queueId(reply.text);
    return id === undefined ? { accepted, rejected, reply } : { accepted, rejected, reply, queueId: id };
  }

  /** After DATA got 354 although the transaction failed: send an empty body's "." to end it. */
  async #abandonData(dataOutcome: Outcome | undefined): Promise<void> {
    if (dataOutcome?.reply?.code !== 354) return;
    const conn = this.#requireConnection();
    await this.#outcome(conn.submit({ line: ".\r\n", display: ".", expect: "any", phase: "final-dot", deadline: this.timeouts.finalDot }), "data");
  }

  /** RSET after a failed transaction; if even that fails the connection is dropped. */
  async #resetAfterFailure(): Promise<void> {
    if (!this.#conn || this.#conn.closed) return;
    try {
      await this.#exchange(cmd.rset(), "rset", [250]);
      this.#state = "ready";
    } catch {
      this.#teardown();
    }
  }

  // --- pipelining across messages (pipeline.ts) -----------------------------------------

  #dataCommand(): Submission {
    return { line: cmd.data(), display: "DATA", expect: [354], phase: "command", deadline: this.timeouts.dataStart };
  }

  /**
   * Writes `end` (a final dot) and behind it, in the same write, the MAIL, RCPT and DATA of
   * the next announced envelope when they may follow: the server pipelines, the message
   * goes with DATA (not BDAT), and the envelope suits the server (else its sendMail runs
   * as usual and reports why). Without `end`, only those commands. Returns `end`'s reply.
   */
  #submitWithNext(conn: SmtpConnection, end: Submission | undefined): Promise<SmtpReply> | undefined {
    const envelope = this.#announced.next();
    const caps = this.#capabilities;
    const next =
      envelope !== undefined && caps !== undefined && this.#config.pipelining && caps.pipelining && !(this.#config.chunking && caps.chunking)
        ? pipelinedCommands(envelope, caps, this.host, (line, expect) => this.#command(line, expect), this.#dataCommand())
        : undefined;
    const submissions = [...(end ? [end] : []), ...(next ? [next.mail, ...next.rcpts, next.data] : [])];
    if (submissions.length === 0) return undefined;
    const replies = conn.submitAll(submissions);
    if (next !== undefined) {
      this.#transactions += 1;
      this.#announced.written({ ...next, replies: end ? replies.slice(1) : replies });
    }
    return end ? replies[0] : undefined;
  }

  /** NOOP, RSET or QUIT now would land inside the transaction already begun ahead. */
  #requireNothingAhead(): void {
    if (this.#announced.ahead) throw new Error("Internal error: a command other than the announced message's while its MAIL, RCPT and DATA are out");
  }

  // --- the funnel -----------------------------------------------------------------------

  /** A command for the connection's funnel, with the expected codes at the call site. */
  #command(line: string, expect: Submission["expect"], display = line.slice(0, -2), deadline = this.timeouts.command): Submission {
    return { line, display, expect, phase: "command", deadline };
  }

  /** One command through the funnel; any failure leaves with `stage` recorded. */
  #exchange(line: string, stage: SmtpStage, expect: Submission["expect"], display?: string): Promise<SmtpReply> {
    return this.#at(stage, () => this.#requireConnection().submit(this.#command(line, expect, display)));
  }

  /**
   * A reply, or the refusal of an unexpected one (the connection still usable: the caller
   * decides). A failure of the connection itself (drop, timeout, 421, protocol error)
   * throws, with `stage` recorded.
   */
  async #outcome(reply: Promise<SmtpReply>, stage: SmtpStage): Promise<Outcome> {
    this.#stage = stage;
    try {
      return { reply: await reply };
    } catch (error) {
      recordStage(error, stage, this.#bodySent);
      if (error instanceof SmtpError && error.reply !== undefined && this.#conn !== undefined && !this.#conn.closed) return { refusal: error };
      throw error;
    }
  }

  /** Runs one step; an error leaving it records `stage` (the first record wins: the innermost step). */
  async #at<T>(stage: SmtpStage, step: () => Promise<T>): Promise<T> {
    this.#stage = stage;
    try {
      return await step();
    } catch (error) {
      throw recordStage(error, stage, this.#bodySent);
    }
  }

  // --- lifecycle helpers --------------------------------------------------------------

  async #quit(timeout: number): Promise<void> {
    const conn = this.#conn;
    // QUIT after a DATA written ahead would be message text: the connection is dropped instead.
    if (conn && !conn.closed && !this.#announced.ahead) {
      this.#state = "closing";
      try {
        await conn.submit({ line: cmd.quit(), display: "QUIT", expect: "any", phase: "command", deadline: timeout });
      } catch {
        // The server hung up first or did not answer in time: closing is what we wanted anyway.
      }
    }
    this.#teardown();
  }

  #teardown(error?: Error): void {
    const conn = this.#conn;
    if (conn && !conn.closed) conn.destroy(error && error instanceof MissiveError ? error : undefined);
    if (conn || this.#state !== "idle") this.#state = "closed";
  }

  #abort(): void {
    const error = abortError(this.#config.signal);
    this.#conn?.destroy(error);
    if (this.#state !== "idle") this.#state = "closed";
  }

  #checkAborted(): void {
    if (this.#config.signal?.aborted) throw abortError(this.#config.signal);
  }

  #requireReady(stage: SmtpStage): void {
    this.#checkAborted();
    if (this.#state === "ready") return;
    if (this.#state === "closed" || this.#state === "closing") {
      throw recordStage(
        new SmtpClosedError(`The connection to ${this.host}:${this.port} is closed${this.#conn?.failure ? ` (${this.#conn.failure.message})` : ""}; call connect() again`, {
          cause: this.#conn?.failure,
        }),
        stage,
        false,
      );
    }
    throw new InvalidArgumentError(`The client is not connected (state "${this.#state}"); call connect() first`);
  }

  #requireConnection(): SmtpConnection {
    const conn = this.#conn;
    if (!conn || conn.closed) {
      throw conn?.failure instanceof AbortError ? conn.failure : new SmtpClosedError(`The connection to ${this.host}:${this.port} is closed`, { cause: conn?.failure });
    }
    return conn;
  }

  #serialize<T>(operation: () => Promise<T>): Promise<T> {
    this.#operations += 1;
    const run = this.#queue.then(operation, operation);
    const settled = () => {
      if (--this.#operations === 0) this.#dataWritten();
    };
    this.#queue = run.then(settled, settled);
    return run;
  }

  #localName(): string {
    if (this.#config.localName !== undefined) return this.#config.localName;
    const hostname = os.hostname();
    if (hostname.includes(".")) {
      try {
        return cmd.assertHeloName(hostname);
      } catch {
        // not a usable domain: fall through to the address literal
      }
    }
    return addressLiteral(this.#conn?.localAddress);
  }
}

// --- helpers ----------------------------------------------------------------------------

/** `what was refused: 553 …`, keeping the command, reply, stage and bodySent of the refusal. */
function refused(what: string, refusal: SmtpError): SmtpError {
  const reply = refusal.reply!;
  const error = new SmtpError(`${what} was refused: ${quoteReply(reply)}`, { command: refusal.command, reply });
  return recordStage(error, refusal.stage ?? "mail", refusal.bodySent);
}

/** Why a connect attempt was aborted: the SmtpClosedError of destroy(), else an AbortError. */
function attemptError(signal: AbortSignal): MissiveError {
  const reason: unknown = signal.reason;
  return reason instanceof SmtpClosedError ? reason : abortError(signal);
}
