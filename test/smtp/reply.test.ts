import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { MAX_BLANK_LINES, ReplyParser, formatReplyLines, parseReply, type SmtpReply } from "../../src/smtp/reply.js";
import { SmtpProtocolError } from "../../src/errors.js";

function feed(parser: ReplyParser, bytes: Buffer, cuts: number[]): SmtpReply[] {
  const out: SmtpReply[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    parser.push(bytes.subarray(start, cut));
    start = cut;
    for (let r = parser.next(); r; r = parser.next()) out.push(r);
  }
  return out;
}

const textArb = fc.string({ unit: fc.constantFrom(..."abcXYZ 0123456789.-:;<>@é€"), maxLength: 40 });
const replyArb = fc.record({
  code: fc.integer({ min: 200, max: 599 }),
  texts: fc.array(textArb, { minLength: 1, maxLength: 5 }),
});

function render(code: number, texts: string[]): string {
  return texts.map((t, i) => `${code}${i === texts.length - 1 ? " " : "-"}${t}\r\n`).join("");
}

describe("ReplyParser", () => {
  it("parses a single-line reply", () => {
    expect(parseReply("250 OK\r\n")).toEqual({ code: 250, enhancedCode: undefined, lines: ["OK"], text: "OK" });
  });

  it("parses a multi-line reply whole", () => {
    const r = parseReply("250-mail.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
    expect(r.code).toBe(250);
    expect(r.lines).toEqual(["mail.example.org", "PIPELINING", "SIZE 1000"]);
  });

  it("accepts a bare code line and empty continuation text", () => {
    expect(parseReply("250-\r\n250\r\n").lines).toEqual(["", ""]);
  });

  it("returns need-more for a partial reply", () => {
    const p = new ReplyParser();
    p.push(Buffer.from("250-first\r\n250 sec"));
    expect(p.next()).toBeUndefined();
    expect(p.midReply).toBe(true);
    p.push(Buffer.from("ond\r\n"));
    expect(p.next()?.lines).toEqual(["first", "second"]);
  });

  it("splits enhanced status codes only when enabled", () => {
    const wire = "550-5.1.1 no such user\r\n550 5.1.1 really\r\n";
    const on = parseReply(wire, { enhancedStatusCodes: true });
    expect(on.enhancedCode).toBe("5.1.1");
    expect(on.lines).toEqual(["no such user", "really"]);
    expect(on.text).toBe("no such user really");
    const off = parseReply(wire);
    expect(off.enhancedCode).toBeUndefined();
    expect(off.lines[0]).toBe("5.1.1 no such user");
  });

  it("does not split an enhanced code whose class differs from the reply code", () => {
    const r = parseReply("250 5.1.1 odd\r\n", { enhancedStatusCodes: true });
    expect(r.enhancedCode).toBeUndefined();
    expect(r.text).toBe("5.1.1 odd");
    expect(parseReply("250 2.0.0\r\n", { enhancedStatusCodes: true })).toMatchObject({ enhancedCode: "2.0.0", text: "" });
    expect(parseReply("250 2.0.0000 x\r\n", { enhancedStatusCodes: true }).enhancedCode).toBeUndefined();
  });

  it("skips empty lines before a reply, up to MAX_BLANK_LINES in a row; inside a reply they are malformed", () => {
    expect(parseReply("\r\n\n220 hi\r\n").text).toBe("hi");
    expect(parseReply(`${"\r\n".repeat(MAX_BLANK_LINES)}220 hi\r\n`).text).toBe("hi");
    expect(() => parseReply(`${"\r\n".repeat(MAX_BLANK_LINES + 1)}220 hi\r\n`)).toThrow(SmtpProtocolError);
    expect(() => parseReply("250-a\r\n\r\n250 b\r\n")).toThrow(SmtpProtocolError);
    // The count starts again after each reply.
    const p = new ReplyParser();
    p.push(Buffer.from(`${"\r\n".repeat(MAX_BLANK_LINES)}250 a\r\n${"\r\n".repeat(MAX_BLANK_LINES)}250 b\r\n`));
    expect([p.next()?.text, p.next()?.text]).toEqual(["a", "b"]);
  });

  it("tolerates a bare LF terminator", () => {
    expect(parseReply("220 hi\n").text).toBe("hi");
  });

  it.each([
    ["code outside 2xx-5xx", "100 nope\r\n"],
    ["6xx", "600 nope\r\n"],
    ["non-digit code", "2x0 nope\r\n"],
    ["short line", "25\r\n"],
    ["bad separator", "250_x\r\n"],
    ["mixed codes", "250-a\r\n251 b\r\n"],
    ["garbage", "hello\r\n"],
  ])("rejects %s", (_name, wire) => {
    expect(() => parseReply(wire)).toThrow(SmtpProtocolError);
  });

  it("enforces the line limit before the line ends", () => {
    const p = new ReplyParser();
    expect(() => p.push(Buffer.from("250 " + "a".repeat(8 * 1024)))).toThrow(/longer than 8192/);
    const ok = new ReplyParser();
    ok.push(Buffer.from("250 " + "a".repeat(8192 - 6) + "\r\n"));
    expect(ok.next()?.code).toBe(250);
  });

  it("enforces the reply limit", () => {
    const p = new ReplyParser();
    const line = "250-" + "a".repeat(1000) + "\r\n";
    expect(() => {
      for (let i = 0; i < 70; i++) p.push(Buffer.from(line));
    }).toThrow(/reply longer than 65536/);
  });

  it("property: any valid reply split anywhere parses the same", () => {
    fc.assert(
      fc.property(fc.array(replyArb, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (replies, rawCuts, enhanced) => {
        const bytes = Buffer.from(replies.map((r) => render(r.code, r.texts)).join(""), "utf8");
        const whole = feed(new ReplyParser({ enhancedStatusCodes: enhanced }), bytes, []);
        expect(whole.map((r) => r.code)).toEqual(replies.map((r) => r.code));
        expect(whole.map((r) => r.lines)).toEqual(enhanced ? whole.map((r) => r.lines) : replies.map((r) => r.texts));
        const cuts = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        expect(feed(new ReplyParser({ enhancedStatusCodes: enhanced }), bytes, cuts)).toEqual(whole);
      }),
    );
  });

  it("every single split position and one-byte feeding give the same reply", () => {
    const bytes = Buffer.from("250-mx.example.org says hé\r\n250-8BITMIME\r\n250 2.0.0 ok\r\n", "utf8");
    const whole = feed(new ReplyParser({ enhancedStatusCodes: true }), bytes, []);
    for (let i = 0; i <= bytes.length; i++) {
      expect(feed(new ReplyParser({ enhancedStatusCodes: true }), bytes, [i])).toEqual(whole);
    }
    const oneByOne = Array.from({ length: bytes.length }, (_, i) => i);
    expect(feed(new ReplyParser({ enhancedStatusCodes: true }), bytes, oneByOne)).toEqual(whole);
  });

  it("formatReplyLines (what transcripts show) parses back to the same reply", () => {
    for (const wire of ["250 OK\r\n", "250-2.1.0 first\r\n250 2.1.0 second\r\n", "550 5.1.1 <x@y> no\r\n", "354\r\n"]) {
      const reply = parseReply(wire, { enhancedStatusCodes: true });
      const again = parseReply(formatReplyLines(reply).map((l) => `${l}\r\n`).join(""), { enhancedStatusCodes: true });
      expect(again).toEqual(reply);
    }
  });

  it("unread replies are bounded: more than maxPending waiting is a protocol error", () => {
    const p = new ReplyParser();
    p.push(Buffer.from("250 a\r\n250 b\r\n"), 2);
    expect(p.pending).toBe(2);
    expect(() => p.push(Buffer.from("250 c\r\n"), 2)).toThrow(SmtpProtocolError);
    const flood = new ReplyParser();
    expect(() => flood.push(Buffer.from("250 ok\r\n".repeat(10_000)), 1)).toThrow(/more replies than were asked for/);
    expect(flood.pending).toBe(1);
  });

  it("property: malformed first lines are rejected, well-formed ones accepted", () => {
    // One line (no LF inside), valid exactly when it starts with a code 200–599 followed by
    // the end of the line, " " or "-" (RFC 5321 §4.2), or empty (skipped). Judged here on
    // the string, not by the parser.
    const wellFormed = (line: Buffer) => /^[2-5][0-9]{2}([ -]|$)/.test(line.toString("latin1"));
    const noLf = (bytes: Uint8Array) => Buffer.from(bytes.map((b) => (b === 0x0a ? 0x20 : b)));
    const lineArb = fc.oneof(
      fc.uint8Array({ maxLength: 50 }).map(noLf),
      fc.tuple(fc.integer({ min: 0, max: 999 }), fc.constantFrom("", " ", "-", "x", "\t"), fc.uint8Array({ maxLength: 20 }).map(noLf))
        .map(([code, sep, rest]) => Buffer.concat([Buffer.from(String(code).padStart(3, "0") + sep, "latin1"), rest])),
    );
    fc.assert(
      fc.property(lineArb, (line) => {
        const p = new ReplyParser();
        let error: unknown;
        try {
          p.push(Buffer.concat([line, Buffer.from("\r\n")]));
        } catch (e) {
          error = e;
        }
        if (wellFormed(line)) {
          expect(error).toBeUndefined();
          // "-" continues the reply; anything else completes it.
          expect(p.pending + (p.midReply ? 1 : 0)).toBe(1);
        } else if (line.length === 0) {
          // An empty line between replies is skipped: neither an error nor a reply.
          expect(error).toBeUndefined();
          expect(p.pending + (p.midReply ? 1 : 0)).toBe(0);
        } else {
          expect(error).toBeInstanceOf(SmtpProtocolError);
        }
      }),
    );
  });
});
