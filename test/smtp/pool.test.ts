import { getEventListeners } from "node:events";
import net from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startFakeServer, type FakeServerOptions, type FakeSession, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { VirtualClock } from "../helpers/virtual-clock.js";
import { SmtpPool, type SmtpPoolOptions } from "../../src/smtp/pool.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { resolveSmtpConfig } from "../../src/smtp/config.js";
import { AbortError, SmtpClosedError, InvalidArgumentError } from "../../src/errors.js";
import { systemClock, type Clock } from "../../src/observe/clock.js";

const servers: FakeSmtpServer[] = [];
const pools: SmtpPool[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(serverOptions: FakeServerOptions = {}, poolOptions: SmtpPoolOptions = {}): Promise<{ server: FakeSmtpServer; pool: SmtpPool }> {
  const server = await startFakeServer(serverOptions);
  servers.push(server);
  const pool = new SmtpPool({ host: "127.0.0.1", port: server.port, timeout: 2000, localName: "pool.test", ...poolOptions });
  pools.push(pool);
  return { server, pool };
}

const originalConnect = net.connect;

async function until(condition: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const env = (i: number) => ({ from: "a@example.org", to: [`r${i}@example.org`] });

describe("SmtpPool", () => {
  it("queues sends over at most maxConnections connections", async () => {
    const { server, pool } = await setup({}, { maxConnections: 2 });
    const results = await Promise.all(Array.from({ length: 7 }, (_, i) => pool.sendMail(env(i), `message ${i}`)));
    expect(results.every((r) => r.reply.code === 250)).toBe(true);
    expect(server.connections).toBeLessThanOrEqual(2);
    expect(server.received.map((m) => m.data.toString()).sort()).toEqual(Array.from({ length: 7 }, (_, i) => `message ${i}\r\n`).sort());
  });

  it("adopts a connected client as its first connection, and refuses one that is not ready or over capacity", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1 });
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, timeout: 2000, localName: "pool.test" });
    expect(() => pool.adopt(client)).toThrow(InvalidArgumentError);
    await client.connect();
    pool.adopt(client);
    await pool.sendMail(env(1), "x");
    expect(server.connections).toBe(1);
    const other = new SmtpClient({ host: "127.0.0.1", port: server.port, timeout: 2000, localName: "pool.test" });
    await other.connect();
    expect(() => pool.adopt(other)).toThrow(/full/);
    await other.close();
  });

  it("replaces a connection after maxMessagesPerConnection (with QUIT)", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1, maxMessagesPerConnection: 2 });
    for (let i = 0; i < 5; i++) await pool.sendMail(env(i), "x");
    expect(server.connections).toBe(3);
    expect(server.commands(1).at(-1)).toBe("QUIT");
  });

  it("replaces a connection the server closed while idle", async () => {
    const { server, pool } = await setup({ idleTimeoutMs: 100 }, { maxConnections: 1 });
    await pool.sendMail(env(1), "x");
    await server.waitForClosed(1);
    const result = await pool.sendMail(env(2), "y");
    expect(result.reply.code).toBe(250);
    expect(server.connections).toBe(2);
  });

  it("probes a connection idle for longer than probeAfterIdle with NOOP", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1, probeAfterIdle: 0 });
    await pool.sendMail(env(1), "x");
    await pool.sendMail(env(2), "y");
    expect(server.commands(1)).toContain("NOOP");
    expect(server.connections).toBe(1);
  });

  it("a failed message does not poison the pool", async () => {
    const { server, pool } = await setup({ script: { onMessage: (m) => (m.data.toString().startsWith("bad") ? "554 5.6.0 rejected" : undefined) } }, { maxConnections: 1 });
    await expect(pool.sendMail(env(1), "bad")).rejects.toMatchObject({ replyCode: 554 });
    await pool.sendMail(env(2), "good");
    expect(server.connections).toBe(1);
  });

  it("close() rejects queued messages and closes connections", async () => {
    let receiving = false;
    const { server, pool } = await setup(
      { script: { onMessage: async () => ((receiving = true), await new Promise((r) => setTimeout(r, 100)), undefined) } },
      { maxConnections: 1 },
    );
    const first = pool.sendMail(env(1), "x");
    const queued = pool.sendMail(env(2), "y");
    // Close while the first message is in flight (the server has its body) and the second queued.
    await until(() => receiving);
    const closing = pool.close();
    await expect(queued).rejects.toBeInstanceOf(SmtpClosedError);
    await first;
    await closing;
    expect(pool.size).toBe(0);
    await expect(pool.sendMail(env(3), "z")).rejects.toBeInstanceOf(SmtpClosedError);
    await server.waitForClosed(1);
  });

  it("close() while a connection is still opening: destroys and awaits it, no socket outlives close()", async () => {
    const { server, pool } = await setup({ greeting: null }, { maxConnections: 2 });
    const sockets: net.Socket[] = [];
    const connect = vi.spyOn(net, "connect").mockImplementation(((...args: Parameters<typeof net.connect>) => {
      const socket = originalConnect(...args);
      sockets.push(socket);
      return socket;
    }) as typeof net.connect);
    try {
      const sends = [pool.sendMail(env(1), "x"), pool.sendMail(env(2), "y")].map((p) => p.then(() => undefined, (e: unknown) => e));
      await until(() => server.connections === 2);
      await pool.close();
      expect(sockets).toHaveLength(2);
      expect(sockets.every((s) => s.destroyed)).toBe(true);
      for (const error of await Promise.all(sends)) expect(error).toBeInstanceOf(SmtpClosedError);
      expect(pool.size).toBe(0);
    } finally {
      connect.mockRestore();
    }
  });

  it("validates its options", () => {
    expect(() => new SmtpPool({ maxConnections: 0 })).toThrow(InvalidArgumentError);
    for (const idleTimeout of [0, -1, 2 ** 31, Number.NaN, Number.POSITIVE_INFINITY, "5" as unknown as number]) {
      expect(() => new SmtpPool({ idleTimeout }), String(idleTimeout)).toThrow(/idleTimeout/);
    }
    for (const probeAfterIdle of [-1, 2 ** 31, Number.NaN, "5" as unknown as number]) {
      expect(() => new SmtpPool({ probeAfterIdle }), String(probeAfterIdle)).toThrow(/probeAfterIdle/);
    }
    expect(() => new SmtpPool({ idleTimeout: 2 ** 31 - 1, probeAfterIdle: 0 })).not.toThrow();
    expect(() => new SmtpPool({ useSsl: true, useTls: true })).toThrow(InvalidArgumentError);
  });
});

/** A clock whose time only moves when told; timers are real (reply deadlines still work). */
function steppedClock(start = 1_000_000): Clock & { step(ms: number): void } {
  let now = start;
  return { ...systemClock, now: () => now, step: (ms) => void (now += ms) };
}

describe("SmtpPool leases", () => {
  it("acquire → a connected client with its capabilities; release lends the same connection again", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1 });
    const first = await pool.acquire();
    expect(first.client.state).toBe("ready");
    expect(first.capabilities).toBe(first.client.capabilities);
    expect(first.capabilities.pipelining).toBe(true);
    await first.client.sendMail(env(1), "x");
    first.release();
    first.release(); // once only: a second call changes nothing
    const second = await pool.acquire();
    expect(second.client).toBe(first.client);
    second.release();
    expect(server.connections).toBe(1);
  });

  it("discard closes the connection (QUIT) and the next lease gets a new one", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1 });
    const lease = await pool.acquire();
    lease.discard();
    const next = await pool.acquire();
    expect(next.client).not.toBe(lease.client);
    next.release();
    await server.waitForClosed(1);
    expect(server.commands(1).at(-1)).toBe("QUIT");
    expect(server.connections).toBe(2);
  });

  it("waits while every connection is leased; the signal cancels the wait", async () => {
    const { pool } = await setup({}, { maxConnections: 1 });
    const held = await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal).then(() => "leased", (e: unknown) => e);
    expect(pool.pending).toBe(1);
    controller.abort();
    expect(await waiting).toBeInstanceOf(AbortError);
    expect(pool.pending).toBe(0);
    const queued = pool.acquire();
    held.release();
    const lease = await queued;
    expect(lease.client).toBe(held.client);
    lease.release();
  });

  it("an idle connection that got an unsolicited 421 (the server closes only later) is replaced before the next message (issue 8.3)", async () => {
    const { server, pool } = await setup(
      {
        script: {
          onMessage: (_m, session) => {
            if (session.id === 1) setTimeout(() => session.send("421 4.4.2 Idle too long, closing soon"), 20);
            return undefined;
          },
        },
      },
      { maxConnections: 1 },
    );
    await pool.sendMail(env(1), "first");
    await until(() => server.transcript.some((t) => t.dir === "s" && t.text.startsWith("421")));
    await new Promise((r) => setTimeout(r, 30));
    const result = await pool.sendMail(env(2), "second");
    expect(result.reply.code).toBe(250);
    expect(server.connections).toBe(2);
    expect(server.received.map((m) => m.data.toString())).toEqual(["first\r\n", "second\r\n"]);
  });

  it("an idle connection holding part of a reply nobody asked for is replaced", async () => {
    const { server, pool } = await setup(
      {
        script: {
          onMessage: (_m, session) => {
            if (session.id === 1) setTimeout(() => session.socket.write("250-half a rep"), 20);
            return undefined;
          },
        },
      },
      { maxConnections: 1 },
    );
    await pool.sendMail(env(1), "first");
    await until(() => (pool.clients[0]?.hasUnreadInput ?? false) === true);
    expect((await pool.sendMail(env(2), "second")).reply.code).toBe(250);
    expect(server.connections).toBe(2);
  });

  it("probes with NOOP once a connection was idle probeAfterIdle by the injected clock, not before", async () => {
    const clock = steppedClock();
    const { server, pool } = await setup({}, { maxConnections: 1, probeAfterIdle: 5_000, clock });
    await pool.sendMail(env(1), "x");
    clock.step(4_999);
    await pool.sendMail(env(2), "y");
    expect(server.commands(1)).not.toContain("NOOP");
    clock.step(5_000);
    await pool.sendMail(env(3), "z");
    expect(server.commands(1).filter((c) => c === "NOOP")).toHaveLength(1);
    expect(server.connections).toBe(1);
  });

  it("a connection that fails the NOOP probe is replaced before the message", async () => {
    const clock = steppedClock();
    const { server, pool } = await setup({ script: { onCommand: (cmd, s) => (cmd.verb === "NOOP" && s.id === 1 ? { reply: null, then: "destroy" } : undefined) } }, { maxConnections: 1, probeAfterIdle: 10, clock });
    await pool.sendMail(env(1), "x");
    clock.step(10);
    expect((await pool.sendMail(env(2), "y")).reply.code).toBe(250);
    expect(server.connections).toBe(2);
    expect(server.received).toHaveLength(2);
  });

  it("closes an idle connection after idleTimeout, on the injected clock's timers", async () => {
    const timers: { ms: number; fire(): void }[] = [];
    const clock: Clock = {
      now: () => 0,
      setTimeout: (callback, ms) => {
        // Reply deadlines run on real timers; the pool's idle timer is the one with idleTimeout's delay.
        if (ms === 12_345) {
          const t = { ms, fire: callback };
          timers.push(t);
          return t;
        }
        return systemClock.setTimeout(callback, ms);
      },
      clearTimeout: (handle) => {
        const i = timers.indexOf(handle as never);
        if (i !== -1) timers.splice(i, 1);
        else systemClock.clearTimeout(handle);
      },
    };
    const { server, pool } = await setup({}, { maxConnections: 1, idleTimeout: 12_345, clock });
    await pool.sendMail(env(1), "x");
    expect(timers).toHaveLength(1);
    expect(pool.size).toBe(1);
    timers[0]!.fire();
    expect(pool.size).toBe(0);
    await server.waitForClosed(1);
  });
});

describe("SmtpPool at its edges", () => {
  it("an already aborted signal rejects at once, and opens no connection", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1 });
    const controller = new AbortController();
    controller.abort(new Error("changed my mind"));
    const error = await pool.acquire(controller.signal).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(AbortError);
    expect((error as AbortError).cause).toBe(controller.signal.reason);
    expect([pool.pending, pool.size, server.connections]).toEqual([0, 0, 0]);
  });

  it("a lease, or a wait ended by close(), leaves no listener on the caller's signal", async () => {
    const { pool } = await setup({}, { maxConnections: 1 });
    const signal = new AbortController().signal;
    const lease = await pool.acquire(signal);
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
    const other = new AbortController().signal;
    const waiting = pool.acquire(other).then(() => undefined, (e: unknown) => e);
    expect(getEventListeners(other, "abort")).toHaveLength(1);
    await pool.close();
    expect(await waiting).toBeInstanceOf(SmtpClosedError);
    expect(getEventListeners(other, "abort")).toHaveLength(0);
    lease.release();
  });

  it("serves waiters in the order they asked, and keeps that order when the idle connection is found broken", async () => {
    let session1: FakeSession | undefined;
    const { server, pool } = await setup({ script: { onCommand: (_c, s) => ((session1 ??= s), undefined) } }, { maxConnections: 1 });
    const held = await pool.acquire();
    const order: string[] = [];
    const leases = ["a", "b", "c"].map((name) => pool.acquire().then((l) => (order.push(name), l)));
    expect(pool.pending).toBe(3);
    // Part of a reply nobody asked for arrives while the connection is lent out: at release
    // it is still "ready", and the check before lending it again finds it broken.
    session1!.socket.write("250-half a rep");
    await until(() => held.client.hasUnreadInput);
    held.release();
    const a = await leases[0]!;
    expect(order).toEqual(["a"]);
    expect(a.client).not.toBe(held.client);
    expect(pool.pending).toBe(2);
    a.release();
    const b = await leases[1]!;
    expect(b.client).toBe(a.client);
    b.release();
    (await leases[2]!).release();
    expect(order).toEqual(["a", "b", "c"]);
    expect(server.connections).toBe(2);
    // The broken connection was closed without a probe: nothing was written to it after the message.
    expect(server.commands(1)).not.toContain("NOOP");
  });

  it("the waiter whose probe failed is served first by the replacement", async () => {
    const clock = new VirtualClock();
    const { server, pool } = await setup(
      { script: { onCommand: (cmd, s) => (cmd.verb === "NOOP" && s.id === 1 ? { reply: null, then: "destroy" } : undefined) } },
      { maxConnections: 1, probeAfterIdle: 10, clock },
    );
    (await pool.acquire()).release();
    await clock.advance(10);
    const order: string[] = [];
    const first = pool.acquire().then((l) => (order.push("first"), l));
    const second = pool.acquire().then((l) => (order.push("second"), l));
    const lease = await first;
    expect(order).toEqual(["first"]);
    expect(server.commands(1).at(-1)).toBe("NOOP");
    lease.release();
    (await second).release();
    expect(order).toEqual(["first", "second"]);
    expect(server.connections).toBe(2);
  });

  it("a waiter that gives up during the probe is not served, and nothing is opened for it", async () => {
    const clock = new VirtualClock();
    let dropNoop: (() => void) | undefined;
    const { server, pool } = await setup(
      {
        script: {
          onCommand: (cmd, s) =>
            cmd.verb === "NOOP" ? new Promise<null>((resolve) => (dropNoop = () => (s.destroy(), resolve(null)))) : undefined,
        },
      },
      { maxConnections: 1, probeAfterIdle: 10, clock },
    );
    (await pool.acquire()).release();
    await clock.advance(10);
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal).then(() => "leased", (e: unknown) => e);
    await until(() => dropNoop !== undefined);
    controller.abort();
    expect(await waiting).toBeInstanceOf(AbortError);
    dropNoop!();
    await until(() => pool.size === 0);
    // No connection is being opened for the waiter that left: the pool has room for one.
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, timeout: 2000, localName: "pool.test" });
    await client.connect();
    pool.adopt(client);
    expect(pool.clients).toEqual([client]);
  });

  it("a connection opened for a waiter that gave up meanwhile joins the pool idle", async () => {
    let greet: (() => void) | undefined;
    const { server, pool } = await setup(
      { greeting: () => new Promise((resolve) => (greet = () => resolve("220 late.test ESMTP"))) },
      { maxConnections: 1 },
    );
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal).then(() => "leased", (e: unknown) => e);
    await until(() => greet !== undefined);
    controller.abort();
    expect(await waiting).toBeInstanceOf(AbortError);
    greet!();
    await until(() => pool.size === 1);
    const lease = await pool.acquire();
    expect(lease.client).toBe(pool.clients[0]);
    lease.release();
    expect(server.connections).toBe(1);
  });

  it("discard makes room for a waiter, which gets a new connection", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1 });
    const lease = await pool.acquire();
    const queued = pool.acquire();
    lease.discard();
    lease.release(); // after discard: nothing more happens
    const next = await queued;
    expect(next.client).not.toBe(lease.client);
    expect(next.client.state).toBe("ready");
    next.release();
    expect(server.connections).toBe(2);
    expect(pool.size).toBe(1);
  });

  it("release() of a connection that broke while lent out retires it at once", async () => {
    const { server, pool } = await setup({ script: { onCommand: (cmd) => (cmd.verb === "NOOP" ? { reply: null, then: "destroy" } : undefined) } }, { maxConnections: 1 });
    const lease = await pool.acquire();
    await expect(lease.client.noop()).rejects.toBeInstanceOf(SmtpClosedError);
    lease.release();
    expect(pool.size).toBe(0);
    expect(pool.clients).toEqual([]);
    const next = await pool.acquire();
    expect(next.client).not.toBe(lease.client);
    next.release();
    expect(server.connections).toBe(2);
  });

  it("a connect that fails rejects that caller with its error; the next waiter gets a new attempt", async () => {
    const { server, pool } = await setup({ greeting: (s) => (s.id === 1 ? "554 5.3.2 not now" : "220 fake.missive.test ESMTP ready") }, { maxConnections: 1 });
    const first = pool.acquire().then(() => undefined, (e: unknown) => e);
    const second = pool.acquire();
    const error = await first;
    expect(error).not.toBeInstanceOf(SmtpClosedError);
    expect(error).toMatchObject({ replyCode: 554 });
    const lease = await second;
    expect(lease.client.state).toBe("ready");
    lease.release();
    expect(server.connections).toBe(2);
  });

  it("close() during a connect rejects with SmtpClosedError caused by the connect's failure", async () => {
    const { server, pool } = await setup({ greeting: null }, { maxConnections: 1 });
    let settled = false;
    const waiting = pool.acquire().then(
      () => undefined,
      (e: unknown) => ((settled = true), e),
    );
    await until(() => server.connections === 1);
    await pool.close();
    // close() waited for the connection being opened: its caller has its answer already.
    expect(settled).toBe(true);
    const error = await waiting;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect((error as SmtpClosedError).message).toBe("The pool was closed before the message was sent");
    expect((error as SmtpClosedError).cause).toBeInstanceOf(SmtpClosedError);
  });

  it("adopt() refuses once closed, and while a connection being opened fills the pool; messages count from adoption", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1, maxMessagesPerConnection: 2 });
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, timeout: 2000, localName: "pool.test" });
    await client.connect();
    await client.sendMail(env(0), "before adoption");
    const opening = pool.acquire();
    expect(() => pool.adopt(client)).toThrow(/full/);
    (await opening).discard();
    await until(() => pool.size === 0);
    pool.adopt(client);
    expect(pool.size).toBe(1);
    await pool.sendMail(env(1), "x");
    expect(pool.size).toBe(1);
    await pool.sendMail(env(2), "y");
    // Two messages through the pool (three on the connection): now it is retired.
    expect(pool.size).toBe(0);
    expect(client.state).not.toBe("ready");
    await pool.close();
    const late = new SmtpClient({ host: "127.0.0.1", port: server.port, timeout: 2000, localName: "pool.test" });
    await late.connect();
    expect(() => pool.adopt(late)).toThrow(SmtpClosedError);
    expect(() => pool.adopt(late)).toThrow("The pool is closed");
    await late.close();
  });

  it("close() with a lease out: waits for that connection's QUIT and for idle ones, and leaves no idle timer", async () => {
    const clock = new VirtualClock();
    const { server, pool } = await setup({}, { maxConnections: 2, idleTimeout: 60_000, clock });
    const [a, b] = await Promise.all([pool.acquire(), pool.acquire()]);
    b.release();
    expect(clock.pending.filter((t) => t.ms === 60_000)).toHaveLength(1);
    await pool.close();
    expect(clock.pending).toEqual([]);
    expect(pool.size).toBe(0);
    expect(server.commands(1).at(-1)).toBe("QUIT");
    expect(server.commands(2).at(-1)).toBe("QUIT");
    expect(a.client.state).toBe("closed");
    a.release();
    expect(pool.size).toBe(0);
  });

  it("the idle timer does not keep the process alive (unref), and is armed for idleTimeout", async () => {
    const armed: { ms: number; options: unknown }[] = [];
    const clock: Clock = {
      ...systemClock,
      setTimeout: (callback, ms, options?: unknown) => {
        if (ms === 7_777) armed.push({ ms, options });
        return systemClock.setTimeout(callback, ms, options as never);
      },
    };
    const { pool } = await setup({}, { maxConnections: 1, idleTimeout: 7_777, clock });
    (await pool.acquire()).release();
    expect(armed).toEqual([{ ms: 7_777, options: { unref: true } }]);
  });

  it("the idle timer closes only that connection; one lent out again is not closed by an old timer", async () => {
    const clock = new VirtualClock();
    const { server, pool } = await setup({}, { maxConnections: 1, idleTimeout: 1_000, probeAfterIdle: 60_000, clock });
    (await pool.acquire()).release();
    await clock.advance(999);
    // Lent and given back at once: the first timer (due in 1 ms) no longer counts.
    (await pool.acquire()).release();
    await clock.advance(1);
    expect(pool.size).toBe(1);
    const lease = await pool.acquire();
    await clock.advance(5_000);
    expect(pool.size).toBe(1);
    expect(lease.client.state).toBe("ready");
    lease.release();
    await clock.advance(999);
    expect(pool.size).toBe(1);
    await clock.advance(1);
    expect(pool.size).toBe(0);
    await server.waitForClosed(1);
    expect(server.commands(1).at(-1)).toBe("QUIT");
  });
});

describe("SmtpPool closed while a connect completes", () => {
  it("a connection whose connect finished just after close() is closed, and its caller gets SmtpClosedError", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1 });
    const original = SmtpClient.prototype.connect;
    let closing: Promise<void> | undefined;
    const connect = vi.spyOn(SmtpClient.prototype, "connect").mockImplementation(function (this: SmtpClient) {
      const connected = original.call(this);
      // Registered before the pool's own callback: close() runs after the connect succeeded
      // and before the pool has seen it.
      void connected.then(() => void (closing = pool.close()));
      return connected;
    });
    try {
      const error = await pool.acquire().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(SmtpClosedError);
      expect(Object.hasOwn(error as object, "cause")).toBe(false);
      await closing;
      expect(pool.size).toBe(0);
      expect(pool.clients).toEqual([]);
      await server.waitForClosed(1);
    } finally {
      connect.mockRestore();
    }
  });
});

describe("SmtpPool, more of its contract", () => {
  it("acquire() once closed rejects without opening a connection; await using closes the pool", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1 });
    (await pool.acquire()).release();
    await pool[Symbol.asyncDispose]();
    expect(pool.size).toBe(0);
    await expect(pool.acquire()).rejects.toThrow("The pool was closed before the message was sent");
    expect(server.connections).toBe(1);
  });

  it("adopt() says why it refuses a client that is not ready", async () => {
    const { server, pool } = await setup({}, { maxConnections: 1 });
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, timeout: 2000, localName: "pool.test" });
    expect(() => pool.adopt(client)).toThrow("Only a connected client in the ready state can join the pool");
  });

  it("a waiter that gives up leaves the others queued", async () => {
    const { pool } = await setup({ greeting: null }, { maxConnections: 1 });
    // The first caller's connection is being opened (no greeting yet); the others queue.
    const first = new AbortController();
    const opening = pool.acquire(first.signal).then(() => "leased", (e: unknown) => e);
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const waits = controllers.map((c) => pool.acquire(c.signal).then(() => "leased", (e: unknown) => e));
    expect(pool.pending).toBe(3);
    // The first caller, whose connection is still opening, gives up: the queue stays as it is.
    first.abort();
    expect(await opening).toBeInstanceOf(AbortError);
    expect(pool.pending).toBe(3);
    // One in the middle gives up: only it leaves.
    controllers[1]!.abort();
    expect(await waits[1]).toBeInstanceOf(AbortError);
    expect(pool.pending).toBe(2);
    await pool.close();
    expect(await waits[0]).toBeInstanceOf(SmtpClosedError);
    expect(await waits[2]).toBeInstanceOf(SmtpClosedError);
  });

  it("a lease released twice gives its connection back once: a later lease of it is not shared", async () => {
    const { pool } = await setup({}, { maxConnections: 2 });
    const first = await pool.acquire();
    first.release();
    const second = await pool.acquire();
    expect(second.client).toBe(first.client);
    first.release(); // late, and again: must not hand out the connection second holds
    const third = await pool.acquire();
    expect(third.client).not.toBe(second.client);
    second.release();
    third.release();
  });

  it("a backend's single connection (no idleTimeout) is kept however long it is idle", async () => {
    const server = await startFakeServer();
    servers.push(server);
    const clock = new VirtualClock();
    const pool = new SmtpPool(resolveSmtpConfig({ host: "127.0.0.1", port: server.port, clock }, "backend"));
    pools.push(pool);
    (await pool.acquire()).release();
    expect(clock.pending).toEqual([]);
    await clock.advance(24 * 3600_000);
    expect(pool.size).toBe(1);
  });
});
