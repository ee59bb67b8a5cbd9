import diagnosticsChannel from "node:diagnostics_channel";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsoleBackend, FileBackend, MemoryBackend, SmtpBackend, type MessageSentEvent } from "../../src/backends/index.js";
import { recipientReplies, startFakeServer } from "../helpers/fake-smtp-server.js";
import { EmailMessage } from "../../src/mime/message.js";
import { clearOutbox } from "../../src/testing.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-diag-"));
});
afterAll(async () => {
  clearOutbox();
  await rm(dir, { recursive: true, force: true });
});

describe("missive:message:sent", () => {
  it("is published once per message written, with its Message-ID, only while subscribed", async () => {
    const events: MessageSentEvent[] = [];
    const listener = (event: unknown) => events.push(event as MessageSentEvent);
    const message = () => new EmailMessage({ subject: "s", body: "b", from: "a@example.org", to: ["b@example.org"], cc: ["c@example.org"] });
    diagnosticsChannel.subscribe("missive:message:sent", listener);
    try {
      await new ConsoleBackend({ stream: new PassThrough().resume() }).sendMessages([message()]);
      await new FileBackend({ filePath: dir }).sendMessages([message()]);
      await new MemoryBackend().sendMessages([message(), message()]);
    } finally {
      diagnosticsChannel.unsubscribe("missive:message:sent", listener);
    }
    await new MemoryBackend().sendMessages([message()]);
    expect(events.map((e) => e.backend)).toEqual(["console", "file", "memory", "memory"]);
    for (const e of events) {
      expect(e.messageId).toMatch(/^<.+@example\.org>$/);
      expect(e.recipients).toEqual(["b@example.org", "c@example.org"]);
    }
    expect(events[1]?.path).toMatch(/\.eml$/);
  });

  it("reports the accepted recipients for SMTP", async () => {
    const server = await startFakeServer({ script: [recipientReplies({ "c@example.org": "550 5.1.1 no such user" })] });
    const events: MessageSentEvent[] = [];
    const listener = (event: unknown) => events.push(event as MessageSentEvent);
    diagnosticsChannel.subscribe("missive:message:sent", listener);
    try {
      const message = new EmailMessage({ subject: "s", body: "b", from: "a@example.org", to: ["b@example.org"], cc: ["c@example.org"] });
      expect(await new SmtpBackend({ host: server.host, port: server.port, timeout: 5000 }).sendMessages([message])).toBe(1);
    } finally {
      diagnosticsChannel.unsubscribe("missive:message:sent", listener);
      await server.close();
    }
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ backend: "smtp", recipients: ["b@example.org"] });
  });
});
