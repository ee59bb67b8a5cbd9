/**
 * `missive outbox list | show ID | release ID | retry ID | purge --dead` and
 * `missive worker`: the outbox from the command line. The store is `--store URL` or the
 * EMAIL_OUTBOX environment variable: a spool (`file:///var/spool/missive`) or BullMQ on
 * Redis (`redis://host:6379/QUEUE`, which needs the optional bullmq and ioredis packages).
 *
 * `missive worker` delivers with `--url EMAIL_URL` (repeat it for failover, in order), else
 * the environment's EMAIL_URL / EMAIL_* settings, and runs until SIGTERM or SIGINT: it
 * stops leasing, lets the messages in flight finish, and exits 0. A second signal cancels
 * them (before their final dot they are queued again; after it, held).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { getConnection } from "../api.js";
import type { EmailBackend } from "../backends/base.js";
import { FailoverBackend } from "../delivery/failover.js";
import { MissiveError, OutboxError } from "../errors.js";
import { Outbox } from "../outbox/outbox.js";
import { OUTBOX_STATES, type OutboxEntry, type OutboxState, type OutboxStore } from "../outbox/store.js";
import type { OutboxObserver } from "../outbox/worker.js";
import { backendFromUrl, configure, getSettings } from "../settings.js";

const USAGE = 2;
const FAILED = 1;

export const OUTBOX_HELP = `Usage: missive outbox COMMAND [--store URL]

Commands:
  list [--state STATE] [--json]   the messages, oldest first (STATE: ${OUTBOX_STATES.join(", ")})
  show ID [--json | --raw]        one message: state, attempts, next attempt, last error, report
                                  (--raw: the stored bytes, as they will be sent)
  release ID                      send a held message again, on purpose (its outcome was unknown)
  retry ID                        send a failed, dead or partial message again (or a queued one now)
  purge --dead [--failed] [--sent]  delete the messages in those states

The store: --store URL, else EMAIL_OUTBOX: file:///var/spool/missive (a spool directory),
or redis://HOST:PORT/QUEUE (BullMQ; needs the bullmq and ioredis packages).`;

export const WORKER_HELP = `Usage: missive worker [--store URL] [--url EMAIL_URL ...] [options]

Delivers the outbox's messages until SIGTERM or SIGINT (the messages in flight finish; a
second signal cancels them). Each message goes through --url (repeat it for failover, in
order), else EMAIL_URL / the EMAIL_* variables.

Options:
  --store URL        the outbox (default EMAIL_OUTBOX): file:///path or redis://host:port/QUEUE
  --url EMAIL_URL    where to deliver; repeat for failover routes, tried in order
  --concurrency N    messages in flight at once (default 1; an SMTP route gets a pool this large)
  --lease-ms MS      how long a lease lasts unless renewed (default 60000)
  --poll-ms MS       how often an idle worker looks for due messages (default 1000)
  --attempts N       delivery rounds before a message is dead (default 10)
  --quiet            print only problems and held messages
  -h, --help         this help`;

type Out = (line: string) => void;
const out: Out = (line) => process.stdout.write(`${line}\n`);
const err: Out = (line) => process.stderr.write(`${line}\n`);

class UsageError extends Error {}

function parse<T extends NonNullable<ParseArgsConfig["options"]>>(args: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function guarded(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof UsageError) {
      err(`missive: ${e.message}`);
      return USAGE;
    }
    if (e instanceof OutboxError) {
      err(`missive: ${e.message}`);
      return e.reason === "unusable" || e.reason === "version" ? USAGE : FAILED;
    }
    if (e instanceof MissiveError) {
      err(`missive: ${e.name}: ${e.message}`);
      return USAGE;
    }
    err(`missive: ${(e as Error)?.message ?? String(e)}`);
    return FAILED;
  }
}

/** The store named by `--store` or EMAIL_OUTBOX. */
export async function storeFromUrl(url: string | undefined): Promise<string | OutboxStore> {
  const value = url ?? process.env["EMAIL_OUTBOX"]?.trim();
  if (value === undefined || value === "") throw new UsageError("which outbox? give --store file:///path (or redis://host:port/QUEUE), or set EMAIL_OUTBOX");
  if (value.startsWith("file:")) return value;
  if (value.startsWith("redis:") || value.startsWith("rediss:")) {
    const u = new URL(value);
    const queueName = decodeURIComponent(u.pathname.replace(/^\//, "")) || "missive";
    const { BullMQStore } = await import("../bullmq/index.js");
    return new BullMQStore({ connection: { host: u.hostname || "127.0.0.1", port: u.port === "" ? 6379 : Number(u.port), ...(u.password ? { password: decodeURIComponent(u.password) } : {}), ...(u.protocol === "rediss:" ? { tls: {} } : {}) }, queueName });
  }
  throw new UsageError(`--store ${JSON.stringify(value)}: expected file:///path or redis://host:port/QUEUE`);
}

// --- missive outbox ----------------------------------------------------------------------

const OUTBOX_OPTIONS = {
  store: { type: "string" },
  state: { type: "string" },
  json: { type: "boolean" },
  raw: { type: "boolean" },
  dead: { type: "boolean" },
  failed: { type: "boolean" },
  sent: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export function outboxCommand(args: readonly string[]): Promise<number> {
  return guarded(async () => {
    const { values: v, positionals } = parse(args, OUTBOX_OPTIONS);
    const [command, ...rest] = positionals;
    if (v.help || command === undefined || command === "help") {
      (command === undefined && !v.help ? err : out)(OUTBOX_HELP);
      return command === undefined && !v.help ? USAGE : 0;
    }
    const outbox = new Outbox({ store: await storeFromUrl(v.store) });
    try {
      switch (command) {
        case "list":
          return await list(outbox, rest, v.state, v.json ?? false);
        case "show":
          return await show(outbox, one(rest, "show"), v.json ?? false, v.raw ?? false);
        case "release": {
          const entry = await outbox.release(one(rest, "release"));
          out(`${entry.id}: released: queued for ${entry.pending.join(", ")}`);
          return 0;
        }
        case "retry": {
          const entry = await outbox.retry(one(rest, "retry"));
          out(`${entry.id}: queued for ${entry.pending.join(", ")}`);
          return 0;
        }
        case "purge": {
          const states: OutboxState[] = [];
          if (v.dead) states.push("dead");
          if (v.failed) states.push("failed");
          if (v.sent) states.push("sent");
          if (states.length === 0) throw new UsageError("purge needs the states to delete: --dead (and/or --failed, --sent)");
          if (rest.length > 0) throw new UsageError("purge takes no ID");
          const n = await outbox.purge(states);
          out(`purged ${n} message${n === 1 ? "" : "s"} (${states.join(", ")})`);
          return 0;
        }
        default:
          throw new UsageError(`unknown outbox command "${command}" (list, show, release, retry, purge)`);
      }
    } finally {
      await outbox.close();
    }
  });
}

function one(rest: readonly string[], command: string): string {
  if (rest.length !== 1) throw new UsageError(`outbox ${command} takes one message ID`);
  return rest[0]!;
}

async function list(outbox: Outbox, rest: readonly string[], state: string | undefined, json: boolean): Promise<number> {
  if (rest.length > 0) throw new UsageError("outbox list takes no ID (show ID shows one)");
  if (state !== undefined && !(OUTBOX_STATES as readonly string[]).includes(state)) throw new UsageError(`--state must be one of ${OUTBOX_STATES.join(", ")}`);
  const entries = await outbox.list({ state: state as OutboxState | undefined });
  if (json) {
    out(JSON.stringify(entries.map(summary), null, 2));
    return 0;
  }
  for (const e of entries) {
    const next = e.state === "queued" && e.nextAttemptAt !== undefined ? ` next ${new Date(e.nextAttemptAt).toISOString()}` : "";
    out(`${e.id}  ${e.state.padEnd(7)}  attempts ${e.attempts}${next}  ${e.envelope.to.length} rcpt  ${JSON.stringify(e.subject)}${e.heldReason ? `  (${e.heldReason})` : ""}`);
  }
  out(`${entries.length} message${entries.length === 1 ? "" : "s"}`);
  return 0;
}

async function show(outbox: Outbox, id: string, json: boolean, raw: boolean): Promise<number> {
  if (raw) {
    const bytes = await outbox.store.read(id);
    if (bytes === undefined) throw new OutboxError("not-found", `No stored bytes for ${id} (unknown, or sent and no longer kept)`, { id });
    for await (const chunk of bytes) process.stdout.write(chunk);
    return 0;
  }
  const entry = await outbox.status(id);
  if (entry === undefined) throw new OutboxError("not-found", `No message ${id} in the outbox`, { id });
  if (json) {
    out(JSON.stringify(entry, null, 2));
    return 0;
  }
  out(`id:           ${entry.id}`);
  out(`state:        ${entry.state}${entry.heldReason ? ` (${entry.heldReason})` : ""}`);
  out(`message-id:   ${entry.messageId}`);
  out(`subject:      ${entry.subject}`);
  out(`from:         ${entry.envelope.from}`);
  out(`to:           ${entry.envelope.to.join(", ")}`);
  out(`enqueued:     ${new Date(entry.enqueuedAt).toISOString()}${entry.priority !== 0 ? `, priority ${entry.priority}` : ""}${entry.route ? `, route ${entry.route}` : ""}`);
  out(`attempts:     ${entry.attempts}${entry.nextAttemptAt !== undefined ? `, next at ${new Date(entry.nextAttemptAt).toISOString()}` : ""}`);
  if (entry.accepted.length > 0) out(`accepted:     ${entry.accepted.join(", ")}`);
  for (const r of entry.rejected) out(`rejected:     ${r.address}: ${r.code ?? ""} ${r.enhancedCode ?? ""} ${r.text}`.replace(/ +/g, " "));
  if (entry.pending.length > 0 && entry.state !== "sent") out(`pending:      ${entry.pending.join(", ")}`);
  if (entry.lastError) out(`last error:   ${entry.lastError.name}${entry.lastError.code ? ` (${entry.lastError.code})` : ""}: ${entry.lastError.message}`);
  for (const [i, a] of (entry.report?.attempts ?? []).entries()) {
    out(`  try ${i + 1}${a.route ? ` via ${a.route}` : ""} at ${new Date(a.at).toISOString()}: ${a.status}${a.error ? `: ${a.error.name}: ${a.error.message}` : ""}`);
  }
  out(`size:         ${entry.size} octets`);
  return 0;
}

function summary(e: OutboxEntry): Record<string, unknown> {
  return { id: e.id, state: e.state, messageId: e.messageId, subject: e.subject, to: e.envelope.to, attempts: e.attempts, nextAttemptAt: e.nextAttemptAt ?? null, heldReason: e.heldReason ?? null, lastError: e.lastError ?? null };
}

// --- missive worker ----------------------------------------------------------------------

const WORKER_OPTIONS = {
  store: { type: "string" },
  url: { type: "string", multiple: true },
  concurrency: { type: "string" },
  "lease-ms": { type: "string" },
  "poll-ms": { type: "string" },
  attempts: { type: "string" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export function workerCommand(args: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number> {
  return guarded(async () => {
    const { values: v, positionals } = parse(args, WORKER_OPTIONS);
    if (v.help) {
      out(WORKER_HELP);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`worker takes no arguments (got ${positionals.join(" ")})`);
    const concurrency = whole(v.concurrency, "--concurrency", 1, 1000) ?? 1;
    const leaseMs = whole(v["lease-ms"], "--lease-ms", 100, 2 ** 31 - 1);
    const pollInterval = whole(v["poll-ms"], "--poll-ms", 1, 2 ** 31 - 1);
    const attempts = whole(v.attempts, "--attempts", 1, 1000);
    const store = await storeFromUrl(v.store);
    const backend = deliveringBackend(v.url ?? [], concurrency);
    const quiet = v.quiet ?? false;
    const outbox = new Outbox({ store });
    const observer: OutboxObserver = {
      settled: (e) => {
        if (quiet && e.state !== "held") return;
        const next = e.state === "queued" && e.nextAttemptAt !== undefined ? `, next attempt at ${new Date(e.nextAttemptAt).toISOString()}` : "";
        out(`${e.id} ${e.state}${next}${e.lastError && e.state !== "sent" ? `: ${e.lastError.message}` : ""}`);
      },
      held: (e) => err(`${e.id} held: ${e.heldReason ?? "outcome unknown"} (missive outbox release ${e.id} sends it again)`),
      recovered: (r) => out(`recovered from stopped workers: ${r.requeued} queued again, ${r.held.length} held`),
      problem: (e) => err(`problem: ${e.message}`),
    };
    const worker = outbox.worker({
      ...(backend !== undefined ? { backend } : {}),
      concurrency,
      ...(leaseMs !== undefined ? { leaseMs } : {}),
      ...(pollInterval !== undefined ? { pollInterval } : {}),
      ...(attempts !== undefined ? { retry: { attempts } } : {}),
      observer,
    });
    const signals = untilStopped(options.signal, () => {
      err("second signal: cancelling the messages in flight");
      void worker.stop({ abort: true });
    });
    try {
      await worker.start();
      out(`missive worker ${worker.name}: delivering from ${String(outbox.store)} (concurrency ${concurrency}); stop with Ctrl+C or SIGTERM`);
      const why = await signals.stopped;
      out(`stopping (${why}): ${worker.inFlight} message${worker.inFlight === 1 ? "" : "s"} in flight`);
      await worker.stop();
      await outbox.close();
      out("stopped");
      return 0;
    } finally {
      signals.dispose();
    }
  });
}

/** --url (several: failover in that order), else the environment's backend, else the outbox.deliver setting. */
function deliveringBackend(urls: readonly string[], concurrency: number): EmailBackend | undefined {
  const pool = concurrency > 1 ? { pool: { maxConnections: concurrency } } : {};
  if (urls.length > 0) {
    const names = urls.map((_, i) => (urls.length === 1 ? "cli" : `route${i + 1}`));
    const backends: Record<string, Record<string, unknown>> = {};
    urls.forEach((url, i) => {
      const config = backendFromUrl(url, "--url") as Record<string, unknown>;
      backends[names[i]!] = config["backend"] === "smtp" ? { ...config, ...pool } : config;
    });
    configure({ backends: backends as never });
    if (urls.length === 1) return getConnection("cli");
    return new FailoverBackend({ routes: names, concurrency });
  }
  const settings = getSettings();
  if (settings.outbox?.deliver !== undefined) return undefined;
  const env = process.env;
  if (!["EMAIL_URL", "EMAIL_BACKEND", "EMAIL_HOST"].some((name) => (env[name] ?? "").trim() !== "")) {
    throw new UsageError("worker needs where to deliver: --url EMAIL_URL (or EMAIL_URL in the environment)");
  }
  if (settings.backend === "outbox") throw new UsageError("the environment's backend is the outbox itself; give the worker --url EMAIL_URL to deliver with");
  return getConnection(settings.backend === "smtp" ? pool : {});
}

function whole(value: string | undefined, option: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`${option} must be a whole number from ${min} to ${max}`);
  return n;
}

/** `stopped` resolves at the first SIGINT or SIGTERM (or when `signal` aborts); a second one calls `again`. */
function untilStopped(signal: AbortSignal | undefined, again: () => void): { stopped: Promise<string>; dispose(): void } {
  let first = true;
  let resolve!: (why: string) => void;
  const stopped = new Promise<string>((r) => (resolve = r));
  const on = (why: string) => () => {
    if (first) {
      first = false;
      resolve(why);
    } else again();
  };
  const onInt = on("SIGINT");
  const onTerm = on("SIGTERM");
  const onAbort = on("aborted");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  signal?.addEventListener("abort", onAbort, { once: true });
  return {
    stopped,
    dispose: () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      signal?.removeEventListener("abort", onAbort);
    },
  };
}
