/**
 * The capture SMTP server: listens on loopback, runs one `SmtpSession` per connection and
 * hands every message it receives to `deliver`. Bounded in connections; `close()` ends
 * every open session, so no socket outlives the server.
 */
import { createServer, type Server, type Socket } from "node:net";
import { hostname as osHostname } from "node:os";
import { createSecureContext, type SecureContext } from "node:tls";
import { timingSafeEqual } from "node:crypto";
import { InvalidArgumentError } from "../errors.js";
import { makeSelfSignedCertificate, type TlsIdentity } from "./certificate.js";
import { FaultQueue } from "./faults.js";
import { IDLE_TIMEOUT_MS, SmtpSession, type Envelope, type SessionInfo } from "./smtp-session.js";

export interface CaptureAuthOptions {
  /** Users and passwords to accept; without it any user and password are accepted. */
  users?: Record<string, string>;
  /** Refuse MAIL FROM until the client has authenticated. Default false. */
  required?: boolean;
}

export interface CaptureServerOptions {
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Offer STARTTLS: true for a certificate made at startup, or your own key and certificate (PEM). Default false. */
  tls?: boolean | TlsIdentity;
  /** Offer AUTH PLAIN and LOGIN: true accepts any credentials. Default false. */
  auth?: boolean | CaptureAuthOptions;
  /** Largest message in octets (advertised as SIZE). Default 25 MiB. */
  maxMessageSize?: number;
  /** Most recipients per message. Default 1000. */
  maxRecipients?: number;
  /** Most connections at once. Default 100. */
  maxConnections?: number;
  /** Name in the greeting and EHLO reply. Default: the machine's host name. */
  hostname?: string;
  idleTimeoutMs?: number;
  deliver(raw: Buffer, envelope: Envelope, info: SessionInfo): Promise<string>;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

export class CaptureServer {
  readonly faults = new FaultQueue();
  /** The certificate STARTTLS presents (PEM), for clients to trust; undefined without TLS. */
  readonly certificate: string | undefined;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #options: CaptureServerOptions;
  #port = 0;

  private constructor(options: CaptureServerOptions, tls: TlsIdentity | undefined) {
    this.#options = options;
    this.certificate = tls?.cert;
    const secureContext: SecureContext | undefined = tls === undefined ? undefined : createSecureContext({ key: tls.key, cert: tls.cert, minVersion: "TLSv1.2" });
    const auth = options.auth === undefined || options.auth === false ? undefined : options.auth === true ? {} : options.auth;
    const users = auth?.users;
    const host = {
      hostname: options.hostname ?? osHostname(),
      maxMessageSize: options.maxMessageSize ?? 25 * 1024 * 1024,
      maxRecipients: options.maxRecipients ?? 1000,
      tls: secureContext,
      auth:
        auth === undefined
          ? undefined
          : {
              required: auth.required ?? false,
              check: (user: string, password: string) =>
                users === undefined || (Object.hasOwn(users, user) && sameSecret(users[user]!, password)),
            },
      faults: this.faults,
      deliver: options.deliver,
      idleTimeoutMs: options.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
    };
    this.#server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
      new SmtpSession(socket, host);
    });
    this.#server.maxConnections = options.maxConnections ?? 100;
  }

  static async start(options: CaptureServerOptions): Promise<CaptureServer> {
    for (const key of ["maxMessageSize", "maxRecipients", "maxConnections"] as const) {
      const v = options[key];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw new InvalidArgumentError(`${key} must be a positive integer, got ${String(v)}`);
    }
    const tls = options.tls === true ? makeSelfSignedCertificate() : options.tls === false || options.tls === undefined ? undefined : options.tls;
    const server = new CaptureServer(options, tls);
    await server.#listen();
    return server;
  }

  async #listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#options.port, this.#options.host ?? "127.0.0.1", () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    const address = this.#server.address();
    this.#port = typeof address === "object" && address !== null ? address.port : this.#options.port;
  }

  get port(): number {
    return this.#port;
  }

  get host(): string {
    return this.#options.host ?? "127.0.0.1";
  }

  /** Stops listening and closes every open connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}
