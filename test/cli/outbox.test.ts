/**
 * `missive outbox list | show | release | retry | purge` and `missive worker`, run as a
 * person would (node --import tsx bin/missive.ts ...), over a spool and a scripted server.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { EmailMessage } from "../../src/mime/message.js";
import { Outbox } from "../../src/outbox/index.js";
import { ENVIRONMENT_VARIABLES } from "../../src/settings.js";
import { noReplyToDot, startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";

const ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(ROOT, "bin/missive.ts");

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [...ENVIRONMENT_VARIABLES, "EMAIL_OUTBOX"]) delete env[name];
  return { ...env, ...extra };
}

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    execFile(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: ROOT, env: cleanEnv(env), timeout: 30_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return fail(error);
      done({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

let dir: string;
let store: string;
let fake: FakeSmtpServer | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-cli-outbox-"));
  store = `file://${dir}`;
});
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  await rm(dir, { recursive: true, force: true });
});

const message = (i: number) => new EmailMessage({ subject: `Invoice ${i}`, body: "Attached.\n", from: "billing@example.com", to: [`customer${i}@example.org`] });

describe("missive outbox", () => {
  it("list, show, release, retry and purge --dead", async () => {
    let n = 0;
    fake = await startFakeServer({ script: { onMessage: (msg, s) => (++n === 1 ? noReplyToDot().onMessage!(msg, s) : n === 2 ? "554 5.7.1 refused" : undefined) } });
    const outbox = new Outbox({ store });
    const held = await outbox.enqueue(message(1));
    const failed = await outbox.enqueue(message(2));
    const worker = outbox.worker({ backend: new SmtpBackend({ host: fake.host, port: fake.port, timeouts: { finalDot: 300 } }) });
    await worker.start();
    await worker.idle();
    await worker.stop();

    const list = await run(["outbox", "list", "--store", store]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`${held.id}  held     attempts 1`);
    expect(list.stdout).toContain(`${failed.id}  failed   attempts 1`);
    expect(list.stdout).toMatch(/2 messages\n$/);
    const onlyHeld = await run(["outbox", "list", "--state", "held"], { EMAIL_OUTBOX: store });
    expect(onlyHeld.stdout.trim().split("\n")).toHaveLength(2);
    const json = JSON.parse((await run(["outbox", "list", "--json", "--store", store])).stdout) as { id: string; state: string }[];
    expect(json.map((e) => [e.id, e.state])).toEqual([[held.id, "held"], [failed.id, "failed"]]);

    const show = await run(["outbox", "show", failed.id, "--store", store]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^state: +failed$/m);
    expect(show.stdout).toMatch(/^rejected: +customer2@example.org: 554 5\.7\.1 refused$/m);
    expect(show.stdout).toMatch(/try 1 at .*: failed: SmtpError/);
    const raw = await run(["outbox", "show", held.id, "--raw", "--store", store]);
    expect(raw.stdout).toBe(await readFile(join(dir, "hold", held.id, "message.eml"), "latin1"));
    expect(raw.stdout).toContain("Subject: Invoice 1\r\n");

    expect((await run(["outbox", "release", failed.id, "--store", store])).code).toBe(1);
    const released = await run(["outbox", "release", held.id, "--store", store]);
    expect(released).toMatchObject({ code: 0, stdout: `${held.id}: released: queued for customer1@example.org\n` });
    const retried = await run(["outbox", "retry", failed.id, "--store", store]);
    expect(retried).toMatchObject({ code: 0, stdout: `${failed.id}: queued for customer2@example.org\n` });
    expect((await outbox.status(held.id))!.state).toBe("queued");

    const unknown = await run(["outbox", "show", "20260101T000000000Z-0000000000", "--store", store]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/No message/);
    expect((await run(["outbox", "show", "../../etc/passwd", "--store", store])).code).toBe(1);
    const purge = await run(["outbox", "purge", "--store", store]);
    expect(purge.code).toBe(2);
    expect((await run(["outbox", "purge", "--dead", "--store", store])).stdout).toBe("purged 0 messages (dead)\n");
  });

  it("says what is missing: no store, a bad store URL, an unknown command", async () => {
    expect(await run(["outbox", "list"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--store/) });
    expect(await run(["outbox", "list", "--store", "ftp://x"])).toMatchObject({ code: 2 });
    expect(await run(["outbox", "frobnicate", "--store", store])).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown outbox command/) });
    expect(await run(["worker", "--store", store])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--url/) });
    expect((await run(["outbox", "--help"])).stdout).toMatch(/purge --dead/);
    expect((await run(["worker", "--help"])).stdout).toMatch(/SIGTERM/);
  });
});

describe("missive worker", () => {
  it("delivers the spool and stops cleanly on SIGTERM (exit 0, leases given back)", async () => {
    fake = await startFakeServer();
    const outbox = new Outbox({ store });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await outbox.enqueue(message(i))).id);
    const child = spawn(process.execPath, ["--import", "tsx", CLI, "worker", "--store", store, "--url", `smtp://127.0.0.1:${fake.port}`, "--concurrency", "2", "--poll-ms", "20"], { cwd: ROOT, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      const deadline = Date.now() + 30_000;
      while (fake.received.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // A message enqueued while it runs is picked up too.
      const late = await outbox.enqueue(message(9));
      while (fake.received.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      ids.push(late.id);
    } finally {
      process.kill(child.pid!, "SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/^missive worker \S+: delivering from file:\/\//m);
    for (const id of ids) expect(stdout).toContain(`${id} sent`);
    expect(stdout).toMatch(/stopping \(SIGTERM\)/);
    expect(stdout).toMatch(/stopped\n$/);
    expect((await outbox.list({ state: "sent" })).length).toBe(6);
    expect((await outbox.list({ state: "sending" })).length).toBe(0);
  }, 60_000);
});
