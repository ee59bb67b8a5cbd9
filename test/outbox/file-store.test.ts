/**
 * The spool directory store: the order of its durable writes (recorded through its
 * file-system seam), what it does with bad input (an unusable spool, corrupt or truncated
 * files, a newer format), the recovery of dead workers' leases, and atomic leasing by
 * concurrent takers (in one process and in two).
 */
import { spawn } from "node:child_process";
import { mkdtemp, mkdir, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { OutboxError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { FileStore, nodeSpoolFs, Outbox, type OutboxEntry, type SpoolFileSystem } from "../../src/outbox/index.js";
import { startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";

isolateEmailEnvironment();

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
let dir: string;
let fake: FakeSmtpServer | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-spool-"));
});
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  await rm(dir, { recursive: true, force: true });
});

const message = (i = 0) => new EmailMessage({ subject: `message ${i}`, body: `body ${i}\n`, from: "ann@example.com", to: ["bob@example.org"] });

/** node:fs with every call recorded, in order (paths relative to the spool). */
function recordingFs(): { fs: SpoolFileSystem; calls: string[] } {
  const calls: string[] = [];
  const rel = (p: string) => (p.startsWith(dir) ? p.slice(dir.length + 1) || "." : p);
  const fs: SpoolFileSystem = {
    ...nodeSpoolFs,
    async create(path) {
      const handle = await nodeSpoolFs.create(path);
      return {
        write: (b) => handle.write(b),
        sync: async () => {
          await handle.sync();
          calls.push(`fsync ${rel(path)}`);
        },
        close: () => handle.close(),
      };
    },
    syncDirectory: async (path) => {
      await nodeSpoolFs.syncDirectory(path);
      calls.push(`fsync-dir ${rel(path)}`);
    },
    rename: async (from, to) => {
      await nodeSpoolFs.rename(from, to);
      calls.push(`rename ${rel(from)} -> ${rel(to)}`);
    },
    link: async (from, to) => {
      await nodeSpoolFs.link(from, to);
      calls.push(`link ${rel(from)} -> ${rel(to)}`);
    },
  };
  return { fs, calls };
}

const indexOf = (calls: string[], pattern: RegExp) => {
  const i = calls.findIndex((c) => pattern.test(c));
  expect(i, `${pattern} in\n${calls.join("\n")}`).toBeGreaterThanOrEqual(0);
  return i;
};

describe("the order of durable writes", () => {
  it("enqueue: each file fsynced, then its directory, then the rename into queue/, then queue/ fsynced; the key claimed in between", async () => {
    const { fs, calls } = recordingFs();
    const outbox = new Outbox({ store: new FileStore({ path: dir, fs }) });
    await outbox.store.open();
    calls.length = 0;
    const { id } = await outbox.enqueue(message(), { idempotencyKey: "once" });
    const eml = indexOf(calls, new RegExp(`^fsync incoming/${id}/message\\.eml$`));
    const record = indexOf(calls, new RegExp(`^fsync incoming/${id}/message\\.json$`));
    const entryDir = indexOf(calls, new RegExp(`^fsync-dir incoming/${id}$`));
    const key = indexOf(calls, /^link keys\/\.\S+\.tmp -> keys\/[0-9a-f]{64}$/);
    const keysDir = indexOf(calls, /^fsync-dir keys$/);
    const rename = indexOf(calls, new RegExp(`^rename incoming/${id} -> queue/${id}$`));
    const queueDir = indexOf(calls, /^fsync-dir queue$/);
    expect(eml).toBeLessThan(entryDir);
    expect(record).toBeLessThan(entryDir);
    expect(entryDir).toBeLessThan(key);
    expect(key).toBeLessThan(keysDir);
    expect(keysDir).toBeLessThan(rename);
    expect(rename).toBeLessThan(queueDir);
    // enqueue resolved after the queue directory was fsynced.
    expect(calls.slice(queueDir + 1).every((c) => !c.startsWith("rename"))).toBe(true);
  });

  it("the final-dot record: the marker fsynced, renamed into place, its directory fsynced, before the hook returns", async () => {
    const { fs, calls } = recordingFs();
    const outbox = new Outbox({ store: new FileStore({ path: dir, fs }) });
    const { id } = await outbox.enqueue(message());
    // What had been done when the server had the final dot.
    let atDot: string[] = [];
    fake = await startFakeServer({ onMessage: () => void (atDot = [...calls]) });
    const worker = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port }) });
    await worker.start();
    await worker.idle();
    await worker.stop();
    const marker = indexOf(atDot, new RegExp(`^fsync active/[^/]+/${id}/\\.final-dot\\.tmp$`));
    const renamed = indexOf(atDot, new RegExp(`^rename active/([^/]+)/${id}/\\.final-dot\\.tmp -> active/\\1/${id}/final-dot$`));
    const synced = indexOf(atDot, new RegExp(`^fsync-dir active/[^/]+/${id}$`));
    expect(marker).toBeLessThan(renamed);
    expect(renamed).toBeLessThan(synced);
    // Settling: the new record fsynced and in place before the message leaves active/.
    const settledRecord = indexOf(calls, new RegExp(`^rename active/[^/]+/${id}/\\.message\\.json\\.tmp -> active/[^/]+/${id}/message\\.json$`));
    const moved = indexOf(calls, new RegExp(`^rename active/[^/]+/${id} -> sent/${id}$`));
    expect(calls.slice(0, settledRecord).some((c) => new RegExp(`^fsync active/[^/]+/${id}/\\.message\\.json\\.tmp$`).test(c))).toBe(true);
    expect(settledRecord).toBeLessThan(moved);
  });
});

describe("bad input", () => {
  it("a spool that cannot be used: a clear OutboxError before anything is taken", async () => {
    await writeFile(join(dir, "a-file"), "not a directory");
    const under = new Outbox({ store: `file://${dir}/a-file/spool` });
    await expect(under.enqueue(message())).rejects.toMatchObject({ name: "OutboxError", reason: "unusable", message: expect.stringMatching(/a part of the path is a file/) });
    let readOnly: string;
    if (process.getuid?.() === 0) {
      readOnly = "/sys/missive-outbox-test"; // root may write anywhere but a read-only file system
    } else {
      readOnly = join(dir, "read-only");
      await mkdir(readOnly, { mode: 0o555 });
    }
    const locked = new Outbox({ store: `file://${readOnly}` });
    await expect(locked.enqueue(message())).rejects.toMatchObject({ reason: "unusable", message: expect.stringMatching(/not writable/) });
    // Through the "outbox" backend the same failure is a BackendError (failSilently may hide it).
    const { OutboxBackend } = await import("../../src/outbox/backend.js");
    await expect(new OutboxBackend({ store: `file://${readOnly}` }).sendMessages([message()])).rejects.toMatchObject({ name: "BackendError", code: "EBACKEND" });
    expect(await new OutboxBackend({ store: `file://${readOnly}`, failSilently: true }).sendMessages([message()])).toBe(0);
  });

  it("a corrupt or truncated file is quarantined with its reason; the worker carries on and nothing is lost", async () => {
    fake = await startFakeServer();
    const outbox = new Outbox({ store: `file://${dir}` });
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await outbox.enqueue(message(i))).id);
    await writeFile(join(dir, "queue", ids[0]!, "message.json"), '{"format":1,"id":"');
    await truncate(join(dir, "queue", ids[1]!, "message.eml"), 10);
    const problems: Error[] = [];
    const worker = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port }), observer: { problem: (e) => problems.push(e) } });
    await worker.start();
    await worker.idle();
    await worker.stop();
    expect(fake.received).toHaveLength(2);
    expect((await outbox.status(ids[2]!))!.state).toBe("sent");
    const quarantined = (await readdir(join(dir, "corrupt"))).sort();
    expect(quarantined.map((n) => n.slice(0, n.lastIndexOf(".")))).toEqual([ids[0], ids[1]].sort());
    for (const name of quarantined) {
      const kept = await readdir(join(dir, "corrupt", name));
      expect(kept).toEqual(expect.arrayContaining(["message.eml", "message.json", "reason"]));
    }
    const reasons = await Promise.all(quarantined.map((n) => readFile(join(dir, "corrupt", n, "reason"), "utf8")));
    expect(reasons.join("")).toMatch(/not valid JSON/);
    expect(reasons.join("")).toMatch(/has 10 octets, its record says \d+ \(truncated\?\)/);
    expect(problems.map((p) => (p as OutboxError).reason).sort()).toEqual(["corrupt", "corrupt"]);
    expect(await readdir(join(dir, "queue"))).toEqual([]);
  });

  it("a record from a newer format is left where it is, reported once; status() says why; a newer spool layout refuses to open", async () => {
    fake = await startFakeServer();
    const outbox = new Outbox({ store: `file://${dir}` });
    const { id } = await outbox.enqueue(message(1));
    const other = await outbox.enqueue(message(2));
    const path = join(dir, "queue", id, "message.json");
    await writeFile(path, JSON.stringify({ ...JSON.parse(await readFile(path, "utf8")), format: 2, newField: true }));
    const problems: OutboxError[] = [];
    const worker = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port }), pollInterval: 5, observer: { problem: (e) => problems.push(e as OutboxError) } });
    await worker.start();
    await worker.idle();
    await new Promise((r) => setTimeout(r, 50)); // several more polls
    await worker.idle();
    await worker.stop();
    expect(problems.map((p) => p.reason)).toEqual(["version"]);
    expect(problems[0]!.message).toMatch(/format 2, written by a newer missive; this one reads format 1/);
    expect(await readdir(join(dir, "queue"))).toEqual([id]);
    expect((await outbox.status(other.id))!.state).toBe("sent");
    await expect(outbox.status(id)).rejects.toMatchObject({ reason: "version" });
    await writeFile(join(dir, "VERSION"), "missive-outbox 2\n");
    await expect(new Outbox({ store: `file://${dir}` }).enqueue(message())).rejects.toMatchObject({ reason: "version", message: expect.stringMatching(/newer missive/) });
  });
});

describe("recovery of a dead worker's leases", () => {
  /** A worker directory as a process that died left it: its lease and the messages it had taken. */
  async function deadWorker(store: FileStore, ids: readonly string[], markRound?: Record<string, number>): Promise<string> {
    const name = "dead.999999.abcdef";
    await store.join(name, 60_000, Date.now());
    const taken = await store.take(name, ids.length, Date.now());
    expect(taken.map((l) => l.entry.id).sort()).toEqual([...ids].sort());
    for (const lease of taken) {
      const round = markRound?.[lease.entry.id];
      if (round !== undefined) await store.markFinalDot(name, lease, round, Date.now());
    }
    // Expired: as a lease would be long after its worker stopped renewing it.
    await writeFile(join(dir, "active", name, "lease"), JSON.stringify({ format: 1, worker: name, host: "elsewhere", pid: 1, until: Date.now() - 1 }));
    return name;
  }

  it("returns messages that had not reached the final dot to the queue (the round counted) and holds those that had", async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    const a = await outbox.enqueue(message(1));
    const b = await outbox.enqueue(message(2));
    const other = new FileStore({ path: dir });
    const name = await deadWorker(other, [a.id, b.id], { [b.id]: 1 });
    const recovered = await new FileStore({ path: dir }).recover(Date.now());
    expect(recovered.requeued).toBe(1);
    expect(recovered.held.map((e: OutboxEntry) => e.id)).toEqual([b.id]);
    expect(await readdir(join(dir, "active"))).toEqual([]);
    expect(await readdir(join(dir, "reclaim"))).toEqual([]);
    expect((await outbox.status(a.id))!).toMatchObject({ state: "queued", interrupted: "before-final-dot", attempts: 0 });
    expect((await outbox.status(b.id))!).toMatchObject({ state: "held", attempts: 1, heldReason: expect.stringMatching(/after the message entered its final-dot phase/) });
    // The dead worker's later writes cannot land: its paths are gone.
    await expect(other.markFinalDot(name, { entry: (await outbox.status(a.id))!, header: Buffer.alloc(0), body: async function* () {} }, 1, Date.now())).rejects.toMatchObject({ reason: "lease-lost" });
    // The next worker counts the interrupted round before sending it.
    fake = await startFakeServer();
    const worker = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port }) });
    await worker.start();
    await worker.idle();
    await worker.stop();
    expect((await outbox.status(a.id))!).toMatchObject({ state: "sent", attempts: 2, interrupted: undefined });
    expect(fake.received).toHaveLength(1);
  });

  it("a lease still valid is left alone; a lease of a dead process on this machine ends at once", async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    const { id } = await outbox.enqueue(message());
    const store = new FileStore({ path: dir });
    const name = "alive.1.aaaaaa";
    await store.join(name, 60_000, Date.now());
    await store.take(name, 1, Date.now());
    expect((await new FileStore({ path: dir }).recover(Date.now())).requeued).toBe(0);
    expect((await outbox.status(id))!.state).toBe("sending");
    // The same host, a process that is gone (spawned and waited for), the lease not yet expired.
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    await new Promise((r) => child.once("exit", r));
    const lease = JSON.parse(await readFile(join(dir, "active", name, "lease"), "utf8"));
    await writeFile(join(dir, "active", name, "lease"), JSON.stringify({ ...lease, pid: child.pid }));
    expect((await new FileStore({ path: dir }).recover(Date.now())).requeued).toBe(1);
    expect((await outbox.status(id))!.state).toBe("queued");
  });

  it("finishes a keyed enqueue whose key was claimed before its process died (no message lost, none doubled)", async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    const { id } = await outbox.enqueue(message(), { idempotencyKey: "k" });
    // As if the process died between claiming the key and renaming the message into queue/.
    await (await import("node:fs/promises")).rename(join(dir, "queue", id), join(dir, "incoming", id));
    expect(await outbox.enqueue(message(), { idempotencyKey: "k" })).toEqual({ id, duplicate: true });
    expect(await readdir(join(dir, "queue"))).toEqual([id]);
    await (await import("node:fs/promises")).rename(join(dir, "queue", id), join(dir, "incoming", id));
    await new FileStore({ path: dir }).recover(Date.now());
    expect(await readdir(join(dir, "queue"))).toEqual([id]);
  });
});

describe("leases are atomic", () => {
  it("concurrent takers in one process never lease the same message", async () => {
    const outbox = new Outbox({ store: `file://${dir}` });
    for (let i = 0; i < 150; i++) await outbox.enqueue(message(i));
    const stores = Array.from({ length: 5 }, () => new FileStore({ path: dir }));
    await Promise.all(stores.map((s, i) => s.join(`taker.${i}.x`, 60_000, Date.now())));
    const taken: string[][] = stores.map(() => []);
    await Promise.all(
      stores.map(async (s, i) => {
        for (;;) {
          const leases = await s.take(`taker.${i}.x`, 3, Date.now());
          if (leases.length === 0) return;
          taken[i]!.push(...leases.map((l) => l.entry.id));
        }
      }),
    );
    const all = taken.flat();
    expect(all).toHaveLength(150);
    expect(new Set(all).size).toBe(150);
    expect(taken.filter((t) => t.length > 0).length).toBeGreaterThan(1);
  });

  it("a worker joining while another recovers keeps its folder: no lease yet is not a dead worker", async () => {
    // The joiner stops between its folder's mkdir and its first lease, as a busy process can.
    let paused!: () => void;
    const atMkdir = new Promise<void>((resolve) => (paused = resolve));
    let resume!: () => void;
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    const fs: SpoolFileSystem = {
      ...nodeSpoolFs,
      mkdir: async (path) => {
        await nodeSpoolFs.mkdir(path);
        if (path === join(dir, "active", "joiner")) {
          paused();
          await resumed;
        }
      },
    };
    const joiner = new FileStore({ path: dir, fs });
    await joiner.open();
    const joined = joiner.join("joiner", 60_000, Date.now());
    await atMkdir;
    const other = new FileStore({ path: dir });
    expect(await other.recover(Date.now())).toEqual({ requeued: 0, held: [] });
    resume();
    await joined;
    expect(await readdir(join(dir, "active"))).toEqual(["joiner"]);
    // Over an hour later a folder with neither lease nor messages is a worker that died while
    // joining. (Its time set to a whole second, so the hour is exact in milliseconds.)
    const { unlink, utimes } = await import("node:fs/promises");
    await unlink(join(dir, "active", "joiner", "lease"));
    const made = Math.floor(Date.now() / 1000) * 1000;
    await utimes(join(dir, "active", "joiner"), made / 1000, made / 1000);
    await other.recover(made + 3_600_000);
    expect(await readdir(join(dir, "active"))).toEqual(["joiner"]);
    await other.recover(made + 3_600_001);
    expect(await readdir(join(dir, "active"))).toEqual([]);
  });

  it("two worker processes on one spool send each message once", async () => {
    fake = await startFakeServer({ onMessage: async () => void (await new Promise((r) => setTimeout(r, 2))) });
    const outbox = new Outbox({ store: `file://${dir}` });
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push((await outbox.enqueue(message(i))).id);
    const children = [0, 1].map(() =>
      spawn(process.execPath, ["--import", "tsx", "bin/missive.ts", "worker", "--store", `file://${dir}`, "--url", `smtp://127.0.0.1:${fake!.port}`, "--concurrency", "3", "--poll-ms", "20", "--quiet"], {
        cwd: ROOT,
        stdio: ["ignore", "ignore", "pipe"],
        env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp" },
      }),
    );
    // A worker that stops by itself fails the exit-code check below; its stderr says why.
    const stderr = children.map((c) => {
      const chunks: Buffer[] = [];
      c.stderr!.on("data", (d: Buffer) => chunks.push(d));
      return chunks;
    });
    const exited = children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r))));
    try {
      const deadline = Date.now() + 90_000;
      while (fake.received.length < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
      await Promise.all(exited);
    }
    expect(children.map((c, i) => ({ exit: c.exitCode, stderr: Buffer.concat(stderr[i]!).toString() }))).toEqual([
      { exit: 0, stderr: "" },
      { exit: 0, stderr: "" },
    ]);
    const messageIds = fake.received.map((r) => /^Message-ID: (.*)$/im.exec(r.data.toString("latin1"))![1]);
    expect(messageIds).toHaveLength(300);
    expect(new Set(messageIds).size).toBe(300);
    // Both took part (connections from both processes).
    const sent = await outbox.list({ state: "sent" });
    expect(sent).toHaveLength(300);
    expect(await readdir(join(dir, "active"))).toEqual([]);
  }, 120_000);
});
