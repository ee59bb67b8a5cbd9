import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BadHeaderError, InvalidAddressError, InvalidArgumentError } from "../../src/errors.js";
import { resetMessageDefaults, setMessageDefaults } from "../../src/mime/defaults.js";
import { EmailMessage, EmailMultiAlternatives } from "../../src/mime/message.js";
import { MimePart } from "../../src/mime/part.js";
import { policies } from "../../src/mime/policy.js";
import { parseOneWithPython, attachmentBytes } from "../helpers/python-oracle.js";
import { errorOf } from "../helpers/errors.js";
import { FIXED_DATE, seededRandom } from "./fixture-cases.js";

const base = () => ({ subject: "s", body: "b", from: "ann@example.com", to: ["bob@example.org"], clock: () => FIXED_DATE, random: seededRandom("unit") });
const headerBlock = (bytes: Buffer) => bytes.toString("latin1").slice(0, bytes.indexOf("\r\n\r\n") + 2);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-message-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => resetMessageDefaults());

describe("EmailMessage fields", () => {
  it("exposes constructor options as read/write properties", () => {
    const msg = new EmailMessage({ ...base(), cc: ["c@example.org"], bcc: ["d@example.org"], replyTo: ["r@example.org"], headers: { "X-A": "1" }, encoding: "ISO-8859-1" });
    expect(msg.subject).toBe("s");
    expect(msg.body).toBe("b");
    expect(msg.from).toBe("ann@example.com");
    expect(msg.to).toEqual(["bob@example.org"]);
    expect(msg.cc).toEqual(["c@example.org"]);
    expect(msg.bcc).toEqual(["d@example.org"]);
    expect(msg.replyTo).toEqual(["r@example.org"]);
    expect(msg.headers).toEqual({ "X-A": "1" });
    expect(msg.encoding).toBe("iso-8859-1");
    msg.subject = "changed";
    msg.to.push("eve@example.org");
    expect(msg.recipients()).toEqual(["bob@example.org", "eve@example.org", "c@example.org", "d@example.org"]);
  });

  it("reads address fields afresh after they change, also in place, once they have been read (rendered, recipients)", async () => {
    const bob = { name: "Bob", address: "bob@example.org" };
    const msg = new EmailMessage({ ...base(), to: [bob], cc: "c@example.org" });
    expect(msg.recipients()).toEqual(["bob@example.org", "c@example.org"]);
    expect(headerBlock(await msg.asBytes())).toContain("To: Bob <bob@example.org>\r\n");
    // The returned list is the caller's own.
    msg.recipients().push("x@example.org");
    expect(msg.recipients()).toEqual(["bob@example.org", "c@example.org"]);
    bob.name = "Robert";
    bob.address = "robert@example.org";
    msg.to.push("eve@example.org");
    msg.cc[0] = "Carol <carol@example.org>";
    expect(msg.recipients()).toEqual(["robert@example.org", "eve@example.org", "carol@example.org"]);
    const header = headerBlock(await msg.asBytes());
    expect(header).toContain("To: Robert <robert@example.org>, eve@example.org\r\n");
    expect(header).toContain("Cc: Carol <carol@example.org>\r\n");
    // A bad address put in place is refused when the message is next read, not hidden by an earlier parse.
    msg.to.push("not an address");
    expect(() => msg.recipients()).toThrow(InvalidAddressError);
    await expect(msg.asBytes()).rejects.toThrow(InvalidAddressError);
    msg.to.pop();
    (msg.from as unknown) = "ann@example.com";
    msg.headers = { From: "Other <other@example.com>" };
    expect(headerBlock(await msg.asBytes())).toContain("From: Other <other@example.com>\r\n");
    expect(msg.envelope().from).toBe("ann@example.com");
  });

  it("keeps a null address field as given: refused when read", () => {
    const msg = new EmailMessage({ ...base() });
    (msg as unknown as { to: unknown }).to = null;
    expect(() => msg.recipients()).toThrow(InvalidArgumentError);
  });

  it("sends text as 7bit or 8bit only when every line fits in 998 octets, whatever the width of its characters", async () => {
    const cte = async (body: string, policy = policies.eightBit) => /Content-Transfer-Encoding: (\S+)/.exec(headerBlock(await new EmailMessage({ ...base(), body }).asBytes(policy)))![1];
    expect(await cte("plain\nlines\n")).toBe("7bit");
    expect(await cte("Grüße\n")).toBe("8bit");
    expect(await cte("Grüße aus Berlin, bis bald und schöne Tage!\n", policies.default)).toBe("quoted-printable");
    // 400 characters, 800 octets: fits, although 3 octets a character would not.
    expect(await cte(`${"é".repeat(400)}\n`)).toBe("8bit");
    expect(await cte(`${"é".repeat(499)}\n`)).toBe("8bit");
    expect(await cte(`${"é".repeat(500)}\n`)).not.toMatch(/^(7bit|8bit)$/);
    expect(await cte(`${"a".repeat(998)}\n`)).toBe("7bit");
    expect(await cte(`${"a".repeat(999)}\n`)).toBe("quoted-printable");
    expect(await cte("nul \0 here\n")).toBe("base64");
  });

  it("parses a string address field as an RFC 5322 list, never splitting it into characters", () => {
    const msg = new EmailMessage({ ...base(), to: 'a@example.org, "Doe, Bob" <b@example.org>' });
    expect(msg.recipients()).toEqual(["a@example.org", "b@example.org"]);
  });

  it("recipients() is to, cc, bcc in order without duplicates", () => {
    const msg = new EmailMessage({ ...base(), to: ["x@example.org", "y@example.org"], cc: ["Y <y@example.org>", "z@example.org"], bcc: ["x@example.org", "w@example.org"] });
    expect(msg.recipients()).toEqual(["x@example.org", "y@example.org", "z@example.org", "w@example.org"]);
  });

  it("recipients() de-duplicates with the domain compared case-insensitively, the local part as given", () => {
    const msg = new EmailMessage({ ...base(), to: ["dup@Example.COM", "dup@example.com"], cc: ["Dup <dup@EXAMPLE.com>", "Dup@example.com"], bcc: ["x@bücher.example", "x@xn--bcher-kva.example", "x@BÜCHER.example"] });
    // The first spelling is kept; "Dup" differs from "dup" (RFC 5321 §2.4: local parts may be case-sensitive).
    expect(msg.recipients()).toEqual(["dup@Example.COM", "Dup@example.com", "x@bücher.example"]);
    expect(msg.envelope().to).toEqual(["dup@Example.COM", "Dup@example.com", "x@xn--bcher-kva.example"]);
  });

  it("defaults From to the configured default", async () => {
    setMessageDefaults({ from: "noreply@example.net" });
    const msg = new EmailMessage({ subject: "s", body: "b", to: ["bob@example.org"] });
    expect(msg.from).toBe("noreply@example.net");
    expect(headerBlock(await msg.asBytes())).toContain("From: noreply@example.net\r\n");
  });

  it("rejects an invalid address at assignment with a clear error", () => {
    expect(() => new EmailMessage({ ...base(), to: ["not an address"] })).toThrow(InvalidAddressError);
    expect(() => new EmailMessage({ ...base(), to: ["a@b@c"] })).toThrow(InvalidAddressError);
  });
});

describe("headers", () => {
  it("never writes Bcc; Bcc recipients are only in the envelope", async () => {
    const msg = new EmailMessage({ ...base(), bcc: ["hidden@example.org"] });
    const bytes = await msg.asBytes();
    expect(bytes.toString("latin1")).not.toMatch(/^bcc:/im);
    expect(bytes.toString("latin1")).not.toContain("hidden@example.org");
    expect(msg.envelope().to).toEqual(["bob@example.org", "hidden@example.org"]);
  });

  it("refuses Bcc and serializer-owned headers as extra headers", () => {
    expect(() => new EmailMessage({ ...base(), headers: { Bcc: "x@example.org" } })).toThrow(BadHeaderError);
    expect(() => new EmailMessage({ ...base(), headers: { "Content-Type": "text/html" } })).toThrow(BadHeaderError);
    expect(() => new EmailMessage({ ...base(), headers: { "Bad Name": "x" } })).toThrow(BadHeaderError);
  });

  it.each([
    ["Message-ID", "<a b@example.com>", /white space inside/],
    ["Message-ID", "no-brackets@example.com", /"<"/],
    ["Message-ID", "<justtext>", /"@"/],
    ["Message-ID", "<a@example.com> <b@example.com>", /exactly one msg-id/],
    ["Message-ID", "", /exactly one msg-id/],
    ["In-Reply-To", "<a@example.com> junk", /"<"/],
    ["In-Reply-To", "<a..b@example.com>", /dot-atom/],
    ["In-Reply-To", "<.a@example.com>", /dot-atom/],
    ["References", "<a@example.com> <b@[bad\\literal]>", /literal/],
    ["References", "<a@example.com><b@example.com", /">"/],
    ["references", "<a@b@example.com>", /"@"/],
    ["Resent-Message-ID", "<@example.com>", /dot-atom/],
    ["In-Reply-To", "<a@example.com> (a comment)", /"<"/],
    ["References", "<\"quoted\"@example.com>", /dot-atom/],
  ])("refuses %s %j, which is not RFC 5322 msg-id syntax", (name, value, problem) => {
    const err = errorOf(() => new EmailMessage({ ...base(), headers: { [name]: value } }));
    expect(err).toBeInstanceOf(BadHeaderError);
    expect(err.message).toMatch(problem);
    expect(err.message).toContain("RFC 5322 §3.6.4");
    // Also when the value is set after construction: checked again when rendered.
    const msg = new EmailMessage(base());
    msg.headers[name] = value;
    return expect(msg.asBytes()).rejects.toBeInstanceOf(BadHeaderError);
  });

  it("refuses a configured Message-ID domain that would not make a msg-id", async () => {
    setMessageDefaults({ messageIdDomain: "bad domain" });
    await expect(new EmailMessage(base()).asBytes()).rejects.toThrow(/RFC 5322 §3.6.4/);
  });

  it("writes msg-ids as given: several in References, folded between them; domain literals; white space around", async () => {
    const refs = Array.from({ length: 4 }, (_, i) => `<thread.${i}.${"x".repeat(20)}@mail.example.org>`).join(" ");
    const msg = new EmailMessage({ ...base(), headers: { "Message-ID": "<a.b+c@[192.0.2.1]>", "In-Reply-To": " <p@example.org>\t<q@example.org> ", References: refs } });
    const py = await parseOneWithPython(await msg.asBytes());
    expect(py.defects).toEqual([]);
    expect(py.messageId).toBe("<a.b+c@[192.0.2.1]>");
    expect(py.headers.find(([n]) => n === "References")?.[1]).toBe(refs);
    expect(headerBlock(await msg.asBytes())).toMatch(/^References: <thread\.0\.x+@mail\.example\.org>\r\n <thread\.1/m);
  });

  it("lets extra headers override To, From, Date and Message-ID without changing the envelope", async () => {
    const msg = new EmailMessage({ ...base(), headers: { to: "List <list@example.org>", "message-id": "<m@example.com>", from: "Boss <boss@example.com>" } });
    const head = headerBlock(await msg.asBytes());
    expect(head).toContain("To: List <list@example.org>\r\n");
    expect(head).toContain("Message-ID: <m@example.com>\r\n");
    expect(head).toContain("From: Boss <boss@example.com>\r\n");
    expect(head.match(/^To:/gm)).toHaveLength(1);
    expect(msg.envelope()).toEqual({ from: "ann@example.com", to: ["bob@example.org"] });
  });

  it("keeps groups in To, Cc and Reply-To (fields and overrides); recipients() has their members", async () => {
    const msg = new EmailMessage({
      ...base(),
      to: ["Ann <ann@example.org>", { name: "Bob", address: "bob@example.org" }],
      cc: "Team: a@x.org, B <b@y.org>;",
      replyTo: ["Équipe: r@x.org;, s@x.org"],
    });
    const head = headerBlock(await msg.asBytes());
    expect(head).toContain("To: Ann <ann@example.org>, Bob <bob@example.org>\r\n");
    expect(head).toContain("Cc: Team: a@x.org, B <b@y.org>;\r\n");
    expect(head).toContain("Reply-To: =?utf-8?Q?=C3=89quipe?= : r@x.org;, s@x.org\r\n");
    expect(msg.recipients()).toEqual(["ann@example.org", "bob@example.org", "a@x.org", "b@y.org"]);
    expect(msg.envelope().to).toEqual(msg.recipients());

    const override = new EmailMessage({ ...base(), headers: { To: "List: l1@example.org, l2@example.org;", Cc: "nobody:;" } });
    const overridden = headerBlock(await override.asBytes());
    expect(overridden).toContain("To: List: l1@example.org, l2@example.org;\r\n");
    expect(overridden).toContain("Cc: nobody:;\r\n");
    expect(override.recipients()).toEqual(["bob@example.org"]);
  });

  it("writes From as a mailbox list: a group there is flattened to its member", async () => {
    const head = headerBlock(await new EmailMessage({ ...base(), from: "Sender: Ann <ann@example.com>;" }).asBytes());
    expect(head).toContain("From: Ann <ann@example.com>\r\n");
  });

  it("Python sees a group's members as addresses, without defects", async () => {
    const msg = new EmailMessage({ ...base(), cc: "Team: a@x.org, Zoë <z@y.org>;", replyTo: "Équipe: r@x.org;" });
    const py = await parseOneWithPython(await msg.asBytes());
    expect(py.defects).toEqual([]);
    expect(py.cc).toEqual([{ name: "", address: "a@x.org" }, { name: "Zoë", address: "z@y.org" }]);
    expect(py.replyTo).toEqual([{ name: "", address: "r@x.org" }]);
    expect(py.rawHeaders.find(([n]) => n === "Cc")?.[1]).toBe("Team: a@x.org, =?utf-8?Q?Zo=C3=AB?= <z@y.org>;");
  });

  it('to: "undisclosed-recipients:;" with bcc gives that To header and the bcc recipients in the envelope', async () => {
    const msg = new EmailMessage({ ...base(), to: "undisclosed-recipients:;", bcc: ["x@example.org", "Y <y@example.org>"] });
    const bytes = await msg.asBytes();
    const head = headerBlock(bytes);
    expect(head).toContain("To: undisclosed-recipients:;\r\n");
    expect(head).not.toContain("example.org");
    expect(msg.recipients()).toEqual(["x@example.org", "y@example.org"]);
    expect(msg.envelope()).toEqual({ from: "ann@example.com", to: ["x@example.org", "y@example.org"] });
    const py = await parseOneWithPython(bytes);
    expect(py.defects).toEqual([]);
    expect(py.to).toEqual([]);
    expect(py.rawHeaders.find(([n]) => n === "To")?.[1]).toBe("undisclosed-recipients:;");
  });

  it("takes the Message-ID domain from the setting, else the From domain in IDNA, else localhost", async () => {
    const id = async (from: string) => (await new EmailMessage({ ...base(), from }).prepare()).messageId;
    expect(await id("ann@bücher.example")).toMatch(/@xn--bcher-kva\.example>$/);
    expect(await id("ann@[127.0.0.1]")).toMatch(/@localhost>$/);
    setMessageDefaults({ messageIdDomain: "mail.example.net" });
    expect(await id("ann@example.com")).toMatch(/@mail\.example\.net>$/);
  });

  it("gives each message a fresh random Message-ID and boundary", async () => {
    const a = await new EmailMessage({ subject: "s", body: "b", to: ["x@example.org"] }).prepare();
    const b = await new EmailMessage({ subject: "s", body: "b", to: ["x@example.org"] }).prepare();
    expect(a.messageId).not.toBe(b.messageId);
    expect(a.messageId).toMatch(/^<[A-Za-z0-9_-]{24}@localhost>$/);
  });
});

describe("SMTPUTF8 and 8-bit", () => {
  it("fails clearly on a non-ASCII local part without the SMTPUTF8 policy", async () => {
    const msg = new EmailMessage({ ...base(), to: ["zoë@example.org"] });
    expect(msg.needsSmtpUtf8()).toBe(true);
    await expect(msg.asBytes()).rejects.toThrow(InvalidAddressError);
    expect(() => msg.envelope()).toThrow(/SMTPUTF8/);
    const prepared = await msg.prepare(policies.smtputf8);
    expect(prepared.smtputf8).toBe(true);
    expect(msg.envelope({ smtputf8: true }).to).toEqual(["zoë@example.org"]);
  });

  it("answers needsSmtpUtf8() afresh after any address it depends on changes, also in place or through a header", () => {
    const bob = { name: "Bob", address: "bob@example.org" };
    const msg = new EmailMessage({ ...base(), to: [bob] });
    expect(msg.needsSmtpUtf8()).toBe(false);
    bob.address = "böb@example.org";
    expect(msg.needsSmtpUtf8()).toBe(true);
    bob.address = "bob@example.org";
    expect(msg.needsSmtpUtf8()).toBe(false);
    msg.bcc.push("zoë@example.org");
    expect(msg.needsSmtpUtf8()).toBe(true);
    msg.bcc.pop();
    expect(msg.needsSmtpUtf8()).toBe(false);
    msg.replyTo = "rené@example.org";
    expect(msg.needsSmtpUtf8()).toBe(true);
    msg.replyTo = [];
    msg.from = "josé@example.com";
    expect(msg.needsSmtpUtf8()).toBe(true);
    msg.from = "ann@example.com";
    expect(msg.needsSmtpUtf8()).toBe(false);
    // A header override of an address field counts (it is what the header says); others do not.
    msg.headers["X-Note"] = "zoë@example.org";
    expect(msg.needsSmtpUtf8()).toBe(false);
    msg.headers["Cc"] = "zoë@example.org";
    expect(msg.needsSmtpUtf8()).toBe(true);
    msg.headers["Cc"] = "zoe@example.org";
    expect(msg.needsSmtpUtf8()).toBe(false);
    msg.headers = { "Reply-To": "Zoë <zoë@example.org>" };
    expect(msg.needsSmtpUtf8()).toBe(true);
    // A bad override put in place is refused when asked, not hidden by an earlier answer.
    msg.headers = { To: "not an address" };
    expect(() => msg.needsSmtpUtf8()).toThrow(InvalidAddressError);
  });

  it("gives envelope() afresh after the addresses change, each caller its own lists", () => {
    const msg = new EmailMessage({ ...base(), to: ["bob@Bücher.example"] });
    const first = msg.envelope();
    expect(first).toEqual({ from: "ann@example.com", to: ["bob@xn--bcher-kva.example"] });
    first.to.push("x@example.org");
    expect(msg.envelope().to).toEqual(["bob@xn--bcher-kva.example"]);
    expect(msg.envelope({ smtputf8: true }).to).toEqual(["bob@Bücher.example"]);
    msg.to.push("zoë@example.org");
    expect(() => msg.envelope()).toThrow(/SMTPUTF8/);
    expect(msg.envelope({ smtputf8: true }).to).toEqual(["bob@Bücher.example", "zoë@example.org"]);
    msg.to.pop();
    msg.from = "carol@example.com";
    expect(msg.envelope()).toEqual({ from: "carol@example.com", to: ["bob@xn--bcher-kva.example"] });
  });

  it("marks a message 8bit when an rfc822 attachment has 8-bit bytes", async () => {
    const msg = new EmailMessage(base()).attach("fwd.eml", "Subject: x\r\n\r\nCafé\r\n", "message/rfc822");
    const prepared = await msg.prepare();
    expect(prepared.eightBit).toBe(true);
    const plain = await new EmailMessage(base()).prepare();
    expect(plain.eightBit).toBe(false);
  });
});

describe("structure", () => {
  it("has no empty text/plain part when the body is empty and there are attachments", async () => {
    const msg = new EmailMessage({ ...base(), body: "" }).attach("a.bin", new Uint8Array([1, 2, 3]));
    const py = await parseOneWithPython(await msg.asBytes());
    expect(py.textBodies).toEqual([]);
    expect(py.parts.children?.map((c) => c.contentType)).toEqual(["application/octet-stream"]);
  });

  it("renders a bare contentId as Content-ID: <id> inside multipart/related", async () => {
    const msg = new EmailMultiAlternatives(base()).attachAlternative('<img src="cid:logo">', "text/html");
    msg.attach({ filename: "logo.png", content: new Uint8Array([137, 80, 78, 71]), mimetype: "image/png", contentId: "logo" });
    const py = await parseOneWithPython(await msg.asBytes());
    expect(py.parts.contentType).toBe("multipart/alternative");
    expect(py.parts.children?.[1]?.contentType).toBe("multipart/related");
    expect(py.attachments[0]?.contentId).toBe("<logo>");
    expect(py.attachments[0]?.disposition).toBe("inline");
  });

  it("gives multipart/related the type parameter of its root part (RFC 2387 §3.1)", async () => {
    const msg = new EmailMultiAlternatives(base()).attachAlternative('<img src="cid:logo">', "text/html");
    msg.attach({ filename: "logo.png", content: new Uint8Array([137, 80, 78, 71]), mimetype: "image/png", contentId: "logo" });
    const related = new EmailMessage(base()).attach("a.pdf", new Uint8Array([1]), "application/pdf");
    related.mixedSubtype = "related";
    const nested = new EmailMessage({ ...base(), body: "" }).attach(
      new MimePart({ contentType: "multipart/related", children: [new MimePart({ contentType: "multipart/alternative", children: [new MimePart({ contentType: "text/plain", body: "t" })] }), new MimePart({ contentType: "image/png", body: new Uint8Array([1]), contentId: "x" })] }),
    );
    // text/* bytes that are not UTF-8 go out as application/octet-stream: the type says what is written.
    const octets = new EmailMessage({ ...base(), body: "" }).attach(new MimePart({ contentType: "multipart/related", children: [new MimePart({ contentType: "text/html", body: new Uint8Array([0xff]) })] }));
    const [a, b, c, d] = await Promise.all([msg, related, nested, octets].map(async (m) => parseOneWithPython(await m.asBytes())));
    expect(a!.defects).toEqual([]);
    expect(a!.parts.children?.[1]?.params.type).toBe("text/html");
    expect(b!.parts.params.type).toBe("text/plain");
    expect(c!.parts.children?.[0]?.params.type).toBe("multipart/alternative");
    expect(d!.parts.children?.[0]?.params.type).toBe("application/octet-stream");
    expect(headerBlock(await msg.asBytes())).not.toContain("type=");
    const body = (await msg.asBytes()).toString("latin1");
    expect(body).toMatch(/Content-Type: multipart\/related;(?:\r\n)? boundary="[^"]+";(?:\r\n)? type="text\/html"\r\n/);
  });

  it("refuses a type parameter on multipart/related that is not its root part's type", async () => {
    const part = new MimePart({ contentType: "multipart/related", params: { type: "text/plain" }, children: [new MimePart({ contentType: "text/html", body: "<p>" })] });
    await expect(new EmailMessage({ ...base(), body: "" }).attach(part).asBytes()).rejects.toThrow(/RFC 2387/);
    const same = new MimePart({ contentType: "multipart/related", params: { TYPE: "Text/HTML" }, children: [new MimePart({ contentType: "text/html", body: "<p>" })] });
    expect((await new EmailMessage({ ...base(), body: "" }).attach(same).asBytes()).toString("latin1").match(/type=/gi)).toHaveLength(1);
  });

  it("guesses attachment types from the filename", async () => {
    const msg = new EmailMessage(base());
    msg.attach("photo.JPG", new Uint8Array([0xff, 0xd8]));
    msg.attach("unknown.zzz-unknown", new Uint8Array([0]));
    const py = await parseOneWithPython(await msg.asBytes());
    expect(py.attachments.map((a) => a.contentType)).toEqual(["image/jpeg", "application/octet-stream"]);
  });

  it("reads attachFile lazily: the file is read when the message is rendered", async () => {
    const path = join(dir, "late.txt");
    const msg = new EmailMessage(base()).attachFile(path);
    await writeFile(path, "written after attachFile\r\n");
    const py = await parseOneWithPython(await msg.asBytes());
    expect(attachmentBytes(py.attachments[0]!).toString()).toBe("written after attachFile\r\n");
    expect(py.attachments[0]?.filename).toBe("late.txt");
  });

  it("fails before writing anything when an attached file is missing", async () => {
    const msg = new EmailMessage(base()).attachFile(join(dir, "missing.pdf"));
    await expect(msg.prepare()).rejects.toThrow(InvalidArgumentError);
  });

  it("streams a Readable attachment once, and a stream factory every time", async () => {
    const once = new EmailMessage(base()).attach("a.bin", Readable.from([Buffer.from("abc")]), "application/octet-stream");
    await once.asBytes();
    await expect(once.asBytes()).rejects.toThrow(/only once/);
    const fixed = { ...base(), random: (n: number) => Buffer.alloc(n, 1) };
    const factory = new EmailMessage(fixed).attach("a.bin", () => Readable.from([Buffer.from("abc")]), "application/octet-stream");
    expect((await factory.asBytes()).equals(await factory.asBytes())).toBe(true);
  });

  it("produces the same bytes from asStream() and asBytes(), and knows the size in advance", async () => {
    const path = join(dir, "data.bin");
    await writeFile(path, Buffer.alloc(100_000, 7));
    const make = () => new EmailMessage(base()).attachFile(path).attach("x.txt", "text", "text/plain");
    const chunks: Buffer[] = [];
    for await (const chunk of make().asStream()) chunks.push(chunk as Buffer);
    const bytes = await make().asBytes();
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    expect((await make().prepare()).size).toBe(bytes.length);
  });

  it("accepts a serialized message as message/rfc822 and never base64-encodes it", async () => {
    const msg = new EmailMessage(base()).attach(undefined, "Subject: inner\r\nFrom: x@example.org\r\n\r\nhello\r\n", "message/rfc822");
    const bytes = await msg.asBytes();
    expect(bytes.toString("latin1")).toMatch(/Content-Type: message\/rfc822\r\nContent-Transfer-Encoding: 7bit/);
    const py = await parseOneWithPython(bytes);
    expect(py.attachments[0]?.message?.subject).toBe("inner");
  });
});

describe("send()", () => {
  it("uses the message's connection and returns its count", async () => {
    const sent: unknown[] = [];
    const connection = { sendMessages: async (messages: readonly unknown[]) => (sent.push(...messages), messages.length) };
    const msg = new EmailMessage({ ...base(), connection });
    expect(await msg.send()).toBe(1);
    expect(sent).toEqual([msg]);
  });

  it("returns 0 without recipients and never touches a backend", async () => {
    expect(await new EmailMessage({ subject: "s", body: "b" }).send()).toBe(0);
  });
});
