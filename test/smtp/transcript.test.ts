/**
 * The transcript on its own: what the hook receives for a command and for each line of a
 * reply, a throwing hook ignored, the diagnostics_channel messages (host, port and the
 * connection's id, only to subscribers), and a connection's events (`smtp.command`,
 * `smtp.reply`) through forConnection.
 */
import diagnosticsChannel from "node:diagnostics_channel";
import { afterEach, describe, expect, it } from "vitest";
import { Transcript, REDACTED, commandChannel, replyChannel, type TranscriptEntry } from "../../src/smtp/transcript.js";
import { parseReply } from "../../src/smtp/reply.js";
import { ConnectionEvents } from "../../src/observe/connection-events.js";
import { channelSink } from "../../src/observe/events.js";
import { EVENT_CHANNEL_NAMES } from "../../src/observe/channels.js";
import { systemClock } from "../../src/observe/clock.js";

const subscriptions: [string, (m: unknown) => void][] = [];

function listen(name: string): unknown[] {
  const seen: unknown[] = [];
  const fn = (m: unknown) => seen.push(m);
  diagnosticsChannel.subscribe(name, fn);
  subscriptions.push([name, fn]);
  return seen;
}

afterEach(() => {
  for (const [name, fn] of subscriptions.splice(0)) diagnosticsChannel.unsubscribe(name, fn);
});

const reply = parseReply("250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");

describe("the hook", () => {
  it("gets each command as shown and each reply line with its code", () => {
    const log: TranscriptEntry[] = [];
    const t = new Transcript((e) => log.push(e), "mx.example.org", 25);
    t.command("EHLO client.test");
    t.reply(reply);
    t.command(`AUTH PLAIN ${REDACTED}`);
    expect(log).toEqual([
      { direction: "client", line: "EHLO client.test" },
      { direction: "server", line: "250-mx.example.org" },
      { direction: "server", line: "250-PIPELINING" },
      { direction: "server", line: "250 SIZE 1000" },
      { direction: "client", line: "AUTH PLAIN <redacted>" },
    ]);
    expect(REDACTED).toBe("<redacted>");
  });

  it("a reply with an enhanced code shows it on every line", () => {
    const log: TranscriptEntry[] = [];
    const t = new Transcript((e) => log.push(e), "h", 25);
    t.reply(parseReply("550-5.1.1 no such user\r\n550 5.1.1 here\r\n", { enhancedStatusCodes: true }));
    expect(log.map((e) => e.line)).toEqual(["550-5.1.1 no such user", "550 5.1.1 here"]);
  });

  it("a hook that throws is ignored, and called again for the next line", () => {
    const lines: string[] = [];
    const t = new Transcript((e) => {
      lines.push(e.line);
      throw new Error("broken logger");
    }, "h", 25);
    expect(() => t.command("NOOP")).not.toThrow();
    expect(() => t.reply(reply)).not.toThrow();
    expect(lines).toEqual(["NOOP", "250-mx.example.org", "250-PIPELINING", "250 SIZE 1000"]);
  });

  it("without a hook nothing is recorded and nothing throws", () => {
    const t = new Transcript(undefined, "h", 25);
    expect(() => {
      t.command("NOOP");
      t.reply(reply);
    }).not.toThrow();
  });
});

describe("diagnostics_channel", () => {
  it("missive:smtp:command and missive:smtp:reply carry host, port and the reply object", () => {
    const commands = listen("missive:smtp:command");
    const replies = listen("missive:smtp:reply");
    const t = new Transcript(undefined, "mx.example.org", 587);
    t.command("NOOP");
    t.reply(reply);
    expect(commands).toEqual([{ host: "mx.example.org", port: 587, connectionId: undefined, command: "NOOP" }]);
    expect(replies).toEqual([{ host: "mx.example.org", port: 587, connectionId: undefined, reply }]);
    expect((replies[0] as { reply: unknown }).reply).toBe(reply);
    expect(commandChannel.name).toBe("missive:smtp:command");
    expect(replyChannel.name).toBe("missive:smtp:reply");
  });

  it("forConnection: the same hook, host and port, and the connection's id on each message", () => {
    const commands = listen("missive:smtp:command");
    const replies = listen("missive:smtp:reply");
    const log: TranscriptEntry[] = [];
    const events = new ConnectionEvents(channelSink, "mx.example.org", 2525, systemClock);
    const t = new Transcript((e) => log.push(e), "mx.example.org", 2525).forConnection(events);
    t.command("RSET");
    t.reply(parseReply("250 ok\r\n"));
    expect(log).toEqual([
      { direction: "client", line: "RSET" },
      { direction: "server", line: "250 ok" },
    ]);
    expect(commands).toEqual([{ host: "mx.example.org", port: 2525, connectionId: events.connectionId, command: "RSET" }]);
    expect(replies).toMatchObject([{ host: "mx.example.org", port: 2525, connectionId: events.connectionId, reply: { code: 250 } }]);
  });
});

describe("a connection's events", () => {
  it("smtp.command and smtp.reply go to the connection given to forConnection, and only there", () => {
    const commandEvents = listen(EVENT_CHANNEL_NAMES["smtp.command"]);
    const replyEvents = listen(EVENT_CHANNEL_NAMES["smtp.reply"]);
    const events = new ConnectionEvents(channelSink, "mx.example.org", 25, systemClock);
    const plain = new Transcript(undefined, "mx.example.org", 25);
    plain.command("NOOP");
    plain.reply(reply);
    expect(commandEvents).toEqual([]);
    expect(replyEvents).toEqual([]);
    const t = plain.forConnection(events);
    t.command("NOOP");
    t.reply(parseReply("250 2.0.0 fine\r\n", { enhancedStatusCodes: true }));
    expect(commandEvents).toMatchObject([{ event: "smtp.command", connectionId: events.connectionId, host: "mx.example.org", port: 25, command: "NOOP" }]);
    expect(replyEvents).toMatchObject([{ event: "smtp.reply", connectionId: events.connectionId, replyCode: 250, enhancedCode: "2.0.0", text: "fine" }]);
  });
});
