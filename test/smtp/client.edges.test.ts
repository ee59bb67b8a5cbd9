/**
 * The client at the edges its other tests leave open, against the scripted fault server
 * (test/helpers/fake-smtp-server.ts): each reply code a step accepts or refuses, each
 * fallback, and what the client's state, errors and the server's log show afterwards.
 */
import { afterEach, describe, expect, it } from "vitest";
import { recipientReplies, startFakeServer, type FakeServerOptions, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { SmtpClient, type SmtpClientOptions } from "../../src/smtp/client.js";

const servers: FakeSmtpServer[] = [];
const clients: SmtpClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fake(options: FakeServerOptions = {}): Promise<FakeSmtpServer> {
  const server = await startFakeServer(options);
  servers.push(server);
  return server;
}

function clientFor(server: FakeSmtpServer, options: SmtpClientOptions = {}): SmtpClient {
  const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", timeout: 2000, ...options });
  clients.push(client);
  return client;
}

const env = { from: "a@example.org", to: ["b@example.org"] };

describe("recipients", () => {
  it("251 (user not local; will forward) counts as accepted, like 250", async () => {
    const server = await fake({ script: recipientReplies({ "fwd@example.org": "251 2.1.5 User not local; will forward" }) });
    const client = clientFor(server);
    const result = await client.sendMail({ from: "a@example.org", to: ["fwd@example.org", "b@example.org"] }, "x");
    expect(result.accepted).toEqual(["fwd@example.org", "b@example.org"]);
    expect(result.rejected).toEqual([]);
    expect(server.received[0]!.rcptTo).toEqual(["fwd@example.org", "b@example.org"]);
  });
});

describe("STARTTLS", () => {
  it('"opportunistic" without STARTTLS offered goes on in plaintext, without asking for it', async () => {
    const server = await fake();
    const client = clientFor(server, { tls: "opportunistic" });
    await client.connect();
    expect(client.state).toBe("ready");
    expect(client.secure).toBe(false);
    await client.sendMail(env, "x");
    expect(server.commands()).toEqual(["EHLO client.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"]);
  });
});
