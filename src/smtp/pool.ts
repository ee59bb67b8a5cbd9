/**
 * A small pool of SmtpClients to one server. `sendMail` queues when every connection is
 * busy; a connection is reused for at most `maxMessagesPerConnection` messages, probed
 * with NOOP when it sat idle for `probeAfterIdle` ms, and replaced when it is closed or
 * the probe fails. Idle connections are closed after `idleTimeout`.
 *
 * Nothing is retried once the body may have left (a resend could deliver twice); the only
 * automatic replacement is of a connection found dead before the transaction started.
 */
import { InvalidArgumentError, SmtpClosedError } from "../errors.js";
import { SmtpClient, type Envelope, type MessageBody, type SendResult, type SmtpClientOptions } from "./client.js";
import { resolveSmtpConfig, type ResolvedSmtpConfig } from "./config.js";

export interface SmtpPoolOptions extends SmtpClientOptions {
  /** Default 5. */
  maxConnections?: number;
  /** Default 100; the connection is then closed with QUIT and replaced. */
  maxMessagesPerConnection?: number;
  /** Probe a connection with NOOP before reuse when it was idle this long (ms; 0: always). Default 1000. */
  probeAfterIdle?: number;
  /** Close connections idle this long (ms, 1 to 2^31 - 1). Default 30000. */
  idleTimeout?: number;
}

interface Slot {
  readonly client: SmtpClient;
  messages: number;
  busy: boolean;
  idleSince: number;
  idleTimer: NodeJS.Timeout | undefined;
}

interface Job {
  envelope: Envelope;
  body: MessageBody;
  resolve(result: SendResult): void;
  reject(error: unknown): void;
}

export class SmtpPool {
  readonly maxConnections: number;
  readonly maxMessagesPerConnection: number;
  readonly #config: ResolvedSmtpConfig;
  readonly #probeAfterIdle: number;
  readonly #idleTimeout: number | undefined;
  readonly #slots = new Set<Slot>();
  readonly #pending: Job[] = [];
  /** Connections being opened, counted against maxConnections. */
  #opening = 0;
  /** Clients still connecting, and the promise that settles once each is handled. */
  readonly #connecting = new Map<SmtpClient, Promise<void>>();
  #closed = false;

  constructor(options: SmtpPoolOptions | ResolvedSmtpConfig = {}) {
    // Checks every client and pool option now (InvalidArgumentError), not at first send.
    const config = resolveSmtpConfig(options, "client");
    this.maxConnections = config.pool.maxConnections;
    this.maxMessagesPerConnection = config.pool.maxMessagesPerConnection;
    this.#probeAfterIdle = config.pool.probeAfterIdle;
    this.#idleTimeout = config.pool.idleTimeout;
    this.#config = config;
  }

  /** Open connections (busy or idle). */
  get size(): number {
    return this.#slots.size;
  }

  /** Messages waiting for a connection. */
  get pending(): number {
    return this.#pending.length;
  }

  sendMail(envelope: Envelope, body: MessageBody): Promise<SendResult> {
    if (this.#closed) return Promise.reject(new SmtpClosedError("The pool is closed"));
    return new Promise((resolve, reject) => {
      this.#pending.push({ envelope, body, resolve, reject });
      this.#dispatch();
    });
  }

  /**
   * Takes a connected client (state "ready", same server) into the pool as an idle
   * connection: the one a caller opened to learn the server's capabilities, for example.
   */
  adopt(client: SmtpClient): void {
    if (this.#closed) throw new SmtpClosedError("The pool is closed");
    if (client.state !== "ready") throw new InvalidArgumentError("Only a connected client in the ready state can join the pool");
    if (this.#slots.size + this.#opening >= this.maxConnections) throw new InvalidArgumentError("The pool is full");
    const slot: Slot = { client, messages: 0, busy: true, idleSince: Date.now(), idleTimer: undefined };
    this.#slots.add(slot);
    this.#release(slot);
  }

  /**
   * Closes every connection (QUIT, bounded) and rejects queued messages. A connection
   * still being opened is destroyed (it has carried nothing yet) and awaited, so that no
   * socket outlives close(); its message is rejected with SmtpClosedError.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#pending.splice(0)) job.reject(closedError());
    const opening = [...this.#connecting];
    for (const [client] of opening) client.destroy();
    await Promise.all([...[...this.#slots].map((slot) => this.#retire(slot)), ...opening.map(([, settled]) => settled)]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #dispatch(): void {
    while (this.#pending.length > 0) {
      const idle = [...this.#slots].find((s) => !s.busy);
      if (idle) {
        this.#run(idle, this.#pending.shift()!);
        continue;
      }
      if (this.#slots.size + this.#opening < this.maxConnections) {
        this.#open(this.#pending.shift()!);
        continue;
      }
      return;
    }
  }

  #open(job: Job): void {
    this.#opening += 1;
    const client = new SmtpClient(this.#config);
    const settled = client.connect().then(
      async () => {
        this.#opening -= 1;
        if (this.#closed) {
          job.reject(closedError());
          await client.close().catch(() => undefined);
          return;
        }
        const slot: Slot = { client, messages: 0, busy: false, idleSince: Date.now(), idleTimer: undefined };
        this.#slots.add(slot);
        this.#run(slot, job);
      },
      (error: unknown) => {
        this.#opening -= 1;
        job.reject(this.#closed ? closedError(error) : error);
        this.#dispatch();
      },
    );
    this.#connecting.set(client, settled);
    void settled.finally(() => this.#connecting.delete(client));
  }

  #run(slot: Slot, job: Job): void {
    slot.busy = true;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    void (async () => {
      // A connection the server closed while idle is replaced before anything is sent.
      if (!(await this.#alive(slot))) {
        this.#slots.delete(slot);
        slot.client.destroy();
        this.#pending.unshift(job);
        this.#dispatch();
        return;
      }
      try {
        slot.messages += 1;
        job.resolve(await slot.client.sendMail(job.envelope, job.body));
      } catch (error) {
        job.reject(error);
      }
      this.#release(slot);
    })();
  }

  async #alive(slot: Slot): Promise<boolean> {
    if (slot.client.state !== "ready") return false;
    if (Date.now() - slot.idleSince < this.#probeAfterIdle) return true;
    try {
      await slot.client.noop();
      return true;
    } catch {
      return false;
    }
  }

  #release(slot: Slot): void {
    slot.busy = false;
    slot.idleSince = Date.now();
    if (slot.client.state !== "ready" || slot.messages >= this.maxMessagesPerConnection || this.#closed) {
      void this.#retire(slot);
    } else if (this.#pending.length === 0 && this.#idleTimeout !== undefined) {
      slot.idleTimer = setTimeout(() => {
        if (!slot.busy) void this.#retire(slot);
      }, this.#idleTimeout);
      slot.idleTimer.unref();
    }
    this.#dispatch();
  }

  async #retire(slot: Slot): Promise<void> {
    this.#slots.delete(slot);
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    await slot.client.close().catch(() => undefined);
  }
}

function closedError(cause?: unknown): SmtpClosedError {
  return new SmtpClosedError("The pool was closed before the message was sent", cause === undefined ? {} : { cause });
}
