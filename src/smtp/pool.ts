/**
 * A pool of SmtpClients to one server, handed out as leases:
 *
 *   const lease = await pool.acquire(signal);   // a connected client, checked
 *   try { await lease.client.sendMail(envelope, body) } finally { lease.release() }
 *
 * `acquire` queues when every connection is leased (at most `maxConnections` exist), and
 * checks a connection before handing it out again: one the server closed (FIN, or a lone
 * 421 while idle), one with part of a reply nobody asked for waiting, or one idle for
 * `probeAfterIdle` ms that does not answer a NOOP, is closed and replaced before any byte
 * of the next message is sent. `release()` returns the connection; the pool retires it
 * instead when it is no longer ready or has carried `maxMessagesPerConnection` messages.
 * `discard()` retires it whatever its state. Idle connections close after `idleTimeout`.
 *
 * The pool never resends anything: what to do after a failure is the caller's decision
 * (errors/classify.ts). `sendMail(envelope, body)` is acquire, send, release.
 */
import { InvalidArgumentError, SmtpClosedError } from "../errors.js";
import type { TimerHandle } from "../observe/clock.js";
import { Capabilities } from "./capabilities.js";
import { SmtpClient, type Envelope, type MessageBody, type SendResult, type SmtpClientOptions } from "./client.js";
import { resolveSmtpConfig, type ResolvedSmtpConfig } from "./config.js";
import { abortError } from "./connection.js";

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

/** One connection lent out: use `client` for one message (or several), then release or discard it, once. */
export interface Lease {
  readonly client: SmtpClient;
  /** What the server advertised on this connection: render the message for these. */
  readonly capabilities: Capabilities;
  /** Gives the connection back for reuse (the pool retires it if it is no longer usable). */
  release(): void;
  /** Closes the connection instead of reusing it (QUIT when it is still usable). */
  discard(): void;
}

interface Slot {
  readonly client: SmtpClient;
  /** `client.transactions` when the pool took it: messages are counted from there. */
  readonly baseline: number;
  leased: boolean;
  idleSince: number;
  idleTimer: TimerHandle | undefined;
}

interface Waiter {
  readonly signal: AbortSignal | undefined;
  resolve(lease: Lease): void;
  reject(error: unknown): void;
  settled: boolean;
  readonly onAbort: () => void;
}

export class SmtpPool {
  readonly maxConnections: number;
  readonly maxMessagesPerConnection: number;
  readonly #config: ResolvedSmtpConfig;
  readonly #slots = new Set<Slot>();
  readonly #waiters: Waiter[] = [];
  /** Connections being opened or checked, counted against maxConnections. */
  #opening = 0;
  /** Clients still connecting, and the promise that settles once each is handled. */
  readonly #connecting = new Map<SmtpClient, Promise<void>>();
  /** QUITs in progress, awaited by close(). */
  readonly #retiring = new Set<Promise<void>>();
  #closed = false;

  constructor(options: SmtpPoolOptions | ResolvedSmtpConfig = {}) {
    // Checks every client and pool option now (InvalidArgumentError), not at first send.
    this.#config = resolveSmtpConfig(options, "client");
    this.maxConnections = this.#config.pool.maxConnections;
    this.maxMessagesPerConnection = this.#config.pool.maxMessagesPerConnection;
  }

  /** Open connections (leased or idle). */
  get size(): number {
    return this.#slots.size;
  }

  /** Callers waiting for a connection. */
  get pending(): number {
    return this.#waiters.length;
  }

  /** The clients of the open connections (leased or idle), for diagnostics. */
  get clients(): readonly SmtpClient[] {
    return [...this.#slots].map((s) => s.client);
  }

  /**
   * A connected, checked client, leased until `release()` or `discard()`. Waits while every
   * connection is leased; `signal` cancels the wait (AbortError). Rejects with the connect
   * error when a new connection cannot be opened, and with SmtpClosedError once closed.
   */
  acquire(signal?: AbortSignal): Promise<Lease> {
    if (this.#closed) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        signal,
        settled: false,
        resolve: (lease) => {
          waiter.settled = true;
          signal?.removeEventListener("abort", waiter.onAbort);
          resolve(lease);
        },
        reject: (error) => {
          waiter.settled = true;
          signal?.removeEventListener("abort", waiter.onAbort);
          reject(error);
        },
        onAbort: () => {
          const i = this.#waiters.indexOf(waiter);
          if (i !== -1) this.#waiters.splice(i, 1);
          if (!waiter.settled) waiter.reject(abortError(signal));
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#dispatch();
    });
  }

  /** Sends one message over a leased connection. */
  async sendMail(envelope: Envelope, body: MessageBody): Promise<SendResult> {
    const lease = await this.acquire();
    try {
      return await lease.client.sendMail(envelope, body);
    } finally {
      lease.release();
    }
  }

  /**
   * Takes a connected client (state "ready", same server) into the pool as an idle
   * connection: the one a caller opened to learn the server's capabilities, for example.
   */
  adopt(client: SmtpClient): void {
    if (this.#closed) throw new SmtpClosedError("The pool is closed");
    if (client.state !== "ready") throw new InvalidArgumentError("Only a connected client in the ready state can join the pool");
    if (this.#slots.size + this.#opening >= this.maxConnections) throw new InvalidArgumentError("The pool is full");
    const slot: Slot = { client, baseline: client.transactions, leased: true, idleSince: this.#config.clock.now(), idleTimer: undefined };
    this.#slots.add(slot);
    this.#giveBack(slot);
  }

  /**
   * Closes every connection (QUIT, bounded; a leased one after its current operation) and
   * rejects waiting callers. A connection still being opened is destroyed (it has carried
   * nothing yet) and awaited, so that no socket outlives close().
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(closedError());
    const opening = [...this.#connecting];
    for (const [client] of opening) client.destroy();
    for (const slot of [...this.#slots]) this.#retire(slot);
    await Promise.all([...this.#retiring, ...opening.map(([, settled]) => settled)]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #dispatch(): void {
    while (this.#waiters.length > 0) {
      const idle = [...this.#slots].find((s) => !s.leased);
      if (idle) {
        this.#take(idle, this.#waiters.shift()!);
        continue;
      }
      if (this.#slots.size + this.#opening < this.maxConnections) {
        this.#open(this.#waiters.shift()!);
        continue;
      }
      return;
    }
  }

  /** Checks an idle connection before lending it; a broken one is replaced, the waiter served by another. */
  #take(slot: Slot, waiter: Waiter): void {
    slot.leased = true;
    this.#clearIdle(slot);
    const quick = this.#health(slot);
    if (quick === "dead") {
      this.#retire(slot);
      this.#waiters.unshift(waiter);
      this.#dispatch();
      return;
    }
    if (quick === "ok") {
      this.#lend(slot, waiter);
      return;
    }
    // Idle long enough to probe: NOOP before anything of the message is sent.
    void slot.client.noop().then(
      () => this.#lend(slot, waiter),
      () => {
        this.#retire(slot);
        if (!waiter.settled) this.#waiters.unshift(waiter);
        this.#dispatch();
      },
    );
  }

  /**
   * "dead": closed by the server (FIN, a lone 421 while idle, a reply nobody asked for: the
   * connection failed at once) or holding part of an unsolicited reply; "probe": idle for
   * probeAfterIdle or longer; else "ok".
   */
  #health(slot: Slot): "ok" | "probe" | "dead" {
    const client = slot.client;
    if (client.state !== "ready" || client.hasUnreadInput) return "dead";
    return this.#config.clock.now() - slot.idleSince >= this.#config.pool.probeAfterIdle ? "probe" : "ok";
  }

  #open(waiter: Waiter): void {
    this.#opening += 1;
    const client = new SmtpClient(this.#config);
    const settled = client.connect().then(
      () => {
        this.#opening -= 1;
        if (this.#closed) {
          waiter.reject(closedError());
          this.#track(client.close().catch(() => undefined));
          return;
        }
        const slot: Slot = { client, baseline: client.transactions, leased: true, idleSince: this.#config.clock.now(), idleTimer: undefined };
        this.#slots.add(slot);
        this.#lend(slot, waiter);
      },
      (error: unknown) => {
        this.#opening -= 1;
        waiter.reject(this.#closed ? closedError(error) : error);
        this.#dispatch();
      },
    );
    this.#connecting.set(client, settled);
    void settled.finally(() => this.#connecting.delete(client));
  }

  /** Hands `slot` to `waiter`, or (if the waiter gave up meanwhile) back to the pool. */
  #lend(slot: Slot, waiter: Waiter): void {
    if (waiter.settled) {
      this.#giveBack(slot);
      return;
    }
    let done = false;
    const once = (action: () => void) => () => {
      if (done) return;
      done = true;
      action();
    };
    waiter.resolve({
      client: slot.client,
      capabilities: slot.client.capabilities ?? Capabilities.none(),
      release: once(() => this.#giveBack(slot)),
      discard: once(() => {
        this.#retire(slot);
        this.#dispatch();
      }),
    });
  }

  #giveBack(slot: Slot): void {
    slot.leased = false;
    slot.idleSince = this.#config.clock.now();
    const used = slot.client.transactions - slot.baseline;
    if (this.#closed || slot.client.state !== "ready" || used >= this.maxMessagesPerConnection) {
      this.#retire(slot);
    } else if (this.#waiters.length === 0 && this.#config.pool.idleTimeout !== undefined) {
      slot.idleTimer = this.#config.clock.setTimeout(
        () => {
          slot.idleTimer = undefined;
          if (!slot.leased) this.#retire(slot);
        },
        this.#config.pool.idleTimeout,
        { unref: true },
      );
    }
    this.#dispatch();
  }

  /** Closes a connection and frees its place (the caller dispatches waiters). */
  #retire(slot: Slot): void {
    if (!this.#slots.delete(slot)) return;
    this.#clearIdle(slot);
    this.#track(slot.client.close().catch(() => undefined));
  }

  #clearIdle(slot: Slot): void {
    if (slot.idleTimer !== undefined) this.#config.clock.clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
  }

  #track(closing: Promise<void>): void {
    this.#retiring.add(closing);
    void closing.finally(() => this.#retiring.delete(closing));
  }
}

function closedError(cause?: unknown): SmtpClosedError {
  return new SmtpClosedError("The pool was closed before the message was sent", cause === undefined ? {} : { cause });
}
