import { describe, expect, it } from "vitest";
import {
  ATTR_CHAR,
  BYTE_CLASS,
  HEX,
  HEX_DIGITS,
  QP_LITERAL,
  Q_COMMENT,
  Q_PHRASE,
  Q_TEXT,
  TOKEN,
  WSP,
  hexValue,
} from "../../../src/mime/encoding/byte-classes.js";

/** Every byte whose class holds `flag`, as a string of latin1 characters. */
function members(flag: number): string {
  let out = "";
  for (let b = 0; b < 256; b++) if ((BYTE_CLASS[b]! & flag) !== 0) out += String.fromCharCode(b);
  return out;
}

/** Printable ASCII (`!` to `~`) without the characters of `except`. */
function printableExcept(except: string): string {
  let out = "";
  for (let b = 0x21; b <= 0x7e; b++) if (!except.includes(String.fromCharCode(b))) out += String.fromCharCode(b);
  return out;
}

const DIGITS = "0123456789";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";

describe("byte classes, each exactly the set its RFC defines (all 256 bytes)", () => {
  it("has one entry per byte, and the flags are distinct bits", () => {
    expect(BYTE_CLASS).toBeInstanceOf(Uint8Array);
    expect(BYTE_CLASS.length).toBe(256);
    const flags = [QP_LITERAL, WSP, TOKEN, ATTR_CHAR, Q_PHRASE, Q_TEXT, Q_COMMENT, HEX];
    expect(flags.reduce((a, f) => a | f, 0)).toBe(0xff);
    expect(new Set(flags).size).toBe(8);
  });

  it("QP_LITERAL: printable ASCII except = (RFC 2045 §6.7 rule 2)", () => {
    expect(members(QP_LITERAL)).toBe(printableExcept("="));
  });

  it("WSP: SPACE and HTAB, and nothing else in their class", () => {
    expect(members(WSP)).toBe("\t ");
    expect(BYTE_CLASS[0x20]).toBe(WSP);
    expect(BYTE_CLASS[0x09]).toBe(WSP);
  });

  it("TOKEN: printable ASCII except the tspecials (RFC 2045 §5.1)", () => {
    expect(members(TOKEN)).toBe(printableExcept('()<>@,;:\\"/[]?='));
  });

  it("ATTR_CHAR: a token character other than *, ' and % (RFC 2231 §7)", () => {
    expect(members(ATTR_CHAR)).toBe(printableExcept('()<>@,;:\\"/[]?=' + "*'%"));
  });

  it("Q_PHRASE: letters, digits and !*+-/ only (RFC 2047 §5(3))", () => {
    expect(members(Q_PHRASE)).toBe([..."!*+-/" + DIGITS + UPPER + LOWER].sort().join(""));
  });

  it("Q_TEXT: printable ASCII except =, ? and _ (RFC 2047 §4.2)", () => {
    expect(members(Q_TEXT)).toBe(printableExcept("=?_"));
  });

  it('Q_COMMENT: as Q_TEXT, without (, ), " and \\ (RFC 2047 §5(2))', () => {
    expect(members(Q_COMMENT)).toBe(printableExcept('=?_()"\\'));
  });

  it("HEX: 0-9, A-F and a-f", () => {
    expect(members(HEX)).toBe(DIGITS + "ABCDEF" + "abcdef");
  });

  it("controls, DEL and 8-bit bytes belong to no class", () => {
    for (let b = 0; b < 256; b++) {
      if ((b >= 0x21 && b <= 0x7e) || b === 0x20 || b === 0x09) continue;
      expect(BYTE_CLASS[b], `byte 0x${b.toString(16)}`).toBe(0);
    }
  });
});

describe("hex digits", () => {
  it("HEX_DIGITS are the upper-case digits, indexed by nibble", () => {
    expect(HEX_DIGITS).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(HEX_DIGITS).toString("latin1")).toBe("0123456789ABCDEF");
  });

  it("hexValue reads either case and gives -1 for every other byte", () => {
    for (let b = 0; b < 256; b++) {
      const c = String.fromCharCode(b);
      const expected = /[0-9A-Fa-f]/.test(c) ? parseInt(c, 16) : -1;
      expect(hexValue(b), `byte 0x${b.toString(16)}`).toBe(expected);
    }
  });
});
