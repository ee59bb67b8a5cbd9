/**
 * The mail catcher: the capture SMTP server, the store and the web UI, started together.
 * `missive dev` runs one; `startMailCatcher` (in `missive/testing`) gives one to a test,
 * with `waitFor` and fault injection.
 */
import { InvalidArgumentError, MailCatcherTimeoutError } from "../errors.js";
import { CaptureServer, type CaptureAuthOptions } from "./smtp-server.js";
import type { FaultSpec } from "./faults.js";
import type { TlsIdentity } from "./certificate.js";
import { MessageStore, type CaughtMessage } from "./store.js";
import { WebServer } from "./web.js";

export interface MailCatcherOptions {
  /** SMTP port; 0 picks a free one. Default 1025. */
  port?: number;
  /** Web UI port; 0 picks a free one; false for no UI. Default 8025 (0 when `port` is 0). */
  webPort?: number | false;
  /** Address both listen on. Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Keep messages as `.eml` files in this directory (created if needed; messages already there are shown). Default: in memory. */
  dir?: string;
  /** Offer STARTTLS with a certificate made at startup (true) or your own (PEM key and cert). */
  tls?: boolean | TlsIdentity;
  /** Offer AUTH PLAIN/LOGIN: true accepts any credentials; `{ users, required }` checks them. */
  auth?: boolean | CaptureAuthOptions;
  /** Largest message accepted, in octets. Default 25 MiB. */
  maxMessageSize?: number;
  /** How many messages to keep (oldest forgotten first). Default 1000. */
  maxMessages?: number;
  /** Name in the SMTP greeting. Default: the machine's host name. */
  hostname?: string;
  /** Called with each message as it is caught. */
  onMessage?: (message: CaughtMessage) => void;
}

export interface WaitForOptions {
  /** Milliseconds before giving up. Default 5000. */
  timeout?: number;
  signal?: AbortSignal;
}

export interface MailCatcher {
  /** The SMTP port to send to (on `host`). */
  readonly smtpPort: number;
  /** Same as smtpPort. */
  readonly port: number;
  readonly host: string;
  /** The web UI, e.g. http://127.0.0.1:8025; undefined with `webPort: false`. */
  readonly url: string | undefined;
  /** The certificate STARTTLS presents (PEM): pass it as `tlsOptions: { ca }` to trust the catcher. */
  readonly certificate: string | undefined;
  /** Every message caught, oldest first, parsed (see `missive/parse`) with its envelope. */
  readonly messages: readonly CaughtMessage[];
  /** The first message (already caught or still to come) for which `predicate` is true. */
  waitFor(predicate?: (message: CaughtMessage) => boolean, options?: WaitForOptions): Promise<CaughtMessage>;
  /** Forgets every message (and deletes their files with `dir`). */
  clear(): Promise<void>;
  /** Replace the reply at one phase of the next session(s) that reach it: `{ phase: "rcpt", reply: "550 5.1.1 No such user" }`, `{ phase: "dot", reply: "drop" }`. */
  failNext(fault: FaultSpec): void;
  /** Stops the SMTP server and the web UI; open connections are closed. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function checkPort(name: string, value: unknown): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 65535)) {
    throw new InvalidArgumentError(`${name} must be a port number (0 for any free one), got ${String(value)}`);
  }
}

export async function startMailCatcher(options: MailCatcherOptions = {}): Promise<MailCatcher> {
  checkPort("port", options.port);
  if (options.webPort !== false) checkPort("webPort", options.webPort);
  const store = new MessageStore({ ...(options.dir !== undefined ? { dir: options.dir } : {}), ...(options.maxMessages !== undefined ? { maxMessages: options.maxMessages } : {}) });
  await store.scan();
  const onMessage = options.onMessage;
  if (onMessage) store.subscribe((event) => event.type === "message" && onMessage(event.message));
  const port = options.port ?? 1025;
  const smtp = await CaptureServer.start({
    port,
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    ...(options.auth !== undefined ? { auth: options.auth } : {}),
    ...(options.maxMessageSize !== undefined ? { maxMessageSize: options.maxMessageSize } : {}),
    ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
    deliver: async (raw, envelope, session) => (await store.add(raw, envelope, session)).id,
  });
  let web: WebServer | undefined;
  if (options.webPort !== false) {
    try {
      web = await WebServer.start({
        store,
        port: options.webPort ?? (port === 0 ? 0 : 8025),
        ...(options.host !== undefined ? { host: options.host } : {}),
        title: "missive mail catcher",
        info: { smtpPort: smtp.port, tls: smtp.certificate !== undefined, auth: options.auth !== undefined && options.auth !== false },
      });
    } catch (err) {
      await smtp.close();
      throw err;
    }
  }

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.all([smtp.close(), web?.close()]);
  };
  return {
    smtpPort: smtp.port,
    port: smtp.port,
    host: smtp.host,
    url: web?.url,
    certificate: smtp.certificate,
    messages: store.messages,
    waitFor(predicate = () => true, { timeout = 5000, signal }: WaitForOptions = {}) {
      const found = store.messages.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise<CaughtMessage>((resolve, reject) => {
        const done = (fn: () => void) => {
          clearTimeout(timer);
          unsubscribe();
          signal?.removeEventListener("abort", onAbort);
          fn();
        };
        const onAbort = () => done(() => reject(signal!.reason));
        const unsubscribe = store.subscribe((event) => {
          if (event.type !== "message") return;
          let match = false;
          try {
            match = predicate(event.message);
          } catch (err) {
            return done(() => reject(err));
          }
          if (match) done(() => resolve(event.message));
        });
        const timer = setTimeout(() => done(() => reject(new MailCatcherTimeoutError(timeout, store.messages.length))), timeout);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    async clear() {
      await store.clear();
    },
    failNext(fault: FaultSpec) {
      smtp.faults.add(fault);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
