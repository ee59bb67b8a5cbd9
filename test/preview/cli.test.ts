/**
 * `missive dev` and `missive preview DIR` as a person runs them: started as a process, they
 * print where to send and where to look, catch or show mail, and stop cleanly on SIGTERM
 * or SIGINT (sent by pid). Bad usage exits 2, a port in use exits 1, both with a clear line.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { FileBackend } from "../../src/backends/file.js";
import { EmailMessage } from "../../src/mime/message.js";
import { SmtpClient } from "../../src/smtp/client.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = join(ROOT, "bin/missive.ts");

interface Running {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  /** Resolves once stdout holds `text`; rejects after `ms`. */
  waitFor(text: string | RegExp, ms?: number): Promise<string>;
}

const running: Running[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const r of running.splice(0)) {
    if (r.child.exitCode === null) r.child.kill("SIGKILL");
    await r.exited;
  }
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function start(args: string[]): Running {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" } });
  let out = "";
  let err = "";
  const waiters: (() => void)[] = [];
  child.stdout.setEncoding("utf8").on("data", (c: string) => {
    out += c;
    waiters.splice(0).forEach((w) => w());
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => {
    err += c;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const r: Running = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(text, ms = 30_000) {
      const found = () => (typeof text === "string" ? out.includes(text) : text.test(out));
      const deadline = Date.now() + ms;
      while (!found()) {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before ${String(text)}\nstdout: ${out}\nstderr: ${err}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no ${String(text)} within ${ms} ms\nstdout: ${out}\nstderr: ${err}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 200));
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return out;
    },
  };
  running.push(r);
  return r;
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("missive dev", () => {
  it("prints the SMTP port and the UI address, catches mail, and stops cleanly on SIGTERM", async () => {
    const dev = start(["dev", "--port", "0", "--web-port", "0", "--tls", "--user", "app:pw"]);
    const out = await dev.waitFor("Stop with Ctrl+C.");
    const smtpPort = Number(/SMTP: 127\.0\.0\.1:(\d+) \(STARTTLS offered, AUTH checked\)/.exec(out)?.[1]);
    const url = /Web: {2}(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
    expect(smtpPort).toBeGreaterThan(0);
    expect(out).toContain(`EMAIL_URL=smtp://127.0.0.1:${smtpPort}`);

    const client = new SmtpClient({ host: "127.0.0.1", port: smtpPort, tls: "none", auth: { user: "app", pass: "pw" } });
    await client.connect();
    const message = new EmailMessage({ subject: "from the app", body: "hi", from: "app@example.org", to: ["user@example.org"] });
    await client.sendMail(message.envelope(), await message.asBytes());
    await client.quit();
    await dev.waitFor(/caught \S+: app@example\.org -> user@example\.org "from the app"/);
    const list = (await (await fetch(`${url}/api/messages`)).json()) as { subject: string }[];
    expect(list.map((m) => m.subject)).toEqual(["from the app"]);

    process.kill(dev.child.pid!, "SIGTERM");
    expect(await dev.exited).toBe(0);
    expect(dev.stdout()).toContain("stopped (SIGTERM)");
    expect(dev.stderr()).toBe("");
  });

  it("exits 2 on bad usage and 1 when a port is taken, saying what to do", async () => {
    const bad = start(["dev", "--port", "seventy"]);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toContain("--port must be a port number");

    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
    const taken = (squatter.address() as { port: number }).port;
    try {
      const busy = start(["dev", "--port", String(taken), "--web-port", "0"]);
      expect(await busy.exited).toBe(1);
      expect(busy.stderr()).toContain(`127.0.0.1:${taken} is already in use`);
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
    const help = start(["--help"]);
    expect(await help.exited).toBe(0);
    expect(help.stdout()).toMatch(/missive dev \[options\]/);
    expect(help.stdout()).toMatch(/missive preview DIR/);
  });
});

describe("missive preview DIR", () => {
  it("shows a file backend's directory and an outbox-like spool's subfolders, picks up new files, refuses to delete, stops on SIGINT", async () => {
    const dir = await mkdtemp(join(tmpdir(), "missive-preview-"));
    dirs.push(dir);
    const backend = new FileBackend({ filePath: dir });
    await backend.sendMessages([new EmailMessage({ subject: "written by the file backend", body: "x", from: "a@example.org", to: ["b@example.org"] })]);
    await mkdir(join(dir, "deferred"));
    await writeFile(join(dir, "deferred", "q1.eml"), "Subject: waiting in the spool\r\nFrom: a@example.org\r\n\r\nlater\r\n");
    await writeFile(join(dir, ".hidden.eml.tmp"), "Subject: half written\r\n");

    const preview = start(["preview", dir, "--port", "0", "--poll", "100"]);
    const out = await preview.waitFor("Stop with Ctrl+C.");
    expect(out).toContain(`missive preview of ${dir}: 2 messages`);
    const url = /Web: {2}(http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    const list = async () => (await (await fetch(`${url}/api/messages`)).json()) as { subject: string; folder: string }[];
    expect((await list()).map((m) => [m.subject, m.folder]).sort()).toEqual([
      ["waiting in the spool", "deferred"],
      ["written by the file backend", ""],
    ]);
    await backend.sendMessages([new EmailMessage({ subject: "a new one", body: "y", from: "a@example.org", to: ["b@example.org"] })]);
    const later = await until(list, (l) => l.length === 3);
    expect(later[0]!.subject).toBe("a new one");
    expect((await fetch(`${url}/api/messages`, { method: "DELETE" })).status).toBe(405);

    process.kill(preview.child.pid!, "SIGINT");
    expect(await preview.exited).toBe(0);
    expect(preview.stdout()).toContain("stopped (SIGINT)");
  });

  it("exits 2 for a directory that is not there", async () => {
    const missing = start(["preview", join(tmpdir(), "missive-no-such-dir-x")]);
    expect(await missing.exited).toBe(2);
    expect(missing.stderr()).toContain("is not a directory");
  });
});

describe("missive dev --tls-cert/--tls-key", () => {
  it("offers STARTTLS with the given certificate, which a client verifies", async () => {
    const { makeTestCerts } = await import("../helpers/certs.js");
    const certs = await makeTestCerts();
    const dir = await mkdtemp(join(tmpdir(), "missive-dev-tls-"));
    dirs.push(dir);
    await writeFile(join(dir, "cert.pem"), certs.server.cert);
    await writeFile(join(dir, "key.pem"), certs.server.key);
    const dev = start(["dev", "--port", "0", "--web-port", "0", "--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")]);
    const out = await dev.waitFor("Stop with Ctrl+C.");
    const smtpPort = Number(/SMTP: 127\.0\.0\.1:(\d+) \(STARTTLS offered/.exec(out)?.[1]);
    const client = new SmtpClient({ host: "localhost", port: smtpPort, tls: "starttls", tlsOptions: { ca: certs.ca } });
    await client.connect();
    expect(client.tlsInfo?.authorized).toBe(true);
    await client.quit();
    process.kill(dev.child.pid!, "SIGTERM");
    expect(await dev.exited).toBe(0);
  });
});
