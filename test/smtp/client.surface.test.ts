/**
 * The client's public surface, against the scripted fault server: the resolved config it
 * exposes, `Symbol.asyncDispose`, the stage NOOP and RSET failures carry, what destroy()
 * tells a connect it interrupts, and when [DATA_WRITTEN] resolves while work is under way.
 */
import { describe, expect, it } from "vitest";
import { replyOn } from "../helpers/fake-smtp-server.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { DATA_WRITTEN } from "../../src/smtp/pipeline.js";
import { SmtpClosedError, SmtpError } from "../../src/errors.js";
import { rejection } from "../helpers/errors.js";
import { fake, clientFor, env, until, track, gate, settle } from "./client-edges-fixture.js";

describe("the resolved config", () => {
  it("is what the client connects with, and a second client made from it reaches the same server", async () => {
    const server = await fake();
    const client = clientFor(server, { timeouts: { finalDot: 1234 } });
    expect(client.config.host).toBe("127.0.0.1");
    expect(client.config.port).toBe(server.port);
    expect(client.config.localName).toBe("client.test");
    expect(client.config.timeouts.finalDot).toBe(1234);
    expect(client.config.timeouts).toEqual(client.timeouts);
    const again = track(new SmtpClient(client.config));
    await again.sendMail(env, "x");
    expect(server.commands(1)[0]).toBe("EHLO client.test");
    expect(server.received).toHaveLength(1);
  });
});

describe("Symbol.asyncDispose", () => {
  it("says QUIT and closes, like close()", async () => {
    const server = await fake();
    const client = clientFor(server);
    await client.connect();
    await client[Symbol.asyncDispose]();
    expect(server.commands().at(-1)).toBe("QUIT");
    expect(client.state).toBe("closed");
  });
});

describe("NOOP and RSET refused", () => {
  it("the refusal carries the stage of the command, and the client stays ready", async () => {
    const server = await fake({ script: [replyOn("NOOP", "502 5.5.1 no NOOP here"), replyOn("RSET", "502 5.5.1 no RSET here")] });
    const client = clientFor(server);
    await client.connect();
    const noop = (await rejection(client.noop())) as SmtpError;
    expect(noop).toBeInstanceOf(SmtpError);
    expect([noop.replyCode, noop.stage, noop.bodySent]).toEqual([502, "noop", false]);
    const rset = (await rejection(client.reset())) as SmtpError;
    expect([rset.replyCode, rset.stage, rset.bodySent]).toEqual([502, "rset", false]);
    expect(client.state).toBe("ready");
    await client.sendMail(env, "still usable");
    expect(server.received).toHaveLength(1);
  });
});

describe("destroy() during connect", () => {
  it("the SmtpClosedError names the server the client was connecting to", async () => {
    const server = await fake({ greeting: null });
    const client = clientFor(server);
    const connecting = rejection(client.connect());
    await until(() => server.connections === 1);
    client.destroy();
    const error = await connecting;
    expect(error).toBeInstanceOf(SmtpClosedError);
    expect(error.message).toBe(`The client was destroyed while connecting to 127.0.0.1:${server.port}`);
  });
});

describe("[DATA_WRITTEN] while work is under way", () => {
  it("waits for an operation in progress that writes no message, and resolves when it ends", async () => {
    const noopReply = gate();
    const server = await fake({ script: { onCommand: (cmd) => (cmd.verb === "NOOP" ? noopReply.held : undefined) } });
    const client = clientFor(server);
    await client.connect();
    const noop = client.noop();
    let resolved = false;
    const written = client[DATA_WRITTEN]().then(() => (resolved = true));
    await until(() => server.commands().includes("NOOP"));
    await settle();
    expect(resolved).toBe(false);
    noopReply.release();
    await noop;
    await written;
    expect(resolved).toBe(true);
  });

  it("resolves when a message's final dot is written, before the server answers it", async () => {
    const dotReply = gate();
    const server = await fake({ script: { onMessage: () => dotReply.held } });
    const client = clientFor(server);
    await client.connect();
    let resolved = false;
    const sending = client.sendMail(env, "one");
    const written = client[DATA_WRITTEN]().then(() => (resolved = true));
    await written;
    expect(resolved).toBe(true);
    dotReply.release();
    expect((await sending).reply.code).toBe(250);
  });
});
