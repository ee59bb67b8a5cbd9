/**
 * Byte classes shared by the encoders: one `Uint8Array(256)` of bit flags, so that the hot
 * loops test a byte with a single table load and mask instead of a regex or a chain of
 * comparisons. A byte may belong to several classes.
 */

/** Printable ASCII that quoted-printable may leave as is: `!`..`~` except `=` (RFC 2045 §6.7 rule 2). */
export const QP_LITERAL = 1 << 0;
/** SPACE and HTAB: literal in quoted-printable unless they end an encoded line (RFC 2045 §6.7 rule 3). */
export const WSP = 1 << 1;
/** RFC 2045 `token` characters: printable ASCII except SPACE and tspecials `()<>@,;:\"/[]?=`. */
export const TOKEN = 1 << 2;
/** RFC 2231 `attribute-char`: a token character other than `*`, `'` and `%`. Literal in extended values. */
export const ATTR_CHAR = 1 << 3;
/** Literal in an RFC 2047 Q encoded-word in a phrase: `A-Za-z0-9!*+-/` only (RFC 2047 §5(3)). */
export const Q_PHRASE = 1 << 4;
/** Literal in a Q encoded-word in unstructured text: printable ASCII except `=`, `?`, `_` (RFC 2047 §4.2). */
export const Q_TEXT = 1 << 5;
/** Literal in a Q encoded-word inside a comment: as `Q_TEXT`, without `(`, `)`, `"` (RFC 2047 §5(2)) and `\`. */
export const Q_COMMENT = 1 << 6;
/** Hexadecimal digits, either case (decoders). */
export const HEX = 1 << 7;

function build(): Uint8Array {
  const table = new Uint8Array(256);
  const tspecials = '()<>@,;:\\"/[]?=';
  for (let b = 0x21; b <= 0x7e; b++) {
    const c = String.fromCharCode(b);
    let flags = 0;
    if (b !== 0x3d) flags |= QP_LITERAL;
    if (!tspecials.includes(c)) {
      flags |= TOKEN;
      if (c !== "*" && c !== "'" && c !== "%") flags |= ATTR_CHAR;
    }
    if (/[A-Za-z0-9!*+\-/]/.test(c)) flags |= Q_PHRASE;
    if (c !== "=" && c !== "?" && c !== "_") {
      flags |= Q_TEXT;
      if (c !== "(" && c !== ")" && c !== '"' && c !== "\\") flags |= Q_COMMENT;
    }
    if (/[0-9A-Fa-f]/.test(c)) flags |= HEX;
    table[b] = flags;
  }
  table[0x20] = WSP;
  table[0x09] = WSP;
  return table;
}

/** The byte-class table: `BYTE_CLASS[byte] & FLAG`. */
export const BYTE_CLASS: Uint8Array = build();

/** Upper-case hexadecimal digits as ASCII codes, indexed by nibble. */
export const HEX_DIGITS: Uint8Array = Uint8Array.from("0123456789ABCDEF", (c) => c.charCodeAt(0));

/** The value of a hexadecimal digit byte, or -1. */
export function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
