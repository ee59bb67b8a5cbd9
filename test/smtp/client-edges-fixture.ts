/**
 * What the client edge tests share: the scripted fault server and clients made through
 * `fake` and `clientFor` are stopped after each test of the importing file (the hook is
 * registered when this module loads, in that file's collection), an envelope, a clock
 * whose timers fire only when told (test/helpers/manual-clock.ts), a bounded wait, and a
 * reply the server holds back until the test releases it.
 */
import { afterEach, vi } from "vitest";
import { startFakeServer, type FakeServerOptions, type FakeSmtpServer, type ReplyAction, type Script } from "../helpers/fake-smtp-server.js";
import { SmtpClient, type SmtpClientOptions } from "../../src/smtp/client.js";
export { manualClock } from "../helpers/manual-clock.js";

const servers: FakeSmtpServer[] = [];
const clients: SmtpClient[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

export async function fake(options: FakeServerOptions = {}): Promise<FakeSmtpServer> {
  const server = await startFakeServer(options);
  servers.push(server);
  return server;
}

export function clientFor(server: FakeSmtpServer, options: SmtpClientOptions = {}): SmtpClient {
  const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", timeout: 2000, ...options });
  clients.push(client);
  return client;
}

/** A client made by the test itself, destroyed after it like those from `clientFor`. */
export function track(client: SmtpClient): SmtpClient {
  clients.push(client);
  return client;
}

export const env = { from: "a@example.org", to: ["b@example.org"] };


export async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Drops the first connection right after its final dot; later ones get the default reply. */
export function dropAfterDotOnce(): Script {
  return { onMessage: (msg) => (msg.conn === 1 ? { reply: null, then: "destroy" } : undefined) };
}

/** A reply the server holds back until `release()` is called. */
export function gate(): { held: Promise<ReplyAction | undefined>; release: () => void } {
  let release!: () => void;
  const held = new Promise<ReplyAction | undefined>((resolve) => (release = () => resolve(undefined)));
  return { held, release };
}

/** Lets pending timers and socket reads run, so anything that was going to settle has. */
export const settle = () => new Promise((resolve) => setTimeout(resolve, 30));
