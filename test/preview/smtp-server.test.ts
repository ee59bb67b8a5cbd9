/**
 * The capture server's side of the SMTP dialogue, byte by byte with a dumb client:
 * extensions, pipelining, dot-unstuffing, BDAT, bounds, STARTTLS, AUTH and every fault.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startMailCatcher, type MailCatcher } from "../../src/preview/catcher.js";
import { RawSmtp } from "../helpers/raw-smtp.js";

let catcher: MailCatcher | undefined;
const open: RawSmtp[] = [];

afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await catcher?.close();
  catcher = undefined;
});

async function start(options: Parameters<typeof startMailCatcher>[0] = {}): Promise<MailCatcher> {
  catcher = await startMailCatcher({ port: 0, webPort: false, hostname: "catcher.test", ...options });
  return catcher;
}

async function connect(c: MailCatcher, greeting = 220): Promise<RawSmtp> {
  const s = await RawSmtp.connect({ port: c.smtpPort });
  open.push(s);
  expect((await s.reply()).code).toBe(greeting);
  return s;
}

async function ehlo(s: RawSmtp): Promise<string[]> {
  const r = await s.command("EHLO client.test");
  expect(r.code).toBe(250);
  return r.lines.map((l) => l.slice(4));
}

describe("the capture SMTP server", () => {
  it("greets, and offers PIPELINING, 8BITMIME, SMTPUTF8, SIZE, CHUNKING, ENHANCEDSTATUSCODES and DSN (STARTTLS and AUTH only when asked)", async () => {
    const c = await start();
    const s = await connect(c);
    expect(await ehlo(s)).toEqual(["catcher.test greets client.test", "PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 26214400", "CHUNKING", "ENHANCEDSTATUSCODES", "DSN", "HELP"]);
    await c.close();
    const t = await start({ tls: true, auth: true, maxMessageSize: 1000 });
    const u = await connect(t);
    expect(await ehlo(u)).toEqual(expect.arrayContaining(["SIZE 1000", "STARTTLS", "AUTH PLAIN LOGIN"]));
  });

  it("answers pipelined commands in order and keeps the message with its envelope", async () => {
    const c = await start();
    const s = await connect(c);
    await ehlo(s);
    s.write("MAIL FROM:<a@example.org> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org> NOTIFY=FAILURE\r\nDATA\r\n");
    expect([(await s.reply()).code, (await s.reply()).code, (await s.reply()).code, (await s.reply()).code]).toEqual([250, 250, 250, 354]);
    s.write("Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    const queued = await s.reply();
    expect(queued.lines[0]!.slice(4)).toMatch(/^2\.0\.0 Ok: queued as \S+$/);
    expect((await s.reply()).code).toBe(221);
    const m = await c.waitFor();
    expect(m.envelope).toEqual({ from: "a@example.org", to: ["b@example.org", "c@example.org"], mailParams: { BODY: "8BITMIME", SMTPUTF8: "" } });
    expect(m.raw!.toString()).toBe("Subject: pipelined\r\n\r\nbody\r\n");
    expect(queued.lines[0]!.slice(4)).toContain(m.id);
  });

  it("removes dot-stuffing, and only CRLF . CRLF ends the data (a bare LF dot cannot smuggle a second message)", async () => {
    const c = await start();
    const s = await connect(c);
    await ehlo(s);
    for (const cmd of ["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>"]) expect((await s.command(cmd)).code).toBe(250);
    expect((await s.command("DATA")).code).toBe(354);
    // The data arrives in awkward pieces: split inside CRLF "." CRLF.
    for (const piece of ["Subject: dots\r\n\r\n..leading dot\r\n", "line\n.\nMAIL FROM:<evil@x>\r\n", "...\r", "\n.", "\r", "\n"]) s.write(piece);
    expect((await s.reply()).code).toBe(250);
    const m = await c.waitFor();
    expect(m.raw!.toString()).toBe("Subject: dots\r\n\r\n.leading dot\r\nline\n.\nMAIL FROM:<evil@x>\r\n..\r\n");
    expect(c.messages).toHaveLength(1);
  });

  it("takes BDAT chunks byte for byte (no dot-stuffing), BDAT 0 LAST included", async () => {
    const c = await start();
    const s = await connect(c);
    await ehlo(s);
    s.write("MAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\n");
    expect([(await s.reply()).code, (await s.reply()).code]).toEqual([250, 250]);
    const first = "Subject: chunked\r\n\r\n.not stuffed\r\n.\r\n";
    s.write(`BDAT ${Buffer.byteLength(first)}\r\n${first}`);
    expect((await s.reply()).lines[0]!.slice(4)).toBe(`2.0.0 ${Buffer.byteLength(first)} octets received`);
    s.write("BDAT 4\r\nend\n");
    expect((await s.reply()).code).toBe(250);
    expect((await s.command("BDAT 0 LAST")).code).toBe(250);
    const m = await c.waitFor();
    expect(m.raw!.toString()).toBe(`${first}end\n`);
    expect(m.envelope!.from).toBe("");
    expect(m.session!.chunked).toBe(true);
  });

  it("refuses what is out of order or too big, and keeps nothing of it", async () => {
    const c = await start({ maxMessageSize: 100 });
    const s = await connect(c);
    expect((await s.command("MAIL FROM:<a@example.org>")).code).toBe(503);
    await ehlo(s);
    expect((await s.command("RCPT TO:<b@example.org>")).code).toBe(503);
    expect((await s.command("DATA")).code).toBe(503);
    expect((await s.command("MAIL FROM:<a@example.org> SIZE=101")).code).toBe(552);
    expect((await s.command("MAIL FROM:a@example.org")).code).toBe(501);
    expect((await s.command("MAIL FROM:<a@example.org>")).code).toBe(250);
    expect((await s.command("MAIL FROM:<a@example.org>")).code).toBe(503);
    expect((await s.command("DATA")).code).toBe(554);
    expect((await s.command("RCPT TO:<b@example.org>")).code).toBe(250);
    expect((await s.command("DATA")).code).toBe(354);
    s.write(`${"x".repeat(300)}\r\n.\r\n`);
    expect((await s.reply()).lines[0]!.slice(4)).toMatch(/^5\.3\.4 Message too big/);
    expect((await s.command(`NOOP ${"y".repeat(5000)}`)).code).toBe(500);
    expect((await s.command("NOOP")).code).toBe(250);
    expect((await s.command("WHAT")).code).toBe(500);
    expect(c.messages).toHaveLength(0);
  });

  it("gives up on a client after 20 bad commands in a row", async () => {
    const c = await start();
    const s = await connect(c);
    s.write("BAD\r\n".repeat(25));
    for (let i = 0; i < 20; i++) expect((await s.reply()).code).toBe(500);
    expect((await s.reply()).code).toBe(421);
    await s.waitClosed();
  });

  it("STARTTLS: drops commands pipelined before the handshake, forgets the session, and marks the message as sent over TLS", async () => {
    const c = await start({ tls: true });
    const s = await connect(c);
    await ehlo(s);
    s.write("STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n");
    expect((await s.reply()).code).toBe(220);
    await s.upgrade({ ca: c.certificate!, servername: "localhost" });
    expect((await s.command("MAIL FROM:<a@example.org>")).code).toBe(503); // EHLO again first (RFC 3207 §4.2)
    expect(await ehlo(s)).not.toContain("STARTTLS");
    for (const cmd of ["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"]) await s.command(cmd);
    expect((await s.command("Subject: tls\r\n\r\nx\r\n.")).code).toBe(250);
    const m = await c.waitFor();
    expect(m.session).toMatchObject({ tls: true, helo: "client.test" });
    expect(m.envelope!.from).toBe("a@example.org");
  });

  it("AUTH PLAIN and LOGIN: any credentials by default, checked ones with users, required when asked", async () => {
    const any = await start({ auth: true });
    const s = await connect(any);
    await ehlo(s);
    expect((await s.command(`AUTH PLAIN ${Buffer.from("\0someone\0whatever").toString("base64")}`)).code).toBe(235);
    expect((await s.command("AUTH PLAIN")).code).toBe(503);
    await any.close();

    const checked = await start({ auth: { users: { ann: "s3cret" }, required: true } });
    const t = await connect(checked);
    await ehlo(t);
    expect((await t.command("MAIL FROM:<a@example.org>")).code).toBe(530);
    expect((await t.command("AUTH PLAIN")).code).toBe(334);
    expect((await t.command(Buffer.from("\0ann\0wrong").toString("base64"))).code).toBe(535);
    expect((await t.command("AUTH LOGIN")).lines[0]!.slice(4)).toBe("VXNlcm5hbWU6");
    expect((await t.command("*")).code).toBe(501);
    expect((await t.command("AUTH CRAM-MD5")).code).toBe(504);
    expect((await t.command("AUTH LOGIN")).code).toBe(334);
    expect((await t.command(Buffer.from("ann").toString("base64"))).lines[0]!.slice(4)).toBe("UGFzc3dvcmQ6");
    expect((await t.command(Buffer.from("s3cret").toString("base64"))).code).toBe(235);
    for (const cmd of ["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"]) await t.command(cmd);
    expect((await t.command("Subject: auth\r\n\r\nx\r\n.")).code).toBe(250);
    const m = await checked.waitFor();
    expect(m.session!.authUser).toBe("ann");
    expect(JSON.stringify(m)).not.toContain("s3cret");
  });

  it("failNext replaces the reply at each phase once, then the server is normal again", async () => {
    const c = await start({ tls: true, auth: true });
    c.failNext({ phase: "connect", reply: "554 5.3.2 Not now" });
    const refused = await connect(c, 554);
    await refused.waitClosed();

    const s = await connect(c);
    c.failNext({ phase: "ehlo", reply: "451 4.3.0 EHLO later" });
    expect((await s.command("EHLO x")).code).toBe(451);
    await ehlo(s);
    const faults: [Parameters<MailCatcher["failNext"]>[0], string, number][] = [
      [{ phase: "auth", reply: "454 4.7.0 Temporary authentication failure" }, `AUTH PLAIN ${Buffer.from("\0u\0p").toString("base64")}`, 454],
      [{ phase: "mail", reply: "451 4.3.0 Try later" }, "MAIL FROM:<a@example.org>", 451],
    ];
    for (const [fault, cmd, code] of faults) {
      c.failNext(fault);
      expect((await s.command(cmd)).code).toBe(code);
    }
    expect((await s.command("MAIL FROM:<a@example.org>")).code).toBe(250);
    c.failNext({ phase: "rcpt", reply: "550 5.1.1 No such user", times: 2 });
    expect((await s.command("RCPT TO:<x@example.org>")).code).toBe(550);
    expect((await s.command("RCPT TO:<y@example.org>")).code).toBe(550);
    expect((await s.command("RCPT TO:<b@example.org>")).code).toBe(250);
    c.failNext({ phase: "data", reply: "554 5.6.0 No data today" });
    expect((await s.command("DATA")).code).toBe(554);
    expect((await s.command("DATA")).code).toBe(354);
    c.failNext({ phase: "dot", reply: "451 4.3.0 Lost it" });
    expect((await s.command("Subject: refused\r\n\r\nx\r\n.")).code).toBe(451);
    expect(c.messages).toHaveLength(0);
  });

  it("a dropped final dot: the message is kept, the client gets no reply; a 421 closes the connection", async () => {
    const c = await start();
    const s = await connect(c);
    await ehlo(s);
    for (const cmd of ["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"]) await s.command(cmd);
    c.failNext({ phase: "dot", reply: "drop" });
    s.write("Subject: unknown outcome\r\n\r\nx\r\n.\r\n");
    await s.waitClosed();
    expect(s.pending().toString()).toBe("");
    expect((await c.waitFor()).subject).toBe("unknown outcome");

    const t = await connect(c);
    c.failNext({ phase: "ehlo", reply: "421 4.3.2 Shutting down" });
    expect((await t.command("EHLO x")).code).toBe(421);
    await t.waitClosed();
  });

  it("rejects a malformed fault clearly", async () => {
    const c = await start();
    expect(() => c.failNext({ phase: "later" as never, reply: "451 x" })).toThrow(/phase must be one of/);
    expect(() => c.failNext({ phase: "rcpt", reply: "nope" })).toThrow(/SMTP reply/);
    expect(() => c.failNext({ phase: "rcpt", reply: "451 a\r\n250 b" })).toThrow(/one line/);
  });
});
