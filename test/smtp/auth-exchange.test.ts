/**
 * AUTH over a socket against the scripted fault server: a server that keeps sending 334
 * challenges is answered at most five times (five exactly pass, the sixth is refused), a
 * challenge the mechanism cannot answer or that is not base64 cancels the exchange with
 * "*" (RFC 4954 §4) and leaves the connection in step, and no secret reaches an error or
 * the transcript.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startFakeServer, type FakeServerOptions, type FakeSmtpServer, type Script } from "../helpers/fake-smtp-server.js";
import { SmtpClient, type SmtpClientOptions } from "../../src/smtp/client.js";
import { SmtpAuthError } from "../../src/errors.js";
import type { TranscriptEntry } from "../../src/smtp/transcript.js";
import { rejection } from "../helpers/errors.js";

const servers: FakeSmtpServer[] = [];
const clients: SmtpClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fake(options: FakeServerOptions): Promise<FakeSmtpServer> {
  const server = await startFakeServer(options);
  servers.push(server);
  return server;
}

function clientFor(server: FakeSmtpServer, options: SmtpClientOptions): { client: SmtpClient; log: TranscriptEntry[] } {
  const log: TranscriptEntry[] = [];
  const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", timeout: 3000, transcript: (e) => log.push(e), ...options });
  clients.push(client);
  return { client, log };
}

/** Answers AUTH and every response line with `334 <challenge>` `count` times, then 235; "*" gets 501. */
function challenges(count: number, challenge = ""): Script {
  let sent: number | undefined;
  return {
    onCommand: (cmd) => {
      if (cmd.verb === "AUTH") sent = 0;
      else if (sent === undefined) return undefined;
      else if (cmd.line === "*") {
        sent = undefined;
        return "501 5.7.0 Authentication cancelled";
      }
      if (sent < count) {
        sent += 1;
        return `334 ${challenge}`;
      }
      sent = undefined;
      return "235 2.7.0 Authentication successful";
    },
  };
}

const PASSWORD = "s3cret-pw";
const secrets = [PASSWORD, Buffer.from(`\0joe\0${PASSWORD}`).toString("base64"), Buffer.from(PASSWORD).toString("base64")];

function expectNoSecret(...texts: string[]): void {
  for (const t of texts) for (const s of secrets) expect(t).not.toContain(s);
}

describe("the number of 334 challenges in one AUTH exchange", () => {
  it("five challenges are answered and the exchange succeeds", async () => {
    const server = await fake({ script: challenges(5) });
    const { client, log } = clientFor(server, { auth: { user: "joe", pass: PASSWORD }, authMethod: "PLAIN" });
    await client.connect();
    expect(client.authenticatedAs).toBe("joe");
    expect(server.commands(1).slice(1)).toEqual([`AUTH PLAIN ${secrets[1]}`, "", "", "", "", ""]);
    expect(log.filter((e) => e.direction === "client").map((e) => e.line)).toEqual([
      "EHLO client.test",
      "AUTH PLAIN <redacted>",
      "<redacted>",
      "<redacted>",
      "<redacted>",
      "<redacted>",
      "<redacted>",
    ]);
    expect(log.filter((e) => e.direction === "server" && e.line.startsWith("334")).length).toBe(5);
    // Still in step: a message goes through on the same connection.
    expect((await client.sendMail({ from: "a@example.org", to: ["b@example.org"] }, "hi")).reply.code).toBe(250);
  });

  it("a sixth challenge is refused: the exchange is cancelled with '*' and AUTH fails with SmtpAuthError", async () => {
    const server = await fake({ script: challenges(6) });
    const { client, log } = clientFor(server, { auth: { user: "joe", pass: PASSWORD }, authMethod: "PLAIN" });
    const error = await rejection(client.connect());
    // The client says QUIT after a failed AUTH and closes.
    await server.waitForClosed(1);
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toBe("The server sent more than 5 AUTH PLAIN challenges");
    expect(server.commands(1).slice(1)).toEqual([`AUTH PLAIN ${secrets[1]}`, "", "", "", "", "", "*", "QUIT"]);
    expect(client.authenticatedAs).toBeUndefined();
    expectNoSecret(error.message, JSON.stringify(error), JSON.stringify(log));
  });

  it("LOGIN answering a third challenge is cancelled the same way", async () => {
    const server = await fake({ authMechanisms: ["LOGIN"], script: challenges(3, "TW9yZTo=") });
    const { client, log } = clientFor(server, { auth: { user: "joe", pass: PASSWORD } });
    const error = await rejection(client.connect());
    // The client says QUIT after a failed AUTH and closes.
    await server.waitForClosed(1);
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toBe("The server sent more LOGIN challenges than a user name and a password");
    expect(server.commands(1).slice(1)).toEqual(["AUTH LOGIN", Buffer.from("joe").toString("base64"), secrets[2], "*", "QUIT"]);
    expectNoSecret(error.message, JSON.stringify(error), JSON.stringify(log));
  });
});

describe("a challenge that is not base64", () => {
  it("is not answered: '*' cancels the exchange and AUTH fails with SmtpAuthError", async () => {
    const server = await fake({ authMechanisms: ["CRAM-MD5"], script: challenges(1, "not base64!") });
    const { client, log } = clientFor(server, { auth: { user: "joe", pass: PASSWORD } });
    const error = await rejection(client.connect());
    // The client says QUIT after a failed AUTH and closes.
    await server.waitForClosed(1);
    expect(error).toBeInstanceOf(SmtpAuthError);
    expect(error.message).toBe("The server sent an AUTH challenge that is not base64");
    expect(server.commands(1).slice(1)).toEqual(["AUTH CRAM-MD5", "*", "QUIT"]);
    expectNoSecret(error.message, JSON.stringify(log));
  });
});
