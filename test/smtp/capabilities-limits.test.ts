/**
 * parseEhlo and Capabilities at their edges: which words are EHLO keywords (RFC 5321
 * §4.1.1.1: a letter or digit, then letters, digits and hyphens, here at most 64), the SIZE
 * number (RFC 1870: digits only, up to 15 of them), the legacy `AUTH=` form, keywords sent
 * twice, several spaces between parameters, and what toJSON shows.
 */
import { describe, expect, it } from "vitest";
import { Capabilities, parseEhlo } from "../../src/smtp/capabilities.js";
import { parseReply } from "../../src/smtp/reply.js";

/** An EHLO reply: the greeting line, then each of `lines`. */
const ehlo = (...lines: string[]) => parseEhlo(parseReply(["mx.example.org greets you", ...lines].map((l, i, all) => `250${i === all.length - 1 ? " " : "-"}${l}\r\n`).join("")));
const keys = (caps: Capabilities) => [...caps.extensions.keys()];

describe("EHLO keywords", () => {
  it("letters, digits and hyphens, starting with a letter or a digit", () => {
    expect(keys(ehlo("X-EXPS", "0ABC", "AZ", "az", "09", "A-1-"))).toEqual(["X-EXPS", "0ABC", "AZ", "09", "A-1-"]);
    // Each end of each range, first and later in a word.
    expect(keys(ehlo("a", "zz", "B", "Z", "0", "9", "b9a", "Y0Z"))).toEqual(["A", "ZZ", "B", "Z", "0", "9", "B9A", "Y0Z"]);
  });

  it("the characters just outside each range are not keyword characters", () => {
    // '/' and ':' surround the digits, '@' and '[' the upper case, '`' and '{' the lower case.
    for (const c of ["/", ":", "@", "[", "`", "{", "_", ".", "\x7f", "é"]) {
      expect(keys(ehlo(`A${c}`, `${c}A`)), c).toEqual([]);
    }
    expect(keys(ehlo("-A", "A-"))).toEqual(["A-"]);
  });

  it("at most 64 characters", () => {
    const k64 = "K".repeat(64);
    expect(keys(ehlo(k64, "L".repeat(65)))).toEqual([k64]);
  });

  it("keywords are upper-cased; has() and params() take any case", () => {
    const caps = ehlo("size 1000", "x-Thing a B");
    expect(keys(caps)).toEqual(["SIZE", "X-THING"]);
    expect(caps.sizeLimit).toBe(1000);
    expect(caps.has("Size")).toBe(true);
    expect(caps.has("x-thing")).toBe(true);
    expect(caps.has("PIPELINING")).toBe(false);
    expect(caps.params("x-thing")).toEqual(["a", "B"]);
    expect(caps.params("size")).toEqual(["1000"]);
    expect(caps.params("chunking")).toBeUndefined();
  });

  it("parameters split on any run of spaces; a keyword sent twice keeps both lists", () => {
    const caps = ehlo("AUTH  PLAIN   LOGIN ", "  DSN", "AUTH CRAM-MD5");
    expect(caps.params("AUTH")).toEqual(["PLAIN", "LOGIN", "CRAM-MD5"]);
    expect(caps.params("DSN")).toEqual([]);
    expect(caps.dsn).toBe(true);
    expect([...caps.authMechanisms]).toEqual(["PLAIN", "LOGIN", "CRAM-MD5"]);
  });

  it("blank lines and junk are skipped, the lines after them still read", () => {
    expect(keys(ehlo("", "   ", "!!", "PIPELINING"))).toEqual(["PIPELINING"]);
  });

  it("the first line names the server and is never an extension, even when it looks like one", () => {
    const caps = parseEhlo(parseReply("250-PIPELINING\r\n250 CHUNKING\r\n"));
    expect(keys(caps)).toEqual(["CHUNKING"]);
    expect(caps.pipelining).toBe(false);
    expect(caps.chunking).toBe(true);
  });
});

describe("what each extension sets", () => {
  it("each flag alone", () => {
    const flags = ["eightBitMime", "smtputf8", "pipelining", "starttls", "dsn", "enhancedStatusCodes", "chunking"] as const;
    const words = ["8BITMIME", "SMTPUTF8", "PIPELINING", "STARTTLS", "DSN", "ENHANCEDSTATUSCODES", "CHUNKING"];
    words.forEach((word, i) => {
      const caps = ehlo(word);
      for (const [j, flag] of flags.entries()) expect(caps[flag], `${word}: ${flag}`).toBe(i === j);
      expect(caps.esmtp).toBe(true);
      expect(caps.sizeLimit).toBeUndefined();
      expect(caps.authMechanisms.size).toBe(0);
    });
  });

  it("none(): what a server that only answered HELO offers", () => {
    const caps = Capabilities.none();
    expect(caps.esmtp).toBe(false);
    expect(caps.extensions.size).toBe(0);
    expect(caps.sizeLimit).toBeUndefined();
    expect(caps.toJSON()).toEqual({
      esmtp: false,
      sizeLimit: undefined,
      eightBitMime: false,
      smtputf8: false,
      pipelining: false,
      starttls: false,
      dsn: false,
      enhancedStatusCodes: false,
      chunking: false,
      authMechanisms: [],
      extensions: {},
    });
  });

  it("toJSON shows every field and the extensions as sent", () => {
    const caps = ehlo("SIZE 35882577", "8BITMIME", "AUTH LOGIN xoauth2", "ENHANCEDSTATUSCODES", "PIPELINING", "CHUNKING", "SMTPUTF8", "STARTTLS", "DSN");
    expect(caps.toJSON()).toEqual({
      esmtp: true,
      sizeLimit: 35882577,
      eightBitMime: true,
      smtputf8: true,
      pipelining: true,
      starttls: true,
      dsn: true,
      enhancedStatusCodes: true,
      chunking: true,
      authMechanisms: ["LOGIN", "XOAUTH2"],
      extensions: {
        SIZE: ["35882577"],
        "8BITMIME": [],
        AUTH: ["LOGIN", "xoauth2"],
        ENHANCEDSTATUSCODES: [],
        PIPELINING: [],
        CHUNKING: [],
        SMTPUTF8: [],
        STARTTLS: [],
        DSN: [],
      },
    });
    expect(JSON.parse(JSON.stringify(caps))).toEqual({ ...caps.toJSON(), sizeLimit: 35882577 });
  });
});

describe("SIZE (RFC 1870)", () => {
  it("a number of up to 15 digits is the limit", () => {
    expect(ehlo("SIZE 1").sizeLimit).toBe(1);
    expect(ehlo("SIZE 0").sizeLimit).toBe(0);
    expect(ehlo("SIZE 999999999999999").sizeLimit).toBe(999999999999999);
    expect(ehlo("SIZE 000000000000012").sizeLimit).toBe(12);
  });

  it("anything else means no fixed limit (0): no number, 16 digits, a sign, a unit, text around the digits", () => {
    for (const p of ["", "1234567890123456", "-5", "+5", "10M", "x10", "10x", "1 0", "1.5", "0x10", "١٢"]) {
      expect(ehlo(`SIZE ${p}`).sizeLimit, p).toBe(p === "1 0" ? 1 : 0);
    }
  });
});

describe("AUTH mechanisms", () => {
  it("upper-cased, from AUTH and the legacy AUTH= form, each once", () => {
    const caps = ehlo("AUTH plain Login", "AUTH=LOGIN cram-md5");
    expect([...caps.authMechanisms]).toEqual(["PLAIN", "LOGIN", "CRAM-MD5"]);
    expect(caps.params("AUTH")).toEqual(["plain", "Login"]);
    expect(caps.params("AUTH=")).toEqual(["LOGIN", "cram-md5"]);
  });

  it("AUTH= in any case, on several lines, merged in order", () => {
    const caps = ehlo("auth=login plain", "Auth=XOAUTH2");
    expect(caps.params("AUTH=")).toEqual(["login", "plain", "XOAUTH2"]);
    expect([...caps.authMechanisms]).toEqual(["LOGIN", "PLAIN", "XOAUTH2"]);
    expect(caps.has("AUTH")).toBe(false);
  });

  it("a bare AUTH= names no mechanism and is not a keyword", () => {
    const caps = ehlo("AUTH=", "AUTH= PLAIN");
    expect(keys(caps)).toEqual([]);
    expect(caps.authMechanisms.size).toBe(0);
  });
});
