import net from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startFakeServer, type FakeServerOptions, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { SmtpPool, type SmtpPoolOptions } from "../../src/smtp/pool.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { SmtpClosedError, InvalidArgumentError } from "../../src/errors.js";

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
