// The benchmarks' yardsticks (bench/reference/) must be correct, or the ratios printed
// against them mean nothing: a reference that cuts a corner looks faster than it is.
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bEncodeHeader } from "../../bench/reference/b-encoder.js";
import { composeReference } from "../../bench/reference/composer.js";
import { ReferenceQpEncoder } from "../../bench/reference/qp.js";
import { dataBytes, rawSend, rawSendParallel } from "../../bench/reference/raw-smtp.js";
import { decodeWords } from "../../src/mime/encoding/encoded-word.js";
import { decodeQuotedPrintable } from "../../src/mime/encoding/quoted-printable.js";
import { unfold } from "../../src/mime/headers.js";
import { parseMessageSync } from "../../src/parse/index.js";
import { startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";

const lines = (text: string) => text.split("\r\n");

describe("bench reference: B-encoder-and-fold", () => {
  const check = (text: string) => {
    const header = bEncodeHeader("Subject", text);
    expect(header.endsWith("\r\n")).toBe(true);
    for (const line of lines(header.slice(0, -2))) {
      expect(line.length).toBeLessThanOrEqual(76);
      expect(line).toMatch(/^[\x20-\x7e]*$/);
    }
    expect(decodeWords(unfold(header.slice("Subject:".length, -2)).trimStart())).toBe(text);
  };

  it("encodes and folds the bench's subjects so that they decode back", () => {
    check("Réunion trimestrielle : résultats, prévisions et café ☕");
    check("Квартальный отчёт: итоги и планы");
    check("😀".repeat(40));
  });

  it("never splits a character and keeps every line within 76 octets, for any text", () => {
    fc.assert(fc.property(fc.string({ unit: "grapheme", minLength: 1, maxLength: 200 }), check));
  });
});

describe("bench reference: quoted-printable loop", () => {
  const encode = (input: Buffer, cut: number[]) => {
    const encoder = new ReferenceQpEncoder();
    const out: Buffer[] = [];
    let from = 0;
    for (const at of [...cut, input.length]) {
      out.push(encoder.encode(input.subarray(from, Math.max(from, at))));
      from = Math.max(from, at);
    }
    out.push(encoder.flush());
    return Buffer.concat(out).toString("latin1");
  };

  it("decodes back to the input with CRLF line breaks, in lines of at most 76, however the input is cut", () => {
    const bytes = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));
    const text = fc.string({ unit: "binary", maxLength: 400 }).map((s) => Buffer.from(s, "utf8"));
    fc.assert(
      fc.property(fc.oneof(bytes, text), fc.array(fc.nat(600), { maxLength: 4 }), (input, cuts) => {
        const encoded = encode(input, cuts.sort((a, b) => a - b));
        const canonical = Buffer.from(input.toString("latin1").replace(/\r\n|\r|\n/g, "\r\n"), "latin1");
        expect(decodeQuotedPrintable(encoded)).toEqual(canonical);
        for (const line of lines(encoded)) {
          expect(line.length).toBeLessThanOrEqual(76);
          expect(line).toMatch(/^[\x21-\x7e \t]*$/);
          expect(line).not.toMatch(/[ \t]$/);
        }
      }),
    );
  });
});

describe("bench reference: fixed-structure composer", () => {
  it("builds a message that reads back as its input", () => {
    const attachments = [randomBytes(5000), randomBytes(1)].map((content, i) => ({ filename: `f${i}.bin`, content }));
    const html = "<p>Hello, <b>world</b> ÷ ü</p>".repeat(60);
    const text = "Hello,\n\n— Ann\n.\nFrom here\n";
    const bytes = composeReference({
      subject: "Quarterly report — résumé",
      text,
      html,
      from: { name: "Ann Müller", address: "ann@example.com" },
      to: [{ name: "", address: "bob@example.org" }, { name: "Zoë", address: "zoe@example.org" }],
      attachments,
    });
    const parsed = parseMessageSync(bytes);
    expect(parsed.defects).toEqual([]);
    expect(parsed.subject).toBe("Quarterly report — résumé");
    expect(parsed.from).toEqual([{ name: "Ann Müller", address: "ann@example.com" }]);
    expect(parsed.to.map((m) => m.address)).toEqual(["bob@example.org", "zoe@example.org"]);
    expect(parsed.text).toBe(text);
    expect(parsed.html).toBe(html);
    expect(parsed.attachments.map((a) => [a.filename, a.content])).toEqual(attachments.map((a) => [a.filename, a.content]));
  });
});

describe("bench reference: raw SMTP client", () => {
  let server: FakeSmtpServer;
  beforeAll(async () => {
    server = await startFakeServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it("dot-stuffs and terminates the message", () => {
    expect(dataBytes(Buffer.from(".a\r\nb\r\n..c\r\n")).toString()).toBe("..a\r\nb\r\n...c\r\n.\r\n");
    expect(dataBytes(Buffer.from("x")).toString()).toBe("x\r\n.\r\n");
  });

  it.each(["one", "two", "lockstep"] as const)("delivers every copy intact, %s round trip(s) per message", async (mode) => {
    const message = Buffer.from("Subject: x\r\n\r\n.leading dot\r\nbody\r\n");
    const before = server.received.length;
    await rawSend({ host: server.host, port: server.port, from: "a@example.com", to: ["b@example.org", "c@example.org"], message, count: 3, mode });
    const got = server.received.slice(before);
    expect(got.map((m) => [m.mailFrom, m.rcptTo, m.data.toString()])).toEqual(
      Array.from({ length: 3 }, () => ["a@example.com", ["b@example.org", "c@example.org"], message.toString()]),
    );
    const commands = server.commands(server.connections);
    const perMessage = ["MAIL FROM:<a@example.com>", "RCPT TO:<b@example.org>", "RCPT TO:<c@example.org>", "DATA"];
    expect(commands).toEqual(["EHLO bench.example", ...perMessage, ...perMessage, ...perMessage, "QUIT"]);
  });

  it("spreads the copies over several connections", async () => {
    const before = server.received.length;
    await rawSendParallel({ host: server.host, port: server.port, from: "a@example.com", to: ["b@example.org"], message: Buffer.from("x\r\n"), count: 5, mode: "one" }, 3);
    expect(server.received.length - before).toBe(5);
  });

  it("fails on a reply it did not expect", async () => {
    const refusing = await startFakeServer({ onCommand: (cmd) => (cmd.verb === "RCPT" ? "550 5.1.1 no such user" : undefined) });
    try {
      await expect(rawSend({ host: refusing.host, port: refusing.port, from: "a@example.com", to: ["b@example.org"], message: Buffer.from("x\r\n"), count: 1, mode: "one" })).rejects.toThrow(/expected 250 but got: 550/);
    } finally {
      await refusing.close();
    }
  });
});
