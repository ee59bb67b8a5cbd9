// Debian's redis-server for the BullMQ tests: on a free loopback port (redis has no "port 0"),
// without persistence (--save "" --appendonly no), in a temp dir; stopped by pid.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServer {
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** A port free on 127.0.0.1 now (for servers that cannot bind port 0 and say which they took). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves when the server answers PING, rejects when the process exits first or after `ms`. */
function ready(child: ChildProcess, port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    let done = false;
    const exited = () => finish(new Error("redis-server exited before it was ready"));
    child.once("exit", exited);
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      child.off("exit", exited);
      if (error) reject(error);
      else resolve();
    };
    const attempt = () => {
      if (done) return;
      if (Date.now() > deadline) return finish(new Error(`redis-server did not answer on port ${port} within ${ms} ms`));
      const socket = net.connect(port, "127.0.0.1");
      let reply = "";
      socket.on("connect", () => socket.write("PING\r\n"));
      socket.on("data", (b) => {
        reply += b.toString();
        if (reply.includes("+PONG")) {
          socket.destroy();
          finish();
        }
      });
      socket.on("error", () => {
        socket.destroy();
        setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startRedis(): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), "missive-redis-"));
  let lastError: unknown;
  for (let tries = 0; tries < 5; tries++) {
    const port = await freePort();
    const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning"], { stdio: "ignore" });
    try {
      await ready(child, port, 5_000);
    } catch (error) {
      lastError = error;
      child.kill("SIGKILL");
      continue;
    }
    const pid = child.pid!;
    return {
      host: "127.0.0.1",
      port,
      pid,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((r) => child.once("exit", () => r()));
          process.kill(pid, "SIGTERM");
          const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(pid, "SIGKILL"), 5_000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError;
}
