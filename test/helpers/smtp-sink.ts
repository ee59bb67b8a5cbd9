// Postfix's smtp-sink (/usr/sbin/smtp-sink, never the postfix daemon): an SMTP server that
// accepts and discards every message, on a free loopback port; stopped by pid.
import { spawn } from "node:child_process";
import net from "node:net";
import { freePort } from "./redis.js";

export interface SmtpSink {
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Resolves true when something on `port` sends an SMTP greeting. */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const done = (ok: boolean) => (socket.destroy(), resolve(ok));
    socket.setTimeout(1_000, () => done(false));
    socket.once("data", (b) => done(b.toString("latin1").startsWith("220")));
    socket.once("error", () => done(false));
  });
}

/** Starts smtp-sink with a listen backlog of `backlog`; rejects when it exits or does not greet within 5 s. */
export async function startSmtpSink(backlog = 100): Promise<SmtpSink> {
  const port = await freePort();
  // smtp-sink refuses to run as root without a user to drop to.
  const child = spawn("/usr/sbin/smtp-sink", [...(process.getuid?.() === 0 ? ["-u", "nobody"] : []), `127.0.0.1:${port}`, String(backlog)], { stdio: "ignore" });
  const pid = child.pid!;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (!alive()) return;
    process.kill(pid, "SIGTERM");
    const timer = setTimeout(() => alive() && process.kill(pid, "SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  for (let tries = 0; tries < 100 && alive(); tries++) {
    if (await greets(port)) return { host: "127.0.0.1", port, pid, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`smtp-sink did not greet on port ${port}`);
}
