/**
 * One socket to an SMTP server: TCP connect with a deadline and an AbortSignal (IPv4 and
 * IPv6, Node's happy-eyeballs for names with both), the TLS upgrade used for implicit TLS
 * and STARTTLS alike, and the funnel every command goes through: `submit()` writes a
 * command and returns the promise of its reply, over one queue of commands in flight
 * (pending.ts). The greeting, EHLO, AUTH, MAIL/RCPT/DATA, the final dot, BDAT, RSET, NOOP
 * and QUIT all go through it; only message bytes between 354 and the final dot use
 * `writeBody()`, which honours `write()`'s return value.
 *
 * Every reply must answer a command in the queue. One that arrives with none waiting is a
 * protocol error (a 421 is the server closing instead), and so is a read that brings more
 * replies than were asked for: then none of that read's replies is trusted, because which
 * reply answers which command is in doubt (an early 250 right behind a 354, or a second
 * reply behind the final dot's). The connection is dropped and every pending command
 * rejects with the reason, so a stale reply never reaches a later command.
 *
 * The first failure (close, error, timeout, protocol violation, abort) is recorded, the
 * socket destroyed, and every pending and later command or write rejects with it: no
 * promise is left hanging. A timed-out reply leaves the stream misaligned, so a timeout is
 * fatal to the connection too.
 */
import net from "node:net";
import tls from "node:tls";
import { AbortError, SmtpClosedError, SmtpConnectError, SmtpError, SmtpProtocolError, SmtpTimeoutError, SmtpTlsError, quoteReply } from "../errors.js";
import { NETWORK_ERROR_CODES } from "../errors/classify.js";
import { systemClock, type Clock, type TimerHandle } from "../observe/clock.js";
import { CommandQueue, displayOf, type PendingCommand, type Submission } from "./pending.js";
import { ReplyParser, type SmtpReply } from "./reply.js";
import type { Transcript } from "./transcript.js";

export type { Submission } from "./pending.js";

export interface OpenOptions {
  host: string;
  port: number;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Resolves `host` instead of the system resolver (net.connect's `lookup`). */
  lookup?: net.LookupFunction | undefined;
  /** Time for the connect deadline and every reply deadline. Default: the system clock. */
  clock?: Clock | undefined;
  /** Records each command as it is written and each reply as it is matched. */
  transcript?: Transcript | undefined;
}

export interface TlsInfo {
  /** Negotiated protocol, e.g. "TLSv1.3". */
  readonly protocol: string | null;
  readonly cipher: string;
  /** Whether the certificate chain and host name were verified. */
  readonly authorized: boolean;
  readonly authorizationError?: string | undefined;
  readonly peerCertificate?: {
    readonly subject: string;
    readonly issuer: string;
    readonly validFrom: string;
    readonly validTo: string;
    readonly fingerprint256: string;
  } | undefined;
}

interface DrainWaiter {
  resolve(): void;
  reject(error: Error): void;
  timer: TimerHandle;
}

export class SmtpConnection {
  readonly host: string;
  readonly port: number;
  #socket: net.Socket;
  #tls: tls.TLSSocket | undefined;
  #tlsInfo: TlsInfo | undefined;
  readonly #parser = new ReplyParser();
  readonly #clock: Clock;
  readonly #transcript: Transcript | undefined;
  readonly #queue: CommandQueue;
  /** The greeting has not been asked for yet: one reply may wait for it in the parser. */
  #greetingDue = true;
  #drains: DrainWaiter[] = [];
  /** Writes are held in the socket (corked) until `flushWrites()`. */
  #holding = false;
  #failure: Error | undefined;
  #closeListeners: ((error: Error) => void)[] = [];
  readonly #onData = (chunk: Buffer) => this.#receive(chunk);
  readonly #onEnd = () => this.#fail(new SmtpClosedError(`The server closed the connection to ${this.host}:${this.port}`));
  readonly #onClose = () => this.#fail(new SmtpClosedError(`The connection to ${this.host}:${this.port} closed`));
  readonly #onError = (error: Error) =>
    this.#fail(new SmtpClosedError(`The connection to ${this.host}:${this.port} failed: ${error.message}`, { cause: error }));
  readonly #onDrain = () => {
    for (const d of this.#drains.splice(0)) {
      this.#clock.clearTimeout(d.timer);
      d.resolve();
    }
  };

  private constructor(socket: net.Socket, options: OpenOptions) {
    this.#socket = socket;
    this.host = options.host;
    this.port = options.port;
    this.#clock = options.clock ?? systemClock;
    this.#transcript = options.transcript;
    this.#queue = new CommandQueue(this.#clock, (entry) => this.#fail(new SmtpTimeoutError(entry.phase, entry.deadline, { command: entry.display })));
    this.#attach(socket);
  }

  /** Opens the TCP connection. Rejects with SmtpConnectError, SmtpTimeoutError("connect") or AbortError. */
  static open(options: OpenOptions): Promise<SmtpConnection> {
    const { host, port, timeoutMs, signal, lookup } = options;
    const clock = options.clock ?? systemClock;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const socket = net.connect({ host, port, noDelay: true, ...(lookup ? { lookup } : {}) });
      const finish = (error: Error | undefined) => {
        clock.clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        socket.off("error", onError);
        socket.off("connect", onConnect);
        if (error) {
          socket.destroy();
          reject(error);
        } else {
          resolve(new SmtpConnection(socket, options));
        }
      };
      const onConnect = () => finish(undefined);
      const onError = (error: NodeJS.ErrnoException) => finish(connectError(error, host, port));
      const onAbort = () => finish(abortError(signal));
      const timer = clock.setTimeout(() => finish(new SmtpTimeoutError("connect", timeoutMs, { command: `connect to ${host}:${port}` })), timeoutMs);
      socket.once("connect", onConnect);
      socket.once("error", onError);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  get closed(): boolean {
    return this.#failure !== undefined;
  }

  /** Why the connection is closed, once it is. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  get secure(): boolean {
    return this.#tls !== undefined;
  }

  get localAddress(): string | undefined {
    return this.#socket.localAddress;
  }

  /** Split RFC 3463 enhanced codes from reply texts (after EHLO offered ENHANCEDSTATUSCODES). */
  set enhancedStatusCodes(value: boolean) {
    this.#parser.enhancedStatusCodes = value;
  }

  /** Part of a reply nobody asked for has arrived (a whole one would have closed the connection). */
  get hasUnreadInput(): boolean {
    return this.#parser.pending > 0 || this.#parser.midReply;
  }

  /** Commands written so far (the greeting counts as one), replies matched, and the difference. */
  get commandsWritten(): number {
    return this.#queue.written;
  }

  get repliesRead(): number {
    return this.#queue.answered;
  }

  get inFlight(): number {
    return this.#queue.inFlight;
  }

  /** Called once, with the reason, when the connection closes for any reason. */
  onClose(listener: (error: Error) => void): void {
    if (this.#failure) listener(this.#failure);
    else this.#closeListeners.push(listener);
  }

  /** Writes one command (or, without `line`, asks for the greeting) and resolves with its reply. */
  submit(submission: Submission): Promise<SmtpReply> {
    return this.submitAll([submission])[0]!;
  }

  /**
   * Writes several commands in one write (RFC 2920 pipelining) and returns the promise of
   * each one's reply, in order. The expected codes are checked here: a reply outside
   * `expect` rejects with an SmtpError holding the command and the reply.
   */
  submitAll(submissions: readonly Submission[]): Promise<SmtpReply>[] {
    if (this.#failure) {
      const failure = this.#failure;
      return submissions.map((s) => handled(Promise.reject(withCommand(failure, displayOf(s)))));
    }
    const greeting = submissions.some((s) => s.line === undefined);
    if (greeting && (submissions.length !== 1 || !this.#greetingDue || this.#queue.inFlight > 0)) {
      // A bug in missive, not a delivery failure: a plain Error, so failSilently never hides it.
      return submissions.map(() => handled(Promise.reject(new Error("Internal error: the greeting can only be asked for once, first"))));
    }
    const replies = submissions.map((s) => this.#queue.add(s));
    if (greeting) {
      this.#greetingDue = false;
      // The greeting may already be here, waiting in the parser.
      this.#deliver(undefined);
      return replies;
    }
    const parts: Uint8Array[] = [];
    for (const s of submissions) {
      this.#transcript?.command(displayOf(s));
      parts.push(typeof s.line === "string" ? Buffer.from(s.line, "utf8") : s.line!);
      if (s.payload !== undefined && s.payload.length > 0) parts.push(s.payload);
    }
    // Not waiting for 'drain' here: commands are small, and a BDAT chunk is followed by a
    // wait for its reply, which cannot come before the server has read it. A server that
    // stops reading runs into the reply's deadline.
    (this.#tls ?? this.#socket).write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    return replies;
  }

  /**
   * Writes message bytes (between 354 and the final dot). Resolves at once when the socket
   * accepted them, else after 'drain'; `deadline` (ms) bounds the wait (a server that does
   * not read is a timeout too). Any reply arriving meanwhile has no command waiting for it,
   * and so fails the connection and this write.
   */
  writeBody(bytes: Uint8Array, deadline: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const socket = this.#tls ?? this.#socket;
    if (socket.write(bytes)) return Promise.resolve();
    // Past the socket's high-water mark: what is held must go now, or 'drain' never comes.
    this.flushWrites();
    return new Promise((resolve, reject) => {
      const waiter: DrainWaiter = {
        resolve,
        reject,
        timer: this.#clock.setTimeout(() => this.#fail(new SmtpTimeoutError("data", deadline, { command: "<writing to the server>" })), deadline),
      };
      this.#drains.push(waiter);
    });
  }

  /**
   * Holds what is written from now on (the socket is corked) until `flushWrites()`, which
   * hands it to the kernel in one writev: a message's header block, body and final dot, and
   * the commands pipelined behind them, leave in one write instead of one each. The hold
   * ends by itself when the socket's buffer passes its high-water mark (a large body then
   * streams with backpressure as before).
   */
  holdWrites(): void {
    if (this.#holding || this.#failure) return;
    this.#holding = true;
    (this.#tls ?? this.#socket).cork();
  }

  flushWrites(): void {
    if (!this.#holding) return;
    this.#holding = false;
    (this.#tls ?? this.#socket).uncork();
  }

  /**
   * Wraps the socket in TLS (implicit TLS right after connect, or after STARTTLS's 220).
   * The read buffer is dropped first: nothing received in plaintext may be used after
   * the handshake (RFC 3207 §4.2; the CVE-2011-0411 command-injection class).
   */
  startTls(options: tls.ConnectionOptions, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#queue.inFlight > 0) return Promise.reject(new Error("Internal error: TLS upgrade with replies still pending"));
    const raw = this.#socket;
    this.#detach(raw);
    this.#parser.reset();
    return new Promise((resolve, reject) => {
      const secure = tls.connect({ ...options, socket: raw });
      let settled = false;
      const finish = (error: Error | undefined) => {
        if (settled) return;
        settled = true;
        this.#clock.clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        secure.off("secureConnect", onSecure);
        secure.off("error", onError);
        raw.off("close", onRawClose);
        if (error) {
          secure.on("error", () => {});
          secure.destroy();
          raw.destroy();
          this.#fail(error);
          reject(error);
          return;
        }
        this.#tls = secure;
        this.#tlsInfo = this.#describeTls(secure);
        this.#attach(secure);
        resolve();
      };
      const onSecure = () => finish(undefined);
      const onError = (error: NodeJS.ErrnoException) => finish(tlsError(error, options));
      const onAbort = () => finish(abortError(signal));
      const timer = this.#clock.setTimeout(() => finish(new SmtpTimeoutError("tls", timeoutMs, { command: "TLS handshake" })), timeoutMs);
      secure.once("secureConnect", onSecure);
      secure.once("error", onError);
      // A close during the handshake without an error (server hung up).
      const onRawClose = () =>
        finish(
          new SmtpTlsError(`The server closed the connection during the TLS handshake with ${this.host}:${this.port}`, {
            cause: new SmtpClosedError(`The connection to ${this.host}:${this.port} closed`),
          }),
        );
      raw.once("close", onRawClose);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** What the handshake negotiated (kept after the socket closes). */
  get tlsInfo(): TlsInfo | undefined {
    return this.#tlsInfo;
  }

  #describeTls(s: tls.TLSSocket): TlsInfo {
    const cert = s.getPeerCertificate();
    const hasCert = cert && Object.keys(cert).length > 0;
    const authorizationError = s.authorizationError as unknown;
    return {
      protocol: s.getProtocol(),
      cipher: s.getCipher()?.name ?? "",
      authorized: s.authorized,
      authorizationError: authorizationError === null || authorizationError === undefined ? undefined : String(authorizationError),
      peerCertificate: hasCert
        ? {
            subject: formatName(cert.subject),
            issuer: formatName(cert.issuer),
            validFrom: cert.valid_from,
            validTo: cert.valid_to,
            fingerprint256: cert.fingerprint256,
          }
        : undefined,
    };
  }

  /** Destroys the socket now; pending operations reject with `error` (default: SmtpClosedError). */
  destroy(error?: Error): void {
    this.#fail(error ?? new SmtpClosedError("The connection was closed by the client"));
  }

  #attach(socket: net.Socket): void {
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onClose);
    socket.on("error", this.#onError);
    socket.on("drain", this.#onDrain);
  }

  #detach(socket: net.Socket): void {
    socket.off("data", this.#onData);
    socket.off("end", this.#onEnd);
    socket.off("close", this.#onClose);
    socket.off("error", this.#onError);
    socket.off("drain", this.#onDrain);
  }

  #receive(chunk: Buffer): void {
    if (this.#failure) return;
    let parseError: Error | undefined;
    try {
      // One reply more than is waiting is let through to be judged (a 421 is the server
      // closing, anything else a protocol error); beyond that a flood is cut off here.
      this.#parser.push(chunk, this.#queue.inFlight + 1);
    } catch (error) {
      parseError = error as Error;
    }
    this.#deliver(parseError);
  }

  /** Matches the complete replies in the parser to the commands waiting, oldest first. */
  #deliver(parseError: Error | undefined): void {
    // Before the greeting is asked for, it may wait in the parser (one reply, no more).
    if (this.#greetingDue && this.#queue.inFlight === 0 && parseError === undefined && this.#parser.pending <= 1) return;
    const replies: SmtpReply[] = [];
    for (let r = this.#parser.next(); r !== undefined; r = this.#parser.next()) replies.push(r);
    if (replies.length > this.#queue.inFlight) {
      for (const reply of replies) this.#transcript?.reply(reply);
      const extra = replies[this.#queue.inFlight]!;
      // A lone 421 to an idle connection is the server closing it (RFC 5321 §3.8). Anything
      // else, or anything next to replies for waiting commands, is a protocol error.
      this.#fail(
        extra.code === 421 && this.#queue.inFlight === 0
          ? this.#closing(extra, undefined)
          : new SmtpProtocolError(`The server sent a reply nobody asked for: ${quoteReply(extra)}`, { reply: extra }),
      );
      return;
    }
    for (const reply of replies) {
      const entry = this.#queue.take()!;
      this.#transcript?.reply(reply);
      const expected = entry.expect === "any" || entry.expect.includes(reply.code);
      if (reply.code === 421 && (entry.expect === "any" || !entry.expect.includes(421))) {
        // RFC 5321 §3.8: the server is closing the transmission channel.
        const error = this.#closing(reply, entry.display);
        entry.reject(error);
        this.#fail(error);
        return;
      }
      if (expected) entry.resolve(reply);
      else entry.reject(unexpectedReply(entry, reply));
    }
    if (parseError !== undefined) this.#fail(parseError);
  }

  #closing(reply: SmtpReply, command: string | undefined): SmtpError {
    return new SmtpError(`${this.host} is closing the connection: ${quoteReply(reply)}`, { command, reply });
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    const socket = this.#tls ?? this.#socket;
    socket.destroy();
    if (this.#tls) this.#socket.destroy();
    // Keep an 'error' listener so a late socket error cannot crash the process.
    socket.on("error", () => {});
    this.#queue.rejectAll((entry) => withCommand(error, entry.display));
    for (const d of this.#drains.splice(0)) {
      this.#clock.clearTimeout(d.timer);
      d.reject(error);
    }
    const listeners = this.#closeListeners;
    this.#closeListeners = [];
    for (const listener of listeners) listener(error);
  }
}

/** A reply outside the codes a command expects: an SmtpError holding both (the connection stays usable). */
function unexpectedReply(entry: PendingCommand, reply: SmtpReply): SmtpError {
  const verb = entry.display.startsWith("<") ? entry.display : entry.display.split(" ")[0]!;
  const expected = entry.expect === "any" ? "" : ` (expected ${entry.expect.join(" or ")})`;
  return new SmtpError(`${verb} got ${quoteReply(reply)}${expected}`, { command: entry.display, reply });
}

/** A promise whose rejection is handled (it may be ignored), returned as it is. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

function withCommand(error: Error, command: string | undefined): Error {
  if (command === undefined || !(error instanceof SmtpClosedError) || error.command !== undefined) return error;
  return new SmtpClosedError(`${error.message} while waiting for the reply to ${command}`, { command, cause: error.cause });
}

export function abortError(signal: AbortSignal | undefined): AbortError {
  const reason: unknown = signal?.reason;
  if (reason instanceof AbortError) return reason;
  return new AbortError("The SMTP operation was aborted", { cause: reason });
}

function connectError(error: NodeJS.ErrnoException, host: string, port: number): SmtpError {
  const code = error.code ?? "";
  const hint =
    code === "ECONNREFUSED"
      ? "nothing is listening there; check host and port"
      : code === "ENOTFOUND" || code === "EAI_NONAME"
        ? "the host name does not resolve"
        : code === "EHOSTUNREACH" || code === "ENETUNREACH"
          ? "the host is unreachable"
          : error.message;
  return new SmtpConnectError(`Could not connect to ${host}:${port} (${code || "error"}): ${hint}`, { cause: error });
}

const TLS_HINTS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server's certificate is self-signed; trust it by passing its certificate as tlsOptions.ca",
  SELF_SIGNED_CERT_IN_CHAIN: "the server's certificate chain ends in an untrusted self-signed CA; pass that CA as tlsOptions.ca",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the server's certificate was issued by an unknown CA (or the server omits its intermediate certificate); pass the CA as tlsOptions.ca",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the server's certificate was issued by a CA that is not trusted here; pass the CA as tlsOptions.ca",
  UNABLE_TO_GET_ISSUER_CERT: "the issuer of the server's certificate could not be found; pass the CA as tlsOptions.ca",
  CERT_HAS_EXPIRED: "the server's certificate has expired",
  CERT_NOT_YET_VALID: "the server's certificate is not valid yet (check the clocks)",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server's certificate is not valid for this host name; connect by a name on the certificate or set tlsOptions.servername",
  ERR_SSL_WRONG_VERSION_NUMBER: "the server did not answer with TLS; this port may expect plaintext or STARTTLS (tls: \"starttls\")",
  ERR_SSL_UNSUPPORTED_PROTOCOL: "the server only offers a TLS version below the minimum (tlsOptions.minVersion, TLSv1.2 by default)",
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: "the server and the client share no TLS version (tlsOptions.minVersion is TLSv1.2 by default)",
};

export function tlsError(error: NodeJS.ErrnoException, options: tls.ConnectionOptions): SmtpTlsError {
  const code = error.code;
  const name = options.servername ?? options.host ?? "the server";
  const network = code !== undefined && NETWORK_ERROR_CODES.has(code);
  // Own keys only: a code spelled like an Object.prototype member must not find a function.
  const known = code !== undefined && Object.hasOwn(TLS_HINTS, code) ? TLS_HINTS[code] : undefined;
  const hint = known ?? (network ? `the connection was dropped during the handshake (${error.message})` : error.message);
  // A socket error here (a reset) is a dropped connection, not a TLS verdict: classify()
  // reads the code and calls it transient.
  return new SmtpTlsError(`TLS with ${name} failed${code ? ` (${code})` : ""}: ${hint}`, { tlsCode: code, cause: error });
}

function formatName(name: tls.Certificate | undefined): string {
  if (!name) return "";
  return Object.entries(name)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : String(v)}`)
    .join(", ");
}
