import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { MAX_BLANK_LINES, ReplyParser, formatReplyLines, parseReply, type SmtpReply } from "../../src/smtp/reply.js";
import { SmtpProtocolError } from "../../src/errors.js";
import { errorOf } from "../helpers/errors.js";

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

// `size: "max"`: the lengths declared here are reached (fast-check's default size stops near 10).
const textArb = fc.string({ unit: fc.constantFrom(..."abcXYZ 0123456789.-:;<>@é€"), maxLength: 200, size: "max" });
const replyArb = fc.record({
  code: fc.integer({ min: 200, max: 599 }),
  texts: fc.array(textArb, { minLength: 1, maxLength: 8, size: "max" }),
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
      fc.property(fc.array(replyArb, { minLength: 1, maxLength: 3, size: "max" }), fc.array(fc.nat(), { maxLength: 6, size: "max" }), fc.boolean(), (replies, rawCuts, enhanced) => {
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
      fc.uint8Array({ maxLength: 50, size: "max" }).map(noLf),
      fc.tuple(fc.integer({ min: 0, max: 999 }), fc.constantFrom("", " ", "-", "x", "\t"), fc.uint8Array({ maxLength: 20, size: "max" }).map(noLf))
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

  it.each([
    ["a non-digit below 0 in the second place", "2/0 nope\r\n"],
    ["a non-digit below 0 in the third place", "25/ nope\r\n"],
    ["a non-digit above 9 in the third place", "25: nope\r\n"],
    ["a non-digit above 9 in the second place", "2:0 nope\r\n"],
  ])("rejects %s of the code", (_name, wire) => {
    expect(() => parseReply(wire)).toThrow(/malformed reply line/);
  });

  it("says which codes differ in a multi-line reply", () => {
    expect(errorOf(() => parseReply("250-a\r\n251 b\r\n")).message).toBe(
      "The server sent a multi-line reply whose codes differ (250 then 251)",
    );
  });

  it("shows a malformed line in the error, cut at 80 characters", () => {
    const line = "x".repeat(79) + "!" + "y".repeat(120);
    const message = errorOf(() => parseReply(`${line}\r\n`)).message;
    expect(message).toBe(`The server sent a malformed reply line "${"x".repeat(79)}!"; expected a code 200–599 then " " or "-"`);
  });
});

describe("parseReply takes exactly one complete reply", () => {
  it.each([
    ["nothing", ""],
    ["a line without its end", "250 OK"],
    ["a multi-line reply without its last line", "250-first\r\n"],
    ["two replies", "250 OK\r\n251 also\r\n"],
    ["a reply and the start of the next", "250 OK\r\n2"],
  ])("refuses %s", (_name, wire) => {
    expect(errorOf(() => parseReply(wire))).toMatchObject({ name: "SmtpProtocolError", message: "Expected exactly one complete reply" });
  });

  it("reads bytes as UTF-8, like a string", () => {
    expect(parseReply(Buffer.from("250 héllo\r\n", "utf8")).text).toBe("héllo");
    expect(parseReply(new Uint8Array(Buffer.from("250 héllo\r\n", "utf8"))).text).toBe("héllo");
  });
});

describe("ReplyParser state", () => {
  it("is mid-reply from the first byte of a line until the reply's last line ends", () => {
    const p = new ReplyParser();
    expect(p.midReply).toBe(false);
    p.push(Buffer.from("2"));
    expect(p.midReply).toBe(true);
    p.push(Buffer.from("50-a\r\n"));
    expect(p.midReply).toBe(true);
    p.push(Buffer.from("250 b\r\n"));
    expect(p.midReply).toBe(false);
    expect(p.pending).toBe(1);
  });

  it("reset() forgets a partial line, a partial multi-line reply and unread replies", () => {
    const p = new ReplyParser();
    p.push(Buffer.from("250 one\r\n251-two\r\n251 three\r\n252-four\r\n25"));
    expect(p.pending).toBe(2);
    p.reset();
    expect(p.pending).toBe(0);
    expect(p.midReply).toBe(false);
    expect(p.next()).toBeUndefined();
    // A reply with another code is not taken for the rest of the forgotten one.
    p.push(Buffer.from("220 ready\r\n"));
    expect(p.next()).toEqual({ code: 220, enhancedCode: undefined, lines: ["ready"], text: "ready" });
    expect(p.pending).toBe(0);
  });

  it("reset() also forgets how long the forgotten reply was", () => {
    const p = new ReplyParser({ maxReplyLength: 100 });
    p.push(Buffer.from("250-" + "a".repeat(80) + "\r\n"));
    p.reset();
    p.push(Buffer.from("250 " + "b".repeat(80) + "\r\n"));
    expect(p.next()?.text).toBe("b".repeat(80));
  });
});

describe("ReplyParser limits, at each bound and one past it", () => {
  /** One line of exactly `length` bytes, CRLF included. */
  const lineOf = (length: number, sep = " ") => `250${sep}${"a".repeat(length - 6)}\r\n`;

  it("a reply line of 8192 bytes is read; 8193 is refused", () => {
    expect(Buffer.byteLength(lineOf(8192))).toBe(8192);
    expect(parseReply(lineOf(8192)).text).toHaveLength(8186);
    expect(errorOf(() => parseReply(lineOf(8193))).message).toBe("The server sent a reply line longer than 8192 bytes");
  });

  it("the line bound counts bytes across chunks, and starts again on each line", () => {
    const p = new ReplyParser();
    const line = Buffer.from(lineOf(8192, "-"));
    for (let i = 0; i < 3; i++) {
      p.push(line.subarray(0, 5000));
      p.push(line.subarray(5000));
    }
    p.push(Buffer.from(lineOf(8192)));
    expect(p.next()?.lines).toHaveLength(4);
    const over = new ReplyParser();
    over.push(Buffer.from("250 " + "a".repeat(5000)));
    expect(() => over.push(Buffer.from("a".repeat(3189)))).toThrow(/longer than 8192/);
  });

  /** A multi-line reply of exactly `length` bytes made of lines of `lineLength` bytes (the last one shorter). */
  function replyOf(length: number, lineLength = 1000): string {
    const lines: string[] = [];
    let left = length;
    while (left > lineLength + 6) {
      lines.push(lineOf(lineLength, "-"));
      left -= lineLength;
    }
    lines.push(lineOf(left));
    return lines.join("");
  }

  it("a reply of 65536 bytes is read; 65537 is refused", () => {
    expect(Buffer.byteLength(replyOf(65536))).toBe(65536);
    const reply = parseReply(replyOf(65536));
    expect(reply.code).toBe(250);
    expect(reply.lines).toHaveLength(66);
    expect(errorOf(() => parseReply(replyOf(65537))).message).toBe("The server sent a reply longer than 65536 bytes");
  });

  it("the reply bound holds however the bytes arrive, and starts again on each reply", () => {
    const wire = Buffer.from(replyOf(65536) + replyOf(65536) + replyOf(65536));
    for (const chunk of [wire.length, 4096, 999, 1]) {
      const p = new ReplyParser();
      for (let i = 0; i < wire.length; i += chunk) p.push(wire.subarray(i, i + chunk));
      expect(p.pending).toBe(3);
    }
  });

  it("bounds given as options are bytes too, exact at the bound", () => {
    expect(parseReply("250 abcd\r\n", { maxLineLength: 10 }).text).toBe("abcd");
    expect(() => parseReply("250 abcde\r\n", { maxLineLength: 10 })).toThrow(/longer than 10 bytes/);
    expect(parseReply("250-ab\r\n250 cd\r\n", { maxReplyLength: 16 }).text).toBe("ab cd");
    expect(() => parseReply("250-ab\r\n250 cde\r\n", { maxReplyLength: 16 })).toThrow(/reply longer than 16 bytes/);
    expect(parseReply("250 é\r\n", { maxLineLength: 8 }).text).toBe("é");
    expect(() => parseReply("250 éa\r\n", { maxLineLength: 8 })).toThrow(/longer than 8 bytes/);
  });
});

describe("RFC 3463 enhanced status codes", () => {
  const enhanced = (wire: string) => parseReply(wire, { enhancedStatusCodes: true });

  it.each([
    ["250 2.0.0 ok\r\n", "2.0.0", "ok"],
    ["250 2.123.456 three digits each\r\n", "2.123.456", "three digits each"],
    ["550 5.7.9 nines\r\n", "5.7.9", "nines"],
    ["450 4.99.99\r\n", "4.99.99", ""],
  ])("splits %j", (wire, code, text) => {
    expect(enhanced(wire)).toMatchObject({ enhancedCode: code, text });
  });

  it.each([
    ["a missing subject", "250 2..1 odd\r\n"],
    ["a missing detail", "250 2.1. odd\r\n"],
    ["a 4-digit subject", "250 2.1234.1 odd\r\n"],
    ["a 4-digit detail", "250 2.1.1234 odd\r\n"],
    ["no dot after the class", "250 2x1.1 odd\r\n"],
    ["no dot after the subject", "250 2.1x1 odd\r\n"],
    ["a letter right after the detail", "250 2.1.1x odd\r\n"],
    ["a colon right after the detail", "250 2.1.1: odd\r\n"],
    ["a class that is not the reply's", "250 4.1.1 odd\r\n"],
  ])("leaves the text alone with %s", (_name, wire) => {
    const reply = enhanced(wire);
    expect(reply.enhancedCode).toBeUndefined();
    expect(reply.text).toBe(wire.slice(4, -2));
  });

  it("takes the first line's code, and splits every line's", () => {
    expect(enhanced("250-2.1.0 first\r\n250-second\r\n250 2.1.5 third\r\n")).toMatchObject({
      enhancedCode: "2.1.0",
      lines: ["first", "second", "third"],
    });
    expect(enhanced("250-first\r\n250 2.1.5 second\r\n")).toMatchObject({ enhancedCode: undefined, lines: ["first", "second"] });
  });
});

describe("formatReplyLines", () => {
  it("renders a reply without lines as one line holding the code", () => {
    expect(formatReplyLines({ code: 421, lines: [], text: "" })).toEqual(["421 "]);
    expect(formatReplyLines({ code: 250, enhancedCode: "2.0.0", lines: [], text: "" })).toEqual(["250 2.0.0 "]);
  });
});

