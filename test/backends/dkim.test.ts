/**
 * DKIM in the backends: `configure({ dkim })`, a backend's and a message's `dkim`, signed
 * where the bytes for a destination are made. dkimpy judges what real servers stored
 * (aiosmtpd with 8BITMIME; the scripted server without it, and over BDAT) and what the
 * file and console backends wrote.
 */
import { createPublicKey } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { inspect } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { getConnection } from "../../src/api.js";
import { CONSOLE_SEPARATOR, ConsoleBackend } from "../../src/backends/console.js";
import { backendDkim, signersFor } from "../../src/backends/dkim.js";
import { FileBackend } from "../../src/backends/file.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { DkimSigner } from "../../src/dkim/options.js";
import { signMessage } from "../../src/dkim/sign-message.js";
import { ConfigurationError, InvalidArgumentError } from "../../src/errors.js";
import { EmailMessage, EmailMultiAlternatives, type EmailMessageOptions } from "../../src/mime/message.js";
import { policies } from "../../src/mime/policy.js";
import { systemClock, type Clock } from "../../src/observe/clock.js";
import { configure, getSettings, resetSettings } from "../../src/settings.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { verifyWithDkimpy } from "../helpers/dkim-oracle.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { errorOf } from "../helpers/errors.js";
import { startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { ED25519_PEM, edSigner, RECORDS, RSA_PEM, rsaSigner, SIGNING_TIME } from "../dkim/helpers.js";
import { fixedMessage } from "./helpers.js";

isolateEmailEnvironment();

/** Real timers, a fixed time: t= is known (and in the past, which dkimpy requires). */
const clock: Clock = { ...systemClock, now: () => SIGNING_TIME.getTime() };
const T = String(SIGNING_TIME.getTime() / 1000);

let dir: string;
let aiosmtpd: AiosmtpdServer;
let fake: FakeSmtpServer | undefined;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-dkim-backends-"));
  aiosmtpd = await startAiosmtpd();
});
afterAll(async () => {
  await aiosmtpd?.stop();
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  resetSettings();
});

/** A message with 8-bit text, lines a data stream must dot-stuff, an HTML alternative and an attachment. */
function awkward(extra: EmailMessageOptions = {}, attachmentBytes = 3000): EmailMultiAlternatives {
  const m = new EmailMultiAlternatives({
    subject: "Signed — über SMTP",
    body: "Hello Bob,\n.a line that starts with a dot\n..and one with two\n.\n\nÜnïcødé in the body.\n\n\n",
    from: "Ann Müller <ann@example.com>",
    to: ["bob@example.org"],
    cc: ["Zoë <zoe@example.org>"],
    ...extra,
  });
  m.attachAlternative("<p>Hello <b>Bob</b></p>", "text/html");
  m.attach("report.bin", Buffer.from(Array.from({ length: attachmentBytes }, (_, i) => (i * 31) & 0xff)), "application/octet-stream");
  return m;
}

/** The header block of a message's bytes, and the tags of each DKIM-Signature in it (top first). */
function signatures(bytes: Buffer): Record<string, string>[] {
  const text = bytes.toString("latin1");
  const head = text.slice(0, text.indexOf("\r\n\r\n") + 2);
  return [...head.matchAll(/^DKIM-Signature:(.*(?:\r\n[ \t].*)*)/gim)].map((m) =>
    Object.fromEntries(m[1]!.replace(/\s+/g, "").split(";").filter(Boolean).map((tag) => [tag.slice(0, tag.indexOf("=")), tag.slice(tag.indexOf("=") + 1)])),
  );
}

/** The names of the header fields in order. */
function fieldNames(bytes: Buffer): string[] {
  const text = bytes.toString("latin1");
  return text.slice(0, text.indexOf("\r\n\r\n")).split(/\r\n(?![ \t])/).map((f) => f.slice(0, f.indexOf(":")));
}

const sizeParam = (params: readonly string[]) => Number(params.find((p) => p.toUpperCase().startsWith("SIZE="))?.slice(5));

describe("which signers apply: the message, then the backend, then the settings", () => {
  it("each level replaces the one below whole (no merging); false turns signing off there", () => {
    const rsa = new DkimSigner(rsaSigner());
    const ed = new DkimSigner(edSigner());
    configure({ dkim: [rsa, ed] });
    expect(backendDkim({})).toEqual([rsa, ed]);
    expect(backendDkim({ dkim: undefined })).toEqual([rsa, ed]);
    expect(backendDkim({ dkim: false })).toBe(false);
    expect(backendDkim({ dkim: ed })).toEqual([ed]);

    const plain = new EmailMessage({ to: ["b@example.org"] });
    expect(signersFor(plain, backendDkim({}))).toEqual([rsa, ed]);
    expect(signersFor(plain, backendDkim({ dkim: false }))).toEqual([]);
    expect(signersFor(new EmailMessage({ dkim: ed }), backendDkim({}))).toEqual([ed]);
    expect(signersFor(new EmailMessage({ dkim: false }), backendDkim({}))).toEqual([]);
    // A message's signers apply even where the backend says false: the message decides first.
    expect(signersFor(new EmailMessage({ dkim: rsa }), backendDkim({ dkim: false }))).toEqual([rsa]);
    configure({ dkim: false });
    expect(signersFor(plain, backendDkim({}))).toEqual([]);
    configure({ dkim: undefined });
    expect(getSettings().dkim).toBeUndefined();
    expect(signersFor(plain, backendDkim({}))).toEqual([]);
  });

  it("message.dkim is checked and made ready when set; changing it keeps the Message-ID", async () => {
    const m = fixedMessage();
    expect(m.dkim).toBeUndefined();
    const before = (await m.prepare()).messageId;
    m.dkim = [rsaSigner(), edSigner()];
    expect((m.dkim as readonly DkimSigner[]).map((s) => s instanceof DkimSigner && s.selector)).toEqual(["rsa", "ed"]);
    expect(Object.isFrozen(m.dkim)).toBe(true);
    m.dkim = false;
    expect(m.dkim).toBe(false);
    m.dkim = undefined;
    expect(m.dkim).toBeUndefined();
    expect((await m.prepare()).messageId).toBe(before);
  });
});

describe("bad DKIM configuration is a ConfigurationError where it is given, naming the option", () => {
  const publicPem = createPublicKey(RSA_PEM).export({ type: "spki", format: "pem" }) as string;

  it("configure(): the option, the list entry, the named connection; nothing changes on error", () => {
    configure({ dkim: rsaSigner() });
    const kept = getSettings().dkim;
    const cases: [unknown, string][] = [
      [{ domain: "example.com", selector: "s", privateKey: "not a key" }, "dkim.privateKey"],
      [[rsaSigner(), { domain: "example.com", selector: "ed", privateKey: publicPem }], "dkim[1].privateKey"],
      [[rsaSigner(), rsaSigner()], "dkim.selector"],
      [{ domain: "not a domain", selector: "s", privateKey: ED25519_PEM }, "dkim.domain"],
      [{ ...rsaSigner(), headers: ["subject"] }, "dkim.headers"],
      [{ ...rsaSigner(), identity: "@example.net" }, "dkim.identity"],
      [true, "dkim"],
      [[], "dkim"],
      ["rsa.pem", "dkim"],
    ];
    for (const [dkim, setting] of cases) {
      const error = errorOf(() => configure({ dkim: dkim as never }));
      expect(error, setting).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).setting).toBe(setting);
      expect((error as Error).message).not.toContain("MII");
    }
    expect(getSettings().dkim).toBe(kept);

    const named = errorOf(() => configure({ backends: { bulk: { backend: "smtp", host: "relay.example.com", dkim: { ...edSigner(), domain: "-bad-.example" } } } }));
    expect(named).toBeInstanceOf(ConfigurationError);
    expect((named as ConfigurationError).setting).toBe("backends.bulk.dkim.domain");
    expect((named as Error).message).toMatch(/^backends\.bulk\.dkim\.domain "-bad-\.example" is not a domain/);
    const listed = errorOf(() => configure({ backends: { archive: { backend: "file", filePath: dir, dkim: [edSigner(), { ...rsaSigner(), expiresIn: 60 }] } } }));
    expect((listed as ConfigurationError).setting).toBe("backends.archive.dkim[1].expiresIn");
  });

  it("a message's and a backend's dkim fail at construction, before anything connects", () => {
    const bad = { domain: "example.com", selector: "s", privateKey: publicPem };
    for (const make of [() => new EmailMessage({ dkim: bad }), () => new SmtpBackend({ host: "127.0.0.1", port: 1, dkim: bad }), () => new FileBackend({ filePath: dir, dkim: bad }), () => new ConsoleBackend({ dkim: bad })]) {
      const error = errorOf(make);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).setting).toBe("dkim.privateKey");
    }
    // The SMTP backend takes dkim as its own option: the SMTP resolver never sees it.
    expect(new SmtpBackend({ host: "127.0.0.1", port: 1, dkim: [rsaSigner(), edSigner()] }).host).toBe("127.0.0.1");
    expect(() => configure({ backends: { bulk: { backend: "smtp", host: "relay.example.com", dkim: rsaSigner() } } })).not.toThrow();
  });

  it("the signers print redacted wherever the settings are shown", () => {
    configure({ dkim: [rsaSigner(), edSigner()], backends: { bulk: { backend: "smtp", host: "relay.example.com", dkim: edSigner() } } });
    const shown = [inspect(getSettings(), { depth: 10 }), JSON.stringify(getSettings())].join("\n");
    expect(shown).toContain("rsa-sha256");
    expect(shown).toContain("<redacted>");
    const secret = (pem: string) => pem.split("\n")[1]!.slice(0, 40);
    expect(shown).not.toContain(secret(RSA_PEM));
    expect(shown).not.toContain(secret(ED25519_PEM));
  });
});

describe("SMTP: signed on the render made for each connection", () => {
  it("aiosmtpd (8BITMIME): dual RSA + Ed25519 from configure(); a message's own signer; dkim: false unsigned; SIZE counts the signature", async () => {
    configure({ dkim: [rsaSigner(), edSigner()] });
    const backend = new SmtpBackend({ host: aiosmtpd.host, port: aiosmtpd.port, clock });
    const both = awkward();
    const own = awkward({ subject: "Own signer", dkim: edSigner({ canonicalization: "simple/simple" }) });
    const unsigned = awkward({ subject: "Unsigned", dkim: false });
    const before = (await aiosmtpd.messages()).length;
    expect(await backend.sendMessages([both, own, unsigned])).toBe(3);
    const stored = (await aiosmtpd.waitForMessages(before + 3)).slice(before);

    expect(stored.map((s) => s.mailOptions.includes("BODY=8BITMIME"))).toEqual([true, true, true]);
    expect(stored[0]!.data.includes(Buffer.from("Ünïcødé"))).toBe(true);
    // RFC 1870: SIZE is the message's octets, the signature fields included.
    for (const s of stored) expect(sizeParam(s.mailOptions)).toBe(s.data.length);
    expect(sizeParam(stored[0]!.mailOptions)).toBeGreaterThan(sizeParam(stored[2]!.mailOptions) + 600);

    expect(signatures(stored[0]!.data).map((t) => [t["a"], t["s"], t["c"], t["t"]])).toEqual([
      ["rsa-sha256", "rsa", "relaxed/relaxed", T],
      ["ed25519-sha256", "ed", "relaxed/relaxed", T],
    ]);
    expect(signatures(stored[1]!.data).map((t) => [t["s"], t["c"]])).toEqual([["ed", "simple/simple"]]);
    expect(signatures(stored[2]!.data)).toEqual([]);
    // The signatures come first; the render's own fields follow, From first, unchanged.
    expect(fieldNames(stored[0]!.data).slice(0, 3)).toEqual(["DKIM-Signature", "DKIM-Signature", "From"]);

    const verdicts = await verifyWithDkimpy(stored.map((s) => ({ message: s.data, records: RECORDS })));
    expect(verdicts.map((v) => v.map((s) => s.ok))).toEqual([[true, true], [true], []]);
  });

  it("the scripted server without 8BITMIME gets a 7-bit render signed for it, and BDAT carries a signed message whole", async () => {
    const signers = [rsaSigner(), edSigner()];
    fake = await startFakeServer({ ehlo: ["PIPELINING", "SIZE 10485760"] });
    const seven = new SmtpBackend({ host: fake.host, port: fake.port, clock, dkim: signers, timeout: 10_000 });
    const chunked = await startFakeServer({ ehlo: ["PIPELINING", "8BITMIME", "SIZE 10485760", "CHUNKING"] });
    try {
      const eight = new SmtpBackend({ host: chunked.host, port: chunked.port, clock, dkim: signers, chunking: true, timeout: 10_000 });
      // One message to both: the 7-bit and the 8-bit render differ, and each is signed on its own bytes (same Message-ID).
      const message = awkward({}, 400 * 1024);
      expect(await seven.sendMessages([message])).toBe(1);
      expect(await eight.sendMessages([message])).toBe(1);
      const [sevenBit] = fake.received;
      const [bdat] = chunked.received;

      expect(sevenBit!.via).toBe("DATA");
      expect(sevenBit!.mailParams.some((p) => p.startsWith("BODY="))).toBe(false);
      expect(sevenBit!.data.every((b) => b < 0x80)).toBe(true);
      expect(bdat!.via).toBe("BDAT");
      expect(chunked.commands().filter((c) => c.startsWith("BDAT")).length).toBeGreaterThan(1);
      expect(bdat!.data.includes(Buffer.from("Ünïcødé"))).toBe(true);
      for (const r of [sevenBit!, bdat!]) expect(sizeParam(r.mailParams)).toBe(r.data.length);

      const id = (bytes: Buffer) => /^Message-ID: (.*)$/im.exec(bytes.toString("latin1"))![1];
      expect(id(sevenBit!.data)).toBe(id(bdat!.data));
      const [a, b] = [signatures(sevenBit!.data), signatures(bdat!.data)];
      expect(a.map((t) => t["bh"])).not.toEqual(b.map((t) => t["bh"]));

      const verdicts = await verifyWithDkimpy([sevenBit!, bdat!].map((r) => ({ message: r.data, records: RECORDS })));
      expect(verdicts.map((v) => v.map((s) => s.ok))).toEqual([
        [true, true],
        [true, true],
      ]);
    } finally {
      await chunked.close();
    }
  });

  it("a message that cannot be signed fails before MAIL FROM, and failSilently does not hide it", async () => {
    fake = await startFakeServer();
    const backend = new SmtpBackend({ host: fake.host, port: fake.port, clock, dkim: rsaSigner(), failSilently: true, timeout: 10_000 });
    // headers: { From: "" } writes no From field at all, and DKIM must sign From (RFC 6376 §5.4).
    const noFrom = fixedMessage({ headers: { From: "" } });
    const error = await backend.sendMessages([noFrom]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toMatch(/no From header field/);
    expect(fake.commands().some((c) => c.startsWith("MAIL"))).toBe(false);
    // The same message unsigned goes out: the failure was the signature's.
    noFrom.dkim = false;
    expect(await backend.sendMessages([noFrom])).toBe(1);
  });
});

describe("file and console: the bytes they write are signed", () => {
  it("dkimpy verifies what the file and console backends wrote; a named connection takes the top-level dkim or its own", async () => {
    const signers = [rsaSigner(), edSigner()];
    // SMTPUTF8 addresses: the file gets UTF-8 headers, signed as written.
    const files = new FileBackend({ filePath: join(dir, "plain"), clock, dkim: signers });
    const plain = awkward();
    const utf8 = awkward({ to: ["zoë@example.org"], subject: "UTF-8 headers" });
    expect(await files.sendMessages([plain, utf8])).toBe(2);
    const [plainBytes, utf8Bytes] = await Promise.all(files.written.map((p) => readFile(p)));
    expect(utf8Bytes!.includes(Buffer.from("zoë@example.org"))).toBe(true);
    // The same bytes signMessage makes of the unsigned render: the backend signed the fields as written.
    expect(plainBytes!.equals(await signMessage(await plain.asBytes(policies.default), signers, { now: SIGNING_TIME }))).toBe(true);

    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (c: Buffer) => chunks.push(c));
    expect(await new ConsoleBackend({ stream: out, clock, dkim: edSigner() }).sendMessages([awkward({ subject: "On the console" })])).toBe(1);
    const printed = Buffer.concat(chunks);
    const consoleBytes = printed.subarray(0, printed.length - CONSOLE_SEPARATOR.length);
    expect(printed.subarray(consoleBytes.length).toString()).toBe(CONSOLE_SEPARATOR);

    configure({
      dkim: rsaSigner(),
      backends: {
        archive: { backend: "file", filePath: join(dir, "archive") },
        quiet: { backend: "file", filePath: join(dir, "quiet"), dkim: false },
        edonly: { backend: "file", filePath: join(dir, "edonly"), dkim: edSigner() },
      },
    });
    const named: Buffer[] = [];
    for (const name of ["archive", "quiet", "edonly"]) {
      const backend = getConnection(name, { clock }) as FileBackend;
      await backend.sendMessages([fixedMessage({ subject: name })]);
      named.push(await readFile(backend.written[0]!));
    }
    expect(named.map((bytes) => signatures(bytes).map((t) => t["s"]))).toEqual([["rsa"], [], ["ed"]]);

    const judged = [plainBytes!, utf8Bytes!, consoleBytes, named[0]!, named[2]!];
    const verdicts = await verifyWithDkimpy(judged.map((message) => ({ message, records: RECORDS })));
    expect(verdicts.map((v) => v.map((s) => s.ok))).toEqual([[true, true], [true, true], [true], [true], [true]]);
  });

  it("a signing failure is thrown by the file backend even with failSilently, and no file is written", async () => {
    const files = new FileBackend({ filePath: join(dir, "none"), dkim: rsaSigner(), failSilently: true });
    await expect(files.sendMessages([fixedMessage({ headers: { From: "" } })])).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(files.written).toEqual([]);
  });
});
