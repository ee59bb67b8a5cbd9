import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as cmd from "../../src/smtp/commands.js";
import { InvalidArgumentError } from "../../src/errors.js";

describe("commands render exact bytes", () => {
  it("simple commands", () => {
    expect(cmd.ehlo("client.example.org")).toBe("EHLO client.example.org\r\n");
    expect(cmd.ehlo("[127.0.0.1]")).toBe("EHLO [127.0.0.1]\r\n");
    expect(cmd.ehlo("[IPv6:::1]")).toBe("EHLO [IPv6:::1]\r\n");
    expect(cmd.helo("localhost")).toBe("HELO localhost\r\n");
    expect(cmd.starttls()).toBe("STARTTLS\r\n");
    expect(cmd.data()).toBe("DATA\r\n");
    expect(cmd.rset()).toBe("RSET\r\n");
    expect(cmd.noop()).toBe("NOOP\r\n");
    expect(cmd.quit()).toBe("QUIT\r\n");
    expect(cmd.bdat(100, false)).toBe("BDAT 100\r\n");
    expect(cmd.bdat(0, true)).toBe("BDAT 0 LAST\r\n");
  });

  it("MAIL FROM with parameters", () => {
    expect(cmd.mailFrom("a@x")).toBe("MAIL FROM:<a@x>\r\n");
    expect(cmd.mailFrom("")).toBe("MAIL FROM:<>\r\n");
    expect(cmd.mailFrom("a@x", { size: 123, body: "8BITMIME" })).toBe("MAIL FROM:<a@x> SIZE=123 BODY=8BITMIME\r\n");
    expect(cmd.mailFrom("ü@x.de", { smtputf8: true })).toBe("MAIL FROM:<ü@x.de> SMTPUTF8\r\n");
    expect(cmd.mailFrom("a@x", { ret: "HDRS", envid: "QQ314159+x=y z" })).toBe("MAIL FROM:<a@x> RET=HDRS ENVID=QQ314159+2Bx+3Dy+20z\r\n");
  });

  it("RCPT TO with DSN parameters", () => {
    expect(cmd.rcptTo("b@y")).toBe("RCPT TO:<b@y>\r\n");
    expect(cmd.rcptTo("b@y", { notify: ["SUCCESS", "FAILURE"], orcpt: "b+tag@y" })).toBe(
      "RCPT TO:<b@y> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Btag@y\r\n",
    );
    expect(cmd.rcptTo("b@y", { notify: ["NEVER"] })).toBe("RCPT TO:<b@y> NOTIFY=NEVER\r\n");
    expect(cmd.rcptTo("ü@y", { smtputf8: true, orcpt: "ü+1@y" })).toBe("RCPT TO:<ü@y> ORCPT=utf-8;ü\\x{2B}1@y\r\n");
  });

  it("MAIL FROM and RCPT TO carry a quoted local part as RFC 5321 §4.1.2 writes it", () => {
    expect(cmd.rcptTo('"a b"@example.org')).toBe('RCPT TO:<"a b"@example.org>\r\n');
    expect(cmd.mailFrom('"a b"@example.org', { size: 1 })).toBe('MAIL FROM:<"a b"@example.org> SIZE=1\r\n');
    expect(cmd.rcptTo('"a\\"b\\\\c@d"@example.org')).toBe('RCPT TO:<"a\\"b\\\\c@d"@example.org>\r\n');
    expect(cmd.rcptTo('"ü b"@example.org', { smtputf8: true })).toBe('RCPT TO:<"ü b"@example.org>\r\n');
    expect(cmd.rcptTo('"a b"@example.org', { orcpt: '"a b"@example.org' })).toBe('RCPT TO:<"a b"@example.org> ORCPT=rfc822;"a+20b"@example.org\r\n');
  });

  it("AUTH lines", () => {
    expect(cmd.auth("PLAIN", "AGEAYg==")).toBe("AUTH PLAIN AGEAYg==\r\n");
    expect(cmd.auth("LOGIN")).toBe("AUTH LOGIN\r\n");
    expect(cmd.auth("PLAIN", "")).toBe("AUTH PLAIN =\r\n");
    expect(cmd.authResponse("dGlt")).toBe("dGlt\r\n");
    expect(cmd.authResponse("")).toBe("\r\n");
    expect(cmd.authResponse("*")).toBe("*\r\n");
  });
});

describe("commands reject injection and invalid arguments", () => {
  it.each([
    ["CRLF", "a@x>\r\nRCPT TO:<evil@x"],
    ["LF", "a@x\nDATA"],
    ["CR", "a@x\r"],
    ["NUL", "a\0@x"],
    ["space", "a b@x"],
    ["angle", "a>@x"],
    ["open angle", "<a@x"],
    ["tab", "a\t@x"],
    ["DEL", "a\x7f@x"],
    ["unclosed quote", '"a b@x'],
    ["space after a quoted local part", '"a" b@x'],
    ["text after the closing quote", '"a"b@x'],
    ["quoted domain", 'a@"x y"'],
    ["tab in quotes", '"a\tb"@x'],
    ["CRLF in quotes", '"a\r\nRSET"@x'],
    ["angle in quotes", '"a>b"@x'],
    ["backslash before a control", '"a\\\rb"@x'],
    ["backslash at the end", '"a\\"@x'],
  ])("address with %s", (_name, address) => {
    expect(() => cmd.mailFrom(address)).toThrow(InvalidArgumentError);
    expect(() => cmd.rcptTo(address)).toThrow(InvalidArgumentError);
  });

  it("non-ASCII without SMTPUTF8, lone surrogates, overlong paths, empty RCPT", () => {
    expect(() => cmd.mailFrom("ü@x")).toThrow(/needs SMTPUTF8/);
    expect(() => cmd.rcptTo("\ud800@x", { smtputf8: true })).toThrow(/surrogate/);
    expect(() => cmd.rcptTo("a".repeat(250) + "@xyz.de")).toThrow(/longer than/);
    expect(() => cmd.rcptTo("")).toThrow(InvalidArgumentError);
  });

  it("EHLO names", () => {
    for (const bad of ["", "a b", "x\r\nMAIL FROM:<a@b>", "-bad.org", "bad-.org", "a..b", "[1.2.3.4", "[1 2]", "ä.de"]) {
      expect(() => cmd.ehlo(bad), bad).toThrow(InvalidArgumentError);
    }
  });

  it("parameters", () => {
    expect(() => cmd.mailFrom("a@x", { size: -1 })).toThrow(InvalidArgumentError);
    expect(() => cmd.mailFrom("a@x", { size: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => cmd.mailFrom("a@x", { body: "BINARYMIME" as never })).toThrow(InvalidArgumentError);
    expect(() => cmd.mailFrom("a@x", { envid: "a\r\nb" })).toThrow(InvalidArgumentError);
    expect(() => cmd.mailFrom("a@x", { envid: "x".repeat(101) })).toThrow(InvalidArgumentError);
    expect(() => cmd.mailFrom("a@x", { ret: "ALL" as never })).toThrow(InvalidArgumentError);
    expect(() => cmd.rcptTo("b@y", { notify: ["NEVER", "SUCCESS"] })).toThrow(InvalidArgumentError);
    expect(() => cmd.rcptTo("b@y", { notify: [] })).toThrow(InvalidArgumentError);
    expect(() => cmd.rcptTo("b@y", { orcpt: "x\r\ny" })).toThrow(InvalidArgumentError);
    expect(() => cmd.rcptTo("b@y", { orcpt: "ü@y" })).toThrow(/SMTPUTF8/);
    expect(() => cmd.auth("PLAIN\r\nQUIT")).toThrow(InvalidArgumentError);
    expect(() => cmd.auth("PLAIN", "abc\r\nQUIT")).toThrow(InvalidArgumentError);
    expect(() => cmd.bdat(-1, true)).toThrow(InvalidArgumentError);
  });

  it("property: a rendered command is exactly one line, whatever the address", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.boolean(), (address, utf8) => {
        let line: string;
        try {
          line = cmd.rcptTo(address, { smtputf8: utf8 });
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidArgumentError);
          return;
        }
        expect(line.endsWith("\r\n")).toBe(true);
        expect(line.slice(0, -2)).not.toMatch(/[\r\n\0]/);
        expect(line.indexOf("<")).toBe(line.lastIndexOf("<"));
      }),
    );
  });

  it("xtext encodes + = and controls and round-trips", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 30 }), (s) => {
        const x = cmd.xtext(s);
        expect(x).toMatch(/^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/);
        expect(x.replace(/\+([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))).toBe(s);
      }),
    );
  });
});
