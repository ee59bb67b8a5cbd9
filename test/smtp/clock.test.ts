/**
 * Deadlines run on the injected clock: a test fires a timer instead of waiting for it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { hangOn, startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { SmtpTimeoutError } from "../../src/errors.js";
import { manualClock } from "../helpers/manual-clock.js";
import { rejection } from "../helpers/errors.js";


const servers: FakeSmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("the SMTP client on an injected clock", () => {
  it("the greeting deadline (30 s by default) passes when the clock says so, not after 30 s", async () => {
    const server = await startFakeServer({ greeting: null });
    servers.push(server);
    const clock = manualClock();
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock });
    const pending = rejection(client.connect());
    await until(() => clock.timers.some((t) => t.ms === 30_000));
    clock.timers.find((t) => t.ms === 30_000)!.fire();
    const error = await pending;
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect((error as SmtpTimeoutError).phase).toBe("greeting");
    expect(client.state).toBe("closed");
    expect(clock.timers).toEqual([]);
  });

  it('with timeouts: "rfc5321" the greeting deadline is five minutes, on the clock', async () => {
    const server = await startFakeServer({ greeting: null });
    servers.push(server);
    const clock = manualClock();
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock, timeouts: "rfc5321" });
    const pending = rejection(client.connect());
    await until(() => clock.timers.some((t) => t.ms === 300_000));
    clock.timers.find((t) => t.ms === 300_000)!.fire();
    const error = await pending;
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect((error as SmtpTimeoutError).phase).toBe("greeting");
    expect(clock.timers).toEqual([]);
  });

  it("each pipelined reply gets its own deadline, armed when it becomes the next reply due", async () => {
    const server = await startFakeServer({ script: hangOn("RCPT", { nth: 2 }) });
    servers.push(server);
    const clock = manualClock();
    const replies: string[] = [];
    const client = new SmtpClient({
      host: "127.0.0.1",
      port: server.port,
      localName: "client.test",
      clock,
      timeouts: { command: 1234 },
      transcript: (e) => (e.direction === "server" ? replies.push(e.line) : undefined),
    });
    await client.connect();
    expect(clock.timers).toEqual([]);
    const before = replies.length;
    const pending = rejection(client.sendMail({ from: "a@example.org", to: ["b@example.org", "c@example.org"] }, "x"));
    // MAIL and the first RCPT are answered; the second RCPT's deadline is the one armed.
    await until(() => replies.length === before + 2);
    expect(clock.timers).toHaveLength(1);
    expect(clock.timers.map((t) => t.ms)).toEqual([1234]);
    clock.timers[0]!.fire();
    const error = await pending;
    expect(error).toBeInstanceOf(SmtpTimeoutError);
    expect((error as SmtpTimeoutError).command).toBe("RCPT TO:<c@example.org>");
    expect((error as SmtpTimeoutError).stage).toBe("rcpt");
  });
});
