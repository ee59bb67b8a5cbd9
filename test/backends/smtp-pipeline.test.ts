// A batch over one connection pipelines across messages (RFC 2920 §3.1): each message's
// MAIL, RCPT and DATA follow the previous message's final dot in the same write. What must
// still hold: a reply for every command, matched in order; a failure early in a pipelined
// group fails only the message it belongs to; nothing is delivered that the batch did not
// mean to send, and nothing twice.
import { afterEach, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { SmtpError } from "../../src/errors.js";
import { delay, messageReply, replyOn, startFakeServer, type FakeSmtpServer, type Script } from "../helpers/fake-smtp-server.js";
import { fixedMessage } from "./helpers.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";

isolateEmailEnvironment();

const numbered = (i: number) => fixedMessage({ subject: `m${i}`, to: [`r${i}@example.com`], headers: { "Message-ID": `<m${i}@example.com>` } });
const subjects = (server: FakeSmtpServer) => server.received.map((m) => /^Subject: (.*)$/m.exec(m.data.toString("latin1"))?.[1]);

let fake: FakeSmtpServer | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(...script: Script[]): Promise<FakeSmtpServer> {
  // The first DATA answered late: by then the next messages are surely announced.
  fake = await startFakeServer({ script: [...script, delay("DATA", 100, { nth: 1 })] });
  return fake;
}

/** The client's bytes on connection `conn` up to the server's reply holding `marker`. */
function clientBytesBefore(server: FakeSmtpServer, marker: string, conn = 1): string {
  let out = "";
  for (const entry of server.transcript) {
    if (entry.conn !== conn) continue;
    if (entry.dir === "s" && entry.text.includes(marker)) return out;
    if (entry.dir === "c") out += entry.bytes.toString("latin1");
  }
  throw new Error(`no reply with ${marker}`);
}

describe("SmtpBackend pipelining across messages (fake server)", () => {
  it("sends the next message's MAIL, RCPT and DATA behind the final dot, before its reply, and every reply is matched in order", async () => {
    const server = await start();
    const b = new SmtpBackend({ host: server.host, port: server.port, timeout: 5_000 });
    const { sent, reports } = await b.sendMessagesWithReport([numbered(1), numbered(2), numbered(3)]);
    expect(sent).toBe(3);
    expect(reports.map((r) => [r.status, r.accepted, r.queueId])).toEqual([
      ["sent", ["r1@example.com"], "FAKE1"],
      ["sent", ["r2@example.com"], "FAKE2"],
      ["sent", ["r3@example.com"], "FAKE3"],
    ]);
    expect(server.connections).toBe(1);
    expect(subjects(server)).toEqual(["m1", "m2", "m3"]);
    // Before the server confirmed message 1, the client had already sent message 2's commands.
    const before = clientBytesBefore(server, "queued as FAKE1");
    expect(before).toMatch(/\r\n\.\r\nMAIL FROM:<ann@example\.com>[^\r]*\r\nRCPT TO:<r2@example\.com>\r\nDATA\r\n$/);
    expect(server.commands().map((c) => c.split(" ")[0])).toEqual(["EHLO", ...Array(3).fill(["MAIL", "RCPT", "DATA"]).flat(), "QUIT"]);
  });

  it("a refusal early in a pipelined group (message 2's MAIL, sent behind message 1's dot) fails only message 2", async () => {
    const server = await start(replyOn("MAIL", "452 4.3.1 Insufficient system storage", { nth: 2 }));
    const b = new SmtpBackend({ host: server.host, port: server.port, timeout: 5_000, failSilently: true });
    const { sent, reports } = await b.sendMessagesWithReport([numbered(1), numbered(2), numbered(3)]);
    expect(sent).toBe(2);
    expect(reports.map((r) => r.status)).toEqual(["sent", "failed", "sent"]);
    expect(reports[1]!.reply).toEqual({ code: 452, enhancedCode: "4.3.1", text: "Insufficient system storage" });
    expect(reports[1]!.error).toMatchObject({ stage: "mail", bodySent: false });
    expect(subjects(server)).toEqual(["m1", "m3"]);
    expect(server.connections).toBe(1);
    // Message 2's MAIL did go behind message 1's dot; its refusal did not touch message 1's reply.
    expect(clientBytesBefore(server, "queued as FAKE1")).toContain("RCPT TO:<r2@example.com>");
    expect(reports[0]!.queueId).toBe("FAKE1");
  });

  it("every recipient of the pipelined message refused: only that message fails, the next goes on the same connection", async () => {
    const server = await start(replyOn("RCPT", "550 5.1.1 No such user", { nth: 2 }));
    const b = new SmtpBackend({ host: server.host, port: server.port, timeout: 5_000, failSilently: true });
    const { reports } = await b.sendMessagesWithReport([numbered(1), numbered(2), numbered(3)]);
    expect(reports.map((r) => r.status)).toEqual(["sent", "failed", "sent"]);
    expect(reports[1]!.rejected).toEqual([{ address: "r2@example.com", code: 550, enhancedCode: "5.1.1", text: "No such user" }]);
    expect(subjects(server)).toEqual(["m1", "m3"]);
    expect(server.connections).toBe(1);
  });

  it("message 1 refused at its final dot: message 2, pipelined behind it, is still sent", async () => {
    let n = 0;
    const server = await start({ onMessage: () => (++n === 1 ? "554 5.7.1 Rejected" : undefined) });
    const b = new SmtpBackend({ host: server.host, port: server.port, timeout: 5_000, failSilently: true });
    const { reports } = await b.sendMessagesWithReport([numbered(1), numbered(2)]);
    expect(reports.map((r) => [r.status, r.reply?.code])).toEqual([
      ["failed", 554],
      ["sent", 250],
    ]);
    expect(server.connections).toBe(1);
  });

  it("without failSilently a refused message stops the batch: the message pipelined behind it is never delivered", async () => {
    const server = await start(messageReply("554 5.7.1 No"));
    const b = new SmtpBackend({ host: server.host, port: server.port, timeout: 5_000 });
    await expect(b.sendMessages([numbered(1), numbered(2), numbered(3)])).rejects.toBeInstanceOf(SmtpError);
    // Its MAIL, RCPT and DATA had gone out; the client dropped the connection rather than send its body.
    expect(clientBytesBefore(server, "554 5.7.1 No")).toContain("RCPT TO:<r2@example.com>");
    expect(subjects(server)).toEqual(["m1"]);
    expect(b.reports.map((r) => r.status)).toEqual([]);
    await server.waitForClosed(1);
  });

  it("an open backend after a stopped batch: the connection the withdrawn message had begun on is not reused", async () => {
    let n = 0;
    const server = await start({ onMessage: () => (++n === 1 ? "554 5.7.1 No" : undefined) });
    const b = new SmtpBackend({ host: server.host, port: server.port, timeout: 5_000 });
    await b.open();
    await expect(b.sendMessages([numbered(1), numbered(2)])).rejects.toBeInstanceOf(SmtpError);
    expect(await b.sendMessages([numbered(3), numbered(4)])).toBe(2);
    await b.close();
    // m1 reached the server and was refused; m2 never did.
    expect(subjects(server)).toEqual(["m1", "m3", "m4"]);
    expect(server.received.map((m) => m.conn)).toEqual([1, 2, 2]);
  });

  it("the connection drops after message 1's dot: message 1 is unknown, message 2 goes once over a new connection", async () => {
    const server = await start({ onMessage: (_msg, s) => (s.id === 1 && s.count("MAIL") === 1 ? { reply: null, then: "destroy" } : undefined) });
    const b = new SmtpBackend({ host: server.host, port: server.port, timeout: 5_000, failSilently: true });
    const { reports } = await b.sendMessagesWithReport([numbered(1), numbered(2), numbered(3)]);
    expect(reports.map((r) => r.status)).toEqual(["unknown", "sent", "sent"]);
    expect(server.connections).toBe(2);
    expect(subjects(server)).toEqual(["m1", "m2", "m3"]);
    expect(server.received.map((m) => m.conn)).toEqual([1, 2, 2]);
  });
});
