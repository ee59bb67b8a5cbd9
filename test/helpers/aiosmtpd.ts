// Start/stop a real aiosmtpd (Debian python3-aiosmtpd) on 127.0.0.1, port 0, and read
// what it stored. The server script is aiosmtpd_server.py next to this file.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeTestCerts } from "./certs.js";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "aiosmtpd_server.py");

/** Debian's Python (which has aiosmtpd), else whatever `python3` is on PATH. */
export const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

export type AiosmtpdTls = "none" | "starttls" | "implicit";

export interface AiosmtpdOptions {
  /** Default "none". "starttls" offers STARTTLS; "implicit" wraps the socket from the start. */
  tls?: AiosmtpdTls;
  /** Server certificate; default: makeTestCerts().server (CN=localhost, signed by the test CA). */
  certPath?: string;
  keyPath?: string;
  /** With tls "starttls": refuse everything but EHLO/HELO/NOOP/QUIT/STARTTLS before TLS (530). */
  requireStartTls?: boolean;
  /**
   * Enables AUTH PLAIN and LOGIN against `users`. Without `allowPlaintext`, aiosmtpd offers
   * AUTH only after STARTTLS (and answers 538 before). With tls "implicit" AUTH is always
   * offered (the helper switches aiosmtpd's auth_require_tls off there; see the script).
   */
  auth?: {
    users: Record<string, string>;
    requireAuth?: boolean;
    allowPlaintext?: boolean;
    /** Subset of ["PLAIN", "LOGIN"]; default both. */
    mechanisms?: ("PLAIN" | "LOGIN")[];
  };
  /** aiosmtpd's enable_SMTPUTF8 (advertises SMTPUTF8, accepts UTF-8 in commands). */
  smtputf8?: boolean;
  /** Advertise PIPELINING (aiosmtpd handles pipelined input but does not announce it). */
  pipelining?: boolean;
  /** aiosmtpd's data_size_limit (advertised as SIZE); 0 = no limit and no SIZE. Default 33554432. */
  dataSizeLimit?: number;
  /** Name in the greeting and EHLO reply. Default "aiosmtpd.missive.test". */
  hostname?: string;
  /** Recipients answered with `550 5.1.1` at RCPT (case-insensitive). */
  rejectRecipients?: string[];
  /** aiosmtpd's idle timeout in seconds. Default 60. */
  idleTimeoutSeconds?: number;
  /** Bound on the start (process spawn to ready line). Default 15000 ms. */
  startTimeoutMs?: number;
  /** Python logging level for aiosmtpd (stderr). Default "WARNING". */
  logLevel?: "DEBUG" | "INFO" | "WARNING" | "ERROR";
}

export interface StoredMessage {
  /** 1, 2, 3... in order of arrival. */
  seq: number;
  /** Unix time in seconds (float) when DATA completed. */
  receivedAt: number;
  mailFrom: string;
  /** ESMTP parameters of MAIL FROM, upper-cased by aiosmtpd (e.g. ["SIZE=123", "BODY=8BITMIME"]). */
  mailOptions: string[];
  rcptTos: string[];
  /** Parameters of each accepted RCPT TO, per recipient (aiosmtpd itself rejects any with 555). */
  rcptOptions: string[][];
  /** MAIL FROM carried SMTPUTF8. */
  smtputf8: boolean;
  /** User name that authenticated on this session, or null. */
  authUser: string | null;
  /** The session was encrypted (implicit TLS or after STARTTLS). */
  tls: boolean;
  /** e.g. "TLSv1.3" when known. */
  tlsVersion: string | null;
  /** Argument of the last EHLO/HELO. */
  heloName: string | null;
  /** EHLO (true) or HELO (false). */
  extendedSmtp: boolean;
  /** [address, port] of the client. */
  peer: [string, number] | null;
  /** DATA bytes exactly as received: dot-unstuffed, line endings untouched, final dot removed. */
  data: Buffer;
  size: number;
  emlPath: string;
}

export interface AiosmtpdServer {
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly tls: AiosmtpdTls;
  /** Spool directory (one NNNNNN.eml + NNNNNN.json per message). */
  readonly dir: string;
  readonly pid: number;
  /** All messages stored so far, by arrival. */
  messages(): Promise<StoredMessage[]>;
  /** Polls until at least n messages are stored; throws after timeoutMs (default 10000). */
  waitForMessages(n: number, timeoutMs?: number): Promise<StoredMessage[]>;
  /** What the Python process wrote to stderr so far (last 64 KiB). */
  stderr(): string;
  /** SIGTERM, SIGKILL after 3 s, await exit, remove the spool. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const STDERR_LIMIT = 64 * 1024;
const children = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort so that a test that throws before stop() leaves no server behind.
  process.once("exit", () => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once("exit", onExit);
  });
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
    if (!(await waitExit(child, 3000))) {
      child.kill("SIGKILL");
      await waitExit(child, 3000);
    }
  }
  children.delete(child);
}

async function readStored(dir: string): Promise<StoredMessage[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".json")).sort();
  const out: StoredMessage[] = [];
  for (const name of names) {
    const meta = JSON.parse(await readFile(join(dir, name), "utf8")) as Omit<StoredMessage, "data" | "emlPath"> & {
      emlFile: string;
    };
    const emlPath = join(dir, meta.emlFile);
    const data = await readFile(emlPath);
    const { emlFile: _ignored, ...rest } = meta;
    out.push({ ...rest, data, emlPath });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

export async function startAiosmtpd(opts: AiosmtpdOptions = {}): Promise<AiosmtpdServer> {
  installExitHook();
  const tls = opts.tls ?? "none";
  let certPath = opts.certPath;
  let keyPath = opts.keyPath;
  if (tls !== "none" && (certPath === undefined || keyPath === undefined)) {
    const certs = await makeTestCerts();
    certPath ??= certs.server.certPath;
    keyPath ??= certs.server.keyPath;
  }
  const dir = await mkdtemp(join(tmpdir(), "missive-aiosmtpd-"));
  const config: Record<string, unknown> = {
    spool: dir,
    host: "127.0.0.1",
    tls,
    certPath,
    keyPath,
    requireStartTls: opts.requireStartTls ?? false,
    smtputf8: opts.smtputf8 ?? false,
    pipelining: opts.pipelining ?? false,
    hostname: opts.hostname,
    rejectRecipients: opts.rejectRecipients ?? [],
    idleTimeout: opts.idleTimeoutSeconds ?? 60,
    logLevel: opts.logLevel ?? "WARNING",
    removeSpoolOnExit: true,
  };
  if (opts.auth !== undefined) config["auth"] = opts.auth;
  if (opts.dataSizeLimit !== undefined) config["dataSizeLimit"] = opts.dataSizeLimit;

  const child = spawn(PYTHON, [SCRIPT], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1" },
  });
  children.add(child);

  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > STDERR_LIMIT) stderr = stderr.slice(-STDERR_LIMIT);
  });

  const startTimeout = opts.startTimeoutMs ?? 15_000;
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      let stdout = "";
      const timer = setTimeout(() => fail(new Error(`aiosmtpd did not start within ${startTimeout} ms`)), startTimeout);
      const cleanupListeners = (): void => {
        clearTimeout(timer);
        child.stdout!.off("data", onData);
        child.off("exit", onExit);
        child.off("error", onError);
      };
      function fail(err: Error): void {
        cleanupListeners();
        reject(err);
      }
      function onData(chunk: Buffer): void {
        stdout += chunk.toString("utf8");
        const nl = stdout.indexOf("\n");
        if (nl < 0) return;
        try {
          const ready = JSON.parse(stdout.slice(0, nl)) as { ready?: boolean; port?: number };
          if (ready.ready !== true || typeof ready.port !== "number") throw new Error("no port");
          cleanupListeners();
          resolve(ready.port);
        } catch {
          fail(new Error(`aiosmtpd printed an unexpected line: ${JSON.stringify(stdout.slice(0, nl))}`));
        }
      }
      function onExit(code: number | null, signal: NodeJS.Signals | null): void {
        fail(new Error(`aiosmtpd exited before it was ready (code ${code}, signal ${signal})`));
      }
      function onError(err: Error): void {
        fail(new Error(`could not spawn ${PYTHON}: ${err.message}`));
      }
      child.stdout!.on("data", onData);
      child.once("exit", onExit);
      child.once("error", onError);
      child.stdin!.end(JSON.stringify(config) + "\n");
    });
  } catch (err) {
    await killChild(child);
    // Give stderr a moment to drain, so the message says why.
    await new Promise((r) => setTimeout(r, 20));
    await rm(dir, { recursive: true, force: true });
    const e = err as Error;
    e.message += stderr ? `\n--- aiosmtpd stderr ---\n${stderr}` : "";
    throw e;
  }
  child.stdout!.resume();

  let stopped: Promise<void> | undefined;
  const server: AiosmtpdServer = {
    host: "127.0.0.1",
    port,
    tls,
    dir,
    pid: child.pid ?? -1,
    messages: () => readStored(dir),
    async waitForMessages(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const msgs = await readStored(dir);
        if (msgs.length >= n) return msgs;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`aiosmtpd exited while waiting for ${n} message(s); have ${msgs.length}\n${stderr}`);
        }
        if (Date.now() >= deadline) {
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${n} message(s); have ${msgs.length}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stderr: () => stderr,
    stop() {
      stopped ??= (async () => {
        await killChild(child);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  return server;
}
