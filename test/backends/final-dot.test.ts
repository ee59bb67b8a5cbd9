/**
 * `SendOptions.beforeFinalDot`: every backend awaits it at its final-dot point, once per try,
 * and a failing hook commits nothing. Over SMTP the server must have every body byte and no
 * terminator while the hook runs (DATA and BDAT), and the terminator must follow it.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { BaseEmailBackend } from "../../src/backends/base.js";
import { ConsoleBackend } from "../../src/backends/console.js";
import { DummyBackend } from "../../src/backends/dummy.js";
import { FileBackend } from "../../src/backends/file.js";
import { MemoryBackend } from "../../src/backends/memory.js";
import type { SendOptions } from "../../src/backends/report.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { FailoverBackend } from "../../src/delivery/failover.js";
import { BackendError } from "../../src/errors.js";
import { classify } from "../../src/errors/classify.js";
import type { EmailMessage } from "../../src/mime/message.js";
import { resetSettings } from "../../src/settings.js";
import { outbox } from "../../src/testing.js";
import { startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { fixedMessage } from "./helpers.js";

isolateEmailEnvironment();
afterEach(() => resetSettings());

const BIG_BODY = "line of the body\n".repeat(20_000); // ~340 KB: several BDAT chunks, many DATA writes

/** A TCP proxy in front of `server` that keeps every byte the client sent, as it passes. */
async function proxy(server: FakeSmtpServer): Promise<{ port: number; bytes(): Buffer; close(): Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const listener = net.createServer((client) => {
    const upstream = net.connect(server.port, server.host);
    sockets.add(client).add(upstream);
    client.on("data", (chunk: Buffer) => chunks.push(chunk));
    client.pipe(upstream).pipe(client);
    const end = () => (client.destroy(), upstream.destroy());
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  return {
    port: (listener.address() as net.AddressInfo).port,
    bytes: () => Buffer.concat(chunks),
    close: () => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), listener.close(() => resolve()))),
  };
}

/** A hook that looks at what had passed the proxy when it ran (after a pause long enough for the bytes written to arrive). */
function watchingHook(seenBytes: () => Buffer, server: FakeSmtpServer) {
  const seen: { bytes: Buffer; received: number }[] = [];
  const hook = async () => {
    await new Promise((r) => setTimeout(r, 100));
    seen.push({ bytes: seenBytes(), received: server.received.length });
  };
  return { seen, hook };
}

describe("beforeFinalDot over SMTP", () => {
  let server: FakeSmtpServer | undefined;
  let relay: Awaited<ReturnType<typeof proxy>> | undefined;
  afterEach(async () => {
    await relay?.close();
    await server?.close();
    server = undefined;
    relay = undefined;
  });

  it("DATA: runs after the whole body reached the server and before the final dot", async () => {
    server = await startFakeServer();
    relay = await proxy(server);
    const { seen, hook } = watchingHook(relay.bytes, server);
    const backend = new SmtpBackend({ host: "127.0.0.1", port: relay.port, timeout: 10_000 });
    const message = fixedMessage({ body: BIG_BODY });
    const { reports } = await backend.sendMessagesWithReport([message], { beforeFinalDot: hook });
    expect(reports[0]!.status).toBe("sent");
    expect(seen).toHaveLength(1);
    expect(seen[0]!.received).toBe(0);
    const before = seen[0]!.bytes.toString("latin1");
    expect(before.endsWith(".\r\n")).toBe(false);
    // Everything up to the terminator had arrived: the body's last line included.
    expect(before.endsWith("line of the body\r\n")).toBe(true);
    expect(relay.bytes().subarray(seen[0]!.bytes.length).toString("latin1")).toMatch(/^\.\r\nQUIT\r\n$/);
    expect(server.received[0]!.data.toString("latin1")).toBe((await message.asBytes()).toString("latin1"));
  });

  it("BDAT: runs after the body was read and before BDAT LAST", async () => {
    server = await startFakeServer({ ehlo: ["PIPELINING", "8BITMIME", "CHUNKING", "SIZE 104857600"] });
    relay = await proxy(server);
    const { seen, hook } = watchingHook(relay.bytes, server);
    const backend = new SmtpBackend({ host: "127.0.0.1", port: relay.port, timeout: 10_000, chunking: true });
    const { reports } = await backend.sendMessagesWithReport([fixedMessage({ body: BIG_BODY.repeat(4) })], { beforeFinalDot: hook });
    expect(reports[0]!.status).toBe("sent");
    const bdats = server.commands().filter((c) => c.startsWith("BDAT"));
    expect(bdats.length).toBeGreaterThan(2);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.received).toBe(0);
    expect(seen[0]!.bytes.includes(" LAST\r\n")).toBe(false);
    // The chunks had been written but for the last two: bdatChunks holds one back to know which is LAST,
    // and pieces still in its buffer go out only when the body has ended (after the hook).
    expect(seen[0]!.bytes.toString("latin1").match(/BDAT \d+\r\n/g)).toHaveLength(bdats.length - 2);
    expect(bdats.at(-1)).toMatch(/^BDAT \d+ LAST$/);
  });

  it("a failing hook drops the connection before the dot: nothing delivered, the try is retry-here", async () => {
    server = await startFakeServer();
    const backend = new SmtpBackend({ host: server.host, port: server.port, timeout: 10_000 });
    const failure = new BackendError("could not record the final-dot phase", { retryable: true });
    const { reports } = await backend.sendMessagesWithReport([fixedMessage()], { stopOnError: false, beforeFinalDot: () => Promise.reject(failure) });
    expect(reports[0]!.status).toBe("failed");
    expect(reports[0]!.error).toBe(failure);
    expect(classify(failure)).toBe("retry-here");
    expect(reports[0]!.deferred.map((d) => d.address)).toEqual(["bob@example.com"]);
    await server.waitForClosed(1);
    expect(server.received).toHaveLength(0);
    expect(server.clientBytes().includes("\r\n.\r\n")).toBe(false);
  });

  it("failover hands it to every try that reaches the dot", async () => {
    let messages = 0;
    server = await startFakeServer({ onMessage: () => (++messages === 1 ? "451 4.3.0 try again" : undefined) });
    const smtp = new SmtpBackend({ host: server.host, port: server.port, timeout: 10_000 });
    const failover = new FailoverBackend({ routes: [{ name: "only", backend: smtp }], retry: { attempts: 3, initialDelay: 0, maxDelay: 0 }, circuit: false });
    const calls: string[] = [];
    const { reports } = await failover.sendMessagesWithReport([fixedMessage()], { beforeFinalDot: async (m) => void calls.push(m.subject) });
    expect(reports[0]!.status).toBe("sent");
    expect(reports[0]!.attempts).toHaveLength(2);
    expect(calls).toEqual(["Hello", "Hello"]);
  });
});

describe("beforeFinalDot in the backends that write", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
    outbox.length = 0;
  });

  it("file: after the temporary file is complete, before the rename; a failure leaves no file", async () => {
    dir = await mkdtemp(join(tmpdir(), "missive-final-dot-"));
    const backend = new FileBackend({ filePath: dir, fsync: true });
    const listings: string[][] = [];
    await backend.sendMessages([fixedMessage()], { beforeFinalDot: async () => void listings.push(await readdir(dir!)) });
    expect(listings).toHaveLength(1);
    expect(listings[0]!.every((name) => name.startsWith(".") && name.endsWith(".tmp"))).toBe(true);
    expect((await readdir(dir)).filter((n) => n.endsWith(".eml"))).toHaveLength(1);

    const failed = await backend.sendMessagesWithReport([fixedMessage()], { stopOnError: false, beforeFinalDot: () => Promise.reject(new BackendError("no", { retryable: true })) });
    expect(failed.reports[0]!.status).toBe("failed");
    expect((await readdir(dir)).sort()).toEqual((await readdir(dir)).filter((n) => n.endsWith(".eml")).sort());
    expect((await readdir(dir)).filter((n) => n.endsWith(".eml"))).toHaveLength(1);
  });

  it("console: before the first byte", async () => {
    let written = 0;
    const stream = new Writable({ write: (chunk: Buffer, _e, cb) => ((written += chunk.length), cb()) });
    const at: number[] = [];
    await new ConsoleBackend({ stream }).sendMessages([fixedMessage()], { beforeFinalDot: async () => void at.push(written) });
    expect(at).toEqual([0]);
    expect(written).toBeGreaterThan(0);
  });

  it("memory before the append, dummy after rendering, a custom backend before its sendMessages", async () => {
    const order: string[] = [];
    const hook: SendOptions["beforeFinalDot"] = async () => void order.push(`hook:${outbox.length}`);
    await new MemoryBackend().sendMessages([fixedMessage()], { beforeFinalDot: hook });
    expect(order).toEqual(["hook:0"]);
    expect(outbox).toHaveLength(1);
    await new DummyBackend().sendMessages([fixedMessage()], { beforeFinalDot: hook });
    expect(order).toEqual(["hook:0", "hook:1"]);
    class Custom extends BaseEmailBackend {
      async sendMessages(messages: readonly EmailMessage[]): Promise<number> {
        order.push("send");
        return messages.length;
      }
    }
    await new Custom().sendMessagesWithReport([fixedMessage()], { beforeFinalDot: hook });
    expect(order).toEqual(["hook:0", "hook:1", "hook:1", "send"]);
  });
});
