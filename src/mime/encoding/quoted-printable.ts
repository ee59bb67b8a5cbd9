/**
 * Quoted-printable content transfer encoding (RFC 2045 §6.7), text mode.
 *
 * The input is text already in its target charset. CRLF, a bare LF and a bare CR are all
 * line breaks and come out as CRLF (rule 4). Soft line breaks (`=` CRLF, rule 5) keep every
 * encoded line at most 76 characters, and an `=XX` escape is never split by one. White
 * space is literal except at the end of an encoded line (rule 3), where it is escaped.
 *
 * Beyond the RFC, for transports that mangle lines:
 * - a `.` at the start of a line is `=2E`, so no line is a lone dot (SMTP end of data) and
 *   nothing depends on the transport's dot-stuffing;
 * - `From ` at the start of a line starts with `=46`, so mbox writers do not prefix `>`.
 *
 * State across chunks is bounded: the output column, one held SPACE/TAB (its encoding
 * depends on what follows), whether the last byte was a CR (a following LF belongs to
 * the same break), and how many bytes of a line-initial `From` are held (at most 4).
 */
import { BYTE_CLASS, HEX_DIGITS, QP_LITERAL, WSP, hexValue } from "./byte-classes.js";
import type { ChunkEncoder } from "./transform.js";

const CR = 0x0d;
const LF = 0x0a;
const EQUALS = 0x3d;
const DOT = 0x2e;
const SPACE = 0x20;
const FROM = [0x46, 0x72, 0x6f, 0x6d]; // "From"
const NO_WSP = -1;
/** Encoded line content before a soft break's `=`: 75 + "=" = 76 (rule 5). */
const MAX_CONTENT = 75;

export class QuotedPrintableEncoder implements ChunkEncoder {
  // The state carried between chunks; everything else lives in locals of encode().
  private column = 0;
  private heldSpace = NO_WSP;
  private afterCr = false;
  private heldFrom = 0;
  private scratch: Buffer = Buffer.allocUnsafe(256);

  /*
   * encode() is one loop over local variables, with the soft-break and escape steps
   * written out inline: it runs once per input byte, and keeping the state in locals
   * lets the JIT keep it in registers.
   */
  encode(chunk: Uint8Array): Buffer {
    const out = this.reserve(chunk.length);
    const n = chunk.length;
    // Module-level tables read through locals: the bundler may turn them into imported
    // bindings (a shared chunk), which the hot loop would then read on every byte.
    const classes = BYTE_CLASS;
    const hex = HEX_DIGITS;
    let pos = 0;
    let column = this.column;
    let held = this.heldSpace;
    let afterCr = this.afterCr;
    let from = this.heldFrom;
    for (let i = 0; i < n; i++) {
      // The common case first: inside a line, nothing held, a run of bytes that stay as they
      // are, and spaces or tabs between them (white space is only escaped before a line break).
      if (column > 0 && held === NO_WSP && from === 0 && !afterCr) {
        let b = chunk[i]!;
        while (column < MAX_CONTENT) {
          const cls = classes[b]!;
          if ((cls & QP_LITERAL) === 0 && ((cls & WSP) === 0 || i + 1 === n || (classes[chunk[i + 1]!]! & QP_LITERAL) === 0)) break;
          out[pos++] = b;
          column++;
          if (++i === n) break;
          b = chunk[i]!;
        }
        if (i === n) break;
      }
      const b = chunk[i]!;
      if (afterCr) {
        afterCr = false;
        if (b === LF) continue;
      }
      if (from > 0) {
        if (from < 4 && b === FROM[from]) {
          from++;
          continue;
        }
        const count = from;
        from = 0;
        if (b === SPACE && count === 4) {
          // "From " at the start of a line: =46rom, and the space is held as usual.
          out[pos++] = EQUALS;
          out[pos++] = 0x34;
          out[pos++] = 0x36;
          out[pos++] = 0x72;
          out[pos++] = 0x6f;
          out[pos++] = 0x6d;
          column = 6;
          held = SPACE;
          continue;
        }
        // Not "From ": the held prefix goes out as it was, from the start of the line.
        for (let k = 0; k < count; k++) out[pos++] = FROM[k]!;
        column = count;
      }
      if (b === CR || b === LF) {
        if (held !== NO_WSP) {
          if (column > MAX_CONTENT - 3) {
            out[pos++] = EQUALS;
            out[pos++] = CR;
            out[pos++] = LF;
          }
          out[pos++] = EQUALS;
          out[pos++] = hex[held >> 4]!;
          out[pos++] = hex[held & 15]!;
          held = NO_WSP;
        }
        out[pos++] = CR;
        out[pos++] = LF;
        column = 0;
        afterCr = b === CR;
        continue;
      }
      if (held !== NO_WSP) {
        if (column >= MAX_CONTENT) {
          out[pos++] = EQUALS;
          out[pos++] = CR;
          out[pos++] = LF;
          column = 0;
        }
        out[pos++] = held;
        column++;
        held = NO_WSP;
      }
      const cls = classes[b]!;
      if ((cls & WSP) !== 0) {
        held = b;
        continue;
      }
      if ((cls & QP_LITERAL) !== 0) {
        if (column >= MAX_CONTENT) {
          out[pos++] = EQUALS;
          out[pos++] = CR;
          out[pos++] = LF;
          column = 0;
        }
        if (column === 0) {
          if (b === 0x46) {
            // Possibly "From ": hold it; `from` counts the held bytes until resolved.
            from = 1;
            continue;
          }
          if (b === DOT) {
            out[pos++] = EQUALS;
            out[pos++] = 0x32;
            out[pos++] = 0x45;
            column = 3;
            continue;
          }
        }
        out[pos++] = b;
        column++;
      } else {
        if (column > MAX_CONTENT - 3) {
          out[pos++] = EQUALS;
          out[pos++] = CR;
          out[pos++] = LF;
          column = 0;
        }
        out[pos++] = EQUALS;
        out[pos++] = hex[b >> 4]!;
        out[pos++] = hex[b & 15]!;
        column += 3;
      }
    }
    this.save(column, held, afterCr, from);
    return Buffer.from(out.subarray(0, pos));
  }

  private save(column: number, held: number, afterCr: boolean, from: number): void {
    this.column = column;
    this.heldSpace = held;
    this.afterCr = afterCr;
    this.heldFrom = from;
  }

  flush(): Buffer {
    const out = this.reserve(0);
    let pos = 0;
    // A held "From" prefix and a held space never coexist: the prefix is only held at the
    // start of a line, and a space before it has already gone out.
    for (let k = 0; k < this.heldFrom; k++) out[pos++] = FROM[k]!;
    if (this.heldSpace !== NO_WSP) {
      if (this.column > MAX_CONTENT - 3) {
        out[pos++] = EQUALS;
        out[pos++] = CR;
        out[pos++] = LF;
      }
      out[pos++] = EQUALS;
      out[pos++] = HEX_DIGITS[this.heldSpace >> 4]!;
      out[pos++] = HEX_DIGITS[this.heldSpace & 15]!;
    }
    this.reset();
    return Buffer.from(out.subarray(0, pos));
  }

  reset(): void {
    this.column = 0;
    this.heldSpace = NO_WSP;
    this.afterCr = false;
    this.heldFrom = 0;
  }

  /** The scratch buffer, large enough for the worst case of `inputLength` more bytes. */
  private reserve(inputLength: number): Buffer {
    // Each input byte (and each of up to 5 held ones) becomes at most 3 characters; a soft
    // break (3 characters) follows at least 72 characters of content.
    const content = (inputLength + 6) * 3;
    const worst = content + Math.ceil(content / 72) * 3 + 3;
    if (this.scratch.length < worst) this.scratch = Buffer.allocUnsafe(worst);
    return this.scratch;
  }
}

/** Quoted-printable of `bytes` (text mode, see `QuotedPrintableEncoder`). */
export function encodeQuotedPrintable(bytes: Uint8Array): string {
  const encoder = new QuotedPrintableEncoder();
  return encoder.encode(bytes).toString("latin1") + encoder.flush().toString("latin1");
}

/**
 * Decodes quoted-printable, tolerantly (RFC 2045 §6.7 note on robust decoders): soft
 * breaks after `=` with CRLF or a bare LF are removed, white space at the end of a line is
 * dropped, `=XX` with hex digits of either case is decoded, and a malformed `=` is kept.
 * Characters above U+00FF are taken modulo 256 (the input is meant to be ASCII).
 */
export function decodeQuotedPrintable(input: string): Buffer {
  const src = Buffer.from(input, "latin1");
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  let i = 0;
  // Index in `out` after the last byte that is not trailing white space on this line.
  let keep = 0;
  while (i < src.length) {
    const b = src[i]!;
    if (b === CR || b === LF) {
      n = keep;
      out[n++] = b;
      keep = n;
      i++;
      continue;
    }
    if (b === EQUALS) {
      const h = i + 1 < src.length ? hexValue(src[i + 1]!) : -1;
      const l = i + 2 < src.length ? hexValue(src[i + 2]!) : -1;
      if (h >= 0 && l >= 0) {
        out[n++] = (h << 4) | l;
        keep = n;
        i += 3;
        continue;
      }
      // A soft line break: "=" then optional trailing white space, then CRLF, LF or the end.
      let j = i + 1;
      while (j < src.length && (BYTE_CLASS[src[j]!]! & WSP) !== 0) j++;
      if (j === src.length || src[j] === CR || src[j] === LF) {
        if (src[j] === CR) j++;
        if (src[j] === LF) j++;
        keep = n;
        i = j;
        continue;
      }
      out[n++] = b;
      keep = n;
      i++;
      continue;
    }
    out[n++] = b;
    if ((BYTE_CLASS[b]! & WSP) === 0) keep = n;
    i++;
  }
  return out.subarray(0, keep);
}
