/**
 * `missive dev` (the mail catcher: a capture SMTP server and the web UI) and
 * `missive preview DIR` (the same UI over a directory of .eml files: the file backend's,
 * an outbox spool, a catcher's --dir). Both run until SIGINT or SIGTERM, then close every
 * server and return 0.
 */
import { parseArgs } from "node:util";
import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { startMailCatcher, type MailCatcher } from "./catcher.js";
import { MessageStore } from "./store.js";
import { WebServer } from "./web.js";

const USAGE = 2;
const FAILED = 1;

export const DEV_HELP = `Usage: missive dev [options]

A local mail catcher: an SMTP server that accepts every message and keeps it, and a web
UI that shows each one (HTML in a sandboxed frame, text, headers, MIME tree, attachments,
raw source, and checks for what will break in mail clients). Point your app at it with
EMAIL_URL=smtp://127.0.0.1:1025.

Options:
  --port N           SMTP port (default 1025; 0 for any free port)
  --web-port N       web UI port (default 8025; 0 for any free port)
  --listen ADDR      address to listen on (default 127.0.0.1; anything else exposes the mail)
  --dir PATH         keep messages as .eml files in PATH (default: in memory)
  --tls              offer STARTTLS, with a certificate made at startup
  --tls-cert FILE    ... with this certificate (PEM; with --tls-key) instead
  --tls-key FILE     the certificate's private key (PEM)
  --auth             offer AUTH PLAIN/LOGIN and accept any user and password
  --user NAME:PASS   accept only these credentials (repeatable; implies --auth)
  --require-auth     refuse mail from clients that did not authenticate
  --max-size BYTES   largest message accepted (default 26214400)
  -h, --help         this help

Stops on Ctrl+C (SIGINT) or SIGTERM.`;

export const PREVIEW_HELP = `Usage: missive preview DIR [options]

Shows the .eml files in DIR (and its subfolders, three deep: an outbox spool's states, the
file backend's directory, a catcher's --dir) in the same web UI as "missive dev", and
picks up new files as they appear. Nothing in DIR is changed.

Options:
  --port N           web UI port (default 8025; 0 for any free port)
  --listen ADDR      address to listen on (default 127.0.0.1)
  --poll MS          how often to look for new files (default 1000)
  -h, --help         this help`;

type Out = (line: string) => void;
const out: Out = (line) => process.stdout.write(`${line}\n`);
const err: Out = (line) => process.stderr.write(`${line}\n`);

class UsageError extends Error {}

async function readPem(path: string, option: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new UsageError(`${option} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function port(value: string | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value) || n > 65535) throw new UsageError(`${option} must be a port number (0 to 65535), got ${JSON.stringify(value)}`);
  return n;
}

function positiveInteger(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d{0,14}$/.test(value)) throw new UsageError(`${option} must be a positive whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function isLoopbackAddress(host: string): boolean {
  return host === "127.0.0.1" || host === "::1" || host === "localhost" || host.startsWith("127.");
}

/** Resolves when SIGINT or SIGTERM arrives (or `signal` aborts, for tests in-process). */
function untilStopped(signal?: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const stop = (name: string) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      signal?.removeEventListener("abort", onAbort);
      resolve(name);
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    const onAbort = () => stop("abort");
    process.once("SIGINT", onInt);
    process.once("SIGTERM", onTerm);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function listenProblem(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException).code;
  const address = `${(e as { address?: string }).address ?? ""}:${(e as { port?: number }).port ?? ""}`;
  if (code === "EADDRINUSE") return `${address} is already in use: stop what is listening there, or pick another port (--port, --web-port)`;
  if (code === "EACCES") return `not allowed to listen on ${address}: use a port above 1023`;
  if (code === "EADDRNOTAVAIL") return `${address} is not an address of this machine (--listen)`;
  return undefined;
}

async function guarded(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof UsageError) {
      err(`missive: ${e.message}`);
      return USAGE;
    }
    const problem = listenProblem(e);
    err(`missive: ${problem ?? (e as Error).message}`);
    return FAILED;
  }
}

const DEV_OPTIONS = {
  port: { type: "string" },
  "web-port": { type: "string" },
  listen: { type: "string" },
  dir: { type: "string" },
  tls: { type: "boolean" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  auth: { type: "boolean" },
  user: { type: "string", multiple: true },
  "require-auth": { type: "boolean" },
  "max-size": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export function dev(args: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number> {
  return guarded(async () => {
    let parsed;
    try {
      parsed = parseArgs({ args: [...args], options: DEV_OPTIONS, allowPositionals: false, strict: true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const v = parsed.values;
    if (v.help) {
      out(DEV_HELP);
      return 0;
    }
    const users: Record<string, string> = {};
    for (const pair of v.user ?? []) {
      const colon = pair.indexOf(":");
      if (colon <= 0) throw new UsageError(`--user must look like NAME:PASSWORD`);
      users[pair.slice(0, colon)] = pair.slice(colon + 1);
    }
    const withUsers = Object.keys(users).length > 0;
    const auth = withUsers || v.auth || v["require-auth"] ? { ...(withUsers ? { users } : {}), required: v["require-auth"] ?? false } : false;
    const host = v.listen ?? "127.0.0.1";
    if ((v["tls-cert"] === undefined) !== (v["tls-key"] === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
    const tls = v["tls-cert"] !== undefined ? { cert: await readPem(v["tls-cert"], "--tls-cert"), key: await readPem(v["tls-key"]!, "--tls-key") } : (v.tls ?? false);
    const maxMessageSize = positiveInteger(v["max-size"], "--max-size");
    const catcher: MailCatcher = await startMailCatcher({
      port: port(v.port, 1025, "--port"),
      webPort: port(v["web-port"], 8025, "--web-port"),
      host,
      tls,
      auth,
      ...(v.dir !== undefined ? { dir: v.dir } : {}),
      ...(maxMessageSize !== undefined ? { maxMessageSize } : {}),
      // One line per caught message, so the terminal shows mail arriving.
      onMessage: (m) => out(`caught ${m.id}: ${m.envelope?.from || "<>"} -> ${m.envelope?.to.join(", ")} ${JSON.stringify(m.subject ?? "")} (${m.size} bytes)`),
    });
    const shownHost = host.includes(":") ? `[${host}]` : host;
    out("missive mail catcher");
    out(`  SMTP: ${shownHost}:${catcher.smtpPort} (STARTTLS ${tls === false ? "off" : "offered"}, AUTH ${auth === false ? "off" : withUsers ? "checked" : "any credentials"}${auth !== false && auth.required ? ", required" : ""})`);
    out(`  Web:  ${catcher.url}`);
    out(`  Send: EMAIL_URL=smtp://${shownHost}:${catcher.smtpPort}`);
    if (v.dir !== undefined) out(`  Dir:  ${resolve(v.dir)}`);
    if (!isLoopbackAddress(host)) err(`missive: listening on ${host}: anyone who can reach it can read the caught mail`);
    out("Stop with Ctrl+C.");
    const why = await untilStopped(options.signal);
    await catcher.close();
    out(`stopped (${why})`);
    return 0;
  });
}

const PREVIEW_OPTIONS = {
  port: { type: "string" },
  listen: { type: "string" },
  poll: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export function preview(args: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number> {
  return guarded(async () => {
    let parsed;
    try {
      parsed = parseArgs({ args: [...args], options: PREVIEW_OPTIONS, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const v = parsed.values;
    if (v.help) {
      out(PREVIEW_HELP);
      return 0;
    }
    if (parsed.positionals.length !== 1) throw new UsageError("preview takes one directory: missive preview DIR");
    const dir = resolve(parsed.positionals[0]!);
    const isDir = await stat(dir).then((s) => s.isDirectory(), () => false);
    if (!isDir) throw new UsageError(`${dir} is not a directory`);
    const poll = positiveInteger(v.poll, "--poll") ?? 1000;
    const store = new MessageStore({ dir, readOnly: true });
    await store.scan();
    const web = await WebServer.start({ store, port: port(v.port, 8025, "--port"), ...(v.listen !== undefined ? { host: v.listen } : {}), title: `missive preview: ${dir}` });
    out(`missive preview of ${dir}: ${store.messages.length} message${store.messages.length === 1 ? "" : "s"}`);
    out(`  Web:  ${web.url}`);
    out("Stop with Ctrl+C.");
    let scanning = false;
    const timer = setInterval(() => {
      if (scanning) return;
      scanning = true;
      store.scan().finally(() => {
        scanning = false;
      });
    }, poll);
    const why = await untilStopped(options.signal);
    clearInterval(timer);
    await web.close();
    out(`stopped (${why})`);
    return 0;
  });
}
