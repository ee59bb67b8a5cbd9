import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { assertWellFormed, decodeText, encodeInPieces, encodeText, normalizeCharset } from "../../../src/mime/encoding/charset.js";
import { parseMessageSync } from "../../../src/parse/index.js";
import { errorOf } from "../../helpers/errors.js";

// The edges of charset.ts that the round trips do not reach: where each check stops, the
// messages that name the character, and what Python's codecs read where bytes are malformed.

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const HAS_PYTHON = spawnSync(PYTHON, ["-c", "import codecs; codecs.lookup('iso2022_jp_1')"]).status === 0;

/** Python's reading of each byte string (hex) in `codec`, with errors="replace". */
function pythonDecodes(codec: string, inputs: readonly Buffer[]): string[] {
  const script = `
import json, sys
print(json.dumps([bytes.fromhex(h).decode(${JSON.stringify(codec)}, "replace") for h in json.load(sys.stdin)]))
`;
  const run = spawnSync(PYTHON, ["-c", script], { input: JSON.stringify(inputs.map((b) => b.toString("hex"))), encoding: "utf8" });
  expect(run.stderr).toBe("");
  return JSON.parse(run.stdout) as string[];
}

const latin1 = (text: string) => Buffer.from(text, "latin1");
const byteCount = (bytes: Uint8Array) => bytes.length;

describe("normalizeCharset refuses iconv-lite's conversions that are no charset", () => {
  it("binary, base64 and hex, in any of the spellings iconv-lite takes", () => {
    for (const name of ["binary", "BASE64", "hex", "base-64", "bin.ary", "binary:1234"]) {
      expect(errorOf(() => normalizeCharset(name)).message, name).toBe(`Unknown charset ${JSON.stringify(name)}: use a charset name iconv-lite knows, such as "utf-8"`);
    }
    // "binary" would have written U+0141 as "A".
    expect(() => encodeText("\u0141", "binary")).toThrow(/Unknown charset "binary"/);
    expect(normalizeCharset("UCS-2")).toBe("ucs-2");
  });
});

describe("lone surrogates, where a pair is not a pair", () => {
  it("takes a high surrogate followed by a unit past the low range as lone", () => {
    expect(errorOf(() => assertWellFormed("\ud800\ue000", "Subject")).message).toBe(
      "Subject contains a lone surrogate (U+D800 at index 0); it cannot be encoded in any charset",
    );
    expect(errorOf(() => assertWellFormed("ab\udbff\uffff", "Subject")).message).toContain("U+DBFF at index 2");
  });

  it("names the text as `Text` when encodeText refuses it", () => {
    expect(errorOf(() => encodeText("a\udc00", "koi8-r")).message).toBe(
      "Text contains a lone surrogate (U+DC00 at index 1); it cannot be encoded in any charset",
    );
  });
});

describe("characters a charset cannot hold", () => {
  it("US-ASCII refuses U+FFFD (iconv-lite's table would write it as 0xFF)", () => {
    expect(errorOf(() => encodeText("a\ufffd", "us-ascii")).message).toBe(
      'The character U+FFFD "\ufffd" cannot be represented in us-ascii; use utf-8 or remove it',
    );
  });

  it("names the character that was replaced, not a `?` of the text before it", () => {
    expect(errorOf(() => encodeText("what? caf\u00e9", "koi8-r")).message).toBe(
      'The character U+00E9 "\u00e9" cannot be represented in koi8-r; use utf-8 or remove it',
    );
    expect(errorOf(() => encodeText("?\u0100", "windows-1252")).message).toContain("U+0100");
  });

  it("ISO-2022-JP refuses a character EUC-JP writes as `?` alone, and names the first one outside JIS X 0208 after a character starting 0xA1", () => {
    const message = (text: string) => errorOf(() => encodeText(text, "iso-2022-jp")).message;
    expect(message("\u{1f600}")).toBe('The character U+1F600 "\u{1f600}" cannot be represented in iso-2022-jp; use utf-8 or remove it');
    // U+3000 and U+3001 are A1 A1 and A1 A2 in EUC-JP, the lowest bytes JIS X 0208 uses.
    expect(message("\u3000\u3001\uff71")).toContain("U+FF71");
    expect(message("\u3000\u3001\u00e9")).toContain("U+00E9");
    expect(encodeText("\u3000\u3001", "iso-2022-jp").toString("latin1")).toBe("\x1b$B!!!\"\x1b(B");
  });
});

describe.skipIf(!HAS_PYTHON)("decodeText reads malformed bytes as Python's codecs do", () => {
  it("US-ASCII: each 8-bit byte is U+FFFD, every 7-bit byte itself", () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, b) => b));
    const inputs = [all, latin1("caf\xe9"), latin1("\x80\xff")];
    const theirs = pythonDecodes("ascii", inputs);
    inputs.forEach((bytes, i) => expect(decodeText(bytes, "us-ascii")).toBe(theirs[i]));
    expect(decodeText(latin1("caf\xe9"), "ASCII")).toBe("caf\ufffd");
  });

  it("UTF-8 keeps a leading byte-order mark as U+FEFF", () => {
    const inputs = [Buffer.from([0xef, 0xbb, 0xbf, 0x61]), Buffer.from([0x61, 0xef, 0xbb, 0xbf])];
    const theirs = pythonDecodes("utf-8", inputs);
    inputs.forEach((bytes, i) => expect(decodeText(bytes, "utf-8")).toBe(theirs[i]));
    expect(theirs[0]).toBe("\ufeffa");
  });

  it("ISO-2022-JP: a pair JIS X 0208 or 0212 has no character for is one U+FFFD, and the pairs after it stay in step", () => {
    const inputs = [
      latin1('\x1b$B!!~!$"\x1b(B'), // row 94 of JIS X 0208 is empty
      latin1("\x1b$B~!\x1b(B"),
      latin1('\x1b$B$"~~~~$"\x1b(B'),
      latin1("\x1b$(D+1~!+1\x1b(B"), // and of JIS X 0212
    ];
    const theirs = pythonDecodes("iso2022_jp_1", inputs);
    expect(theirs[0]).toBe("\u3000\ufffd\u3042");
    inputs.forEach((bytes, i) => expect(decodeText(bytes, "iso-2022-jp"), bytes.toString("latin1")).toBe(theirs[i]));
  });

  it("a message whose US-ASCII body holds 8-bit bytes reads them as U+FFFD, as Python's email does", () => {
    const raw = latin1("Subject: x\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n");
    const script = "import email, email.policy, sys; m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default); sys.stdout.write(m.get_content().encode('unicode_escape').decode())";
    const run = spawnSync(PYTHON, ["-c", script], { input: raw, encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.stdout).toBe("caf\\ufffd\\r\\n");
    expect(parseMessageSync(raw).text).toBe("caf\ufffd\n");
  });
});

describe("ISO-2022-JP decoding, escapes that are almost known", () => {
  it("keeps as text an escape whose first or second byte differs from a known one", () => {
    for (const escape of ["\x1b$J", "\x1b$I", "\x1b(@", "\x1b((D", "\x1b$AD", "\x1b)B"]) {
      expect(decodeText(latin1(`${escape}x`), "iso-2022-jp"), JSON.stringify(escape)).toBe(`${escape}x`);
    }
  });

  it("a two-byte set takes no line break or 8-bit byte as the second byte of a pair", () => {
    expect(decodeText(latin1('\x1b$B$\n$"'), "iso-2022-jp")).toBe('\ufffd\n$"');
    expect(decodeText(latin1('\x1b$B$\r$"'), "iso-2022-jp")).toBe('\ufffd\r$"');
    expect(decodeText(latin1("\x1b$B$\xa2"), "iso-2022-jp")).toBe("\ufffd\ufffd");
  });
});

describe("encodeInPieces, pieces with different limits", () => {
  // The first piece holds 2, the others 4 (UTF-8 and Latin-1 octets) or 8 (ISO-2022-JP).
  const firstSmaller = (rest: number) => (units: number, index: number) => units <= (index === 0 ? 2 : rest);

  it("puts a character too wide for the first piece into the next one, in a stateless and a stateful charset", () => {
    expect(encodeInPieces("a\u0800b", "utf-8", byteCount, firstSmaller(4)).map((p) => p.toString("utf8"))).toEqual(["a", "\u0800b"]);
    expect(encodeInPieces("a\u3042", "iso-2022-jp", byteCount, firstSmaller(8)).map((p) => p.toString("latin1"))).toEqual(["a", '\x1b$B$"\x1b(B']);
  });

  it("reports a character the charset cannot hold before an earlier one too wide for its piece, stateless or stateful", () => {
    for (const [text, charset, name] of [["\u0436\u00e9", "koi8-r", "U+00E9"], ["\u3042\uff71", "iso-2022-jp", "U+FF71"]] as const) {
      expect(errorOf(() => encodeInPieces(text, charset, byteCount, () => false)).message, charset).toBe(
        `The character ${name} ${JSON.stringify(text.slice(1))} cannot be represented in ${charset}; use utf-8 or remove it`,
      );
    }
  });

  it("refuses a first character too wide for the first piece: no piece is left empty", () => {
    for (const [text, charset, rest, name] of [["\u0800", "utf-8", 4, "U+0800"], ["\u3042", "iso-2022-jp", 8, "U+3042"]] as const) {
      expect(errorOf(() => encodeInPieces(text, charset, byteCount, firstSmaller(rest))).message, charset).toBe(
        `The character ${name} ${JSON.stringify(text)} does not fit in one piece once encoded in ${charset}`,
      );
    }
  });

  it("refuses a character that starts a piece smaller than the one before and does not fit it", () => {
    const shrinking = (first: number, rest: number) => (units: number, index: number) => units <= (index === 0 ? first : rest);
    // A cost of 3 for an 8-bit octet (as Q writes it), 1 for the others.
    const qCost = (bytes: Uint8Array) => bytes.reduce((sum, b) => sum + (b > 0x7f ? 3 : 1), 0);
    const cases = [
      ["ab\u0800", "utf-8", byteCount, "U+0800"],
      ["ab\u00e9", "iso-8859-1", qCost, "U+00E9"],
      ["ab\u3042", "iso-2022-jp", byteCount, "U+3042"],
    ] as const;
    for (const [text, charset, measure, name] of cases) {
      // "ab" and the character together pass the first limit; the character alone passes
      // the first but not the second.
      const [first, rest] = charset === "iso-2022-jp" ? [9, 7] : [4, 2];
      expect(errorOf(() => encodeInPieces(text, charset, measure, shrinking(first, rest))).message, charset).toBe(
        `The character ${name} ${JSON.stringify(text.slice(2))} does not fit in one piece once encoded in ${charset}`,
      );
    }
  });
});
