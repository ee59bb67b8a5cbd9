import { afterEach, describe, expect, it } from "vitest";
import { DummyBackend } from "../../src/backends/dummy.js";
import { MemoryBackend } from "../../src/backends/memory.js";
import { BadHeaderError } from "../../src/errors.js";
import { EmailMultiAlternatives } from "../../src/mime/message.js";
import { clearOutbox, outbox } from "../../src/testing.js";
import { fixedMessage } from "./helpers.js";

afterEach(() => clearOutbox());

describe("MemoryBackend", () => {
  it("appends a copy of each message to the shared outbox: same class, fields and bytes", async () => {
    const a = fixedMessage({ subject: "a" });
    const b = fixedMessage({ subject: "b", to: [] });
    expect(await new MemoryBackend().sendMessages([a, b])).toBe(2);
    expect(outbox).toHaveLength(2);
    expect(outbox[0]).not.toBe(a);
    expect(outbox[0]).toBeInstanceOf(a.constructor);
    expect((await outbox[0]!.asBytes()).toString()).toBe((await a.asBytes()).toString());
    expect(outbox[1]!.subject).toBe("b");
  });

  it("a message changed after sending does not change what the outbox holds (Django deep-copies)", async () => {
    const msg = new EmailMultiAlternatives({ subject: "before", body: "body", from: "a@example.com", to: ["b@example.com"], headers: { "X-A": "1" }, attachments: [{ filename: "a.bin", content: Buffer.from("abc") }] });
    msg.attachAlternative("<p>before</p>", "text/html");
    const [report] = (await new MemoryBackend().sendMessagesWithReport([msg])).reports;
    const sentBytes = (await outbox[0]!.asBytes()).toString();
    msg.subject = "after";
    msg.to.push("c@example.com");
    msg.headers["X-A"] = "2";
    (msg.attachments[0] as { content: Buffer }).content.write("xyz");
    msg.alternatives[0]!.content = "<p>after</p>";
    msg.attach("b.txt", "more");
    const kept = outbox[0] as EmailMultiAlternatives;
    expect(kept).toBeInstanceOf(EmailMultiAlternatives);
    expect([kept.subject, kept.to, kept.headers, kept.alternatives[0]!.content, kept.attachments.length]).toEqual(["before", ["b@example.com"], { "X-A": "1" }, "<p>before</p>", 1]);
    expect(((kept.attachments[0] as { content: Buffer }).content).toString()).toBe("abc");
    // Byte for byte what was sent, with the Message-ID the report gave.
    expect((await kept.asBytes()).toString()).toBe(sentBytes);
    expect(sentBytes).toContain(`Message-ID: ${report!.messageId}\r\n`);
  });

  it("clearOutbox empties the array in place", async () => {
    const ref = outbox;
    await new MemoryBackend().sendMessages([fixedMessage()]);
    clearOutbox();
    expect(ref).toBe(outbox);
    expect(ref).toHaveLength(0);
  });

  it("renders each message, so a bad header fails as with a real backend (failSilently or not)", async () => {
    const msg = fixedMessage();
    msg.headers["X-Evil"] = "x\r\nBcc: y@example.com";
    await expect(new MemoryBackend({ failSilently: true }).sendMessages([msg])).rejects.toBeInstanceOf(BadHeaderError);
    expect(outbox).toHaveLength(0);
  });

  it("0 for no messages; open() is false; await using closes", async () => {
    const backend = new MemoryBackend();
    expect(await backend.sendMessages([])).toBe(0);
    expect(await backend.open()).toBe(false);
    {
      await using conn = new MemoryBackend();
      await conn.sendMessages([fixedMessage()]);
    }
    expect(outbox).toHaveLength(1);
  });
});

describe("DummyBackend", () => {
  it("counts without doing anything", async () => {
    const backend = new DummyBackend();
    expect(await backend.sendMessages([fixedMessage(), fixedMessage()])).toBe(2);
    expect(await backend.sendMessages([])).toBe(0);
    expect(outbox).toHaveLength(0);
  });

  it("renders each message and discards the bytes, so a bad header fails as with a real backend (failSilently or not)", async () => {
    const msg = fixedMessage();
    msg.headers["X-Evil"] = "x\r\nBcc: y@example.com";
    await expect(new DummyBackend().sendMessages([fixedMessage(), msg])).rejects.toBeInstanceOf(BadHeaderError);
    await expect(new DummyBackend({ failSilently: true }).sendMessages([msg])).rejects.toBeInstanceOf(BadHeaderError);
    const bad = fixedMessage({ headers: { "Message-ID": "<ok@example.com>" } });
    bad.attachFile("/nonexistent/missive-dummy-test.bin");
    await expect(new DummyBackend().sendMessages([bad])).rejects.toThrow(/no such file/);
  });
});
