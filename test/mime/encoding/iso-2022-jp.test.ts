import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EncodingError } from "../../../src/errors.js";
import { decodeText, encodeText } from "../../../src/mime/encoding/charset.js";
import { errorOf } from "../../helpers/errors.js";
import { POOLS } from "./charset-pools.js";

// ISO-2022-JP (RFC 1468) byte for byte: ESC ( B is ASCII, ESC ( J JIS X 0201 Roman,
// ESC $ B JIS X 0208; the decoder also reads ESC $ @, ESC ( I and ESC $ ( D.
const bytes = (latin1: string) => Buffer.from(latin1, "latin1");
const enc = (text: string) => encodeText(text, "iso-2022-jp").toString("latin1");
const dec = (latin1: string) => decodeText(bytes(latin1), "iso-2022-jp");

describe("ISO-2022-JP encoding", () => {
  it("writes ASCII without escapes, and switches only when the set changes", () => {
    expect(enc("")).toBe("");
    expect(enc("plain text ~\\")).toBe("plain text ~\\");
    expect(enc("\u3042\u3044")).toBe('\x1b$B$"$$\x1b(B');
    expect(enc("a\u3042b\u3044c")).toBe('a\x1b$B$"\x1b(Bb\x1b$B$$\x1b(Bc');
    // Yen and overline are JIS X 0201 Roman, at 0x5C and 0x7E.
    expect(enc("\u00a5\u00a5\u203e")).toBe("\x1b(J\\\\~\x1b(B");
    expect(enc("\u3042\u00a5\u3042")).toBe('\x1b$B$"\x1b(J\\\x1b$B$"\x1b(B');
    expect(enc("\u00a5a")).toBe("\x1b(J\\\x1b(Ba");
    // The last character of the Latin-1 range that is not Roman, and the first past ASCII.
    expect(() => enc("\u0080")).toThrow(EncodingError);
  });

  it("refuses ESC, SO and SI, which would change the decoder's state; other controls pass", () => {
    for (const [c, hex] of [["\x1b", "001B"], ["\x0e", "000E"], ["\x0f", "000F"]] as const) {
      const error = errorOf(() => encodeText(`a${c}b`, "iso-2022-jp"));
      expect(error).toBeInstanceOf(EncodingError);
      expect(error.message).toBe(`The character U+${hex} ${JSON.stringify(c)} cannot be represented in iso-2022-jp; use utf-8 or remove it`);
    }
    expect(enc("\x00\x0d\x10\x1a\x7f")).toBe("\x00\x0d\x10\x1a\x7f");
  });

  it("refuses half-width katakana, JIS X 0212 and unmapped characters, naming the first one, even inside a run of valid ones", () => {
    const message = (text: string) => errorOf(() => encodeText(text, "iso-2022-jp")).message;
    expect(message("\u3042\uff71\u3044")).toBe('The character U+FF71 "\uff71" cannot be represented in iso-2022-jp; use utf-8 or remove it');
    expect(message("\u3042\u00e9")).toBe('The character U+00E9 "\u00e9" cannot be represented in iso-2022-jp; use utf-8 or remove it');
    expect(message("\u3042\u3044\u{1f600}")).toContain("U+1F600");
    expect(message("\u3042\u0e01\u3044")).toContain("U+0E01");
    // An odd number of EUC-JP bytes (the half-width katakana) is caught with the first of them.
    expect(message("\uff71\u3042")).toContain("U+FF71");
  });
});

describe("ISO-2022-JP decoding", () => {
  it("reads every designation it knows", () => {
    expect(dec('\x1b$B$"\x1b(B')).toBe("\u3042");
    expect(dec('\x1b$@$"\x1b(B')).toBe("\u3042");
    expect(dec("\x1b(J\\~a\x1b(B\\~")).toBe("\u00a5\u203ea\\~");
    expect(dec("\x1b(I!_\x1b(B")).toBe("\uff61\uff9f");
    expect(dec("\x1b$(D+1\x1b(B")).toBe("\u00e9");
    expect(dec("a\x1b(Bb")).toBe("ab");
  });

  it("half-width katakana are 0x21 to 0x5F; anything else in that set is U+FFFD", () => {
    expect(dec("\x1b(I\x20\x21\x5f\x60\x80")).toBe("\ufffd\uff61\uff9f\ufffd\ufffd");
  });

  it("a two-byte set takes pairs of 0x21 to 0x7E; a lone byte, space or 8-bit byte is U+FFFD", () => {
    expect(dec("\x1b$B$")).toBe("\ufffd");
    expect(dec('\x1b$B$"$')).toBe("\u3042\ufffd");
    expect(dec('\x1b$B $"')).toBe("\ufffd\u3042");
    expect(dec('\x1b$B\x7f$"')).toBe("\ufffd\u3042");
    expect(dec("\x1b$B\xa4\xa2")).toBe("\ufffd\ufffd");
    expect(dec("\x1b$B$\x20")).toBe("\ufffd\ufffd");
    expect(dec("\x1b$B$\x7f")).toBe("\ufffd\ufffd");
    expect(dec("\x1b$B!!\x1b(B")).toBe("\u3000");
    expect(dec("\x1b$Bt&\x1b(B")).toBe("\u7199");
    expect(dec("\x1b$(D\x20+1")).toBe("\ufffd\u00e9");
  });

  it("a line break returns to ASCII", () => {
    expect(dec('\x1b$B$"\r\n$"')).toBe('\u3042\r\n$"');
    expect(dec('\x1b$B$"\n$"')).toBe('\u3042\n$"');
    expect(dec("\x1b(J\\\r\\")).toBe("\u00a5\r\\");
    expect(dec("\x1b(I!\n!")).toBe("\uff61\n!");
  });

  it("an unknown or cut-off escape is kept as text; 8-bit bytes in ASCII are U+FFFD", () => {
    expect(dec("\x1b(Zx")).toBe("\x1b(Zx");
    expect(dec("\x1b$(Ex")).toBe("\x1b$(Ex");
    expect(dec("\x1b$")).toBe("\x1b$");
    expect(dec("\x1b")).toBe("\x1b");
    expect(dec("\x1b(")).toBe("\x1b(");
    expect(dec("a\x80\xffb")).toBe("a\ufffd\ufffdb");
    expect(dec("\x1b(J\x80")).toBe("\ufffd");
  });
});

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const HAS_PYTHON = spawnSync(PYTHON, ["-c", "import codecs; codecs.lookup('iso2022_jp_1')"]).status === 0;

// Python's codecs judge both directions: what we write decodes to the text, and what
// Python writes (ISO-2022-JP, and ISO-2022-JP-1 for JIS X 0212) we read back.
const JUDGE = `
import json, sys
out = []
for text, hexbytes in json.load(sys.stdin):
    out.append([bytes.fromhex(hexbytes).decode("iso2022_jp"), text.encode("iso2022_jp").hex(), text.encode("iso2022_jp_1").hex()])
print(json.dumps(out))
`;

const KNOWN = `
import json, sys
known = []
for c in json.load(sys.stdin):
    try:
        c.encode("iso2022_jp")
        known.append(c)
    except UnicodeEncodeError:
        pass
print(json.dumps(known))
`;

describe.skipIf(!HAS_PYTHON)("Python's codecs agree with our ISO-2022-JP", () => {
  it("in both directions, over the repertoire and the JIS-Roman characters", () => {
    // iconv-lite's EUC-JP tables also hold NEC's row 13 (circled digits, ...) and a few
    // CP932 mappings (U+FF0D, U+FFE1, U+2225) that JIS X 0208 lacks and Python refuses:
    // the comparison keeps to the characters both sides have.
    const strict = spawnSync(PYTHON, ["-c", KNOWN], { input: JSON.stringify(POOLS["iso-2022-jp"]), encoding: "utf8" });
    expect(strict.stderr).toBe("");
    const pool = JSON.parse(strict.stdout) as string[];
    expect(pool.length).toBeGreaterThan(900);
    const texts = fc.sample(fc.array(fc.constantFrom(...pool, "\u00a5", "\u203e", "\r\n", "a"), { maxLength: 40, size: "max" }).map((a) => a.join("")), { numRuns: 300, seed: 2022 });
    const run = spawnSync(PYTHON, ["-c", JUDGE], {
      input: JSON.stringify(texts.map((t) => [t, encodeText(t, "iso-2022-jp").toString("hex")])),
      encoding: "utf8",
      maxBuffer: 1 << 24,
    });
    expect(run.stderr).toBe("");
    const judged = JSON.parse(run.stdout) as [string, string, string][];
    judged.forEach(([theirReading, theirs, theirs1], i) => {
      expect(theirReading).toBe(texts[i]);
      expect(decodeText(Buffer.from(theirs, "hex"), "iso-2022-jp")).toBe(texts[i]);
      expect(decodeText(Buffer.from(theirs1, "hex"), "iso-2022-jp")).toBe(texts[i]);
    });
  });

  it("reads JIS X 0212 as Python's ISO-2022-JP-1 writes it", () => {
    const text = "\u00e9\u00fc\u3042\u00e9";
    const run = spawnSync(PYTHON, ["-c", `import sys; sys.stdout.write(${JSON.stringify(text)}.encode("iso2022_jp_1").hex())`], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(decodeText(Buffer.from(run.stdout, "hex"), "iso-2022-jp")).toBe(text);
  });
});
