/**
 * signRendered, judged by dkimpy: RFC 8463's published signatures reproduced byte for
 * byte, byte-exact signed fixtures for both algorithms and both canonicalizations, 240
 * generated messages signed with RSA and Ed25519, and the changes that must break a
 * signature (and those that must not).
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HeaderSplitter, parseHeaderFields } from "../../src/dkim/raw-message.js";
import { ed25519PrivateKeyFromSeed, loadSigningKey } from "../../src/dkim/keys.js";
import { DkimSigner, type DkimCanonicalization } from "../../src/dkim/options.js";
import { hashBody, headerHashInput, signData, signRendered, type HeaderField } from "../../src/dkim/sign.js";
import { policies } from "../../src/mime/policy.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { verifyWithDkimpy, type KeyRecords } from "../helpers/dkim-oracle.js";
import { buildMessage, messageSpec } from "../mime/arbitraries.js";
import { asReceived, dkimFixtures, edSigner, keyPem, prepend, RECORDS, renderedFrom, rsaSigner, SIGNING_TIME } from "./helpers.js";

const fixtures = new URL("../../fixtures/", import.meta.url);
const update = process.env.UPDATE_FIXTURES === "1";
const latin1 = (b: Uint8Array) => Buffer.from(b).toString("latin1");

async function signAndReceive(message: Buffer, signers: Parameters<typeof signRendered>[1], now: Date | number = SIGNING_TIME): Promise<Buffer> {
  return asReceived(prepend(await signRendered(renderedFrom(message), signers, { now }), message));
}

async function verdicts(messages: Buffer[], records: KeyRecords = RECORDS): Promise<boolean[][]> {
  return (await verifyWithDkimpy(messages.map((message) => ({ message, records })))).map((v) => v.map((s) => s.ok));
}

describe("RFC 8463 Appendix A", () => {
  const RFC_RECORDS: KeyRecords = {
    "brisbane._domainkey.football.example.com": "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    "test._domainkey.football.example.com":
      "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
  };
  /** A.2's Ed25519 secret key (the RFC 8032 §7.1 test 1 seed). */
  const ED25519_SEED = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

  async function published() {
    const message = await readFile(`${dkimFixtures}rfc8463-a3.eml`);
    const splitter = new HeaderSplitter();
    const body = splitter.push(message);
    const fields = parseHeaderFields(splitter.head());
    return { message, body, signatures: fields.filter((f) => f.key === "dkim-signature"), others: fields.filter((f) => f.key !== "dkim-signature") };
  }

  it("dkimpy verifies the published message (the transcription is right)", async () => {
    const { message } = await published();
    expect(await verdicts([message], RFC_RECORDS)).toEqual([[true, true]]);
  });

  it("our body hash is the published bh= for relaxed, and dkimpy's for simple", async () => {
    const { body } = await published();
    const hashes = await hashBody([body], new Set(["relaxed", "simple"] as const));
    expect(hashes.get("relaxed")).toBe("2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
    // The simple/simple body hash dkimpy's own copy of this message carries (tests/data/rfc6376.signed.msg).
    expect(hashes.get("simple")).toBe("4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=");
  });

  it("our canonicalization and signing reproduce both published b= values byte for byte (Ed25519 and RSA are deterministic)", async () => {
    const { signatures, others } = await published();
    const keys = [
      { algorithm: "ed25519-sha256" as const, key: ed25519PrivateKeyFromSeed(ED25519_SEED) },
      // A.1's RSA key; dkimpy ships the same key as tests/data/test.private.
      { algorithm: "rsa-sha256" as const, key: loadSigningKey(keyPem("rfc8463-rsa")).key },
    ];
    signatures.forEach((field, i) => {
      const text = latin1(field.bytes);
      const cut = text.lastIndexOf("b=") + 2;
      const signedHeaders = /\bh=([^;]*);/.exec(text)![1]!.split(":").map((n) => n.trim());
      const data = headerHashInput(others, signedHeaders, field.bytes.subarray(0, cut), "relaxed");
      const b = signData(keys[i]!.algorithm, keys[i]!.key, data).toString("base64");
      expect(b).toBe(text.slice(cut).replace(/\s+/g, ""));
    });
  });
});

describe("byte-exact signed fixtures (dkimpy verifies each)", () => {
  const inputs = ["dkim/awkward.eml", "inline-image-related.eml"];
  const cases = inputs.flatMap((input) =>
    (["relaxed/relaxed", "simple/simple"] as DkimCanonicalization[]).map((c) => ({ input, canonicalization: c, name: `${input.replace(/^dkim\//, "").replace(/\.eml$/, "")}.${c.split("/")[0]}` })),
  );

  it.each(cases)("$name: RSA-2048 and Ed25519, $canonicalization", async ({ input, canonicalization, name }) => {
    const message = await readFile(new URL(input, fixtures));
    const fields = await signRendered(renderedFrom(message), [rsaSigner({ canonicalization }), edSigner({ canonicalization })], { now: SIGNING_TIME });
    const signed = prepend(fields, message);
    const path = `${dkimFixtures}signed/${name}.eml`;
    if (update) {
      await mkdir(`${dkimFixtures}signed`, { recursive: true });
      await writeFile(path, signed);
    }
    expect(latin1(signed)).toBe(latin1(await readFile(path)));
    expect(await verdicts([asReceived(signed)])).toEqual([[true, true]]);
  });
});

describe("the DKIM-Signature field", () => {
  it("says what it signs, folded within 78 columns, b= on its own lines", async () => {
    const message = await readFile(`${dkimFixtures}awkward.eml`);
    const [field] = await signRendered(renderedFrom(message), rsaSigner({ identity: "news@mail.example.com", expiresIn: 7 * 24 * 3600 * 1000 }), { now: SIGNING_TIME });
    const [name, value] = field!;
    expect(name).toBe("DKIM-Signature");
    const lines = `${name}:${value}`.split("\r\n");
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(78);
    expect(lines.slice(1).every((l) => l.startsWith(" "))).toBe(true);
    const tags = Object.fromEntries(value.replace(/\r\n /g, " ").split(";").map((t) => t.trim().split(/=(.*)/s).slice(0, 2).map((s) => s.trim())));
    expect(tags).toMatchObject({
      v: "1",
      a: "rsa-sha256",
      c: "relaxed/relaxed",
      d: "example.com",
      s: "rsa",
      i: "news@mail.example.com",
      t: String(SIGNING_TIME.getTime() / 1000),
      x: String(SIGNING_TIME.getTime() / 1000 + 7 * 24 * 3600),
    });
    expect(Object.keys(tags)).toEqual(["v", "a", "c", "d", "s", "i", "t", "x", "h", "bh", "b"]);
    expect(tags["l"]).toBeUndefined();
    // The default list in message order of the list, each name once per instance; then the over-signed names once more.
    expect(tags["h"]!.replace(/\s/g, "")).toBe(
      "from:subject:date:message-id:to:mime-version:content-type:content-transfer-encoding:list-unsubscribe:list-unsubscribe-post" +
        ":from:to:cc:subject:date:message-id:reply-to",
    );
    expect(lines.find((l) => l.includes("b="))).toMatch(/^ b=/);
  });

  it("signs every instance of a listed name, and nothing for oversign: []", async () => {
    const message = await readFile(`${dkimFixtures}awkward.eml`);
    const signer = rsaSigner({ headers: ["From", "X-Tag", "X-Tight", "X-Empty", "Received"], oversign: [] });
    const [field] = await signRendered(renderedFrom(message), signer, { now: SIGNING_TIME });
    expect(/h=([^;]*);/.exec(field![1].replace(/\r\n /g, ""))![1]).toBe("from:x-tag:x-tag:x-tight:x-empty:received");
    expect(await verdicts([asReceived(prepend([field!], message))])).toEqual([[true]]);
  });

  it("gives one field per signer, in order, reading the body once", async () => {
    const message = await readFile(`${dkimFixtures}awkward.eml`);
    const rendered = renderedFrom(message);
    const fields = await signRendered(rendered, [edSigner(), rsaSigner(), rsaSigner({ selector: "rsa2", canonicalization: "simple/simple" })], { now: SIGNING_TIME });
    expect(fields.map(([, v]) => /s=([^;]*);/.exec(v)![1])).toEqual(["ed", "rsa", "rsa2"]);
    expect(rendered.bodyCalls).toBe(1);
  });

  it("refuses a message without exactly one From before reading its body", async () => {
    for (const head of ["To: b@example.org\r\n", "From: a@example.com\r\nFrom: c@example.com\r\n"]) {
      const rendered = renderedFrom(Buffer.from(`${head}Subject: x\r\n\r\nbody\r\n`));
      await expect(signRendered(rendered, rsaSigner())).rejects.toThrow(InvalidArgumentError);
      expect(rendered.bodyCalls).toBe(0);
    }
  });
});

describe("what must break a signature, and what must not", () => {
  const SUBJECT = "Subject:  Quarterly   figures";

  async function signedVariants(canonicalization: DkimCanonicalization) {
    const message = await readFile(`${dkimFixtures}awkward.eml`);
    const signed = await signAndReceive(message, [rsaSigner({ canonicalization }), edSigner({ canonicalization })]);
    const text = latin1(signed);
    const bodyAt = text.indexOf("\r\n\r\n") + 4;
    const letter = text.indexOf("Bob", bodyAt);
    const edit = (at: number, from: string, to: string) => Buffer.from(text.slice(0, at) + to + text.slice(at + from.length), "latin1");
    return {
      signed,
      bodyByte: edit(letter, "B", "R"),
      signedHeader: Buffer.from(text.replace(SUBJECT, "Subject:  Quarterly   fibures"), "latin1"),
      secondFrom: Buffer.from(`From: Mallory <mallory@evil.example>\r\n${text}`, "latin1"),
      secondSubject: Buffer.from(`Subject: Urgent: wire the money\r\n${text}`, "latin1"),
      addedCc: Buffer.from(`Cc: everyone@example.org\r\n${text}`, "latin1"),
      unsignedHeader: Buffer.from(`X-Added-By-Relay: yes\r\nReceived: from relay2\r\n${text}`, "latin1"),
      refoldedHeader: Buffer.from(text.replace(SUBJECT, "Subject: Quarterly\r\n\tfigures"), "latin1"),
      bodySpaces: edit(letter, "Bob", "  Bob"),
      addedBlankLines: Buffer.concat([signed, Buffer.from("\r\n\r\n")]),
    };
  }

  it("relaxed: one body byte, one signed header, a second From/Subject or an added Cc break both; unsigned fields, refolding, white space and blank lines at the end do not", async () => {
    const v = await signedVariants("relaxed/relaxed");
    const names = Object.keys(v) as (keyof typeof v)[];
    const results = await verdicts(names.map((n) => v[n]));
    const byName = Object.fromEntries(names.map((n, i) => [n, results[i]]));
    expect(byName).toEqual({
      signed: [true, true],
      bodyByte: [false, false],
      signedHeader: [false, false],
      secondFrom: [false, false],
      secondSubject: [false, false],
      addedCc: [false, false],
      unsignedHeader: [true, true],
      refoldedHeader: [true, true],
      bodySpaces: [true, true],
      addedBlankLines: [true, true],
    });
  });

  it("simple: the same breaks, and refolding or added white space break too", async () => {
    const v = await signedVariants("simple/simple");
    const names = Object.keys(v) as (keyof typeof v)[];
    const results = await verdicts(names.map((n) => v[n]));
    const byName = Object.fromEntries(names.map((n, i) => [n, results[i]]));
    expect(byName).toEqual({
      signed: [true, true],
      bodyByte: [false, false],
      signedHeader: [false, false],
      secondFrom: [false, false],
      secondSubject: [false, false],
      addedCc: [false, false],
      unsignedHeader: [true, true],
      refoldedHeader: [false, false],
      bodySpaces: [false, false],
      addedBlankLines: [true, true],
    });
  });

  it("dkimpy reports the body hash mismatch for a changed body byte", async () => {
    const v = await signedVariants("relaxed/relaxed");
    const [verdict] = await verifyWithDkimpy([{ message: v.bodyByte, records: RECORDS }]);
    expect(verdict![0]!.error ?? verdict![0]!.log.join("\n")).toMatch(/body hash mismatch/);
  });

  it("x= is honoured: a signature past its expiry is refused, a live one verifies", async () => {
    const message = await readFile(`${dkimFixtures}awkward.eml`);
    const day = 24 * 3600 * 1000;
    const now = Date.now();
    const live = await signAndReceive(message, rsaSigner({ expiresIn: day }), now);
    const expired = await signAndReceive(message, rsaSigner({ expiresIn: day }), now - 3 * day);
    const [a, b] = await verifyWithDkimpy([live, expired].map((m) => ({ message: m, records: RECORDS })));
    expect(a![0]!.ok).toBe(true);
    expect(b![0]!.ok).toBe(false);
    expect(b![0]!.error).toMatch(/x= value is past/);
  });

  it("i= with a local part that needs quoting verifies; the key record of another key does not", async () => {
    const message = await readFile(`${dkimFixtures}awkward.eml`);
    const signed = await signAndReceive(message, rsaSigner({ identity: "news; letter@lists.example.com" }));
    expect(latin1(signed)).toContain("i=news=3B=20letter@lists.example.com;");
    const wrongKey = { "rsa._domainkey.example.com": RECORDS["ed._domainkey.example.com"]!.replace("k=ed25519", "k=rsa") };
    expect(await verdicts([signed])).toEqual([[true]]);
    expect((await verdicts([signed], wrongKey))[0]).toEqual([false]);
  });
});

describe("generated messages (dkimpy verifies every signature)", () => {
  const wsp = fc.constantFrom(" ", "  ", "\t", " \t ");
  const word = fc.constantFrom("hello", "Wörld", "x", "=?utf-8?q?x?=", ";", ":", "a.b", "日本語", "🎉", "(c)", '"q"');
  const fold = fc.constantFrom("\r\n ", "\r\n\t", "\r\n  \t");
  const value = fc.array(fc.oneof({ weight: 4, arbitrary: word }, { weight: 3, arbitrary: wsp }, { weight: 1, arbitrary: fold }), { maxLength: 12 }).map((p) => p.join(""));
  const name = fc.constantFrom("Subject", "To", "Cc", "Reply-To", "X-Mailer", "X-Tight", "X-Empty", "Comments", "Keywords", "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type", "X-Repeated", "Date", "Message-ID");
  /** Text (as UTF-8) and arbitrary 8-bit bytes. */
  const bodyPiece = fc.oneof(
    fc.constantFrom("Hello", "line", ".", "..", "From me", " ", "  ", "\t", " \t", "\r\n", "\r\n", "\r\n\r\n", "\n", "é", "€", "\u00a0").map((s) => Buffer.from(s, "utf8")),
    fc.uint8Array({ minLength: 1, maxLength: 6 }).map((b) => Buffer.from(b)),
  );
  const rawMessage = fc
    .record({
      from: fc.constantFrom("ann@example.com", '"Ann  Example" <ann@example.com>', "Ann\t<ann@example.com>", "=?utf-8?q?Zo=C3=AB?= <zoe@example.com>", "Zoë <zoë@example.com>"),
      fields: fc.array(fc.tuple(name, value), { maxLength: 8 }),
      body: fc.array(bodyPiece, { maxLength: 40 }),
      ending: fc.constantFrom("", "\r\n", "\r\n\r\n\r\n", " \t"),
      separator: fc.constantFrom(true, true, true, false),
    })
    .map(({ from, fields, body, ending, separator }) => {
      const head = [`From: ${from}`, ...fields.map(([n, v]) => `${n}:${v}`)].join("\r\n") + "\r\n";
      return separator ? Buffer.concat([Buffer.from(`${head}\r\n`, "utf8"), ...body, Buffer.from(ending, "latin1")]) : Buffer.from(head, "utf8");
    });
  const canonicalization = fc.constantFrom<DkimCanonicalization>("relaxed/relaxed", "relaxed/simple", "simple/relaxed", "simple/simple");

  it("240 messages (120 built by EmailMessage with attachments and 8-bit policies, 120 awkward raw ones), each signed with RSA-2048 and Ed25519", async () => {
    const built = fc.sample(fc.tuple(messageSpec, fc.constantFrom(policies.default, policies.eightBit, policies.smtputf8), canonicalization, canonicalization), { numRuns: 120, seed: 8463 });
    const raw = fc.sample(fc.tuple(rawMessage, canonicalization, canonicalization), { numRuns: 120, seed: 6376 });
    const inputs = [
      ...(await Promise.all(built.map(async ([spec, policy, c1, c2], i) => ({ bytes: await buildMessage(spec, `dkim-${i}`).asBytes(policy), c1, c2 })))),
      ...raw.map(([bytes, c1, c2]) => ({ bytes, c1, c2 })),
    ];
    const signers = (c1: DkimCanonicalization, c2: DkimCanonicalization) => [new DkimSigner(rsaSigner({ canonicalization: c1 })), new DkimSigner(edSigner({ canonicalization: c2 }))];
    const signed = await Promise.all(inputs.map(({ bytes, c1, c2 }) => signAndReceive(bytes, signers(c1, c2))));
    const results = await verdicts(signed);
    const failures = results.map((r, i) => ({ r, i })).filter(({ r }) => !(r.length === 2 && r.every(Boolean)));
    expect(
      failures.map(({ i, r }) => ({ i, r, c: [inputs[i]!.c1, inputs[i]!.c2], message: latin1(signed[i]!).slice(0, 1500) })),
      "every signature verifies",
    ).toEqual([]);
  });
});

describe("signer input", () => {
  it("a 1024-bit RSA key, the least receivers accept, signs and verifies", async () => {
    const message = await readFile(`${dkimFixtures}awkward.eml`);
    const signed = await signAndReceive(message, rsaSigner({ selector: "rsa1024", privateKey: keyPem("test-rsa-1024") }));
    expect(await verdicts([signed])).toEqual([[true]]);
  });

  it("takes options or a ready DkimSigner, alone or in a list", async () => {
    const message = Buffer.from("From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n");
    const fields: HeaderField[][] = [];
    for (const signers of [rsaSigner(), new DkimSigner(rsaSigner()), [new DkimSigner(edSigner()), rsaSigner()]]) {
      fields.push(await signRendered(renderedFrom(message), signers, { now: SIGNING_TIME }));
    }
    expect(fields.map((f) => f.length)).toEqual([1, 1, 2]);
    expect(fields[0]).toEqual(fields[1]);
  });
});
