import net from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startFakeServer, type FakeServerOptions, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { SmtpPool, type SmtpPoolOptions } from "../../src/smtp/pool.js";
import { SmtpClient } from "../../src/smtp/client.js";
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
