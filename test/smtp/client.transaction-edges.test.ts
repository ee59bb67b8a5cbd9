/**
 * The client's mail transaction at its edges, against the scripted fault server: each reply
 * code MAIL, RCPT, DATA, BDAT and the final dot accept or refuse, NOOP, RSET and QUIT, and
 * the client's state and outcomes while a transaction runs.
 */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { dropOn, hangOn, messageReply, recipientReplies, replyOn, type FakeSession } from "../helpers/fake-smtp-server.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { ANNOUNCE } from "../../src/smtp/pipeline.js";
import { InvalidArgumentError, SmtpClosedError, SmtpConnectError, SmtpDeliveryUnknownError, SmtpError } from "../../src/errors.js";
import type { TranscriptEntry } from "../../src/smtp/transcript.js";
import { rejection } from "../helpers/errors.js";
import { fake, clientFor, env, manualClock, until, dropAfterDotOnce, track } from "./client-edges-fixture.js";

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

describe("the transaction", () => {
  it("DATA refused (one command at a time): the body is withheld, RSET, still ready", async () => {
    const server = await fake({ ehlo: ["8BITMIME"], script: replyOn("DATA", "554 5.5.1 no valid recipients") });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error).toBeInstanceOf(SmtpError);
    expect(error.message).toBe("DATA was refused: 554 5.5.1 no valid recipients");
    expect(error.stage).toBe("data");
    expect(error.bodySent).toBe(false);
    expect(server.commands()).toEqual(["EHLO client.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA", "RSET"]);
    expect(server.received).toHaveLength(0);
    expect(client.state).toBe("ready");
    await client.sendMail(env, "y");
    expect(server.received).toHaveLength(1);
  });

  it("DATA refused (pipelined): the same, RSET after the group", async () => {
    const server = await fake({ script: replyOn("DATA", "451 4.3.0 try later") });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error.message).toBe("DATA was refused: 451 try later");
    expect(error.retryable).toBe(true);
    expect(server.commands().slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA", "RSET"]);
    expect(client.state).toBe("ready");
  });

  it("MAIL refused one command at a time: no RCPT is sent", async () => {
    const server = await fake({ ehlo: ["8BITMIME"], script: replyOn("MAIL", "553 5.1.8 no") });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error.message).toBe("MAIL FROM was refused: 553 5.1.8 no");
    expect(error.stage).toBe("mail");
    expect(server.commands().slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RSET"]);
    expect(client.state).toBe("ready");
  });

  it("a refusal whose RSET fails too: the connection is dropped", async () => {
    const server = await fake({ ehlo: ["8BITMIME"], script: [replyOn("MAIL", "553 5.1.8 no"), replyOn("RSET", "500 5.5.1 what")] });
    const client = clientFor(server);
    await rejection(client.sendMail(env, "x"));
    expect(client.state).toBe("closed");
    await server.waitForClosed(1);
  });

  it("a refused BDAT chunk before the last: the rest is withheld, RSET, still ready", async () => {
    const server = await fake({ ehlo: ["CHUNKING", "PIPELINING"], script: replyOn("BDAT", "552 5.3.4 too much") });
    const client = clientFor(server, { chunking: true, chunkSize: 1024 });
    const body = Buffer.alloc(3000, "a");
    const error = (await rejection(client.sendMail(env, body))) as SmtpError;
    expect(error.message).toBe("BDAT 1024 was refused: 552 5.3.4 too much");
    expect(error.stage).toBe("body");
    expect(error.bodySent).toBe(true);
    expect(server.commands().filter((c) => c.startsWith("BDAT"))).toEqual(["BDAT 1024"]);
    expect(server.commands().at(-1)).toBe("RSET");
    expect(server.received).toHaveLength(0);
    expect(client.state).toBe("ready");
  });

  it("BDAT: every chunk but the last is answered before the next goes; the last carries LAST", async () => {
    const server = await fake({ ehlo: ["CHUNKING"] });
    const client = clientFor(server, { chunking: true, chunkSize: 1024 });
    const body = Buffer.alloc(2500, "b");
    const result = await client.sendMail(env, body);
    expect(result.reply.code).toBe(250);
    expect(server.commands().filter((c) => c.startsWith("BDAT"))).toEqual(["BDAT 1024", "BDAT 1024", "BDAT 454 LAST"]);
    expect(server.received[0]!.via).toBe("BDAT");
  });

  it("a body stream that fails during BDAT: the connection is dropped, nothing delivered", async () => {
    const server = await fake({ ehlo: ["CHUNKING"] });
    const client = clientFor(server, { chunking: true, chunkSize: 1024 });
    const body = new Readable({
      read() {
        this.push(Buffer.alloc(2048, "c"));
        this.destroy(new SmtpConnectError("disk gone"));
      },
    });
    const error = await rejection(client.sendMail(env, body));
    expect(error.message).toBe("disk gone");
    expect((error as SmtpError).stage).toBe("body");
    expect(client.state).toBe("closed");
    expect(server.received).toHaveLength(0);
  });

  it("the server's queue id is in the result when its reply names one, absent when not", async () => {
    const named = await fake({ script: messageReply("250 2.0.0 Ok: queued as 4Xk9Lz1BqQ") });
    expect((await clientFor(named).sendMail(env, "x")).queueId).toBe("4Xk9Lz1BqQ");
    const plain = await fake({ script: messageReply("250 2.0.0 Ok") });
    const result = await clientFor(plain).sendMail(env, "x");
    expect("queueId" in result).toBe(false);
    expect(result).toEqual({ accepted: ["b@example.org"], rejected: [], reply: expect.objectContaining({ code: 250 }) });
  });

  it("a 4xx after the final dot: refused (retryable), RSET, ready", async () => {
    const server = await fake({ script: messageReply("451 4.3.0 queue full") });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error.message).toBe("127.0.0.1 refused the message: 451 queue full");
    expect(error.stage).toBe("final-dot");
    expect(error.bodySent).toBe(true);
    expect(error.retryable).toBe(true);
    expect(server.commands().at(-1)).toBe("RSET");
    expect(client.state).toBe("ready");
  });
});

describe("NOOP, RSET, QUIT", () => {
  it("before connect(): InvalidArgumentError naming the state", async () => {
    const server = await fake();
    const client = clientFor(server);
    for (const call of [() => client.noop(), () => client.reset()]) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toBe('The client is not connected (state "idle"); call connect() first');
    }
    expect(server.connections).toBe(0);
  });

  it("after the server hung up: SmtpClosedError naming why, with the stage of the call", async () => {
    const server = await fake({ script: dropOn("NOOP") });
    const client = clientFor(server);
    await client.connect();
    await rejection(client.noop());
    const error = (await rejection(client.reset())) as SmtpClosedError;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.message).toMatch(new RegExp(`^The connection to 127\\.0\\.0\\.1:${server.port} is closed \\(.+\\); call connect\\(\\) again$`));
    expect(error.stage).toBe("rset");
    expect(error.retryable).toBe(true);
  });

  it("RSET and NOOP answer with the server's reply", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    expect((await client.reset()).code).toBe(250);
    expect((await client.noop()).code).toBe(250);
    expect(server.commands().slice(1)).toEqual(["RSET", "NOOP"]);
  });

  it("quit() to a server that never answers QUIT still closes", async () => {
    const server = await fake({ script: hangOn("QUIT") });
    const client = clientFor(server, { timeout: 200 });
    await client.connect();
    await client.quit();
    expect(client.state).toBe("closed");
    expect(server.commands().at(-1)).toBe("QUIT");
  });
});

describe("state and outcomes during a transaction", () => {
  it("client.state names the phase each command goes out in", async () => {
    const seen: string[] = [];
    const server = await fake({ ehlo: ["8BITMIME"] });
    let client: SmtpClient | undefined;
    client = clientFor(server, {
      transcript: (entry) => {
        if (entry.direction === "client") seen.push(`${entry.line.split(" ")[0]} ${client!.state}`);
      },
    });
    await client.sendMail({ from: "a@example.org", to: ["b@example.org", "c@example.org"] }, "x");
    expect(client.state).toBe("ready");
    expect(seen).toEqual(["EHLO greeting", "MAIL mail", "RCPT rcpt", "RCPT rcpt", "DATA rcpt", ". data"]);
  });

  it("connect() while a message is under way (at MAIL, RCPT, DATA and the final dot) changes nothing", async () => {
    for (const verb of ["MAIL", "RCPT", "DATA", "."]) {
      let arrived!: () => void;
      const here = new Promise<void>((resolve) => (arrived = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const hold = async () => {
        arrived();
        await gate;
        return undefined;
      };
      const server = await fake({
        ehlo: ["8BITMIME"],
        script: verb === "." ? { onMessage: hold } : { onCommand: (cmd) => (cmd.verb === verb ? hold() : undefined) },
      });
      const client = clientFor(server);
      await client.connect();
      const sent = client.sendMail(env, "x");
      await here;
      await client.connect();
      release();
      expect((await sent).reply.code).toBe(250);
      expect(server.connections).toBe(1);
    }
  });

  it("a 421 after the final dot: the server is closing and did not take it (retryable), not unknown", async () => {
    const server = await fake({ script: messageReply({ reply: "421 4.3.2 shutting down", then: "close" }) });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error).not.toBeInstanceOf(SmtpDeliveryUnknownError);
    expect(error.replyCode).toBe(421);
    expect(error.retryable).toBe(true);
    expect(error.stage).toBe("final-dot");
    expect(error.bodySent).toBe(true);
    expect(client.state).toBe("closed");
  });

  it("bodySent of a message that failed does not leak into the next connect's errors", async () => {
    let n = 0;
    const server = await fake({ greeting: () => (++n === 1 ? undefined : "554 5.3.2 not now"), script: dropAfterDotOnce() });
    const client = clientFor(server);
    const first = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(first).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect(first.bodySent).toBe(true);
    expect(first.command).toBe("<end of data>");
    expect(first.message).toMatch(/^The message was sent but 127\.0\.0\.1 did not confirm it \(.+\); it may or may not have been delivered, so do not resend it blindly$/);
    const second = (await rejection(client.connect())) as SmtpError;
    expect(second.stage).toBe("greeting");
    expect(second.bodySent).toBe(false);
  });

  it("a body that fails after an empty chunk: no byte has left, bodySent is false", async () => {
    const server = await fake({ ehlo: ["8BITMIME"] });
    const client = clientFor(server);
    async function* body(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(0);
      throw new SmtpConnectError("source gone");
    }
    const error = (await rejection(client.sendMail(env, body()))) as SmtpError;
    expect(error.message).toBe("source gone");
    expect(error.stage).toBe("body");
    expect(error.bodySent).toBe(false);
    expect(client.state).toBe("closed");
  });

  it("MAIL refused in a pipelined group whose DATA got 354 anyway: '.' ends it, then RSET", async () => {
    const server = await fake({ script: [replyOn("MAIL", "553 5.1.8 no"), replyOn("DATA", "354 go ahead")] });
    const log: TranscriptEntry[] = [];
    const client = clientFor(server, { transcript: (e) => log.push(e) });
    const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
    expect(error.message).toBe("MAIL FROM was refused: 553 no");
    expect(server.commands().slice(1)).toEqual(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA", "RSET"]);
    expect(server.clientBytes().toString("latin1")).toContain("DATA\r\n.\r\nRSET\r\n");
    expect(log.filter((e) => e.direction === "client").map((e) => e.line).slice(-2)).toEqual([".", "RSET"]);
    expect(client.state).toBe("ready");
  });
});

describe("more of the transaction", () => {
  it("BDAT only when asked for and offered: offered but not asked, DATA", async () => {
    const server = await fake({ ehlo: ["CHUNKING", "PIPELINING"] });
    await clientFor(server).sendMail(env, "x");
    expect(server.received[0]!.via).toBe("DATA");
  });

  it("an envelope the server cannot take fails at stage mail, before MAIL FROM", async () => {
    const server = await fake({ sizeLimit: 100 });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail({ ...env, size: 1000 }, "x"))) as SmtpError;
    expect(error.stage).toBe("mail");
    expect(error.bodySent).toBe(false);
    expect(server.commands()).toEqual(["EHLO client.test"]);
  });

  it("the connection dropped at RCPT: stage rcpt, one command at a time and pipelined", async () => {
    for (const ehlo of [["8BITMIME"], ["PIPELINING"]]) {
      const server = await fake({ ehlo, batchReplies: false, script: dropOn("RCPT") });
      const client = clientFor(server);
      const error = (await rejection(client.sendMail(env, "x"))) as SmtpError;
      expect(error).toBeInstanceOf(SmtpClosedError);
      expect(error.stage).toBe("rcpt");
    }
  });

  it("every recipient refused: the error names the first RCPT", async () => {
    const server = await fake({ script: recipientReplies({ "b@example.org": "550 5.1.1 no", "c@example.org": "550 5.1.1 no" }) });
    const client = clientFor(server);
    const error = (await rejection(client.sendMail({ from: "a@example.org", to: ["b@example.org", "c@example.org"] }, "x"))) as SmtpError;
    expect(error.code).toBe("ERCPT_REFUSED");
    expect(error.command).toBe("RCPT TO:<b@example.org>");
  });

  it("client.state is data while BDAT chunks go", async () => {
    const seen: string[] = [];
    const server = await fake({ ehlo: ["CHUNKING"] });
    let client: SmtpClient | undefined;
    client = clientFor(server, {
      chunking: true,
      chunkSize: 1024,
      transcript: (entry) => {
        if (entry.direction === "client" && entry.line.startsWith("BDAT")) seen.push(`${entry.line} ${client!.state}`);
      },
    });
    await client.sendMail(env, Buffer.alloc(1500, "d"));
    expect(seen).toEqual(["BDAT 1024 data", "BDAT 478 LAST data"]);
  });

  it("after a message refused at its end, the RSET goes out in state rcpt, then the client is ready", async () => {
    const seen: string[] = [];
    const server = await fake({ script: messageReply("554 5.7.1 spam") });
    let client: SmtpClient | undefined;
    client = clientFor(server, {
      transcript: (entry) => {
        if (entry.direction === "client" && entry.line === "RSET") seen.push(client!.state);
      },
    });
    await rejection(client.sendMail(env, "x"));
    expect(seen).toEqual(["rcpt"]);
    expect(client.state).toBe("ready");
  });

  it("a 421 while the body is read: the failure, at stage body; no final dot, no BDAT LAST", async () => {
    for (const chunking of [false, true]) {
      const verb = chunking ? "BDAT" : "DATA";
      let session: FakeSession | undefined;
      const server = await fake({
        ehlo: chunking ? ["CHUNKING"] : ["8BITMIME"],
        script: {
          onCommand: (cmd, s) => {
            if (cmd.verb === verb && s.count(verb) === 1) session = s;
            return undefined;
          },
        },
      });
      const client = clientFor(server, { chunking, chunkSize: 1024 });
      // DATA: the whole body is encoded before the server's 421 is read; BDAT: the first
      // chunk is answered, and the second (its last) is due after the 421. The 421 goes
      // when the client asks for more of the body, so after DATA's 354 or the first
      // chunk's 250 whatever the machine's load.
      async function* body(): AsyncGenerator<Uint8Array> {
        yield Buffer.alloc(chunking ? 2048 : 1024, "e");
        session!.send("421 4.3.2 shutting down");
        session!.close();
        await until(() => client.state === "closed");
      }
      const error = (await rejection(client.sendMail(env, body()))) as SmtpError;
      expect(error).not.toBeInstanceOf(SmtpDeliveryUnknownError);
      expect(error.replyCode).toBe(421);
      expect(error.stage).toBe("body");
      expect(server.commands().filter((c) => c.includes("LAST"))).toEqual([]);
      expect(server.received).toHaveLength(0);
    }
  });

  it("a BDAT chunk never answered: the command deadline (phase command) on the clock", async () => {
    const server = await fake({ ehlo: ["CHUNKING"], script: hangOn("BDAT") });
    const clock = manualClock();
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock, chunking: true, chunkSize: 1024 });
    track(client);
    await client.connect();
    const sent = rejection(client.sendMail(env, Buffer.alloc(3000, "f")));
    // MAIL's and RCPT's deadlines are cleared by their replies, before the first chunk goes
    await until(() => server.commands().includes("BDAT 1024") && clock.timers.length === 1);
    expect(clock.timers.map((t) => t.ms)).toEqual([60_000]);
    clock.timers[0]!.fire();
    const error = (await sent) as SmtpError & { phase?: string };
    expect(error.phase).toBe("command");
    expect(error.stage).toBe("body");
  });

  it("no reply to the final dot: the final-dot deadline (5 min) on the clock, outcome unknown", async () => {
    const server = await fake({ script: { onMessage: () => ({ reply: null, then: "hang" }) } });
    const clock = manualClock();
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", clock });
    track(client);
    await client.connect();
    const sent = rejection(client.sendMail(env, "x"));
    await until(() => clock.timers.some((t) => t.ms === 300_000));
    clock.timers.find((t) => t.ms === 300_000)!.fire();
    const error = (await sent) as SmtpDeliveryUnknownError;
    expect(error).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect((error.cause as SmtpError & { phase?: string }).phase).toBe("final-dot");
  });

  it("an announcement made between messages is written behind the next dot, not at once", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.sendMail(env, "one");
    const announcement = client[ANNOUNCE]({ from: "a@example.org", to: ["c@example.org"] });
    announcement.withdraw();
    expect(client.state).toBe("ready");
    await client.noop();
    expect(server.commands().filter((c) => c.startsWith("MAIL"))).toHaveLength(1);
  });
});
