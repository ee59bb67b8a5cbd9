/**
 * Crash safety with real processes: `missive worker` child processes deliver a spool of
 * 1,000 messages to a loopback recording server and are killed with SIGKILL at seeded
 * random moments (after a seeded number of messages, plus a seeded delay, so that kills
 * land before the final dot, while the server is still answering it, and while the outcome
 * is being recorded). The server answers each final dot after a seeded delay, which keeps
 * a message in its final-dot phase long enough for kills to land there.
 *
 * After a last worker drains the spool, every message is sent (received by the server
 * exactly once), or held and reported (received at most once: its outcome was unknown),
 * or still queued — counted, and checked against the server's record Message-ID by
 * Message-ID. No message is lost, none is received twice.
 *
 * Shown to catch the bug it is about: with the worker's durable final-dot record skipped
 * (beforeFinalDot not writing it), one run recorded all 1,000 messages as sent, none held,
 * and the server received 1,043 messages: 43 of them twice (killed during their final-dot
 * phase, recovered as never sent, sent again).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { EmailMessage } from "../../src/mime/message.js";
import { Outbox, type OutboxEntry } from "../../src/outbox/index.js";
import { startFakeServer, type FakeSmtpServer, type ReceivedMessage } from "../helpers/fake-smtp-server.js";
import { seeded } from "../helpers/virtual-clock.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MESSAGES = 1_000;
const KILLS = 32;
const SEED = 20261111;

let dir: string;
let server: FakeSmtpServer;
const random = seeded(SEED);
const children = new Set<ChildProcess>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-crash-"));
  server = await startFakeServer({
    // The final dot is answered after 5-40 ms: a window in which the message may be delivered and no reply has come.
    onMessage: async () => {
      await new Promise((r) => setTimeout(r, 5 + Math.floor(random() * 35)));
      return undefined;
    },
  });
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Loads `missive worker` on the spool in a child process (crash-worker.ts); `go()` starts it,
 * and `ready` resolves once it is delivering.
 */
function startWorker(): { child: ChildProcess; go(): void; settled(): number; ready: Promise<void>; exited: Promise<void> } {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/outbox/crash-worker.ts", "--store", `file://${dir}`, "--url", `smtp://127.0.0.1:${server.port}`, "--concurrency", "4", "--poll-ms", "20"],
    { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"], env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp" } },
  );
  children.add(child);
  let settled = 0;
  let buffer = "";
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout!.setEncoding("utf8").on("data", (text: string) => {
    buffer += text;
    const lines = buffer.split("\n");
    buffer = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith("missive worker ")) onReady();
      else if (/^\S+ (sent|held|queued|failed|dead|partial)/.test(line)) settled++;
    }
  });
  child.stderr!.resume();
  const exited = new Promise<void>((resolve) => child.once("exit", () => (children.delete(child), resolve())));
  return { child, go: () => child.stdin!.write("go\n"), settled: () => settled, ready, exited };
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe("SIGKILLed workers", () => {
  it(`after ${KILLS} kills over ${MESSAGES} messages: each sent exactly once, or held and reported, or queued; none lost, none twice`, async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    const enqueued = new Map<string, string>(); // Message-ID -> outbox id
    // Ten enqueues at a time, as a web server's requests would make them.
    for (let i = 0; i < MESSAGES; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, MESSAGES - i) }, async (_, j) => {
          const m = new EmailMessage({ subject: `crash ${i + j}`, body: `message ${i + j}\n`, from: "app@example.com", to: [`user${(i + j) % 17}@example.org`] });
          const { id } = await outbox.enqueue(m);
          enqueued.set((await outbox.status(id))!.messageId, id);
        }),
      );
    }

    let kills = 0;
    let next = startWorker();
    for (let round = 0; round < KILLS; round++) {
      const worker = next;
      worker.go();
      await within(worker.ready, 30_000, "the worker starting");
      // The next one loads while this one delivers (it starts only when told to).
      if (round + 1 < KILLS) next = startWorker();
      // Killed after a seeded number of settled messages, then a seeded 0-30 ms more.
      const after = 3 + Math.floor(random() * 25);
      const started = Date.now();
      while (worker.settled() < after && worker.child.exitCode === null && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 2));
      await new Promise((r) => setTimeout(r, Math.floor(random() * 30)));
      process.kill(worker.child.pid!, "SIGKILL");
      await within(worker.exited, 10_000, "the killed worker exiting");
      kills++;
    }

    // A last worker (in this process) recovers the last one's leases and drains the spool.
    const held: OutboxEntry[] = [];
    const last = outbox.worker({ backend: new SmtpBackend({ host: server.host, port: server.port, pool: { maxConnections: 4 } }), concurrency: 4, observer: { held: (e) => held.push(e) } });
    await last.start();
    await within(last.idle(), 60_000, "the last worker draining the spool");
    await last.stop();

    const all = await outbox.list();
    const byState = (state: string) => all.filter((e) => e.state === state);
    const received = new Map<string, ReceivedMessage[]>();
    for (const r of server.received) {
      const id = /^Message-ID: (.*)$/im.exec(r.data.toString("latin1"))![1]!.trim();
      received.set(id, [...(received.get(id) ?? []), r]);
    }
    // The two ways to break the promise, counted before any assertion so that a failing run says how badly:
    // a message the server got more than once, and one recorded as sent that it never got (or one gone from the spool).
    const twice = [...received.values()].filter((copies) => copies.length > 1).length;
    const lost = byState("sent").filter((e) => !received.has(e.messageId)).length + [...enqueued.keys()].filter((id) => !all.some((e) => e.messageId === id)).length;
    const counts = { messages: all.length, kills, sent: byState("sent").length, held: byState("held").length, queued: byState("queued").length, other: all.length - byState("sent").length - byState("held").length - byState("queued").length, received: server.received.length, heldReceived: byState("held").filter((e) => received.has(e.messageId)).length, twice, lost };
    console.log(`crash test: ${JSON.stringify(counts)}`);

    expect({ twice, lost }).toEqual({ twice: 0, lost: 0 });

    expect(kills).toBeGreaterThanOrEqual(30);
    expect(all).toHaveLength(MESSAGES);
    expect(new Set(all.map((e) => e.messageId))).toEqual(new Set(enqueued.keys()));
    expect(counts.other).toBe(0);
    expect(counts.queued).toBe(0);
    expect(counts.sent + counts.held).toBe(MESSAGES);
    // Every sent message reached the server exactly once; a held one at most once; nothing else arrived.
    for (const e of byState("sent")) expect(received.get(e.messageId)?.length, `${e.id} sent`).toBe(1);
    for (const e of byState("held")) expect(received.get(e.messageId)?.length ?? 0, `${e.id} held`).toBeLessThanOrEqual(1);
    for (const [messageId, copies] of received) {
      expect(enqueued.has(messageId), messageId).toBe(true);
      expect(copies.length, `${messageId} received`).toBe(1);
    }
    // Each held message is reported: why, and by whom it was found.
    for (const e of byState("held")) expect(e.heldReason).toMatch(/may have been delivered/);
    expect(new Set(held.map((e) => e.id))).toEqual(new Set(byState("held").filter((e) => held.some((h) => h.id === e.id)).map((e) => e.id)));
    // The kills reached the final-dot phase (what this test is about): some messages are held.
    expect(counts.held).toBeGreaterThan(0);
    expect(counts.held).toBeLessThanOrEqual(kills * 4);
  }, 300_000);
});
