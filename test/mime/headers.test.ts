import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BadHeaderError, EncodingError, InvalidAddressError } from "../../src/errors.js";
import { encodeWordsWithFallback, parseAddressList } from "../../src/mime/address.js";
import { decodeWords } from "../../src/mime/encoding/encoded-word.js";
import {
  assertDistinctHeaderNames,
  assertHeaderName,
  assertHeaderValue,
  headerKind,
  parseHeaderBlock,
  renderHeader,
  unfold,
} from "../../src/mime/headers.js";
import { errorOf } from "../helpers/errors.js";
import { displayName } from "./arbitraries.js";

const ascii = { utf8: false, charset: "utf-8" };
const utf8 = { utf8: true, charset: "utf-8" };

/** The one header in `rendered`, unfolded, without the white space after the colon. */
function valueOf(rendered: string): string {
  const block = parseHeaderBlock(rendered);
  expect(block).toHaveLength(1);
  return (block[0] as [string, string])[1];
}

/** A header line's tokens: what lies between white space outside quoted strings. */
function tokensOf(line: string): string[] {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quoted && ch === "\\") {
      current += ch + (line[i + 1] ?? "");
      i++;
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (!quoted && (ch === " " || ch === "\t")) {
      if (current !== "") out.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  if (current !== "") out.push(current);
  return out;
}

/** Checks every rule a rendered header must keep; returns its lines. */
function checkShape(rendered: string, opts: { utf8: boolean }): string[] {
  expect(rendered.endsWith("\r\n")).toBe(true);
  const lines = rendered.slice(0, -2).split("\r\n");
  lines.forEach((line, i) => {
    expect(line).not.toMatch(/[\r\n\0]/);
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(998);
    if (i > 0) {
      expect(line).toMatch(/^[ \t]/);
      expect(line.trim()).not.toBe("");
    }
    if (!opts.utf8) expect(line).toMatch(/^[\t\x20-\x7e]*$/);
  });
  return lines;
}

describe("header names and values", () => {
  it("accepts RFC 5322 field names and rejects the rest", () => {
    for (const ok of ["Subject", "X-Custom_Header.1", "!#$%&'*+-.^_`|~"]) expect(() => assertHeaderName(ok)).not.toThrow();
    for (const bad of ["", "Bad Name", "Colon:", "Tab\t", "Ünicode", "New\nLine", "\x7f"]) {
      expect(errorOf(() => assertHeaderName(bad))).toBeInstanceOf(BadHeaderError);
    }
    expect(errorOf(() => assertHeaderName("X-A:B")).message).toBe('Invalid header name "X-A:B": ":" at offset 3 (only printable ASCII except ":" is allowed)');
  });

  it("rejects CR, LF and NUL naming the field, and lone surrogates as EncodingError", () => {
    const err = errorOf(() => assertHeaderValue("Subject", "Hi\r\nBcc: evil@example.com"));
    expect(err).toBeInstanceOf(BadHeaderError);
    expect((err as BadHeaderError).field).toBe("Subject");
    expect(err.message).toBe("Subject contains a carriage return (CR) at offset 2; header values must be a single line (header injection)");
    expect(errorOf(() => assertHeaderValue("X", "a\nb"))).toBeInstanceOf(BadHeaderError);
    expect(errorOf(() => assertHeaderValue("X", "a\0b"))).toBeInstanceOf(BadHeaderError);
    expect(errorOf(() => assertHeaderValue("X", "a\ud800b"))).toBeInstanceOf(EncodingError);
    expect(() => assertHeaderValue("X", "tab\tand 😀 are fine")).not.toThrow();
  });

  it("knows the kind of common headers", () => {
    expect(["From", "to", "CC", "Bcc", "Reply-To", "Sender", "Resent-To"].map(headerKind)).toEqual(Array(7).fill("address"));
    expect(["Message-ID", "References", "Content-Type", "Date", "DKIM-Signature", "List-Unsubscribe", "MIME-Version"].map(headerKind)).toEqual(Array(7).fill("raw"));
    expect(["Subject", "Comments", "X-Mailer", "Keywords"].map(headerKind)).toEqual(Array(4).fill("unstructured"));
  });
});

describe("unstructured headers", () => {
  it("writes short ASCII as is", () => {
    expect(renderHeader("Subject", "Hello world", ascii)).toBe("Subject: Hello world\r\n");
    expect(renderHeader("Subject", "", ascii)).toBe("Subject: \r\n");
    expect(renderHeader("X-Tabs", "a\tb  c", ascii)).toBe("X-Tabs: a\tb  c\r\n");
  });

  it("folds a long subject at white space, lines within 78", () => {
    const subject =
      "The quarterly report for the northern region is attached; please review the figures before Thursday's meeting with the board";
    expect(renderHeader("Subject", subject, ascii)).toBe(
      "Subject: The quarterly report for the northern region is attached; please\r\n" +
        " review the figures before Thursday's meeting with the board\r\n",
    );
  });

  it("encodes a Japanese subject", () => {
    const rendered = renderHeader("Subject", "日本語の件名です", ascii);
    expect(rendered).toBe(JAPANESE);
    expect(decodeWords(valueOf(rendered))).toBe("日本語の件名です");
  });

  it("encodes only the non-ASCII words of a mixed subject, spaces between them inside", () => {
    const rendered = renderHeader("Subject", "Re: café crème at 5 o'clock", ascii);
    expect(rendered).toBe(MIXED);
    expect(decodeWords(valueOf(rendered))).toBe("Re: café crème at 5 o'clock");
  });

  it("encodes an encoded-word look-alike so it reads back literally, even with utf8", () => {
    for (const opts of [ascii, utf8]) {
      const rendered = renderHeader("Subject", "literal =?utf-8?q?x?= here", opts);
      expect(rendered).not.toContain("=?utf-8?q?x?=");
      expect(decodeWords(valueOf(rendered))).toBe("literal =?utf-8?q?x?= here");
    }
    expect(renderHeader("Subject", "literal =?utf-8?q?x?= here", ascii)).toBe(LOOKALIKE);
  });

  it("keeps raw UTF-8 with utf8 (RFC 6532)", () => {
    expect(renderHeader("Subject", "Grüße aus Köln", utf8)).toBe("Subject: Grüße aus Köln\r\n");
  });

  it("carries leading and trailing white space inside encoded-words", () => {
    for (const value of [" lead", "trail ", "  both\t", "   ", "\t"]) {
      const rendered = renderHeader("Subject", value, ascii);
      checkShape(rendered, ascii);
      expect(decodeWords(valueOf(rendered))).toBe(value);
    }
  });

  it("splits an unbreakable token too long for a line into encoded-words", () => {
    const token = "x".repeat(3000);
    const rendered = renderHeader("Subject", `see ${token} end`, ascii);
    const lines = checkShape(rendered, ascii);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(78);
    expect(decodeWords(valueOf(rendered))).toBe(`see ${token} end`);
    // One that fits in 998 stays readable.
    const url = `https://example.com/${"a".repeat(200)}`;
    expect(renderHeader("Subject", `link ${url}`, ascii)).toBe(`Subject: link\r\n ${url}\r\n`);
  });

  it("encodes a long run of white space instead of making a blank line", () => {
    const value = `a${" ".repeat(2000)}b`;
    const rendered = renderHeader("Subject", value, ascii);
    checkShape(rendered, ascii);
    expect(decodeWords(valueOf(rendered))).toBe(value);
  });

  it("falls back to UTF-8 for characters the charset cannot hold", () => {
    const rendered = renderHeader("Subject", "price €5 ☃", { utf8: false, charset: "iso-8859-1" });
    expect(decodeWords(valueOf(rendered))).toBe("price €5 ☃");
    expect(errorOf(() => renderHeader("Subject", "é", { utf8: false, charset: "no-such-charset" }))).toBeInstanceOf(EncodingError);
  });

  const text = fc.oneof(
    fc.string({ unit: "binary", maxLength: 200 }),
    fc.array(fc.constantFrom(" ", "  ", "\t", "=?", "?=", "=?utf-8?q?x?=", "=?utf-8?b?eA==?=", "é", "日本", "😀", "\u0001", "\u007f", "\u0085", "ascii", "x".repeat(90), '"'), { maxLength: 30 }).map((a) => a.join("")),
  ).filter((s) => !/[\r\n\0]/.test(s));

  it("property: CRLF lines, <= 998 octets, folded with WSP, 7-bit unless utf8, decodes to the input", () => {
    fc.assert(
      fc.property(text, fc.boolean(), (value, u) => {
        const opts = u ? utf8 : ascii;
        const rendered = renderHeader("Subject", value, opts);
        checkShape(rendered, opts);
        expect(decodeWords(valueOf(rendered))).toBe(value);
      }),
      { numRuns: 1000 },
    );
  });

  it("property: lines stay within 78 when no plain word is too long for one", () => {
    const word = fc.oneof(
      fc.string({ unit: "binary", minLength: 1, maxLength: 20 }),
      fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 60 }),
    );
    const sep = fc.constantFrom(" ", "  ", "\t", " \t ");
    const value = fc.array(fc.tuple(sep, word), { maxLength: 20 }).map((a) => a.map(([s, w]) => s + w).join("").trimStart());
    fc.assert(
      fc.property(value.filter((s) => !/[\r\n\0]/.test(s)), (v) => {
        const rendered = renderHeader("Subject", v, ascii);
        for (const line of checkShape(rendered, ascii)) expect(line.length).toBeLessThanOrEqual(78);
        expect(decodeWords(valueOf(rendered))).toBe(v);
      }),
      { numRuns: 500 },
    );
  });

  it("property: CR or LF anywhere is a BadHeaderError", () => {
    const withBreak = fc
      .tuple(fc.string(), fc.constantFrom("\r", "\n", "\r\n", "\0"), fc.string())
      .map(([a, b, c]) => a + b + c);
    fc.assert(
      fc.property(withBreak, fc.constantFrom("Subject", "X-Custom", "Message-ID", "To"), (value, name) => {
        expect(errorOf(() => renderHeader(name, value, ascii))).toBeInstanceOf(BadHeaderError);
      }),
    );
  });
});

describe("lines holding encoded-words are at most 76 characters (RFC 2047 §2)", () => {
  const ENCODED_WORD = /=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=/;
  const check = (rendered: string) => {
    for (const line of checkShape(rendered, ascii)) if (ENCODED_WORD.test(line)) expect(line.length, line).toBeLessThanOrEqual(76);
  };

  it("on the first line and after, in subjects, names and groups", () => {
    for (const value of ["é".repeat(40), "ü".repeat(200), `Re: ${"Grüße ".repeat(30)}`]) {
      const rendered = renderHeader("Subject", value, ascii);
      check(rendered);
      expect(decodeWords(valueOf(rendered))).toBe(value);
    }
    check(renderHeader("To", [{ name: "Jürgen Groß-Übermensch von und zu Müllerhausen", address: "j@example.org" }, { name: "Zoë", address: "z@example.org" }], ascii));
    check(renderHeader("Cc", "=?utf-8?q?Team_M=C3=BCnchen_und_K=C3=B6ln_und_D=C3=BCsseldorf_und_N=C3=BCrnberg?=: a@example.org;", ascii));
  });

  it("whatever the header name's length and the preferred line length", () => {
    const name = fc.integer({ min: 1, max: 70 }).map((n) => `X-${"N".repeat(n)}`);
    const text = fc.array(fc.constantFrom("é", "日本", "😀", "word", " ", "=?x?=", "long-ascii-token-without-spaces"), { minLength: 1, maxLength: 40 }).map((a) => a.join(""));
    fc.assert(
      fc.property(name, text, fc.integer({ min: 40, max: 998 }), fc.boolean(), (n, value, width, address) => {
        const rendered = address
          ? renderHeader(n, [{ name: value, address: "a@example.org" }, { name: value, address: "b@example.org" }], { ...ascii, maxLineLength: width })
          : renderHeader(n, value, { ...ascii, maxLineLength: width, kind: "unstructured" });
        check(rendered);
        if (!address) expect(decodeWords(valueOf(rendered))).toBe(value);
        else expect(parseAddressList(valueOf(rendered)).map((m) => ("name" in m ? m.name : ""))).toEqual([value, value]);
      }),
      { numRuns: 400 },
    );
  });
});

describe("address headers", () => {
  it("formats and folds after commas", () => {
    const to = [
      "Ann Example <ann@example.com>",
      '"Doe, John" <john.doe@example.com>',
      "bob@example.org",
      "Carol <carol@example.net>",
    ].join(", ");
    expect(renderHeader("To", to, ascii)).toBe(
      'To: Ann Example <ann@example.com>, "Doe, John" <john.doe@example.com>,\r\n' +
        " bob@example.org, Carol <carol@example.net>\r\n",
    );
  });

  it("takes mailboxes, encodes names, converts domains to IDNA", () => {
    const rendered = renderHeader("From", [{ name: "José", address: "jose@bücher.example" }], ascii);
    expect(rendered).toBe(FROM_JOSE);
    expect(parseAddressList(valueOf(rendered))).toEqual([{ name: "José", address: "jose@xn--bcher-kva.example" }]);
  });

  it("keeps groups given in a string, and names the field in errors", () => {
    expect(renderHeader("Cc", "Team: a@x.org, B <b@y.org>;, c@z.org", ascii)).toBe("Cc: Team: a@x.org, B <b@y.org>;, c@z.org\r\n");
    expect(renderHeader("To", "undisclosed-recipients:;", ascii)).toBe("To: undisclosed-recipients:;\r\n");
    expect(renderHeader("To", "Équipe: a@x.org;", ascii)).toBe("To: =?utf-8?Q?=C3=89quipe?= : a@x.org;\r\n");
    expect(parseAddressList(valueOf(renderHeader("To", "Équipe: a@x.org, Zoë <z@x.org>;", ascii)))).toEqual([
      { group: "Équipe", members: [{ name: "", address: "a@x.org" }, { name: "Zoë", address: "z@x.org" }] },
    ]);
    const err = errorOf(() => renderHeader("Reply-To", "a@x.org\nBcc: e@y.org", ascii));
    expect(err).toBeInstanceOf(BadHeaderError);
    expect((err as BadHeaderError).field).toBe("Reply-To");
    expect(errorOf(() => renderHeader("To", "not an address", ascii))).toBeInstanceOf(InvalidAddressError);
  });

  it("renders groups given as objects, validating their members", () => {
    const team = { group: "Team", members: [{ name: "", address: "a@x.org" }, { name: "B", address: "b@y.org" }] };
    expect(renderHeader("Cc", [team, { name: "", address: "c@z.org" }], ascii)).toBe("Cc: Team: a@x.org, B <b@y.org>;, c@z.org\r\n");
    expect(renderHeader("To", [{ group: "undisclosed-recipients", members: [] }], ascii)).toBe("To: undisclosed-recipients:;\r\n");
    const err = errorOf(() => renderHeader("Cc", [{ group: "T", members: [{ name: "x", address: "a@x.org\nBcc: e@y.org" }] }], ascii));
    expect(err).toBeInstanceOf(BadHeaderError);
    expect((err as BadHeaderError).field).toBe("Cc");
  });

  it("shortens the first name's encoded-words so that the first line fits in 76 (RFC 2047 §2)", () => {
    const names = ["日本語の名前がとても長い人のお名前です本当にとても長いですよ", "Zoë Faßbender-Müller von und zu Großherzogtum Sachsen-Weimar-Eisenach"];
    for (const header of ["From", "To", "Cc", "Reply-To", "Disposition-Notification-To"]) {
      for (const name of names) {
        for (const value of [[{ name, address: "a@x.org" }], [{ group: name, members: [{ name, address: "a@x.org" }] }]]) {
          const rendered = renderHeader(header, value, ascii);
          const lines = checkShape(rendered, ascii);
          for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(76);
          for (const word of unfold(rendered).match(/=\?[^?]*\?[BQ]\?[^?]*\?=/g) ?? []) expect(word.length).toBeLessThanOrEqual(75);
          expect(parseAddressList(valueOf(rendered))).toEqual(value);
        }
      }
    }
    expect(renderHeader("From", [{ name: names[1] as string, address: "a@x.org" }], ascii)).toBe(
      "From: =?utf-8?B?Wm/DqyBGYcOfYmVuZGVyLU3DvGxsZXI=?= von und zu\r\n" +
        " =?utf-8?Q?Gro=C3=9Fherzogtum?= Sachsen-Weimar-Eisenach <a@x.org>\r\n",
    );
  });

  it("property: address header lines stay within 78 unless one unbreakable token forces more; names read back", () => {
    const longName = fc.array(displayName, { minLength: 1, maxLength: 4 }).map((parts) => parts.join(""));
    const name = fc.oneof(displayName, longName, fc.string({ unit: "grapheme", minLength: 20, maxLength: 80 }));
    const entries = fc.array(name, { minLength: 1, maxLength: 4 }).map((names) => names.map((n, i) => ({ name: n, address: `user${i}@example.com` })));
    const groupName = name.filter((n) => n !== "");
    const normalize = (n: string) => n.replace(/\s+/g, " ").trim();
    fc.assert(
      fc.property(fc.constantFrom("From", "To", "Cc", "Reply-To"), entries, fc.option(groupName, { nil: undefined }), fc.boolean(), (header, boxes, group, u) => {
        const opts = u ? utf8 : ascii;
        const value = group === undefined ? boxes : [{ group, members: boxes }];
        const rendered = renderHeader(header, value, opts);
        checkShape(rendered, opts).forEach((line, i) => {
          if (Buffer.byteLength(line) <= 78) return;
          // Only a single token too long for a line of its own may take a line past 78, and an
          // encoded-word never does (it can always be split).
          const tokens = tokensOf(i === 0 ? line.slice(header.length + 1) : line);
          expect(tokens, line).toHaveLength(1);
          expect(tokens[0], line).not.toMatch(/^=\?/);
        });
        const parsed = parseAddressList(unfold(valueOf(rendered)));
        const mailboxes = group === undefined ? parsed : (parsed[0] as { group: string; members: unknown[] }).members;
        if (group !== undefined) expect(normalize((parsed[0] as { group: string }).group)).toBe(normalize(group));
        expect((mailboxes as { name: string }[]).map((m) => normalize(m.name))).toEqual(boxes.map((b) => normalize(b.name)));
      }),
      { numRuns: 1000 },
    );
  });

  it("property: arbitrary names round-trip through the rendered header", () => {
    const name = fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !/[\r\n\0]/.test(s));
    fc.assert(
      fc.property(fc.array(name, { minLength: 1, maxLength: 5 }), fc.boolean(), (names, u) => {
        const opts = u ? utf8 : ascii;
        const boxes = names.map((n, i) => ({ name: n, address: `user${i}@example.com` }));
        const rendered = renderHeader("To", boxes, opts);
        checkShape(rendered, opts);
        expect(parseAddressList(valueOf(rendered))).toEqual(boxes);
      }),
      { numRuns: 300 },
    );
  });
});

describe("raw headers", () => {
  it("folds at existing white space only", () => {
    const refs = Array.from({ length: 4 }, (_, i) => `<message-${i}.abcdefghij@mail.example.com>`).join(" ");
    expect(renderHeader("References", refs, ascii)).toBe(
      "References: <message-0.abcdefghij@mail.example.com>\r\n" +
        " <message-1.abcdefghij@mail.example.com>\r\n" +
        " <message-2.abcdefghij@mail.example.com>\r\n" +
        " <message-3.abcdefghij@mail.example.com>\r\n",
    );
    expect(renderHeader("Content-Type", "text/plain; charset=utf-8", { ...ascii, kind: "raw" })).toBe("Content-Type: text/plain; charset=utf-8\r\n");
  });

  it("throws when a word cannot fit in 998 octets, or non-ASCII would leak into a 7-bit header", () => {
    const err = errorOf(() => renderHeader("Message-ID", `<${"x".repeat(1000)}@example.com>`, ascii));
    expect(err).toBeInstanceOf(BadHeaderError);
    expect(err.message).toContain("998");
    expect(errorOf(() => renderHeader("Message-ID", "<é@example.com>", ascii))).toBeInstanceOf(BadHeaderError);
    expect(renderHeader("Message-ID", "<é@example.com>", utf8)).toBe("Message-ID: <é@example.com>\r\n");
  });
});

describe("unfold and parseHeaderBlock", () => {
  it("removes only CRLF followed by white space", () => {
    expect(unfold("a\r\n b\r\n\tc\r\nd")).toBe("a b\tc\r\nd");
    expect(parseHeaderBlock("Subject: a\r\n b\r\nTo:  x@y.org\r\n\r\nBody: no\r\n")).toEqual([
      ["Subject", "a b"],
      ["To", "x@y.org"],
    ]);
  });
});

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const HAS_PYTHON = spawnSync(PYTHON, ["-c", "import email.policy"]).status === 0;

// One Python process judges a batch: each rendered header is parsed with policy=default.
const JUDGE = `
import email, email.policy, json, sys
out = []
for h in json.load(sys.stdin):
    m = email.message_from_bytes(h.encode() + b"\\r\\n", policy=email.policy.default)
    v = m[h.split(":", 1)[0]]
    out.append([[a.display_name, a.addr_spec] for a in v.addresses] if hasattr(v, "addresses") else str(v))
print(json.dumps(out))
`;

describe.skipIf(!HAS_PYTHON)("Python's email package reads what we render", () => {
  it("unstructured values and display names come back unchanged", () => {
    const text = fc
      .oneof(
        fc.string({ unit: "binary", maxLength: 120 }),
        fc.array(fc.constantFrom(" ", "  ", "\t", "=?utf-8?q?x?=", "é", "日本", "😀", "\u0001", "ascii", "x".repeat(90), '"', "("), { maxLength: 30 }).map((a) => a.join("")),
      )
      .filter((s) => !/[\r\n\0]/.test(s));
    const values = fc.sample(text, { numRuns: 300, seed: 42 });
    // Python turns a tab in a decoded display name into a space; names here have none.
    const names = fc.sample(fc.string({ unit: "binary", maxLength: 30 }).filter((s) => !/[\r\n\0\t]/.test(s)), { numRuns: 300, seed: 7 });
    const headers = [
      ...values.map((v) => renderHeader("Subject", v, ascii)),
      ...names.map((n) => renderHeader("To", [{ name: n, address: "a@x.org" }, { name: "B", address: "b@y.org" }], ascii)),
    ];
    const run = spawnSync(PYTHON, ["-c", JUDGE], { input: JSON.stringify(headers), encoding: "utf8", maxBuffer: 1 << 26 });
    expect(run.stderr).toBe("");
    const parsed = JSON.parse(run.stdout) as unknown[];
    expect(parsed).toEqual([...values, ...names.map((n) => [[n, "a@x.org"], ["B", "b@y.org"]])]);
  });
});

const JAPANESE = "Subject: =?utf-8?B?5pel5pys6Kqe44Gu5Lu25ZCN44Gn44GZ?=\r\n";
const MIXED = "Subject: Re: =?utf-8?B?Y2Fmw6kgY3LDqG1l?= at 5 o'clock\r\n";
const LOOKALIKE = "Subject: literal =?utf-8?B?PT91dGYtOD9xP3g/PQ==?= here\r\n";
const FROM_JOSE = "From: =?utf-8?B?Sm9zw6k=?= <jose@xn--bcher-kva.example>\r\n";

describe("unstructured headers, byte for byte as words split and joined plainly", () => {
  // The algorithm as written before it worked on offsets: split into word and white-space
  // strings, encode runs of words that need it (white space inside, one character left
  // outside next to plain text), fold greedily at 78 (76 on a line holding an encoded-word).
  function plainRender(name: string, value: string, utf8: boolean): string {
    const words: string[] = [];
    const seps: string[] = [];
    let trailing = "";
    for (let i = 0; ; ) {
      const ws = i;
      while (i < value.length && (value[i] === " " || value[i] === "\t")) i++;
      if (i >= value.length) {
        trailing = value.slice(ws, i);
        break;
      }
      const w = i;
      while (i < value.length && value[i] !== " " && value[i] !== "\t") i++;
      seps.push(value.slice(ws, w));
      words.push(value.slice(w, i));
    }
    const needs = (w: string) =>
      w.includes("=?") || [...w].some((ch) => {
        const c = ch.charCodeAt(0);
        return (c < 0x20 && c !== 9) || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029 || (!utf8 && c >= 0x7f);
      });
    const bytes = (t: string) => Buffer.byteLength(t);
    const encode = (t: string, first: boolean) => encodeWordsWithFallback(t, "utf-8", "text", 75, first ? Math.min(75, 76 - name.length - 2) : undefined);
    const chunks: { sep: string; text: string }[] = [];
    if (words.length === 0) {
      if (value !== "") for (const t of encode(value, true)) chunks.push({ sep: " ", text: t });
    } else {
      const n = words.length;
      const enc = words.map((w, i) => needs(w) || bytes(seps[i] || " ") + bytes(w) > 997);
      if (seps[0] !== "") enc[0] = true;
      if (trailing !== "") enc[n - 1] = true;
      for (let i = 0; i < n; ) {
        if (!enc[i]) {
          chunks.push({ sep: i === 0 ? " " : seps[i]!, text: words[i]! });
          i++;
          continue;
        }
        let j = i;
        while (j + 1 < n && enc[j + 1]) j++;
        let sep = " ";
        let text = i === 0 ? seps[0]! : seps[i]!.slice(1);
        if (i > 0) sep = seps[i]!.slice(0, 1);
        for (let k = i; k <= j; k++) text += (k > i ? seps[k]! : "") + words[k]!;
        if (j === n - 1) text += trailing;
        else {
          text += seps[j + 1]!.slice(0, -1);
          seps[j + 1] = seps[j + 1]!.slice(-1);
        }
        encode(text, chunks.length === 0).forEach((t, k) => chunks.push({ sep: k === 0 ? sep : " ", text: t }));
        i = j + 1;
      }
    }
    let out = "";
    let line = `${name}:`;
    let encodedLine = false;
    let content = false;
    for (const { sep, text } of chunks) {
      const piece = sep + text;
      const encoded = text.includes("=?");
      const limit = encodedLine || encoded ? 76 : 78;
      if (((content || encoded) && bytes(line) + bytes(piece) > limit) || bytes(line) + bytes(piece) > 998) {
        out += `${line}\r\n`;
        line = piece;
        encodedLine = encoded;
      } else {
        line += piece;
        encodedLine ||= encoded;
      }
      content = true;
    }
    if (chunks.length === 0) line += " ";
    return `${out}${line}\r\n`;
  }

  const piece = fc.oneof(
    fc.constantFrom(" ", "  ", "\t", " \t ", "=?", "?=", "café", "☕", "Réunion", "😀", "\u0085", "résultats,", "x".repeat(40)),
    fc.string({ unit: "grapheme-ascii", maxLength: 12 }),
    fc.string({ unit: "grapheme", maxLength: 6 }),
  );
  const value = fc.array(piece, { maxLength: 14 }).map((p) => p.join(""));

  it.each([false, true])("utf8 %s", (utf8) => {
    fc.assert(
      fc.property(value, fc.constantFrom("Subject", "X-Long-Header-Name-For-Folding", "Comments"), (v, name) => {
        expect(renderHeader(name, v, { utf8, charset: "utf-8", kind: "unstructured" })).toBe(plainRender(name, v, utf8));
      }),
      { numRuns: 1000 },
    );
  });
});

// At the limits: every line length exactly at 78, 76 and 998 octets and one past, the clamps
// on maxLineLength, control characters (C0, DEL, C1, U+2028/2029) in UTF-8 headers and in
// structured ones, name rules at each end of the printable range, and the messages a person
// reads when something is refused. Byte-exact.
const x = (n: number) => "x".repeat(n);
const y = (n: number) => "y".repeat(n);
const lineLengths = (rendered: string) => rendered.slice(0, -2).split("\r\n").map((l) => Buffer.byteLength(l));

describe("header names", () => {
  it("997 characters are allowed, 998 are not (the colon must fit on the line)", () => {
    expect(() => assertHeaderName(x(997))).not.toThrow();
    const error = errorOf(() => assertHeaderName(x(998)));
    expect(error).toBeInstanceOf(BadHeaderError);
    expect(error.message).toBe(`The header name "${x(40)}"... is longer than 997 characters`);
    expect((error as BadHeaderError).field).toBe(x(40));
  });

  it("printable ASCII from ! (33) to ~ (126); space, DEL, C0 and non-ASCII named in the message", () => {
    expect(() => assertHeaderName("!~")).not.toThrow();
    const message = (name: string) => errorOf(() => assertHeaderName(name)).message;
    expect(message("A B")).toBe('Invalid header name "A B": the control character U+0020 at offset 1 (only printable ASCII except ":" is allowed)');
    expect(message("A\x7f")).toBe('Invalid header name "A\x7f": the control character U+007F at offset 1 (only printable ASCII except ":" is allowed)');
    expect(message("A\x1f")).toBe('Invalid header name "A\\u001f": the control character U+001F at offset 1 (only printable ASCII except ":" is allowed)');
    expect(message("\x00")).toBe('Invalid header name "\\u0000": a NUL character at offset 0 (only printable ASCII except ":" is allowed)');
    expect(message("A\rB")).toContain("a carriage return (CR) at offset 1");
    expect(message("A\nB")).toContain("a line feed (LF) at offset 1");
    expect(message("Ab\x80")).toBe('Invalid header name "Ab\x80": the non-ASCII character "\x80" at offset 2 (only printable ASCII except ":" is allowed)');
    expect(message("X-\u00e9")).toContain('the non-ASCII character "é" at offset 2');
    expect(message("")).toBe("A header name must be a non-empty string");
    expect(errorOf(() => assertHeaderName(5 as unknown as string))).toBeInstanceOf(BadHeaderError);
    expect((errorOf(() => assertHeaderName(undefined as unknown as string)) as BadHeaderError).field).toBe("undefined");
  });

  it("each name once, whatever its case; the message says which", () => {
    expect(() => assertDistinctHeaderNames(["X-A", "X-B", "x-c"], "headers")).not.toThrow();
    expect(errorOf(() => assertDistinctHeaderNames(["X-A", "x-a"], "headers")).message).toBe(
      'headers has both "X-A" and "x-a"; header names are case-insensitive (RFC 5322 §1.2.2), give each header once',
    );
    const twice = errorOf(() => assertDistinctHeaderNames(["X-A", "B", "X-A"], "part headers"));
    expect(twice).toBeInstanceOf(BadHeaderError);
    expect(twice.message).toBe('part headers has "X-A" twice; header names are case-insensitive (RFC 5322 §1.2.2), give each header once');
    expect((twice as BadHeaderError).field).toBe("X-A");
  });

  it("kinds: list-* and arc-* are structured, by prefix only; the rest of the address and raw lists", () => {
    expect(["List-Id", "LIST-ARCHIVE", "ARC-Seal", "arc-message-signature"].map(headerKind)).toEqual(Array(4).fill("raw"));
    expect(["List", "Listx-Id", "Arc", "X-List-Id", "X-ARC-Seal"].map(headerKind)).toEqual(Array(5).fill("unstructured"));
    expect(["Mail-Followup-To", "Errors-To", "Disposition-Notification-To", "Resent-Sender"].map(headerKind)).toEqual(Array(4).fill("address"));
    expect(["Received", "Return-Path", "Autocrypt", "Feedback-ID", "Content-Location", "Authentication-Results"].map(headerKind)).toEqual(Array(6).fill("raw"));
  });
});

describe("header values", () => {
  it("must be strings; CR, LF and NUL are refused at their offset, a tab is fine", () => {
    expect(errorOf(() => assertHeaderValue("Subject", null as unknown as string)).message).toBe("The value of Subject must be a string, got null");
    expect(errorOf(() => assertHeaderValue("Subject", 5 as unknown as string)).message).toBe("The value of Subject must be a string, got number");
    expect(errorOf(() => assertHeaderValue("X", "abc\n")).message).toBe("X contains a line feed (LF) at offset 3; header values must be a single line (header injection)");
    expect(errorOf(() => assertHeaderValue("X", "\0")).message).toBe("X contains a NUL character at offset 0; header values must be a single line (header injection)");
    expect(() => assertHeaderValue("X", "\t\x01\x7f")).not.toThrow();
    expect(errorOf(() => renderHeader("Subject", "ok \udc00", ascii))).toBeInstanceOf(EncodingError);
  });

  it("UTF-8 headers still encode C0 controls, DEL, C1 controls and U+2028/2029; the characters next to them stay raw", () => {
    const cases: [string, string][] = [
      ["a\x07b c", "Subject: =?utf-8?B?YQdi?= c\r\n"],
      ["a\x1fb", "Subject: =?utf-8?B?YR9i?=\r\n"],
      ["a\x7fb", "Subject: =?utf-8?B?YX9i?=\r\n"],
      ["a\x80b", "Subject: =?utf-8?Q?a=C2=80b?=\r\n"],
      ["a\x9fb", "Subject: =?utf-8?Q?a=C2=9Fb?=\r\n"],
      ["a\u2028b", "Subject: =?utf-8?B?YeKAqGI=?=\r\n"],
      ["a\u2029b", "Subject: =?utf-8?B?YeKAqWI=?=\r\n"],
      // not controls: stay as they are
      ["a~b", "Subject: a~b\r\n"],
      ["a\xa0b", "Subject: a\xa0b\r\n"],
      ["a\u2027b \u202ac", "Subject: a\u2027b \u202ac\r\n"],
      ["a\x20b", "Subject: a b\r\n"],
    ];
    for (const [value, rendered] of cases) {
      expect(renderHeader("Subject", value, utf8), JSON.stringify(value)).toBe(rendered);
      expect(decodeWords(unfold(rendered.slice("Subject: ".length, -2)))).toBe(value);
    }
  });

  it("structured headers refuse C0 controls and DEL at their offset, in UTF-8 mode too; a tab and 8-bit text with utf8 pass", () => {
    const message = (value: string, opts = utf8) => errorOf(() => renderHeader("References", value, opts)).message;
    expect(message("<a\x07b>", ascii)).toBe("References contains the control character U+0007 at offset 2");
    expect(message("<a@b> <c\x7f>")).toBe("References contains the control character U+007F at offset 8");
    expect(message("<a\x1f>")).toBe("References contains the control character U+001F at offset 2");
    expect(message("\x01")).toBe("References contains the control character U+0001 at offset 0");
    expect(renderHeader("References", "<a>\t<b>", ascii)).toBe("References: <a>\t<b>\r\n");
    expect(renderHeader("References", "<a\x80\u2028>", utf8)).toBe("References: <a\x80\u2028>\r\n");
    expect(renderHeader("References", "<a~ >", ascii)).toBe("References: <a~ >\r\n");
    expect(message("<é>", ascii)).toBe("References is a structured header and cannot hold non-ASCII text in a 7-bit message; encode it first (RFC 2047/2231) or send with SMTPUTF8");
  });

  it("white space only, and white space around a structured value, are kept as given", () => {
    expect(renderHeader("References", "  ", ascii)).toBe("References:   \r\n");
    expect(renderHeader("References", "  <a> ", ascii)).toBe("References:   <a> \r\n");
    expect(renderHeader("References", "", ascii)).toBe("References: \r\n");
    expect(renderHeader("Subject", "   ", ascii)).toBe("Subject: =?utf-8?Q?___?=\r\n");
  });
});

describe("folding at 78", () => {
  // "Subject: " is 9 octets; two words with one space between them.
  it("a line of exactly 78 octets stays whole; 79 folds before the last word", () => {
    const at78 = `${x(10)} ${y(58)}`;
    expect(renderHeader("Subject", at78, ascii)).toBe(`Subject: ${at78}\r\n`);
    const at79 = `${x(10)} ${y(59)}`;
    expect(renderHeader("Subject", at79, ascii)).toBe(`Subject: ${x(10)}\r\n ${y(59)}\r\n`);
    // the same in a structured header
    expect(renderHeader("References", `${x(10)} ${y(55)}`, ascii)).toBe(`References: ${x(10)} ${y(55)}\r\n`);
    expect(renderHeader("References", `${x(10)} ${y(56)}`, ascii)).toBe(`References: ${x(10)}\r\n ${y(56)}\r\n`);
  });

  it("a continuation line of exactly 78 stays whole; 79 folds again", () => {
    const first = x(60);
    expect(renderHeader("Subject", `${first} ${y(30)} ${y(46)}`, ascii)).toBe(`Subject: ${first}\r\n ${y(30)} ${y(46)}\r\n`);
    expect(lineLengths(renderHeader("Subject", `${first} ${y(30)} ${y(46)}`, ascii))).toEqual([69, 78]);
    expect(renderHeader("Subject", `${first} ${y(30)} ${y(47)}`, ascii)).toBe(`Subject: ${first}\r\n ${y(30)}\r\n ${y(47)}\r\n`);
  });

  it("the first word stays on the name's line even when longer than 78 (there is nowhere to fold)", () => {
    expect(renderHeader("Subject", x(100), ascii)).toBe(`Subject: ${x(100)}\r\n`);
    expect(renderHeader("References", `${x(100)} <b>`, ascii)).toBe(`References: ${x(100)}\r\n <b>\r\n`);
  });

  it("counts octets, not characters, in UTF-8 headers", () => {
    // "é" is two octets: 34 of them are 68 octets, with "Subject: " and "ab " 80 > 78
    const value = `ab ${"é".repeat(34)}`;
    expect(renderHeader("Subject", value, utf8)).toBe(`Subject: ab\r\n ${"é".repeat(34)}\r\n`);
    const fits = `ab ${"é".repeat(33)}`; // 9 + 3 + 66 = 78
    expect(renderHeader("Subject", fits, utf8)).toBe(`Subject: ${fits}\r\n`);
  });
});

describe("maxLineLength", () => {
  it("is at least 40 and at most 998", () => {
    const value = `${x(20)} ${y(10)} ${x(15)}`; // "Subject: " 9 + 20 + 1 + 10 = 40
    const at40 = `Subject: ${x(20)} ${y(10)}\r\n ${x(15)}\r\n`;
    expect(renderHeader("Subject", value, { ...ascii, maxLineLength: 40 })).toBe(at40);
    expect(renderHeader("Subject", value, { ...ascii, maxLineLength: 10 })).toBe(at40);
    expect(renderHeader("Subject", value, { ...ascii, maxLineLength: 39 })).toBe(at40);
    expect(renderHeader("Subject", value, { ...ascii, maxLineLength: 41 })).toBe(at40);
    expect(renderHeader("Subject", value, { ...ascii, maxLineLength: 56 })).toBe(`Subject: ${value}\r\n`);
    expect(renderHeader("Subject", value, { ...ascii, maxLineLength: 55 })).toBe(at40);
    // past 998 it is 998
    const long = `${x(500)} ${y(488)} ${x(5)}`; // 9 + 500 + 1 + 488 = 998
    const at998 = `Subject: ${x(500)} ${y(488)}\r\n ${x(5)}\r\n`;
    expect(renderHeader("References", long.replace(/^x{3}/, ""), { ...ascii, maxLineLength: 5000 })).toBe(`References: ${x(497)} ${y(488)}\r\n ${x(5)}\r\n`);
    expect(renderHeader("Subject", long, { ...ascii, maxLineLength: 998 })).toBe(at998);
    expect(renderHeader("Subject", long, { ...ascii, maxLineLength: 999 })).toBe(at998);
    expect(renderHeader("Subject", long, { ...ascii, maxLineLength: 2000 })).toBe(at998);
  });
});

describe("998 octets", () => {
  it("a structured header's word fills a line to exactly 998; a longer one gets a line of its own; past 998 even there it is refused", () => {
    // "References: " is 12 octets
    expect(renderHeader("References", x(986), ascii)).toBe(`References: ${x(986)}\r\n`);
    expect(renderHeader("References", x(987), ascii)).toBe(`References:\r\n ${x(987)}\r\n`);
    // on a continuation line: " " + 997 = 998
    expect(renderHeader("References", x(997), ascii)).toBe(`References:\r\n ${x(997)}\r\n`);
    expect(renderHeader("References", `<a> ${x(997)}`, ascii)).toBe(`References: <a>\r\n ${x(997)}\r\n`);
    const error = errorOf(() => renderHeader("References", `<a> ${x(998)}`, ascii));
    expect(error).toBeInstanceOf(BadHeaderError);
    expect(error.message).toBe("References cannot be folded into lines of at most 998 octets: it has a word of 999 octets with no white space to fold at");
    expect(errorOf(() => renderHeader("References", x(998), ascii)).message).toContain("a word of 999 octets");
    // in UTF-8, octets: 493 × "é" is 986 octets
    expect(renderHeader("References", "é".repeat(493), utf8)).toBe(`References: ${"é".repeat(493)}\r\n`);
    expect(renderHeader("References", `${"é".repeat(493)}a`, utf8)).toBe(`References:\r\n ${"é".repeat(493)}a\r\n`);
    expect(renderHeader("References", "é".repeat(498) + "a", utf8)).toBe(`References:\r\n ${"é".repeat(498)}a\r\n`);
    expect(errorOf(() => renderHeader("References", "é".repeat(499), utf8)).message).toContain("a word of 999 octets");
  });

  it("with a width of 998, the first line breaks before a word that would pass 998", () => {
    const opts = { ...ascii, maxLineLength: 998 };
    expect(renderHeader("References", `${x(900)} ${y(85)}`, opts)).toBe(`References: ${x(900)} ${y(85)}\r\n`);
    expect(renderHeader("References", `${x(900)} ${y(86)}`, opts)).toBe(`References: ${x(900)}\r\n ${y(86)}\r\n`);
  });

  it("an unstructured word that fits on a line of its own stays plain; one that cannot is encoded", () => {
    const plain = renderHeader("Subject", `a ${x(996)}`, ascii);
    expect(plain).toBe(`Subject: a\r\n ${x(996)}\r\n`);
    const encoded = renderHeader("Subject", `a ${x(998)}`, ascii);
    expect(encoded.startsWith("Subject: a\r\n =?utf-8?Q?")).toBe(true);
    expect(Math.max(...lineLengths(encoded))).toBeLessThanOrEqual(76);
    expect(decodeWords(unfold(encoded.slice(9, -2)))).toBe(`a ${x(998)}`);
  });
});

describe("lines holding encoded-words: 76", () => {
  it("an encoded line exactly 76 long stays whole; one more and it folds", () => {
    // "=?utf-8?B?w6k=?=" is 16 octets: "Subject: " + 16 = 25, and a word of 50 after a space ends the line at 76.
    const at76 = renderHeader("Subject", `é ${x(50)}`, ascii);
    expect(at76).toBe(`Subject: =?utf-8?B?w6k=?= ${x(50)}\r\n`);
    expect(lineLengths(at76)).toEqual([76]);
    expect(renderHeader("Subject", `é ${x(51)}`, ascii)).toBe(`Subject: =?utf-8?B?w6k=?=\r\n ${x(51)}\r\n`);
    // an encoded-word after plain text obeys the same 76
    expect(renderHeader("Subject", `${x(50)} é`, ascii)).toBe(`Subject: ${x(50)} =?utf-8?B?w6k=?=\r\n`);
    expect(renderHeader("Subject", `${x(51)} é`, ascii)).toBe(`Subject: ${x(51)}\r\n =?utf-8?B?w6k=?=\r\n`);
  });

  it("a wider maxLineLength does not widen lines with encoded-words, a narrower one narrows them", () => {
    expect(renderHeader("Subject", `${x(51)} é`, { ...ascii, maxLineLength: 200 })).toBe(`Subject: ${x(51)}\r\n =?utf-8?B?w6k=?=\r\n`);
    expect(renderHeader("Subject", `${x(50)} é`, { ...ascii, maxLineLength: 200 })).toBe(`Subject: ${x(50)} =?utf-8?B?w6k=?=\r\n`);
    expect(renderHeader("Subject", `${x(14)} é`, { ...ascii, maxLineLength: 40 })).toBe(`Subject: ${x(14)} =?utf-8?B?w6k=?=\r\n`);
    expect(renderHeader("Subject", `${x(15)} é`, { ...ascii, maxLineLength: 40 })).toBe(`Subject: ${x(15)}\r\n =?utf-8?B?w6k=?=\r\n`);
  });

  it("a long name leaves the first encoded-word room to fit its line, or a line of its own", () => {
    for (const nameLength of [40, 60, 70, 73, 74, 75, 80]) {
      const name = `X-${x(nameLength - 2)}`;
      const rendered = renderHeader(name, "ééééééééééééééééééééé", ascii);
      const lines = rendered.slice(0, -2).split("\r\n");
      for (const line of lines) if (line.includes("=?")) expect(Buffer.byteLength(line), `${nameLength}: ${line}`).toBeLessThanOrEqual(76);
      expect(decodeWords(unfold(rendered.slice(name.length + 1, -2)).trimStart())).toBe("ééééééééééééééééééééé");
    }
  });
});

describe("unfold and parseHeaderBlock", () => {
  it("unfold keeps a CRLF not followed by white space, at the end too", () => {
    expect(unfold("a\r\n b\r\n\tc\r\nd\r\n")).toBe("a b\tc\r\nd\r\n");
    expect(unfold("a\r\n")).toBe("a\r\n");
    expect(unfold("")).toBe("");
    expect(unfold("\r\n \r\n")).toBe(" \r\n");
  });

  it("parseHeaderBlock stops at the empty line, skips lines without a colon and stray continuations, strips leading white space", () => {
    const block = " stray\r\nA: 1\r\n\t2\r\nnocolon\r\nB:\t\t x: y \r\nC:\r\n\r\nD: after";
    expect(parseHeaderBlock(block)).toEqual([
      ["A", "1\t2"],
      ["B", "x: y "],
      ["C", ""],
    ]);
    expect(parseHeaderBlock("")).toEqual([]);
  });
});
