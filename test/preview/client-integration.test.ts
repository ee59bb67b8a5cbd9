/**
 * The catcher as a real peer for missive's own SMTP client: STARTTLS on the certificate the
 * catcher makes, AUTH, pipelining, BDAT, 8BITMIME and SMTPUTF8; and its faults as the client
 * sees them (refused recipients, a temporary failure, an outcome that is unknown).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { SmtpDeliveryUnknownError, SmtpError, SmtpRecipientsRefusedError } from "../../src/errors.js";
import { EmailMessage, EmailMultiAlternatives } from "../../src/mime/message.js";
import { policies } from "../../src/mime/policy.js";
import { startMailCatcher, type MailCatcher } from "../../src/preview/catcher.js";
import { SmtpClient } from "../../src/smtp/client.js";
import type { TranscriptEntry } from "../../src/smtp/transcript.js";

let catcher: MailCatcher | undefined;
afterEach(async () => {
  await catcher?.close();
  catcher = undefined;
});

function rich(): EmailMultiAlternatives {
  const m = new EmailMultiAlternatives({ subject: "Grüße aus Köln", body: "Hallo!\n", from: { name: "Zoë", address: "zoe@example.org" }, to: ["bob@example.org"], bcc: ["hidden@example.org"] });
  m.attachAlternative('<p>Hallo <img src="cid:logo" alt="logo"></p>', "text/html");
  m.attach({ filename: "logo.png", content: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]), mimetype: "image/png", contentId: "logo" } as never);
  m.attach("data.bin", Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31) & 0xff)), "application/octet-stream");
  return m;
}

describe("missive's SMTP client against the catcher", () => {
  it("STARTTLS (trusting the catcher's certificate), AUTH, pipelining and BDAT; the message arrives whole", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: false, tls: true, auth: { users: { app: "pw" }, required: true } });
    const transcript: TranscriptEntry[] = [];
    const client = new SmtpClient({
      host: "127.0.0.1",
      port: catcher.smtpPort,
      tls: "starttls",
      tlsOptions: { ca: catcher.certificate! },
      auth: { user: "app", pass: "pw" },
      chunking: true,
      chunkSize: 1024,
      transcript: (e) => transcript.push(e),
    });
    await client.connect();
    expect(client.tlsInfo?.authorized).toBe(true);
    expect(client.authenticatedAs).toBe("app");
    const message = rich();
    const bytes = await message.asBytes();
    const result = await client.sendMail({ from: "zoe@example.org", to: message.recipients() }, bytes);
    await client.quit();
    expect(result.accepted).toEqual(["bob@example.org", "hidden@example.org"]);
    const caught = await catcher.waitFor((m) => m.subject === "Grüße aus Köln");
    expect(caught.raw!.equals(bytes)).toBe(true);
    expect(caught.session).toMatchObject({ tls: true, authUser: "app", chunked: true });
    expect(caught.envelope!.to).toEqual(["bob@example.org", "hidden@example.org"]);
    expect(caught.attachments.map((a) => [a.filename, a.size])).toEqual([["logo.png", 8], ["data.bin", 3000]]);
    const lines = transcript.filter((e) => e.direction === "client").map((e) => e.line);
    expect(lines.filter((l) => l.startsWith("BDAT")).length).toBeGreaterThan(1);
    expect(lines).toContain("STARTTLS");
  });

  it("pipelines MAIL, RCPT and DATA, and sends 8BITMIME and SMTPUTF8 when the message needs them", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: false });
    const transcript: TranscriptEntry[] = [];
    const client = new SmtpClient({ host: "127.0.0.1", port: catcher.smtpPort, tls: "none", transcript: (e) => transcript.push(e) });
    await client.connect();
    const message = new EmailMessage({ subject: "ünïcødé", body: "Grüße\n", from: "zoë@exämple.org", to: ["用户@例子.广告"] });
    const prepared = await message.prepare(policies.smtputf8.with({ allow8bit: true }));
    const chunks: Buffer[] = [];
    for await (const c of prepared.stream()) chunks.push(c as Buffer);
    await client.sendMail({ ...message.envelope({ smtputf8: true }), eightBit: prepared.eightBit, smtputf8: prepared.smtputf8 }, Buffer.concat(chunks));
    await client.quit();
    const caught = await catcher.waitFor();
    expect(caught.envelope!.mailParams).toMatchObject({ SMTPUTF8: "" });
    expect(caught.envelope!.to).toEqual(["用户@例子.广告"]);
    expect(caught.subject).toBe("ünïcødé");
    expect(caught.text).toBe("Grüße\n");
    // Pipelined: the client wrote MAIL, RCPT and DATA before reading a reply.
    const sequence = transcript.map((e) => `${e.direction[0]}:${e.line.split(" ")[0]}`);
    const mail = sequence.indexOf("c:MAIL");
    expect(sequence.slice(mail, mail + 3)).toEqual(["c:MAIL", "c:RCPT", "c:DATA"]);
  });

  it("the SMTP backend delivers to it like to any server", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: false, tls: true, auth: true });
    const backend = new SmtpBackend({ host: "127.0.0.1", port: catcher.smtpPort, useTls: true, tlsOptions: { ca: catcher.certificate! }, username: "u", password: "p" });
    expect(await backend.sendMessages([rich(), new EmailMessage({ subject: "second", body: "x", from: "a@example.org", to: ["b@example.org"] })])).toBe(2);
    await backend.close();
    expect(catcher.messages.map((m) => m.subject)).toEqual(["Grüße aus Köln", "second"]);
  });

  it("faults reach the client as the errors a real server would cause", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: false });
    const send = async () => {
      const client = new SmtpClient({ host: "127.0.0.1", port: catcher!.smtpPort, tls: "none", timeouts: { finalDot: 5000 } });
      try {
        await client.connect();
        return await client.sendMail({ from: "a@example.org", to: ["b@example.org", "c@example.org"] }, "Subject: f\r\n\r\nx\r\n");
      } finally {
        client.destroy();
      }
    };
    catcher.failNext({ phase: "rcpt", reply: "550 5.1.1 No such user", times: 2 });
    const refused = await send().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SmtpRecipientsRefusedError);

    catcher.failNext({ phase: "rcpt", reply: "550 5.1.1 No such user" });
    const partial = await send();
    expect(partial.accepted).toEqual(["c@example.org"]);
    expect(partial.rejected.map((r) => [r.address, r.reply.code])).toEqual([["b@example.org", 550]]);
    expect(partial.queueId).toBe(catcher.messages.at(-1)!.id);

    catcher.failNext({ phase: "mail", reply: "451 4.3.0 Try again later" });
    const temporary = (await send().catch((e: unknown) => e)) as SmtpError;
    expect(temporary).toBeInstanceOf(SmtpError);
    expect([temporary.replyCode, temporary.retryable]).toEqual([451, true]);

    catcher.failNext({ phase: "dot", reply: "drop" });
    const unknown = await send().catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(SmtpDeliveryUnknownError);
    // The catcher did get it: exactly what makes a blind resend a duplicate.
    expect(catcher.messages.map((m) => m.envelope!.to)).toEqual([["c@example.org"], ["b@example.org", "c@example.org"]]);
  });

  it("swaks (an independent client: Perl, IO::Socket::SSL) gets through STARTTLS, AUTH LOGIN and pipelining", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: false, tls: true, auth: { users: { ann: "pw" }, required: true } });
    const { stdout } = await promisify(execFile)(
      "swaks",
      ["--server", `127.0.0.1:${catcher.smtpPort}`, "--tls", "--auth", "LOGIN", "--auth-user", "ann", "--auth-password", "pw", "--pipeline",
        "--from", "ann@example.com", "--to", "bob@example.org", "--header", "Subject: from swaks", "--body", "hello"],
      { timeout: 30_000 },
    );
    expect(stdout).toContain("TLS started with cipher");
    const caught = await catcher.waitFor();
    expect([caught.subject, caught.text?.trim(), caught.session?.tls, caught.session?.authUser]).toEqual(["from swaks", "hello", true, "ann"]);
  });
});

