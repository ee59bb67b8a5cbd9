import { describe, expect, it } from "vitest";
import { BadHeaderError, EncodingError, InvalidArgumentError } from "../../src/errors.js";
import { decodeWords } from "../../src/mime/encoding/encoded-word.js";
import { assertHeaderValue, headerKind, parseHeaderBlock, renderHeader, unfold } from "../../src/mime/headers.js";
import { errorOf } from "../helpers/errors.js";

// Which headers are which kind, how each kind is rendered, and the injection guard's
// messages when a value holds several offenders. Byte-exact.
const ascii = { utf8: false, charset: "utf-8" };
const utf8 = { utf8: true, charset: "utf-8" };
const x = (n: number) => "x".repeat(n);

const ADDRESS = [
  "From", "To", "Cc", "Bcc", "Reply-To", "Sender",
  "Resent-From", "Resent-To", "Resent-Cc", "Resent-Bcc", "Resent-Reply-To", "Resent-Sender",
  "Disposition-Notification-To", "Mail-Followup-To", "Mail-Reply-To", "Errors-To",
];
const RAW = [
  "Message-ID", "In-Reply-To", "References", "Resent-Message-ID", "Resent-Date", "Date",
  "Content-Type", "Content-Disposition", "Content-Transfer-Encoding", "Content-ID",
  "Content-Location", "Content-Language", "MIME-Version", "Received", "Return-Path",
  "DKIM-Signature", "Authentication-Results", "Autocrypt", "Feedback-ID",
];

describe("header kinds", () => {
  it("every address header is parsed as an address list, in any case", () => {
    for (const name of ADDRESS) {
      expect(headerKind(name), name).toBe("address");
      expect(headerKind(name.toUpperCase()), name).toBe("address");
      // What that means for the bytes: a string is parsed, and a bad address refused.
      expect(renderHeader(name, "a@b.example,c@d.example", ascii), name).toBe(`${name}: a@b.example, c@d.example\r\n`);
    }
  });

  it("every structured header is folded as given, in any case", () => {
    for (const name of RAW) {
      expect(headerKind(name), name).toBe("raw");
      expect(headerKind(name.toLowerCase()), name).toBe("raw");
      // Raw: "=?" is left alone and non-ASCII is refused without utf8.
      expect(renderHeader(name, "=?x?= <a>", ascii), name).toBe(`${name}: =?x?= <a>\r\n`);
      expect(errorOf(() => renderHeader(name, "\u00e9", ascii)), name).toBeInstanceOf(BadHeaderError);
    }
  });

  it("names next to them are unstructured text", () => {
    for (const name of ["Subject", "Comments", "Keywords", "X-From", "From-X", "Resent", "Content", "Message", "Dkim", "X-Received", "Date-Sent", "Tos"]) {
      expect(headerKind(name), name).toBe("unstructured");
      // Unstructured: "=?" and non-ASCII are encoded, and read back as given.
      const rendered = renderHeader(name, "=?x?= \u00e9", ascii);
      expect(rendered.startsWith(`${name}: =?utf-8?`), name).toBe(true);
      expect(decodeWords(unfold(rendered.slice(name.length + 2, -2))), name).toBe("=?x?= \u00e9");
    }
  });

  it("answers the same for many names (its memo is bounded, not a cache that forgets the answer)", () => {
    const names = Array.from({ length: 600 }, (_, i) => (i % 3 === 0 ? `List-${i}` : i % 3 === 1 ? `X-${i}` : `Arc-${i}`));
    for (let round = 0; round < 2; round++) {
      for (const [i, name] of names.entries()) expect(headerKind(name)).toBe(i % 3 === 1 ? "unstructured" : "raw");
    }
    expect(headerKind("From")).toBe("address");
  });

  it("the kind option overrides the name's kind for a string value; mailboxes given as objects are always addresses", () => {
    expect(renderHeader("X-Refs", "\u00e9 <a>", { ...ascii, kind: "unstructured" })).toBe("X-Refs: =?utf-8?B?w6k=?= <a>\r\n");
    expect(errorOf(() => renderHeader("X-Refs", "\u00e9 <a>", { ...ascii, kind: "raw" }))).toBeInstanceOf(BadHeaderError);
    expect(renderHeader("X-Refs", "=?a?= <a>", { ...ascii, kind: "raw" })).toBe("X-Refs: =?a?= <a>\r\n");
    expect(renderHeader("X-To", "a@b.example, c@d.example", { ...ascii, kind: "address" })).toBe("X-To: a@b.example, c@d.example\r\n");
    expect(renderHeader("To", "a@b.example, c", { ...ascii, kind: "unstructured" })).toBe("To: a@b.example, c\r\n");
    expect(renderHeader("Subject", [{ name: "N", address: "a@b.example" }], { ...ascii, kind: "unstructured" })).toBe("Subject: N <a@b.example>\r\n");
  });
});

describe("the injection guard names the first offender", () => {
  it("whichever of CR, LF and NUL comes first", () => {
    const message = (value: string) => errorOf(() => assertHeaderValue("X", value)).message;
    expect(message("ab\ncd\r\0")).toBe("X contains a line feed (LF) at offset 2; header values must be a single line (header injection)");
    expect(message("a\0\r\n")).toBe("X contains a NUL character at offset 1; header values must be a single line (header injection)");
    expect(message("abc\r\n")).toBe("X contains a carriage return (CR) at offset 3; header values must be a single line (header injection)");
    expect(message("\n\r")).toBe("X contains a line feed (LF) at offset 0; header values must be a single line (header injection)");
    expect(message("abc\r")).toBe("X contains a carriage return (CR) at offset 3; header values must be a single line (header injection)");
    expect(message("a\0")).toBe("X contains a NUL character at offset 1; header values must be a single line (header injection)");
    expect((errorOf(() => assertHeaderValue("Subject", "a\nb")) as BadHeaderError).field).toBe("Subject");
  });

  it("in every kind of header, before anything is rendered", () => {
    for (const name of ["Subject", "References", "To"]) {
      const error = errorOf(() => renderHeader(name, "a@b.example\r\nBcc: evil@example.com", ascii));
      expect(error, name).toBeInstanceOf(BadHeaderError);
      expect(error.message, name).toBe(`${name} contains a carriage return (CR) at offset 11; header values must be a single line (header injection)`);
    }
  });

  it("in unstructured text each of CR, LF and NUL alone, wherever it is, and a lone surrogate at either end of the range", () => {
    for (const [c, what] of [["\r", "a carriage return (CR)"], ["\n", "a line feed (LF)"], ["\0", "a NUL character"]] as const) {
      for (const value of [`${c}`, `a${c}b`, `ok \u00e9${c}`, `ok ok${c}`, `${c} ok`]) {
        for (const opts of [ascii, utf8, { utf8: false, charset: "iso-8859-1" }]) {
          const error = errorOf(() => renderHeader("Subject", value, opts));
          expect(error, JSON.stringify(value)).toBeInstanceOf(BadHeaderError);
          expect(error.message).toBe(`Subject contains ${what} at offset ${value.indexOf(c)}; header values must be a single line (header injection)`);
        }
      }
    }
    for (const unit of ["\ud800", "\udbff", "\udc00", "\udfff"]) {
      for (const value of [`a${unit}b`, `\u00e9 ${unit}`, unit]) {
        const error = errorOf(() => renderHeader("Subject", value, utf8));
        expect(error, JSON.stringify(value)).toBeInstanceOf(EncodingError);
        expect(error.message).toContain(`U+${unit.charCodeAt(0).toString(16).toUpperCase()} at index ${value.indexOf(unit)}`);
      }
    }
    // Whole pairs and the characters next to the surrogate range pass.
    expect(decodeWords(unfold(renderHeader("Subject", "\ud7ff \u{10000} \ue000", ascii).slice(9, -2)))).toBe("\ud7ff \u{10000} \ue000");
  });

  it("the value's own error comes before the charset's", () => {
    const unknown = { utf8: false, charset: "no-such-charset" };
    expect(errorOf(() => renderHeader("Subject", "\u00e9\r\nBcc: x@y.example", unknown))).toBeInstanceOf(BadHeaderError);
    expect(errorOf(() => renderHeader("Subject", "\u00e9 \ud800", unknown)).message).toContain("lone surrogate");
    expect(errorOf(() => renderHeader("Subject", "\u00e9 ok", unknown)).message).toContain("Unknown charset");
    expect(errorOf(() => renderHeader("Subject", "\u00e9 ok \n", { utf8: false, charset: "UTF-8" }))).toBeInstanceOf(BadHeaderError);
  });

  it("an address list's group needs an array of members", () => {
    const error = errorOf(() => renderHeader("To", [{ group: "Team", members: "a@b.example" }] as never, ascii));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toBe('To: the members of group "Team" must be an array of mailboxes');
    expect(renderHeader("To", [{ group: "Team", members: ["a@b.example"] }, "c@d.example"] as never, ascii)).toBe("To: Team: a@b.example;, c@d.example\r\n");
  });
});

describe("structured headers holding encoded-words fold at 76", () => {
  // A structured value is folded as given; a line with "=?" in it is held to RFC 2047's 76.
  it("a line of 76 with an encoded-word stays whole; 77 folds", () => {
    // "Content-Disposition: " is 21 octets.
    const word = "=?utf-8?B?w6k=?="; // 16
    const at76 = `${x(20)} ${word} ${x(17)}`; // 21 + 20 + 1 + 16 + 1 + 17 = 76
    expect(renderHeader("Content-Disposition", at76, ascii)).toBe(`Content-Disposition: ${at76}\r\n`);
    const at77 = `${x(20)} ${word} ${x(18)}`;
    expect(renderHeader("Content-Disposition", at77, ascii)).toBe(`Content-Disposition: ${x(20)} ${word}\r\n ${x(18)}\r\n`);
    // Without "=?" the same line may run to 78.
    expect(renderHeader("Content-Disposition", `${x(20)} ${x(16)} ${x(19)}`, ascii)).toBe(`Content-Disposition: ${x(20)} ${x(16)} ${x(19)}\r\n`);
    // A first word holding "=?" that does not fit after the name gets a line of its own.
    expect(renderHeader("Content-Disposition", `=?${x(60)}`, ascii)).toBe(`Content-Disposition:\r\n =?${x(60)}\r\n`);
    expect(renderHeader("Content-Disposition", `=?${x(53)}`, ascii)).toBe(`Content-Disposition: =?${x(53)}\r\n`);
  });

  it("in an address header, a line holding an encoded display name stays within 76", () => {
    // "To: " is 4; an encoded name of 16, a space and an address of 55: 76. ("ab" and 69: 78.)
    const fits = renderHeader("To", [{ name: "\u00e9", address: `${x(43)}@b.example` }], ascii);
    expect(fits).toBe(`To: =?utf-8?B?w6k=?= <${x(43)}@b.example>\r\n`);
    const folded = renderHeader("To", [{ name: "\u00e9", address: `${x(44)}@b.example` }], ascii);
    expect(folded).toBe(`To: =?utf-8?B?w6k=?=\r\n <${x(44)}@b.example>\r\n`);
    // Without an encoded-word the same line may run to 78.
    expect(renderHeader("To", [{ name: "ab", address: `${x(57)}@b.example` }], ascii)).toBe(`To: ab <${x(57)}@b.example>\r\n`);
    expect(fits.length - 2).toBe(76);
  });
});

describe("raw headers keep their white space", () => {
  it("between words, before the first and after the last, tabs included", () => {
    expect(renderHeader("References", "<a>\t \t<b>  <c>\t", ascii)).toBe("References: <a>\t \t<b>  <c>\t\r\n");
    expect(renderHeader("References", "\t<a>", ascii)).toBe("References: \t<a>\r\n");
    expect(renderHeader("References", "\t", ascii)).toBe("References: \t\r\n");
    // Folding happens before a word's white space, and the white space starts the new line.
    expect(renderHeader("References", `${x(60)}\t\t${x(20)}`, ascii)).toBe(`References: ${x(60)}\r\n\t\t${x(20)}\r\n`);
    expect(parseHeaderBlock(renderHeader("References", `<a>  ${x(70)}  <b>`, ascii))).toEqual([["References", `<a>  ${x(70)}  <b>`]]);
  });

  it("a UTF-8 structured value counts octets: 78 stays whole, 79 folds", () => {
    // "References: " is 12; "é" is 2 octets.
    const at78 = `${x(10)} ${"\u00e9".repeat(27)}a`; // 12 + 10 + 1 + 54 + 1 = 78
    expect(renderHeader("References", at78, utf8)).toBe(`References: ${at78}\r\n`);
    expect(renderHeader("References", `${at78}b`, utf8)).toBe(`References: ${x(10)}\r\n ${"\u00e9".repeat(27)}ab\r\n`);
  });
});

describe("unfold", () => {
  it("takes a tab as folding white space, and leaves a CR or LF alone", () => {
    expect(unfold("a\r\n\tb")).toBe("a\tb");
    expect(unfold("a\r\nb\r\n c")).toBe("a\r\nb c");
    expect(unfold("a\rb\n c")).toBe("a\rb\n c");
    expect(unfold("a\r\n\r\n b")).toBe("a\r\n b");
    expect(unfold("\r\n")).toBe("\r\n");
    expect(unfold("\r\n x")).toBe(" x");
  });
});

describe("parseHeaderBlock", () => {
  it("strips spaces and tabs after the colon, and only those", () => {
    expect(parseHeaderBlock("A: \t x\r\nB:\u00a0y\r\nC:   \r\n")).toEqual([
      ["A", "x"],
      ["B", "\u00a0y"],
      ["C", ""],
    ]);
  });

  it("a colon at the start gives an empty name; the first colon splits", () => {
    expect(parseHeaderBlock(":x\r\nA:b:c\r\n")).toEqual([
      ["", "x"],
      ["A", "b:c"],
    ]);
  });

  it("joins continuations, tab or space, to the header before them", () => {
    expect(parseHeaderBlock("A: 1\r\n\t2\r\n 3\r\nB: 4\r\n 5")).toEqual([
      ["A", "1\t2 3"],
      ["B", "4 5"],
    ]);
  });
});

describe("encoded-words follow a narrow maxLineLength and the first line's room", () => {
  const a = (n: number) => "a".repeat(n);
  const lineOctets = (rendered: string) => rendered.slice(0, -2).split("\r\n").map((l) => Buffer.byteLength(l));

  it("with maxLineLength 40 each encoded-word is at most 39 characters, so that a line of one is at most 40", () => {
    // B of "é" × 6 is 16 characters, 12 + 16 = 28 with the delimiters; 8 more would be 40, one past 39.
    const word = (n: number) => `=?utf-8?B?${Buffer.from("é".repeat(n)).toString("base64")}?=`;
    const subject = renderHeader("Subject", "é".repeat(30), { ...ascii, maxLineLength: 40 });
    expect(subject).toBe(`Subject: ${word(6)}\r\n ${word(9)}\r\n ${word(9)}\r\n ${word(6)}\r\n`);
    expect(Math.max(...lineOctets(subject))).toBe(37);
    const to = renderHeader("To", [{ name: "é".repeat(30), address: "a@b.c" }], { ...ascii, maxLineLength: 40 });
    expect(to).toBe(`To: ${word(9)}\r\n ${word(9)}\r\n ${word(9)}\r\n ${word(3)} <a@b.c>\r\n`);
    expect(Math.max(...lineOctets(to))).toBeLessThanOrEqual(40);
  });

  it("only the first mailbox's name is shortened to fit after the header name; the others' words are full size", () => {
    const name = `é${a(70)}`;
    const rendered = renderHeader("To", [{ name, address: "a@b.c" }, { name, address: "d@e.f" }], ascii);
    expect(rendered).toBe(
      `To: =?utf-8?Q?=C3=A9${a(54)}?=\r\n =?utf-8?Q?${a(16)}?= <a@b.c>,\r\n` +
        ` =?utf-8?Q?=C3=A9${a(57)}?=\r\n =?utf-8?Q?${a(13)}?= <d@e.f>\r\n`,
    );
    // 76 on the name's line, a 75-character word (the most RFC 2047 allows) after it.
    expect(lineOctets(rendered)).toEqual([76, 38, 76, 34]);
  });

  it("a long header name leaves the first word the room to the 76th character of its line", () => {
    const rendered = renderHeader("X-Long-Header-Name-Here", [{ name: `é${a(70)}`, address: "a@b.c" }], ascii);
    expect(rendered).toBe(`X-Long-Header-Name-Here: =?utf-8?Q?=C3=A9${a(33)}?=\r\n =?utf-8?Q?${a(37)}?= <a@b.c>\r\n`);
    expect(lineOctets(rendered)).toEqual([76, 58]);
  });

  it("a null entry among the mailboxes is refused as in a list, not read as no addresses", () => {
    for (const value of [[null], [{ group: "g", members: [] }, null]]) {
      const error = errorOf(() => renderHeader("To", value as never, ascii));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toBe("To must be a string, a { name, address } object or an array of them, got null");
    }
  });
});

describe("a word too long for a line that must be encoded anyway stays encoded", () => {
  // Such a word passes the quick length test, and its octets fit a line (it would have stayed
  // plain were it not for what it holds): the character still decides.
  it("non-ASCII in a 7-bit header", () => {
    const value = `a é${x(399)}`;
    const rendered = renderHeader("Subject", value, ascii);
    expect(rendered.startsWith(`Subject: a\r\n =?utf-8?Q?=C3=A9${x(57)}?=\r\n =?utf-8?Q?${x(63)}?=\r\n`)).toBe(true);
    expect(rendered).toMatch(/^[\t\x20-\x7e\r\n]*$/);
    expect(decodeWords(unfold(rendered.slice(9, -2)))).toBe(value);
  });

  it("a control character in a UTF-8 header", () => {
    const value = `a ${x(399)}\x07`;
    const rendered = renderHeader("Subject", value, utf8);
    expect(rendered.startsWith(`Subject: a\r\n =?utf-8?Q?${x(63)}?=\r\n`)).toBe(true);
    expect(rendered).not.toContain("\x07");
    expect(decodeWords(unfold(rendered.slice(9, -2)))).toBe(value);
  });
});
