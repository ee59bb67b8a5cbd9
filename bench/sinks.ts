/**
 * The SMTP servers the benchmarks send to, each started and stopped here by pid:
 * - Debian's `/usr/sbin/smtp-sink` (package postfix; only that test binary, never the
 *   postfix daemon): a fast C server that offers PIPELINING and 8BITMIME and throws every
 *   message away, so a client's own cost shows;
 * - aiosmtpd (python3-aiosmtpd) with a handler that drops each message: the slow server,
 *   which offers no PIPELINING, so every command is a round trip.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startSmtpSink as startTestSmtpSink } from "../test/helpers/smtp-sink.js";
import { ROOT } from "./env.js";

export interface Sink {
  readonly name: string;
  readonly host: "127.0.0.1";
  readonly port: number;
  stop(): Promise<void>;
}

export const SMTP_SINK = "/usr/sbin/smtp-sink";
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve();
        return;
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill("SIGTERM");
    });
}

/** smtp-sink on a free loopback port (the test helper's, with a backlog of 1000: a pool and 16 raw connections); resolves once it greets. */
export async function startSmtpSink(): Promise<Sink> {
  if (!existsSync(SMTP_SINK)) throw new Error(`${SMTP_SINK} is missing: apt-get install postfix (only its smtp-sink binary is run)`);
  const sink = await startTestSmtpSink(1000);
  return { name: "smtp-sink", host: sink.host, port: sink.port, stop: () => sink.stop() };
}

/** aiosmtpd dropping every message, on a port it picks; resolves once it listens. */
export async function startAiosmtpd(): Promise<Sink> {
  const script = join(ROOT, "bench", "aiosmtpd_sink.py");
  const child = spawn(PYTHON, [script], { stdio: ["ignore", "pipe", "pipe"] });
  const stop = stopper(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`aiosmtpd did not start: ${stderr}`)), 15_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n")[0];
      if (out.includes("\n") && line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once("exit", () => reject(new Error(`aiosmtpd exited: ${stderr}`)));
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { name: "aiosmtpd", host: "127.0.0.1", port, stop };
}
