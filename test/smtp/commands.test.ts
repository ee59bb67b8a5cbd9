import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as cmd from "../../src/smtp/commands.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { errorOf } from "../helpers/errors.js";

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
    // Addresses of clean characters (ASCII atext and other Unicode) up to 300 long, so on
    // both sides of the 254-octet bound, half of them with one character that must be
    // refused put in: controls, space, angle brackets, DEL, a lone surrogate.
    const clean = fc.string({
      unit: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(..."abcxyz019.@!#$%&'*+-/=?^_`{|}~") }, { weight: 1, arbitrary: fc.constantFrom("é", "中", "😀") }),
      maxLength: 300,
      size: "max",
    });
    const refused = fc.constantFrom("\0", "\t", "\n", "\r", " ", "<", ">", "\x7f", "\ud800", "\udfff");
    const address = fc.oneof(clean, fc.tuple(clean, refused, clean).map(([a, b, c]) => a + b + c));
    /** What RFC 5321 (and 6531 with SMTPUTF8) allows between the brackets, judged on the string. */
    const allowed = (a: string, utf8: boolean) =>
      a.length > 0 && a.isWellFormed() && Buffer.byteLength(a) <= 254 && [...a].every((ch) => (ch.codePointAt(0)! > 0x7f ? utf8 : /^[!-;=?-~]$/.test(ch)));
    fc.assert(
      fc.property(address, fc.boolean(), (address, utf8) => {
        let line: string | undefined;
        try {
          line = cmd.rcptTo(address, { smtputf8: utf8 });
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidArgumentError);
        }
        expect(line).toBe(allowed(address, utf8) ? `RCPT TO:<${address}>\r\n` : undefined);
      }),
      { numRuns: 300 },
    );
  });

  it("xtext encodes + = and controls and round-trips", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 100, size: "max" }), (s) => {
        const x = cmd.xtext(s);
        expect(x).toMatch(/^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/);
        expect(x.replace(/\+([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))).toBe(s);
      }),
    );
  });
});

/** The message of the InvalidArgumentError `fn` throws. */
function refusal(fn: () => unknown): string {
  const error = errorOf(fn);
  expect(error).toBeInstanceOf(InvalidArgumentError);
  return error.message;
}

describe("what each refusal says", () => {
  it.each<[string, () => unknown, string]>([
    ["a space in MAIL FROM", () => cmd.mailFrom("a b@x"), 'MAIL FROM address "a b@x" contains a space, which is not allowed in an SMTP envelope address'],
    ["a CR in RCPT TO", () => cmd.rcptTo("a\r@x"), 'RCPT TO address "a\\r@x" contains a carriage return (CR), which is not allowed in an SMTP envelope address'],
    ["an LF", () => cmd.rcptTo("a\n@x"), 'RCPT TO address "a\\n@x" contains a line feed (LF), which is not allowed in an SMTP envelope address'],
    ["a NUL", () => cmd.rcptTo("a\0@x"), 'RCPT TO address "a\\u0000@x" contains a NUL character, which is not allowed in an SMTP envelope address'],
    ["a tab", () => cmd.rcptTo("a\t@x"), 'RCPT TO address "a\\t@x" contains the character U+0009, which is not allowed in an SMTP envelope address'],
    ["DEL even with SMTPUTF8", () => cmd.rcptTo("a\x7f@x", { smtputf8: true }), 'RCPT TO address "a\x7f@x" contains the character U+007F, which is not allowed in an SMTP envelope address'],
    ["<", () => cmd.rcptTo("<a@x"), 'RCPT TO address "<a@x" contains the character U+003C, which is not allowed in an SMTP envelope address'],
    [">", () => cmd.rcptTo("a>@x"), 'RCPT TO address "a>@x" contains the character U+003E, which is not allowed in an SMTP envelope address'],
    ["non-ASCII without SMTPUTF8", () => cmd.rcptTo("ü@y"), 'RCPT TO address "ü@y" contains non-ASCII characters and needs SMTPUTF8'],
    ["an empty RCPT TO", () => cmd.rcptTo(""), "RCPT TO address must not be empty"],
    ["a MAIL FROM that is no string", () => cmd.mailFrom(undefined as unknown as string), "MAIL FROM address must be a string"],
    ["a lone surrogate", () => cmd.mailFrom("\udc00@x", { smtputf8: true }), 'MAIL FROM address "\\udc00@x" contains a lone surrogate'],
    ["SIZE -1", () => cmd.mailFrom("a@x", { size: -1 }), "SIZE must be a non-negative integer, got -1"],
    ["BODY=BINARYMIME", () => cmd.mailFrom("a@x", { body: "BINARYMIME" as never }), 'BODY must be "7BIT" or "8BITMIME", got "BINARYMIME"'],
    ["RET=ALL", () => cmd.mailFrom("a@x", { ret: "ALL" as never }), 'DSN RET must be "FULL" or "HDRS", got "ALL"'],
    ["an empty ENVID", () => cmd.mailFrom("a@x", { envid: "" }), "DSN ENVID must be 1–100 characters"],
    ["an ENVID of 101 characters", () => cmd.mailFrom("a@x", { envid: "x".repeat(101) }), "DSN ENVID must be 1–100 characters"],
    ["an ENVID that is no string", () => cmd.mailFrom("a@x", { envid: 7 as unknown as string }), "DSN ENVID must be 1–100 characters"],
    ["a CR in ENVID", () => cmd.mailFrom("a@x", { envid: "a\rb" }), "DSN ENVID contains a carriage return (CR); only printable ASCII is allowed (RFC 3461 §4.4)"],
    ["non-ASCII in ENVID", () => cmd.mailFrom("a@x", { envid: "é" }), "DSN ENVID contains the character U+00E9; only printable ASCII is allowed (RFC 3461 §4.4)"],
    ["DEL in ENVID", () => cmd.mailFrom("a@x", { envid: "a\x7f" }), "DSN ENVID contains the character U+007F; only printable ASCII is allowed (RFC 3461 §4.4)"],
    ["an empty NOTIFY", () => cmd.rcptTo("b@y", { notify: [] }), "DSN NOTIFY must list NEVER, or one or more of SUCCESS, FAILURE, DELAY"],
    ["a NOTIFY that is no list", () => cmd.rcptTo("b@y", { notify: "NEVER" as never }), "DSN NOTIFY must list NEVER, or one or more of SUCCESS, FAILURE, DELAY"],
    ["an unknown NOTIFY", () => cmd.rcptTo("b@y", { notify: ["SUCCESS", "ALWAYS" as never] }), 'Unknown DSN NOTIFY value "ALWAYS"'],
    ["NOTIFY=NEVER with another", () => cmd.rcptTo("b@y", { notify: ["DELAY", "NEVER"] }), "DSN NOTIFY=NEVER cannot be combined with other values (RFC 3461 §4.1)"],
    ["an empty ORCPT", () => cmd.rcptTo("b@y", { orcpt: "" }), "DSN ORCPT address must not be empty"],
    ["a space in ORCPT", () => cmd.rcptTo("b@y", { orcpt: "a b@y" }), 'DSN ORCPT address "a b@y" contains a space, which is not allowed in an SMTP envelope address'],
    ["a non-ASCII ORCPT without SMTPUTF8", () => cmd.rcptTo("b@y", { orcpt: "ü@y" }), "A non-ASCII DSN ORCPT address needs SMTPUTF8 (RFC 6533)"],
    ["BDAT -1", () => cmd.bdat(-1, true), "BDAT size must be a non-negative integer, got -1"],
    ["BDAT 1.5", () => cmd.bdat(1.5, false), "BDAT size must be a non-negative integer, got 1.5"],
    ["a mechanism with CRLF", () => cmd.auth("PLAIN\r\nQUIT"), 'Invalid SASL mechanism name "PLAIN\\r\\nQUIT"'],
    ["a lower-case mechanism", () => cmd.auth("plain"), 'Invalid SASL mechanism name "plain"'],
    ["an empty mechanism", () => cmd.auth(""), 'Invalid SASL mechanism name ""'],
    ["a mechanism of 21 characters", () => cmd.auth("A".repeat(21)), `Invalid SASL mechanism name "${"A".repeat(21)}"`],
    ["a mechanism that is no string", () => cmd.auth(5 as unknown as string), "Invalid SASL mechanism name 5"],
    ["a mechanism with a dot or a colon", () => cmd.auth("X.Y"), 'Invalid SASL mechanism name "X.Y"'],
    ["a response that is not base64", () => cmd.authResponse("ab-c"), "A SASL response must be base64"],
    ["an initial response that is not base64", () => cmd.auth("PLAIN", "a b"), "A SASL response must be base64"],
    ["xtext of non-ASCII", () => cmd.xtext("é"), "xtext can only carry ASCII"],
    ["an empty EHLO name", () => cmd.ehlo(""), 'Invalid EHLO name "": must be 1–255 characters'],
    ["an EHLO name of 256 characters", () => cmd.ehlo(`${"a".repeat(63)}.`.repeat(4)), `Invalid EHLO name "${`${"a".repeat(63)}.`.repeat(4)}": must be 1–255 characters`],
    ["an EHLO name that is no string", () => cmd.ehlo(undefined as unknown as string), "Invalid EHLO name undefined: must be 1–255 characters"],
    ["an EHLO label of 64 characters", () => cmd.helo(`${"a".repeat(64)}.org`), `Invalid EHLO name "${"a".repeat(64)}.org": use a domain name (letters, digits, hyphens, dots) or an address literal such as [192.0.2.1]`],
  ])("%s", (_name, fn, message) => {
    expect(refusal(fn)).toBe(message);
  });
});

describe("arguments at their bounds", () => {
  it("an envelope path of 254 octets (256 with its brackets) is taken; 255 is refused", () => {
    const at254 = `${"a".repeat(247)}@xyz.de`;
    expect(Buffer.byteLength(at254)).toBe(254);
    expect(cmd.rcptTo(at254)).toBe(`RCPT TO:<${at254}>\r\n`);
    expect(refusal(() => cmd.rcptTo(`a${at254}`))).toBe("RCPT TO address is longer than 254 octets (RFC 5321 §4.5.3.1.3)");
    // Octets, not characters: "ü" is two.
    const umlauts = `${"ü".repeat(123)}@xyz.de`;
    expect(Buffer.byteLength(umlauts)).toBe(253);
    expect(cmd.mailFrom(umlauts, { smtputf8: true })).toBe(`MAIL FROM:<${umlauts}> SMTPUTF8\r\n`);
    expect(() => cmd.mailFrom(`ü${umlauts}`, { smtputf8: true })).toThrow(/longer than 254 octets/);
  });

  it("an EHLO name of 255 characters and labels of 63 are taken", () => {
    const name = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}`;
    expect(name).toHaveLength(255);
    expect(cmd.ehlo(name)).toBe(`EHLO ${name}\r\n`);
  });

  it("an ENVID of 100 characters is taken, every printable ASCII character as xtext", () => {
    const envid = "~!" + "x".repeat(98);
    expect(cmd.mailFrom("a@x", { envid })).toBe(`MAIL FROM:<a@x> ENVID=${envid}\r\n`);
    expect(cmd.mailFrom("a@x", { envid: " " })).toBe("MAIL FROM:<a@x> ENVID=+20\r\n");
  });

  it("a mechanism name of 20 characters, and every character RFC 4422 allows", () => {
    expect(cmd.auth("A".repeat(20))).toBe(`AUTH ${"A".repeat(20)}\r\n`);
    expect(cmd.auth("SCRAM-SHA-256")).toBe("AUTH SCRAM-SHA-256\r\n");
    expect(cmd.auth("X_Z09")).toBe("AUTH X_Z09\r\n");
  });

  it("SIZE=0 and BDAT 0 are fine", () => {
    expect(cmd.mailFrom("a@x", { size: 0 })).toBe("MAIL FROM:<a@x> SIZE=0\r\n");
    expect(() => cmd.mailFrom("a@x", { size: 2 ** 53 })).toThrow(/SIZE must be a non-negative integer/);
  });
});

describe("what commands accept", () => {
  it("every MAIL FROM parameter value", () => {
    expect(cmd.mailFrom("a@x", { body: "7BIT", ret: "FULL" })).toBe("MAIL FROM:<a@x> BODY=7BIT RET=FULL\r\n");
    expect(cmd.mailFrom("a@x", { body: "8BITMIME", ret: "HDRS" })).toBe("MAIL FROM:<a@x> BODY=8BITMIME RET=HDRS\r\n");
  });

  it("every NOTIFY value, each once", () => {
    expect(cmd.rcptTo("b@y", { notify: ["DELAY"] })).toBe("RCPT TO:<b@y> NOTIFY=DELAY\r\n");
    expect(cmd.rcptTo("b@y", { notify: ["FAILURE", "DELAY", "SUCCESS", "DELAY"] })).toBe("RCPT TO:<b@y> NOTIFY=FAILURE,DELAY,SUCCESS\r\n");
  });

  it("printable ASCII in an address, ! and ~ included", () => {
    expect(cmd.rcptTo("!#$%&'*+-/=?^_`{|}~@x")).toBe("RCPT TO:<!#$%&'*+-/=?^_`{|}~@x>\r\n");
  });

  it("with SMTPUTF8, any well-formed Unicode: surrogate pairs at both ends of their range, and characters above them", () => {
    for (const address of ["😀@x", "a😀", "\ud800\udc00@x", "\udbff\udfff@x", "\udbff\udc00@x", "\ud800\udfff@x", "\uff41@x", "\ue000@x", "中文@例子.中国"]) {
      expect(cmd.rcptTo(address, { smtputf8: true })).toBe(`RCPT TO:<${address}>\r\n`);
    }
  });

  it("with SMTPUTF8, no lone or misordered surrogate", () => {
    for (const address of ["a\ud800", "\ud800a@x", "\udfff@x", "\udc00\ud800@x", "\udfff\udc00@x", "\ud800\ud800@x", "\ud800\ue000@x", "\udbff"]) {
      expect(refusal(() => cmd.rcptTo(address, { smtputf8: true }))).toMatch(/contains a lone surrogate$/);
    }
  });

  it("EHLO names: hyphens inside labels, letters and digits at both ends of their ranges, address literals", () => {
    for (const name of ["mail-1.example.org", "AZaz09.example", "a", "z9", "[192.0.2.1]", "[IPv6:2001:db8::1]", "[x-tag:data]"]) {
      expect(cmd.ehlo(name)).toBe(`EHLO ${name}\r\n`);
    }
    for (const bad of ["[]", "a_b.org", "a.b-", "a@b", "a/b", "[a_b]", "[a b]", "[{}]", "a`b", "a{b", "a:b"]) {
      expect(() => cmd.ehlo(bad), bad).toThrow(InvalidArgumentError);
    }
  });

  it("a SASL response of every base64 character", () => {
    expect(cmd.authResponse("AZaz09+/==")).toBe("AZaz09+/==\r\n");
    expect(cmd.auth("PLAIN", "AZaz09+/")).toBe("AUTH PLAIN AZaz09+/\r\n");
    expect(refusal(() => cmd.authResponse("@"))).toBe("A SASL response must be base64");
  });
});

describe("xtext and utf-8-addr-xtext", () => {
  it("xtext keeps ! and ~ and encodes the characters around them (RFC 3461 §4)", () => {
    expect(cmd.xtext("!~ \x7f+=")).toBe("!~+20+7F+2B+3D");
  });

  it("utf-8-addr-xtext encodes +, =, \\, controls, space and DEL, and keeps other Unicode (RFC 6533 §3)", () => {
    expect(cmd.utf8AddrXtext("!~+=\\ \x01\x7fé😀")).toBe("!~\\x{2B}\\x{3D}\\x{5C}\\x{20}\\x{1}\\x{7F}é😀");
  });

  it("hasNonAscii: DEL is ASCII, U+0080 is not", () => {
    expect(cmd.hasNonAscii("a\x7f")).toBe(false);
    expect(cmd.hasNonAscii("a\x80")).toBe(true);
    expect(cmd.hasNonAscii("")).toBe(false);
  });
});

