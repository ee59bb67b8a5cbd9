/**
 * README "Sending later: the durable outbox": its web app and its `missive worker` command
 * run as written, against aiosmtpd (AUTH as app/secret) and, for the BullMQ example, Debian's
 * redis-server. The only changes made: the imports point at src/, the spool is a temp dir,
 * the app listens on port 0, and the SMTP server and Redis are the local ones. Each replaced
 * text must occur exactly once, so an edit to the README that this test does not follow
 * fails here.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resetSettings } from "../src/index.js";
import { ENVIRONMENT_VARIABLES } from "../src/settings.js";
import { startAiosmtpd, type AiosmtpdServer } from "./helpers/aiosmtpd.js";
import { readmeBlocks, replaceOnce } from "./helpers/readme-blocks.js";
import { startRedis, type RedisServer } from "./helpers/redis.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const APP = "<!-- outbox-example: test/readme-outbox.test.ts runs this app and the worker command below against aiosmtpd -->";
const BULLMQ = "<!-- outbox-bullmq-example: test/readme-outbox.test.ts runs this block and the worker command below against redis-server and aiosmtpd -->";

let server: AiosmtpdServer;
let dir: string;
beforeAll(async () => {
  server = await startAiosmtpd({ auth: { users: { app: "secret" }, allowPlaintext: true } });
  dir = await mkdtemp(join(tmpdir(), "missive-readme-outbox-"));
});
afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});
afterEach(() => resetSettings());


/** The words of a one-line shell command (no quoting in these), its comment dropped. */
function words(command: string): string[] {
  return command.replace(/\s+#.*$/m, "").trim().split(/\s+/);
}

/** The CLI as a person runs it, without the test process's EMAIL_* environment. */
function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [...ENVIRONMENT_VARIABLES, "EMAIL_OUTBOX"]) delete env[name];
  return env;
}

/** `missive worker …` from the README as a child process, until stop() (SIGTERM by pid; resolves to the exit code). */
function startWorker(args: string[]): { stop(): Promise<number | null>; stdout(): string } {
  expect(args.slice(0, 2)).toEqual(["missive", "worker"]);
  const child = spawn(process.execPath, ["--import", "tsx", "bin/missive.ts", ...args.slice(1)], { cwd: root, env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (t: string) => (out += t));
  child.stderr!.resume();
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    stdout: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
      const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(child.pid!, "SIGKILL"), 20_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ["--import", "tsx", "bin/missive.ts", ...args], { cwd: root, env: cliEnv(), timeout: 30_000 }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
  );
}

async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("README: the durable outbox", () => {
  it("the web app enqueues in its handlers (once per idempotency key) and missive worker delivers; status says sent", async () => {
    const [app, command] = (await readmeBlocks(join(root, "README.md"), APP, 2)) as [string, string];
    const spool = pathToFileURL(join(dir, "spool")).href;
    let code = app;
    code = replaceOnce(code, 'from "missive"', `from ${JSON.stringify(join(root, "src/index.js"))}`);
    code = replaceOnce(code, 'from "missive/outbox"', `from ${JSON.stringify(join(root, "src/outbox/index.js"))}`);
    code = replaceOnce(code, '"file:///var/spool/missive"', JSON.stringify(spool));
    code = replaceOnce(code, ".listen(3000)", ".listen(0, \"127.0.0.1\")");
    const file = join(dir, "app.ts");
    await writeFile(file, code);
    const { server: web } = (await import(file)) as { server: Server };
    try {
      if (!web.listening) await new Promise((r) => web.once("listening", r));
      const base = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
      const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: "POST", body: JSON.stringify(body) });

      expect((await post("/signup", { email: "zoe@example.org" })).status).toBe(202);
      const first = await post("/orders", { order: "1042", email: "bob@example.org" });
      expect(first.status).toBe(202);
      const { id } = (await first.json()) as { id: string };
      // The same order again: the same id, nothing new enqueued.
      expect(await (await post("/orders", { order: "1042", email: "bob@example.org" })).json()).toEqual({ id });
      expect(await (await fetch(`${base}/mail/${id}`)).json()).toEqual({ state: "queued", attempts: 0 });
      expect(await server.messages()).toEqual([]);

      const args = words(command);
      const worker = startWorker(
        args.map((a) => (a === "file:///var/spool/missive" ? spool : a === "smtp://app:secret@smtp.example.com:587" ? `smtp://app:secret@127.0.0.1:${server.port}` : a)),
      );
      let stopped: number | null | undefined;
      try {
        const received = await server.waitForMessages(2, 60_000);
        await until(async () => ((await (await fetch(`${base}/mail/${id}`)).json()) as { state: string }).state === "sent", "the order confirmation recorded as sent");
        expect(received.map((m) => m.rcptTos).sort()).toEqual([["bob@example.org"], ["zoe@example.org"]]);
        expect(received.every((m) => m.authUser === "app")).toBe(true);
        expect(received.map((m) => /^Subject: (.*)$/m.exec(m.data.toString("latin1"))![1]!.trim()).sort()).toEqual(["Order 1042 confirmed", "Welcome"]);
        expect(await (await fetch(`${base}/mail/${id}`)).json()).toEqual({ state: "sent", attempts: 1 });
        expect((await fetch(`${base}/mail/nope`)).status).toBe(404);
      } finally {
        stopped = await worker.stop();
      }
      expect(stopped).toBe(0);
      expect(worker.stdout()).toMatch(new RegExp(`^${id} sent$`, "m"));
      const listed = await cli(["outbox", "list", "--store", spool]);
      expect(listed).toMatch(/2 messages/);
      expect(listed.match(/ sent /g)).toHaveLength(2);
      expect((await server.messages()).length).toBe(2);
    } finally {
      await new Promise((r) => web.close(r));
    }
  }, 120_000);

  it("the BullMQ example enqueues into Redis and missive worker --store redis://… delivers it", async () => {
    const [example, command] = (await readmeBlocks(join(root, "README.md"), BULLMQ, 2)) as [string, string];
    let redis: RedisServer | undefined;
    let store: { close(): Promise<void> } | undefined;
    try {
      redis = await startRedis();
      let code = example;
      code = replaceOnce(code, 'from "missive"', `from ${JSON.stringify(join(root, "src/index.js"))}`);
      code = replaceOnce(code, 'from "missive/bullmq"', `from ${JSON.stringify(join(root, "src/bullmq/index.js"))}`);
      code = replaceOnce(code, 'host: "redis.internal", port: 6379', `host: "127.0.0.1", port: ${redis.port}`);
      const file = join(dir, "bullmq-example.ts");
      await writeFile(file, code);
      const before = (await server.messages()).length;
      ({ store } = (await import(file)) as { store: { close(): Promise<void> } });

      const worker = startWorker(words(command).map((a) => (a === "redis://redis.internal:6379/mail" ? `redis://127.0.0.1:${redis!.port}/mail` : a === "smtp://app:secret@smtp.example.com:587" ? `smtp://app:secret@127.0.0.1:${server.port}` : a)));
      let stopped: number | null | undefined;
      try {
        const [received] = (await server.waitForMessages(before + 1, 60_000)).slice(before);
        expect(received!.rcptTos).toEqual(["zoe@example.org"]);
        expect(received!.authUser).toBe("app");
        await until(async () => /1 message/.test(await cli(["outbox", "list", "--state", "sent", "--store", `redis://127.0.0.1:${redis!.port}/mail`])), "the message recorded as sent in Redis");
      } finally {
        stopped = await worker.stop();
      }
      expect(stopped).toBe(0);
    } finally {
      await store?.close();
      await redis?.stop();
    }
  }, 120_000);
});
