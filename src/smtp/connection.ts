/**
 * One socket to an SMTP server: TCP connect with a deadline and an AbortSignal (IPv4 and
 * IPv6, Node's happy-eyeballs for names with both), the TLS upgrade used for implicit TLS
 * and STARTTLS alike, a reply reader feeding `ReplyParser`, and writes that honour
 * `write()`'s return value.
 *
 * Deadlines are for a whole reply, not idle timers: `readReply` arms one timer when it
 * starts waiting and does not re-arm it when bytes arrive, so a server trickling a byte a
 * second cannot hold a command past its deadline.
 *
 * The first failure (close, error, timeout, protocol violation, abort) is recorded, the
 * socket destroyed, and every pending and later read or write rejects with it: no promise
 * is left hanging. A timed-out reply leaves the stream misaligned, so a timeout is fatal
 * to the connection too.
 */
import net from "node:net";
import tls from "node:tls";
import { AbortError, SmtpClosedError, SmtpConnectError, SmtpError, SmtpTimeoutError, SmtpTlsError, type TimeoutPhase } from "../errors.js";
import { ReplyParser, type SmtpReply } from "./reply.js";

export interface OpenOptions {
  host: string;
  port: number;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Resolves `host` instead of the system resolver (net.connect's `lookup`). */
  lookup?: net.LookupFunction | undefined;
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

interface Waiter {
  resolve(reply: SmtpReply): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

interface DrainWaiter {
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class SmtpConnection {
  readonly host: string;
  readonly port: number;
  #socket: net.Socket;
  #tls: tls.TLSSocket | undefined;
  #tlsInfo: TlsInfo | undefined;
  readonly #parser = new ReplyParser();
  #waiter: Waiter | undefined;
  #drain: DrainWaiter | undefined;
  #failure: Error | undefined;
  /** Replies the client announced it expects (pipelined commands sent) and has not read yet. */
  #expected = 0;
  #closeListeners: ((error: Error) => void)[] = [];
  readonly #onData = (chunk: Buffer) => this.#receive(chunk);
  readonly #onEnd = () => this.#fail(new SmtpClosedError(`The server closed the connection to ${this.host}:${this.port}`));
  readonly #onClose = () => this.#fail(new SmtpClosedError(`The connection to ${this.host}:${this.port} closed`));
  readonly #onError = (error: Error) =>
    this.#fail(new SmtpClosedError(`The connection to ${this.host}:${this.port} failed: ${error.message}`, { cause: error }));
  readonly #onDrain = () => {
    const d = this.#drain;
    if (!d) return;
    this.#drain = undefined;
    clearTimeout(d.timer);
    d.resolve();
  };

  private constructor(socket: net.Socket, host: string, port: number) {
    this.#socket = socket;
    this.host = host;
    this.port = port;
    this.#attach(socket);
  }

  /** Opens the TCP connection. Rejects with SmtpConnectError, SmtpTimeoutError("connect") or AbortError. */
  static open(options: OpenOptions): Promise<SmtpConnection> {
    const { host, port, timeoutMs, signal, lookup } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const socket = net.connect({ host, port, noDelay: true, ...(lookup ? { lookup } : {}) });
      const finish = (error: Error | undefined) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        socket.off("error", onError);
        socket.off("connect", onConnect);
        if (error) {
          socket.destroy();
          reject(error);
        } else {
          resolve(new SmtpConnection(socket, host, port));
        }
      };
      const onConnect = () => finish(undefined);
      const onError = (error: NodeJS.ErrnoException) => finish(connectError(error, host, port));
      const onAbort = () => finish(abortError(signal));
      const timer = setTimeout(() => finish(new SmtpTimeoutError("connect", timeoutMs, { command: `connect to ${host}:${port}` })), timeoutMs);
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

  /** True when bytes of a reply nobody asked for are waiting (pipelining sanity, unsolicited 421). */
  get hasUnreadInput(): boolean {
    return this.#parser.pending > 0 || this.#parser.midReply;
  }

  /**
   * Announces that `count` commands were (or are about to be) written, so that their
   * replies may be buffered before anyone reads them. Without it, at most one complete
   * reply may wait unread (an unsolicited 421 before the server hangs up); more is a
   * protocol violation and closes the connection, so a flooding server cannot grow memory.
   */
  expectReplies(count: number): void {
    this.#expected += count;
  }

  /** Takes a complete reply that arrived without a command waiting for it, if any. */
  takeUnsolicited(): SmtpReply | undefined {
    return this.#parser.next();
  }

  /** Called once, with the reason, when the connection closes for any reason. */
  onClose(listener: (error: Error) => void): void {
    if (this.#failure) listener(this.#failure);
    else this.#closeListeners.push(listener);
  }

  /** Waits for the next complete reply, within `timeoutMs` for the whole reply. */
  readReply(timeoutMs: number, phase: TimeoutPhase, command?: string): Promise<SmtpReply> {
    const queued = this.#parser.next();
    if (queued) {
      this.#took();
      return Promise.resolve(queued);
    }
    if (this.#failure) return Promise.reject(withCommand(this.#failure, command));
    // A bug in missive, not a delivery failure: a plain Error, so failSilently never hides it.
    if (this.#waiter) return Promise.reject(new Error("Internal error: two concurrent reply readers"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        const error = new SmtpTimeoutError(phase, timeoutMs, { command });
        this.#fail(error);
        reject(error);
      }, timeoutMs);
      this.#waiter = {
        resolve,
        reject: (error) => reject(withCommand(error, command)),
        timer,
      };
    });
  }

  /**
   * Writes bytes. Resolves at once when the socket accepted them, else after 'drain';
   * `timeoutMs` bounds the wait for 'drain' (the server not reading is a timeout too).
   */
  write(bytes: Uint8Array | string, timeoutMs: number, phase: TimeoutPhase): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const data = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
    const socket = this.#tls ?? this.#socket;
    if (socket.write(data)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#drain = undefined;
        const error = new SmtpTimeoutError(phase, timeoutMs, { command: "<writing to the server>" });
        this.#fail(error);
        reject(error);
      }, timeoutMs);
      this.#drain = { resolve, reject, timer };
    });
  }

  /**
   * Wraps the socket in TLS (implicit TLS right after connect, or after STARTTLS's 220).
   * The read buffer is dropped first: nothing received in plaintext may be used after
   * the handshake (RFC 3207 §4.2; the CVE-2011-0411 command-injection class).
   */
  startTls(options: tls.ConnectionOptions, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const raw = this.#socket;
    this.#detach(raw);
    this.#parser.reset();
    this.#expected = 0;
    return new Promise((resolve, reject) => {
      const secure = tls.connect({ ...options, socket: raw });
      let settled = false;
      const finish = (error: Error | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
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
      const timer = setTimeout(() => finish(new SmtpTimeoutError("tls", timeoutMs, { command: "TLS handshake" })), timeoutMs);
      secure.once("secureConnect", onSecure);
      secure.once("error", onError);
      // A close during the handshake without an error (server hung up).
      const onRawClose = () =>
        finish(
          new SmtpTlsError(`The server closed the connection during the TLS handshake with ${this.host}:${this.port}`, {
            retryable: true,
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
    try {
      // Complete replies allowed to wait unread: those expected (pipelining), or the one a
      // waiting reader takes, plus one the server may send on its own (a 421 before FIN).
      this.#parser.push(chunk, Math.max(this.#expected, this.#waiter ? 1 : 0) + 1);
    } catch (error) {
      this.#fail(error as Error);
      return;
    }
    const waiter = this.#waiter;
    if (!waiter) return;
    const reply = this.#parser.next();
    if (!reply) return;
    this.#waiter = undefined;
    clearTimeout(waiter.timer);
    this.#took();
    waiter.resolve(reply);
  }

  #took(): void {
    if (this.#expected > 0) this.#expected -= 1;
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    const socket = this.#tls ?? this.#socket;
    socket.destroy();
    if (this.#tls) this.#socket.destroy();
    // Keep an 'error' listener so a late socket error cannot crash the process.
    socket.on("error", () => {});
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) {
      clearTimeout(waiter.timer);
      // Replies that arrived complete before the close are still delivered (a 421 then FIN).
      const reply = this.#parser.next();
      if (reply) waiter.resolve(reply);
      else waiter.reject(error);
    }
    const drain = this.#drain;
    this.#drain = undefined;
    if (drain) {
      clearTimeout(drain.timer);
      drain.reject(error);
    }
    const listeners = this.#closeListeners;
    this.#closeListeners = [];
    for (const listener of listeners) listener(error);
  }
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

const PERMANENT_CONNECT_CODES = new Set(["ENOTFOUND", "EAI_NONAME", "EINVAL"]);

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
  return new SmtpConnectError(`Could not connect to ${host}:${port} (${code || "error"}): ${hint}`, {
    cause: error,
    retryable: !PERMANENT_CONNECT_CODES.has(code),
  });
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

/**
 * Socket-level failures during a handshake: the network or the server dropped the
 * connection before TLS was up. Nothing was sent, so trying again may work, unlike a
 * certificate or protocol-version failure.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT", "ENETRESET", "EHOSTUNREACH", "ENETUNREACH"]);

export function tlsError(error: NodeJS.ErrnoException, options: tls.ConnectionOptions): SmtpTlsError {
  const code = error.code;
  const name = options.servername ?? options.host ?? "the server";
  const network = code !== undefined && NETWORK_ERROR_CODES.has(code);
  const hint = (code && TLS_HINTS[code]) ?? (network ? `the connection was dropped during the handshake (${error.message})` : error.message);
  return new SmtpTlsError(`TLS with ${name} failed${code ? ` (${code})` : ""}: ${hint}`, { tlsCode: code, cause: error, retryable: network });
}

function formatName(name: tls.Certificate | undefined): string {
  if (!name) return "";
  return Object.entries(name)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : String(v)}`)
    .join(", ");
}
