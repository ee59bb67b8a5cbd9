import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import {
  delay,
  dropAfterDot,
  dropOn,
  hangOn,
  messageReply,
  multiline,
  noReplyToDot,
  recipientReplies,
  refuseStartTls,
  shutdownOn,
  startFakeServer,
  trickle,
  type FakeServerOptions,
  type FakeSmtpServer,
} from "../helpers/fake-smtp-server.js";
import { RawSmtp } from "../helpers/raw-smtp.js";

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");

let certs: TestCerts;
let servers: FakeSmtpServer[] = [];
const clients: RawSmtp[] = [];

async function serve(opts: FakeServerOptions = {}): Promise<FakeSmtpServer> {
  const s = await startFakeServer(opts);
  servers.push(s);
  return s;
}
async function dial(server: FakeSmtpServer, tls = false): Promise<RawSmtp> {
  const c = await RawSmtp.connect({ port: server.port, ...(tls ? { tls: { ca: certs.ca } } : {}) });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  certs = await makeTestCerts();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
afterAll(async () => {
  await certs?.cleanup();
});

describe("fake SMTP server: defaults", () => {
  it("greets, advertises the default ESMTP capabilities, takes a message and records exact bytes", async () => {
    const server = await serve();
    const c = await dial(server);
    expect((await c.reply()).lines).toEqual(["220 fake.missive.test ESMTP ready"]);
    const ehlo = await c.command("EHLO client.test");
    expect(ehlo.lines).toEqual([
      "250-fake.missive.test",
      "250-PIPELINING",
      "250-8BITMIME",
      "250-SIZE 10485760",
      "250-ENHANCEDSTATUSCODES",
      "250 AUTH PLAIN LOGIN",
    ]);
    expect((await c.command("MAIL FROM:<a@example.com> BODY=8BITMIME")).lines).toEqual(["250 2.1.0 Ok"]);
    expect((await c.command("RCPT TO:<b@example.com>")).code).toBe(250);
    expect((await c.command("DATA")).code).toBe(354);
    c.write("Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n");
    expect((await c.reply()).lines[0]).toMatch(/^250 2\.0\.0 Ok: queued as FAKE1$/);
    expect((await c.command("QUIT")).code).toBe(221);
    await c.waitClosed();

    const [m] = await server.waitForMessages(1);
    expect(m!.mailFrom).toBe("a@example.com");
    expect(m!.mailParams).toEqual(["BODY=8BITMIME"]);
    expect(m!.rcptTo).toEqual(["b@example.com"]);
    expect(m!.raw.toString()).toBe("Subject: x\r\n\r\n..dot\r\nend\r\n");
    expect(m!.data.toString()).toBe("Subject: x\r\n\r\n.dot\r\nend\r\n");
    expect(m!.via).toBe("DATA");
    expect(server.commands()).toEqual(["EHLO client.test", "MAIL FROM:<a@example.com> BODY=8BITMIME", "RCPT TO:<b@example.com>", "DATA", "QUIT"]);
    expect(server.clientBytes().toString()).toBe(
      "EHLO client.test\r\nMAIL FROM:<a@example.com> BODY=8BITMIME\r\nRCPT TO:<b@example.com>\r\nDATA\r\n" +
        "Subject: x\r\n\r\n..dot\r\nend\r\n.\r\nQUIT\r\n",
    );
    expect(server.connections).toBe(1);
    await server.waitForClosed(1);
  });

  it("answers pipelined commands in one write, and reads DATA that follows 354 in the same packet", async () => {
    const server = await serve();
    const c = await dial(server);
    await c.reply();
    await c.command("EHLO x");
    c.write("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nRCPT TO:<c@x.org>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nNOOP\r\n");
    const replies = [await c.reply(), await c.reply(), await c.reply(), await c.reply(), await c.reply(), await c.reply()];
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 354, 250, 250]);
    const serverWrites = server.transcript.filter((e) => e.dir === "s");
    // greeting, EHLO, then one write holding all six replies
    expect(serverWrites).toHaveLength(3);
    expect(serverWrites[2]!.text.split("\r\n").filter(Boolean)).toHaveLength(6);
    expect(server.received[0]!.data.toString()).toBe("Subject: p\r\n\r\nbody\r\n");
    expect(server.received[0]!.rcptTo).toEqual(["b@x.org", "c@x.org"]);
  });

  it("sequence errors, RSET, HELO, unknown commands, empty message", async () => {
    const server = await serve();
    const c = await dial(server);
    await c.reply();
    expect((await c.command("MAIL FROM:<a@x.org>")).code).toBe(503);
    expect((await c.command("HELO me")).lines).toEqual(["250 fake.missive.test"]);
    expect((await c.command("DATA")).code).toBe(503);
    expect((await c.command("MAIL FROM:<a@x.org>")).code).toBe(250);
    expect((await c.command("MAIL FROM:<a@x.org>")).code).toBe(503);
    expect((await c.command("DATA")).code).toBe(554);
    expect((await c.command("RSET")).code).toBe(250);
    expect((await c.command("RCPT TO:<b@x.org>")).code).toBe(503);
    expect((await c.command("XYZZY")).code).toBe(502);
    expect((await c.command("MAIL FROM:<>")).code).toBe(250);
    expect((await c.command("RCPT TO:<b@x.org>")).code).toBe(250);
    expect((await c.command("DATA")).code).toBe(354);
    c.write(".\r\n");
    expect((await c.reply()).code).toBe(250);
    expect(server.received[0]!.data.length).toBe(0);
    expect(server.received[0]!.mailFrom).toBe("");
  });

  it("SIZE is enforced on MAIL FROM", async () => {
    const server = await serve({ sizeLimit: 1000 });
    const c = await dial(server);
    await c.reply();
    expect((await c.command("EHLO x")).lines).toContain("250-SIZE 1000");
    expect((await c.command("MAIL FROM:<a@x.org> SIZE=1001")).code).toBe(552);
  });

  it("AUTH PLAIN (initial response and challenge), LOGIN, CRAM-MD5, XOAUTH2", async () => {
    const { createHmac } = await import("node:crypto");
    const server = await serve({ authMechanisms: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"], users: { ann: "pw" } });
    const plain = await dial(server);
    await plain.reply();
    expect((await plain.command("EHLO x")).lines).toContain("250 AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2");
    expect((await plain.command(`AUTH PLAIN ${b64("\0ann\0nope")}`)).code).toBe(535);
    expect((await plain.command("AUTH PLAIN")).lines).toEqual(["334 "]);
    expect((await plain.command(b64("\0ann\0pw"))).code).toBe(235);
    expect((await plain.command("AUTH PLAIN")).code).toBe(503);

    const login = await dial(server);
    await login.reply();
    await login.command("EHLO x");
    expect((await login.command("AUTH LOGIN")).lines).toEqual(["334 VXNlcm5hbWU6"]);
    expect((await login.command(b64("ann"))).lines).toEqual(["334 UGFzc3dvcmQ6"]);
    expect((await login.command(b64("pw"))).code).toBe(235);

    const cram = await dial(server);
    await cram.reply();
    await cram.command("EHLO x");
    const ch = await cram.command("AUTH CRAM-MD5");
    const challenge = Buffer.from(ch.lines[0]!.slice(4), "base64").toString();
    const digest = createHmac("md5", "pw").update(challenge).digest("hex");
    expect((await cram.command(b64(`ann ${digest}`))).code).toBe(235);

    const xo = await dial(server);
    await xo.reply();
    await xo.command("EHLO x");
    const bad = await xo.command(`AUTH XOAUTH2 ${b64("user=ann\x01auth=Bearer wrong\x01\x01")}`);
    expect(bad.code).toBe(334);
    expect((await xo.command("")).code).toBe(535);
    expect((await xo.command(`AUTH XOAUTH2 ${b64("user=ann\x01auth=Bearer pw\x01\x01")}`)).code).toBe(235);

    expect((await xo.command("MAIL FROM:<a@x.org>")).code).toBe(250);
    await xo.command("RCPT TO:<b@x.org>");
    await xo.command("DATA");
    xo.write("x\r\n.\r\n");
    await xo.reply();
    expect(server.received[0]!.authUser).toBe("ann");
  });

  it("BDAT with CHUNKING advertised; refused (chunk still consumed) without it", async () => {
    const server = await serve({ ehlo: ["PIPELINING", "CHUNKING", "8BITMIME"] });
    const c = await dial(server);
    await c.reply();
    expect((await c.command("EHLO x")).lines).toContain("250-CHUNKING");
    await c.command("MAIL FROM:<a@x.org>");
    await c.command("RCPT TO:<b@x.org>");
    c.write("BDAT 5\r\nhello");
    expect((await c.reply()).code).toBe(250);
    c.write("BDAT 8 LAST\r\n\r\n.world");
    expect((await c.reply()).code).toBe(250);
    expect(server.received[0]).toMatchObject({ via: "BDAT", rcptTo: ["b@x.org"] });
    expect(server.received[0]!.data.toString()).toBe("hello\r\n.world");

    const plain = await serve();
    const d = await dial(plain);
    await d.reply();
    await d.command("EHLO x");
    await d.command("MAIL FROM:<a@x.org>");
    await d.command("RCPT TO:<b@x.org>");
    d.write("BDAT 4 LAST\r\nNOOP");
    expect((await d.reply()).code).toBe(502);
    expect((await d.command("NOOP")).code).toBe(250);
    expect(plain.received).toHaveLength(0);
  });
});

describe("fake SMTP server: scripts and faults", () => {
  it("greeting null (never sent), 554 greeting, custom onCommand and EHLO reply", async () => {
    const silent = await serve({ greeting: null });
    const c = await dial(silent);
    await expect(c.reply(150)).rejects.toThrow(/no reply within/);

    const refusing = await serve({ greeting: "554 5.3.2 go away", ehlo: "502 5.5.1 no EHLO here" });
    const d = await dial(refusing);
    expect((await d.reply()).code).toBe(554);
    expect((await d.command("EHLO x")).lines).toEqual(["502 5.5.1 no EHLO here"]);
    expect((await d.command("HELO x")).code).toBe(250);

    const custom = await serve({
      onCommand: (cmd) => (cmd.verb === "NOOP" ? multiline(250, ["one", "two"]) : undefined),
    });
    const e = await dial(custom);
    await e.reply();
    expect((await e.command("NOOP")).lines).toEqual(["250-one", "250 two"]);
  });

  it("dropOn / shutdownOn / replyOn-style per-recipient replies and messageReply", async () => {
    const server = await serve({
      script: [
        dropOn("RCPT", { nth: 3 }),
        recipientReplies({ "full@x.org": "452 4.2.2 Mailbox full", "nobody@x.org": "550 5.1.1 No such user" }),
        messageReply("552 5.3.4 Message too big"),
      ],
    });
    const c = await dial(server);
    await c.reply();
    await c.command("EHLO x");
    await c.command("MAIL FROM:<a@x.org>");
    expect((await c.command("RCPT TO:<full@x.org>")).lines).toEqual(["452 4.2.2 Mailbox full"]);
    expect((await c.command("RCPT TO:<ok@x.org>")).code).toBe(250);
    c.write("RCPT TO:<third@x.org>\r\n");
    await c.waitClosed();

    const d = await dial(server);
    await d.reply();
    await d.command("EHLO x");
    await d.command("MAIL FROM:<a@x.org>");
    expect((await d.command("RCPT TO:<nobody@x.org>")).code).toBe(550);
    expect((await d.command("RCPT TO:<ok@x.org>")).code).toBe(250);
    await d.command("DATA");
    d.write("x\r\n.\r\n");
    expect((await d.reply()).lines).toEqual(["552 5.3.4 Message too big"]);
    expect(server.received[0]!.recipients.map((r) => [r.address, r.accepted])).toEqual([
      ["nobody@x.org", false],
      ["ok@x.org", true],
    ]);
    expect(server.received[0]!.reply).toBe("552 5.3.4 Message too big");

    const shut = await serve({ script: shutdownOn("MAIL") });
    const e = await dial(shut);
    await e.reply();
    await e.command("EHLO x");
    expect((await e.command("MAIL FROM:<a@x.org>")).lines).toEqual(["421 4.3.2 Service shutting down"]);
    await e.waitClosed();
  });

  it("noReplyToDot keeps the connection silent; dropAfterDot closes it", async () => {
    const silent = await serve({ script: noReplyToDot() });
    const c = await dial(silent);
    await c.reply();
    await c.command("EHLO x");
    await c.command("MAIL FROM:<a@x.org>");
    await c.command("RCPT TO:<b@x.org>");
    await c.command("DATA");
    c.write("x\r\n.\r\n");
    await expect(c.reply(200)).rejects.toThrow(/no reply/);
    expect(silent.received).toHaveLength(1);
    expect(silent.received[0]!.reply).toBeNull();
    c.write("NOOP\r\n");
    await expect(c.reply(200)).rejects.toThrow(/no reply/); // hung: nothing more is answered

    const drop = await serve({ script: dropAfterDot() });
    const d = await dial(drop);
    await d.reply();
    await d.command("EHLO x");
    await d.command("MAIL FROM:<a@x.org>");
    await d.command("RCPT TO:<b@x.org>");
    await d.command("DATA");
    d.write("x\r\n.\r\n");
    await d.waitClosed();
    expect(d.pending().length).toBe(0);
  });

  it("trickle sends one byte at a time; delay waits; hangOn never answers", async () => {
    const server = await serve({ script: [trickle("NOOP", 5), delay("RSET", 150), hangOn("VRFY")] });
    const c = await dial(server);
    await c.reply();
    const chunks: Buffer[] = [];
    c.socket.on("data", (b: Buffer) => chunks.push(b));
    const t0 = Date.now();
    expect((await c.command("NOOP")).lines).toEqual(["250 2.0.0 Ok"]);
    expect(chunks.length).toBe("250 2.0.0 Ok\r\n".length);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(50);
    const t1 = Date.now();
    expect((await c.command("RSET")).code).toBe(250);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(140);
    c.write("VRFY x\r\n");
    await expect(c.reply(200)).rejects.toThrow(/no reply/);
  });

  it("several replies in one packet via raw, and idle timeout", async () => {
    const server = await serve({
      idleTimeoutMs: 200,
      onCommand: (cmd) => (cmd.verb === "NOOP" ? { raw: "250 one\r\n250 two\r\n250-three\r\n250 four\r\n" } : undefined),
    });
    const c = await dial(server);
    await c.reply();
    c.write("NOOP\r\n");
    const replies = [await c.reply(), await c.reply(), await c.reply()];
    expect(replies.map((r) => r.lines)).toEqual([["250 one"], ["250 two"], ["250-three", "250 four"]]);
    const t0 = Date.now();
    expect((await c.reply(2000)).lines).toEqual(["421 4.4.2 Idle timeout, closing connection"]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    await c.waitClosed();
  });
});

describe("fake SMTP server: script errors", () => {
  it("a throwing script drops that connection and is recorded, not an unhandled rejection", async () => {
    const server = await serve({
      onCommand: (cmd) => {
        if (cmd.verb === "NOOP") throw new Error("boom");
        return undefined;
      },
    });
    const c = await dial(server);
    await c.reply();
    c.write("NOOP\r\n");
    await c.waitClosed();
    expect(server.errors.map((e) => e.message)).toEqual(["boom"]);
    expect(server.dump()).toMatch(/script error: boom/);
  });
});

describe("fake SMTP server: TLS", () => {
  it("STARTTLS accepted: upgrade with the test CA, capabilities relearned, plaintext after STARTTLS discarded", async () => {
    const server = await serve({ tls: "starttls", key: certs.server.key, cert: certs.server.cert });
    const c = await dial(server);
    await c.reply();
    expect((await c.command("EHLO x")).lines.map((l) => l.slice(4))).toContain("STARTTLS");
    expect((await c.command("STARTTLS")).lines).toEqual(["220 2.0.0 Ready to start TLS"]);
    await c.upgrade({ ca: certs.ca, servername: "localhost" });
    expect((await c.command("MAIL FROM:<a@x.org>")).code).toBe(503); // EHLO forgotten
    const after = await c.command("EHLO x");
    expect(after.lines.some((l) => l.includes("STARTTLS"))).toBe(false);
    await c.command("MAIL FROM:<a@x.org>");
    await c.command("RCPT TO:<b@x.org>");
    await c.command("DATA");
    c.write("secret\r\n.\r\n");
    expect((await c.reply()).code).toBe(250);
    expect(server.received[0]!.tls).toBe(true);
    expect(server.transcript.find((e) => e.text.startsWith("tls established"))).toBeDefined();

    // STARTTLS injection: bytes pipelined after STARTTLS are dropped, not executed
    const d = await dial(server);
    await d.reply();
    await d.command("EHLO x");
    d.write("STARTTLS\r\nMAIL FROM:<evil@x.org>\r\n");
    expect((await d.reply()).code).toBe(220);
    await d.upgrade({ ca: certs.ca, servername: "localhost" });
    expect((await d.command("NOOP")).code).toBe(250);
    expect(server.commands(2)).not.toContain("MAIL FROM:<evil@x.org>");
    expect(server.transcript.some((e) => e.conn === 2 && /discarded \d+ plaintext/.test(e.text))).toBe(true);
  });

  it("STARTTLS offered then refused with 454", async () => {
    const server = await serve({ tls: "starttls", key: certs.server.key, cert: certs.server.cert, script: refuseStartTls() });
    const c = await dial(server);
    await c.reply();
    await c.command("EHLO x");
    expect((await c.command("STARTTLS")).code).toBe(454);
    expect((await c.command("NOOP")).code).toBe(250);
  });

  it("implicit TLS verifies against the CA; the wrong-host cert fails hostname checks", async () => {
    const server = await serve({ tls: "implicit", key: certs.server.key, cert: certs.server.cert });
    const c = await dial(server, true);
    expect((await c.reply()).code).toBe(220);
    const ehlo = await c.command("EHLO x");
    expect(ehlo.lines.some((l) => l.includes("STARTTLS"))).toBe(false);

    const wrong = await serve({ tls: "implicit", key: certs.wrongHost.key, cert: certs.wrongHost.cert });
    await expect(RawSmtp.connect({ port: wrong.port, tls: { ca: certs.ca } })).rejects.toMatchObject({ code: "ERR_TLS_CERT_ALTNAME_INVALID" });
  });
});
