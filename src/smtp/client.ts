/**
 * The SMTP client: the one place that sequences the phases of a session.
 *
 *   idle → connecting → greeting → ready ⇄ (mail → rcpt → data → ready) → closing → closed
 *
 * All I/O goes through one funnel, `#roundTrip` (write command lines, read one reply per
 * line, in order), and `#exchange(command, { expect, phase, redact })` on top of it
 * checks the expected codes at the call site. A 421 at any point closes the connection
 * and fails the current step with a retryable SmtpError; a timeout, drop, protocol error
 * or abort leaves the client "closed" with every pending promise settled.
 *
 * Operations are serialised: calling sendMail twice concurrently queues the second.
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
import type tls from "node:tls";
import {
  AbortError,
  InvalidArgumentError,
  MissiveError,
  SmtpAuthError,
  SmtpCapabilityError,
  SmtpClosedError,
  SmtpConnectError,
  SmtpDeliveryUnknownError,
  SmtpError,
  SmtpProtocolError,
  SmtpRecipientsRefusedError,
  SmtpTlsError,
  quoteReply,
  type RejectedRecipient,
  type TimeoutPhase,
} from "../errors.js";
import { Credentials, MAX_CHALLENGES, chooseMechanism, createMechanism } from "./auth.js";
import { Capabilities, parseEhlo } from "./capabilities.js";
import * as cmd from "./commands.js";
import { SmtpConnection, abortError, type TlsInfo } from "./connection.js";
import { DataEncoder, bdatChunks, bodyChunks, type BodySource } from "./data-stream.js";
import type { SmtpReply } from "./reply.js";
import { resolveSmtpConfig, type ResolvedSmtpConfig } from "./config.js";
import { addressLiteral, buildTlsOptions, isLoopback, type DsnOptions, type SmtpClientOptions, type SmtpTimeouts, type TlsMode } from "./options.js";
import { REDACTED, Transcript } from "./transcript.js";

export { DEFAULT_TIMEOUTS, addressLiteral, isLoopback } from "./options.js";
export type { DsnOptions, SmtpClientOptions, SmtpTimeouts, SmtpTlsOptions, TlsMode } from "./options.js";
export type { ResolvedSmtpConfig } from "./config.js";

export type SmtpState = "idle" | "connecting" | "greeting" | "ready" | "mail" | "rcpt" | "data" | "closing" | "closed";
export interface Envelope {
  /** Reverse-path; "" for the null sender (bounces). */
  from: string;
  to: readonly string[];
  /** Message size in octets, for SIZE= (RFC 1870) and the check against the server's limit. */
  size?: number;
  /** The body has 8-bit bytes: needs 8BITMIME, sent as BODY=8BITMIME. */
  eightBit?: boolean;
  /** The message needs SMTPUTF8 (UTF-8 headers or addresses). */
  smtputf8?: boolean;
  dsn?: DsnOptions;
}

export type MessageBody = BodySource;

export interface SendResult {
  accepted: string[];
  rejected: RejectedRecipient[];
  /** The reply after the final dot (or BDAT LAST). */
  reply: SmtpReply;
  /** The server's queue id when its reply names one ("queued as X", "id=X"). */
  messageId?: string;
}

interface Command {
  /** The bytes' text, CRLF included. */
  line: string;
  /** What transcripts, diagnostics and errors show. */
  display: string;
  phase: TimeoutPhase;
  timeout: number;
}

export class SmtpClient {
  readonly host: string;
  readonly port: number;
  readonly tlsMode: TlsMode;
  readonly timeouts: Readonly<Required<SmtpTimeouts>>;
  readonly #options: ResolvedSmtpConfig;
  readonly #credentials: Credentials | undefined;
  readonly #transcript: Transcript;
  #state: SmtpState = "idle";
  #conn: SmtpConnection | undefined;
  #capabilities: Capabilities | undefined;
  #greeting: SmtpReply | undefined;
  #authenticatedAs: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #connecting: Promise<void> | undefined;
  /** The connect attempt in progress; `destroy()` aborts it. */
  #attempt: AbortController | undefined;
  /** Listens on `signal` only while a connection exists, so a long-lived signal collects no listeners. */
  readonly #onAbort = () => this.#abort();

  /**
   * Options are checked here (config.ts, the one resolver every layer shares): a bad host,
   * port, TLS option, timeout, EHLO name or credential throws InvalidArgumentError now. A
   * config resolved by a backend or pool is taken as it is.
   */
  constructor(options: SmtpClientOptions | ResolvedSmtpConfig = {}) {
    const config = resolveSmtpConfig(options, "client");
    this.#options = config;
    this.host = config.host;
    this.tlsMode = config.tlsMode;
    this.port = config.port;
    this.timeouts = config.timeouts;
    this.#credentials = config.credentials;
    this.#transcript = new Transcript(config.transcript, this.host, this.port);
  }

  /** The resolved options this client connects with. */
  get config(): ResolvedSmtpConfig {
    return this.#options;
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

  /**
   * Connects, reads the greeting, says EHLO (HELO if refused), does STARTTLS as the TLS
   * mode asks and AUTH when credentials were given. Idempotent: resolves at once when
   * ready, joins a connect in progress, and reconnects a closed client. On failure the
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
      this.#requireReady();
      return this.#transaction(envelope, body);
    });
  }

  /** NOOP: a cheap probe that the connection is alive. Throws SmtpClosedError (retryable) if not. */
  noop(): Promise<SmtpReply> {
    return this.#serialize(async () => {
      this.#requireReady();
      return this.#exchange(cmd.noop(), { expect: [250] });
    });
  }

  /** RSET: abandons any transaction; the connection stays usable. */
  reset(): Promise<SmtpReply> {
    return this.#serialize(async () => {
      this.#requireReady();
      return this.#exchange(cmd.rset(), { expect: [250] });
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

  // --- connect ------------------------------------------------------------------------

  async #doConnect(): Promise<void> {
    this.#checkAborted();
    this.#teardown();
    this.#state = "connecting";
    this.#capabilities = undefined;
    this.#greeting = undefined;
    this.#authenticatedAs = undefined;
    // One controller per attempt: aborted by destroy() or by the caller's signal, checked
    // after every await and passed to the TCP connect and the TLS handshakes.
    const attempt = new AbortController();
    this.#attempt = attempt;
    const userSignal = this.#options.signal;
    const forward = () => attempt.abort(abortError(userSignal));
    userSignal?.addEventListener("abort", forward, { once: true });
    const checkpoint = () => {
      if (attempt.signal.aborted) throw attemptError(attempt.signal);
    };
    try {
      const tlsOptions = await buildTlsOptions(this.#options);
      checkpoint();
      const conn = await SmtpConnection.open({ host: this.host, port: this.port, timeoutMs: this.timeouts.connect, signal: attempt.signal, lookup: this.#options.lookup });
      this.#conn = conn;
      const signal = this.#options.signal;
      signal?.addEventListener("abort", this.#onAbort, { once: true });
      conn.onClose(() => {
        signal?.removeEventListener("abort", this.#onAbort);
        if (this.#conn === conn) this.#state = "closed";
      });
      checkpoint();
      if (this.tlsMode === "implicit") await conn.startTls(tlsOptions, this.timeouts.connect, attempt.signal);
      checkpoint();
      this.#state = "greeting";
      await this.#readGreeting(conn);
      checkpoint();
      await this.#hello();
      checkpoint();
      if ((this.tlsMode === "starttls" || this.tlsMode === "opportunistic") && !conn.secure) {
        await this.#starttls(conn, tlsOptions, attempt.signal);
        checkpoint();
      }
      if (this.#credentials) await this.#authenticate(this.#credentials);
      checkpoint();
      this.#state = "ready";
    } catch (caught) {
      // Whatever the step reported, a destroy() or abort during the attempt is the reason.
      const error = attempt.signal.aborted ? attemptError(attempt.signal) : caught;
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

  async #readGreeting(conn: SmtpConnection): Promise<void> {
    let greeting: SmtpReply;
    try {
      greeting = await conn.readReply(this.timeouts.greeting, "greeting", "<greeting>");
    } catch (error) {
      throw error instanceof SmtpClosedError
        ? new SmtpConnectError(`${this.host}:${this.port} closed the connection before greeting`, { cause: error })
        : error;
    }
    this.#transcript.reply(greeting);
    this.#greeting = greeting;
    if (greeting.code !== 220) {
      // 554 (RFC 5321 §3.1): "no SMTP service here"; 421: busy, try later.
      throw new SmtpConnectError(`${this.host}:${this.port} refused the session: ${quoteReply(greeting)}`, { reply: greeting, command: "<greeting>" });
    }
  }

  /**
   * EHLO, or HELO when the server does not know EHLO (RFC 5321 §3.2: "command not
   * recognized", 500 or 502). Any other refusal (554: no service for you) ends the session.
   * Learns the capabilities afresh.
   */
  async #hello(): Promise<void> {
    const name = this.#localName();
    this.#capabilities = undefined;
    let reply: SmtpReply;
    try {
      reply = await this.#exchange(cmd.ehlo(name), { expect: [250] });
    } catch (error) {
      if (!(error instanceof SmtpError) || (error.replyCode !== 500 && error.replyCode !== 502)) throw error;
      await this.#exchange(cmd.helo(name), { expect: [250] });
      this.#capabilities = Capabilities.none();
      return;
    }
    this.#capabilities = parseEhlo(reply);
    if (this.#conn) this.#conn.enhancedStatusCodes = this.#capabilities.enhancedStatusCodes;
  }

  async #starttls(conn: SmtpConnection, tlsOptions: tls.ConnectionOptions, signal: AbortSignal): Promise<void> {
    const required = this.tlsMode === "starttls";
    if (!this.#capabilities?.starttls) {
      if (!required) return;
      throw new SmtpTlsError(
        `${this.host}:${this.port} does not offer STARTTLS, and tls is "starttls"; use tls: "implicit" (port 465) if the server speaks TLS from the start, or "opportunistic"/"none" to allow plaintext`,
      );
    }
    const [reply] = await this.#roundTrip([this.#command(cmd.starttls(), "STARTTLS")]);
    if (reply!.code !== 220) {
      // "opportunistic" means plaintext is acceptable; "starttls" never falls back silently.
      if (!required) return;
      throw new SmtpTlsError(`${this.host}:${this.port} refused STARTTLS: ${quoteReply(reply!)}`, {
        command: "STARTTLS",
        reply,
        retryable: reply!.code < 500,
      });
    }
    await conn.startTls(tlsOptions, this.timeouts.connect, signal);
    // RFC 3207 §4.2: discard everything learnt before TLS and say EHLO again.
    this.#capabilities = undefined;
    conn.enhancedStatusCodes = false;
    await this.#hello();
  }

  async #authenticate(credentials: Credentials): Promise<void> {
    if (!this.secure && !isLoopback(this.host) && !this.#options.allowInsecureAuth) {
      throw new SmtpAuthError(
        `Refusing to send credentials in plaintext to ${this.host}: use tls "implicit" or "starttls", or set allowInsecureAuth: true if the network path is trusted`,
      );
    }
    const name = chooseMechanism(this.#capabilities?.authMechanisms ?? new Set(), credentials, this.#options.authMethod);
    const mechanism = createMechanism(name, credentials);
    const initial = await mechanism.start();
    const display = initial === null ? `AUTH ${name}` : `AUTH ${name} ${REDACTED}`;
    const first = cmd.auth(name, initial === null ? undefined : Buffer.from(initial).toString("base64"));
    let [reply] = await this.#roundTrip([this.#command(first, display)]);
    for (let challenges = 0; reply!.code === 334; challenges++) {
      let response: string;
      try {
        if (challenges >= MAX_CHALLENGES) throw new SmtpAuthError(`The server sent more than ${MAX_CHALLENGES} AUTH ${name} challenges`, { command: display });
        const challenge = decodeChallenge(reply!.lines[0] ?? "");
        response = Buffer.from(await mechanism.next(challenge)).toString("base64");
      } catch (error) {
        // Cancel the exchange (RFC 4954 §4) so the connection stays in step, then report.
        await this.#roundTrip([this.#command(cmd.authResponse("*"), "*")]).catch(() => undefined);
        throw error;
      }
      [reply] = await this.#roundTrip([this.#command(cmd.authResponse(response), REDACTED)]);
    }
    if (reply!.code !== 235) {
      throw new SmtpAuthError(`Authentication with ${name} failed: ${quoteReply(reply!)}`, { command: display, reply });
    }
    this.#authenticatedAs = credentials.user;
  }

  // --- the mail transaction -----------------------------------------------------------

  async #transaction(envelope: Envelope, body: MessageBody): Promise<SendResult> {
    const caps = this.#capabilities ?? Capabilities.none();
    const { mail, rcpts } = this.#renderEnvelope(envelope, caps);
    const useBdat = this.#options.chunking && caps.chunking;
    const pipelined = this.#options.pipelining && caps.pipelining;
    const dataCommand = useBdat ? undefined : this.#command(cmd.data(), "DATA", this.timeouts.dataStart);

    this.#state = "mail";
    let mailReply: SmtpReply;
    const rcptReplies: SmtpReply[] = [];
    let dataReply: SmtpReply | undefined;
    if (pipelined) {
      // RFC 2920: MAIL, every RCPT and DATA in one write; replies in order.
      const batch = [mail, ...rcpts, ...(dataCommand ? [dataCommand] : [])];
      const replies = await this.#roundTrip(batch);
      mailReply = replies[0]!;
      rcptReplies.push(...replies.slice(1, 1 + rcpts.length));
      dataReply = dataCommand ? replies[1 + rcpts.length] : undefined;
    } else {
      mailReply = (await this.#roundTrip([mail]))[0]!;
      if (mailReply.code === 250) {
        this.#state = "rcpt";
        for (const rcpt of rcpts) rcptReplies.push(...(await this.#roundTrip([rcpt])));
      }
    }
    this.#state = "rcpt";

    if (mailReply!.code !== 250) {
      await this.#abandonData(dataReply);
      await this.#resetAfterFailure();
      throw new SmtpError(`MAIL FROM was refused: ${quoteReply(mailReply!)}`, { command: mail.display, reply: mailReply });
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
      await this.#abandonData(dataReply);
      await this.#resetAfterFailure();
      throw new SmtpRecipientsRefusedError(rejected, { command: rcpts[0]?.display });
    }

    if (useBdat) return this.#sendBdat(body, accepted, rejected);
    if (!pipelined) [dataReply] = await this.#roundTrip([dataCommand!]);
    if (dataReply!.code !== 354) {
      await this.#resetAfterFailure();
      // Only 5xx is a refusal for good; a 4xx is temporary, and a 2xx/3xx other than 354 is
      // a broken server: either way the body was withheld and nothing was delivered.
      throw new SmtpError(`DATA was refused: ${quoteReply(dataReply!)}`, { command: "DATA", reply: dataReply, retryable: dataReply!.code < 500 });
    }
    return this.#sendData(body, accepted, rejected);
  }

  #renderEnvelope(envelope: Envelope, caps: Capabilities): { mail: Command; rcpts: Command[] } {
    const addresses = [envelope.from, ...envelope.to];
    const nonAscii = addresses.some((a) => cmd.hasNonAscii(a));
    if ((nonAscii || envelope.smtputf8) && !(envelope.smtputf8 && caps.smtputf8)) {
      const why = !caps.smtputf8 ? `${this.host} does not offer SMTPUTF8` : "smtputf8 was not requested for this message";
      throw new SmtpCapabilityError(
        "SMTPUTF8",
        nonAscii ? `An envelope address has non-ASCII characters but ${why}; use an IDNA (punycode) domain and an ASCII local part` : `The message needs SMTPUTF8 but ${why}`,
      );
    }
    if (envelope.size !== undefined && caps.sizeLimit !== undefined && caps.sizeLimit > 0 && envelope.size > caps.sizeLimit) {
      throw new SmtpCapabilityError("SIZE", `The message is ${envelope.size} octets but ${this.host} accepts at most ${caps.sizeLimit} (SIZE)`);
    }
    if (envelope.eightBit && !caps.eightBitMime) {
      throw new SmtpCapabilityError("8BITMIME", `The message has 8-bit content but ${this.host} does not offer 8BITMIME; encode it as 7-bit (quoted-printable/base64)`);
    }
    const dsn = envelope.dsn;
    const useDsn = dsn !== undefined && caps.dsn;
    if (dsn && !caps.dsn && !dsn.optional) {
      throw new SmtpCapabilityError("DSN", `Delivery status notifications were requested but ${this.host} does not offer DSN; set dsn.optional to send without them`);
    }
    const smtputf8 = envelope.smtputf8 === true;
    const mailLine = cmd.mailFrom(envelope.from, {
      size: caps.sizeLimit !== undefined ? envelope.size : undefined,
      body: envelope.eightBit ? "8BITMIME" : undefined,
      smtputf8,
      ret: useDsn ? dsn.ret : undefined,
      envid: useDsn ? dsn.envid : undefined,
    });
    const rcpts = envelope.to.map((address) => {
      const line = cmd.rcptTo(address, {
        smtputf8,
        notify: useDsn ? dsn.notify : undefined,
        orcpt: useDsn && dsn.orcpt ? address : undefined,
      });
      return this.#command(line, line.slice(0, -2));
    });
    return { mail: this.#command(mailLine, mailLine.slice(0, -2)), rcpts };
  }

  async #sendData(body: MessageBody, accepted: string[], rejected: RejectedRecipient[]): Promise<SendResult> {
    const conn = this.#requireConnection();
    this.#state = "data";
    const encoder = new DataEncoder({ dotStuff: true });
    try {
      for await (const chunk of bodyChunks(body)) {
        const out = encoder.encode(chunk);
        if (out.length > 0) await conn.write(out, this.timeouts.data, "data");
      }
    } catch (error) {
      // The body is half sent: ending DATA now would deliver a truncated message, so drop the connection.
      this.#teardown(error instanceof Error ? error : undefined);
      throw error;
    }
    const terminator = encoder.flush();
    if (conn.closed) throw conn.failure!;
    // From here the server may have the whole message: no reply means "unknown", never "failed".
    let reply: SmtpReply;
    this.#transcript.command(".");
    try {
      conn.expectReplies(1);
      await conn.write(terminator, this.timeouts.data, "data");
      reply = await conn.readReply(this.timeouts.finalDot, "final-dot", "<end of data>");
    } catch (error) {
      this.#teardown();
      throw new SmtpDeliveryUnknownError(
        `The message was sent but ${this.host} did not confirm it (${(error as Error).message}); it may or may not have been delivered, so do not resend it blindly`,
        { command: "<end of data>", cause: error },
      );
    }
    return this.#finish(reply, "<end of data>", accepted, rejected);
  }

  async #sendBdat(body: MessageBody, accepted: string[], rejected: RejectedRecipient[]): Promise<SendResult> {
    const conn = this.#requireConnection();
    this.#state = "data";
    const chunks = bdatChunks(body, this.#options.chunkSize);
    for (;;) {
      let next: IteratorResult<{ bytes: Buffer; last: boolean }>;
      try {
        next = await chunks.next();
      } catch (error) {
        this.#teardown(error instanceof Error ? error : undefined);
        throw error;
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
      this.#transcript.command(display);
      if (conn.closed) throw conn.failure!;
      conn.expectReplies(1);
      if (!last) {
        await this.#guard(async () => {
          await conn.write(line, this.timeouts.data, "data");
          await conn.write(bytes, this.timeouts.data, "data");
        });
        const reply = await this.#guard(() => conn.readReply(this.timeouts.command, "command", display));
        this.#transcript.reply(reply);
        if (reply.code === 421) this.#fail421(reply, display);
        if (reply.code !== 250) {
          await this.#resetAfterFailure();
          throw new SmtpError(`${display} was refused: ${quoteReply(reply)}`, { command: display, reply });
        }
        continue;
      }
      let reply: SmtpReply;
      try {
        await conn.write(line, this.timeouts.data, "data");
        await conn.write(bytes, this.timeouts.data, "data");
        reply = await conn.readReply(this.timeouts.finalDot, "final-dot", display);
      } catch (error) {
        this.#teardown();
        throw new SmtpDeliveryUnknownError(
          `The message was sent but ${this.host} did not confirm it (${(error as Error).message}); it may or may not have been delivered, so do not resend it blindly`,
          { command: display, cause: error },
        );
      }
      return this.#finish(reply, display, accepted, rejected);
    }
  }

  async #finish(reply: SmtpReply, display: string, accepted: string[], rejected: RejectedRecipient[]): Promise<SendResult> {
    this.#transcript.reply(reply);
    if (reply.code === 421) this.#fail421(reply, display);
    if (reply.code !== 250) {
      // 552/554 after DATA: the message was refused; RSET keeps the connection usable.
      this.#state = "rcpt";
      await this.#resetAfterFailure();
      throw new SmtpError(`${this.host} refused the message: ${quoteReply(reply)}`, { command: display, reply });
    }
    this.#state = "ready";
    const messageId = queueId(reply.text);
    return messageId === undefined ? { accepted, rejected, reply } : { accepted, rejected, reply, messageId };
  }

  /** After DATA got 354 although the transaction failed: send an empty body's "." to end it. */
  async #abandonData(dataReply: SmtpReply | undefined): Promise<void> {
    if (dataReply?.code !== 354) return;
    await this.#roundTrip([this.#command(".\r\n", ".", this.timeouts.finalDot, "final-dot")]);
  }

  /** RSET after a failed transaction; if even that fails the connection is dropped. */
  async #resetAfterFailure(): Promise<void> {
    if (!this.#conn || this.#conn.closed) return;
    try {
      await this.#exchange(cmd.rset(), { expect: [250] });
      this.#state = "ready";
    } catch {
      this.#teardown();
    }
  }

  // --- the funnel -----------------------------------------------------------------------

  /** One exchange with the expected reply codes at the call site. */
  async #exchange(line: string, options: { expect: readonly number[]; phase?: TimeoutPhase; timeout?: number; redact?: string }): Promise<SmtpReply> {
    const command = this.#command(line, options.redact ?? line.slice(0, -2), options.timeout, options.phase);
    const [reply] = await this.#roundTrip([command]);
    if (!options.expect.includes(reply!.code)) {
      throw new SmtpError(`${command.display.split(" ")[0]} got ${quoteReply(reply!)} (expected ${options.expect.join(" or ")})`, {
        command: command.display,
        reply,
      });
    }
    return reply!;
  }

  /**
   * All command I/O: writes the lines in one write (pipelining when there are several),
   * reads exactly one reply per line in order. A 421 closes the connection; more replies
   * than commands is a protocol error; any failure without a reply closes the connection.
   */
  async #roundTrip(commands: readonly Command[]): Promise<SmtpReply[]> {
    const conn = this.#requireConnection();
    return this.#guard(async () => {
      const unsolicited = conn.takeUnsolicited();
      if (unsolicited) {
        this.#transcript.reply(unsolicited);
        if (unsolicited.code === 421) this.#fail421(unsolicited, commands[0]!.display);
        throw new SmtpProtocolError(`The server sent a reply nobody asked for: ${quoteReply(unsolicited)}`, { reply: unsolicited });
      }
      for (const c of commands) this.#transcript.command(c.display);
      conn.expectReplies(commands.length);
      await conn.write(commands.length === 1 ? commands[0]!.line : commands.map((c) => c.line).join(""), this.timeouts.command, "command");
      const replies: SmtpReply[] = [];
      for (const c of commands) {
        const reply = await conn.readReply(c.timeout, c.phase, c.display);
        this.#transcript.reply(reply);
        if (reply.code === 421) this.#fail421(reply, c.display);
        replies.push(reply);
      }
      if (commands.length > 1 && conn.hasUnreadInput) {
        throw new SmtpProtocolError(`The server sent more replies than the ${commands.length} pipelined commands`, { command: commands.map((c) => c.display).join(" / ") });
      }
      return replies;
    });
  }

  /** Runs I/O; any failure that is not an ordinary reply closes the client (state "closed"). */
  async #guard<T>(io: () => Promise<T>): Promise<T> {
    try {
      return await io();
    } catch (error) {
      // Only timeouts, drops, aborts, protocol errors and 421 get here: the stream is unusable.
      this.#teardown();
      throw error;
    }
  }

  #fail421(reply: SmtpReply, command: string): never {
    // RFC 5321 §3.8: the server is closing the transmission channel.
    this.#teardown();
    throw new SmtpError(`${this.host} is closing the connection: ${quoteReply(reply)}`, { command, reply, retryable: true });
  }

  #command(line: string, display: string, timeout = this.timeouts.command, phase: TimeoutPhase = "command"): Command {
    return { line, display, timeout, phase };
  }

  // --- lifecycle helpers --------------------------------------------------------------

  async #quit(timeout: number): Promise<void> {
    const conn = this.#conn;
    if (conn && !conn.closed) {
      this.#state = "closing";
      try {
        this.#transcript.command("QUIT");
        conn.expectReplies(1);
        await conn.write(cmd.quit(), timeout, "command");
        this.#transcript.reply(await conn.readReply(timeout, "command", "QUIT"));
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
    const error = abortError(this.#options.signal);
    this.#conn?.destroy(error);
    if (this.#state !== "idle") this.#state = "closed";
  }

  #checkAborted(): void {
    if (this.#options.signal?.aborted) throw abortError(this.#options.signal);
  }

  #requireReady(): void {
    this.#checkAborted();
    if (this.#state === "ready") return;
    if (this.#state === "closed" || this.#state === "closing") {
      throw new SmtpClosedError(`The connection to ${this.host}:${this.port} is closed${this.#conn?.failure ? ` (${this.#conn.failure.message})` : ""}; call connect() again`, {
        cause: this.#conn?.failure,
      });
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
    const run = this.#queue.then(operation, operation);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #localName(): string {
    if (this.#options.localName !== undefined) return this.#options.localName;
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

function validateEnvelope(envelope: Envelope): void {
  if (typeof envelope !== "object" || envelope === null) throw new InvalidArgumentError("sendMail needs an envelope { from, to }");
  cmd.assertPath(envelope.from, "from", true, true);
  if (!Array.isArray(envelope.to) || envelope.to.length === 0) throw new InvalidArgumentError("envelope.to must be a non-empty array of addresses");
  for (const to of envelope.to) {
    cmd.assertPath(to, "recipient", true, false);
  }
  if (envelope.size !== undefined && (!Number.isSafeInteger(envelope.size) || envelope.size < 0)) {
    throw new InvalidArgumentError("envelope.size must be a non-negative integer");
  }
}

/** The base64 text of a 334 challenge (RFC 4954 §4), decoded; anything else is an SmtpAuthError. */
function decodeChallenge(text: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed)) {
    throw new SmtpAuthError("The server sent an AUTH challenge that is not base64");
  }
  return Buffer.from(trimmed, "base64");
}

/** Why a connect attempt was aborted: the SmtpClosedError of destroy(), else an AbortError. */
function attemptError(signal: AbortSignal): MissiveError {
  const reason: unknown = signal.reason;
  return reason instanceof SmtpClosedError ? reason : abortError(signal);
}

/** The queue id a server names in its final reply: Postfix "queued as X", Exim "id=X", Sendmail "X Message accepted". */
function queueId(text: string): string | undefined {
  const bounded = text.slice(0, 512);
  const queued = /queued as ([A-Za-z0-9._@<>-]{1,128})/i.exec(bounded);
  if (queued) return queued[1];
  const id = /\bid=([A-Za-z0-9._@<>-]{1,128})/i.exec(bounded);
  return id?.[1];
}
