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
  private column = 0;
  private heldSpace = NO_WSP;
  private afterCr = false;
  private heldFrom = 0;
  private scratch: Buffer = Buffer.allocUnsafe(0);
  private pos = 0;

  encode(chunk: Uint8Array): Buffer {
    this.begin(chunk.length);
    for (let i = 0; i < chunk.length; i++) this.byte(chunk[i]!);
    return this.take();
  }

  flush(): Buffer {
    this.begin(0);
    this.releaseFrom();
    if (this.heldSpace !== NO_WSP) this.escape(this.heldSpace);
    this.heldSpace = NO_WSP;
    const out = this.take();
    this.reset();
    return out;
  }

  reset(): void {
    this.column = 0;
    this.heldSpace = NO_WSP;
    this.afterCr = false;
    this.heldFrom = 0;
    this.pos = 0;
  }

  /** Ensures the scratch buffer can hold the worst case for `inputLength` more bytes. */
  private begin(inputLength: number): void {
    // Each input byte (and each of up to 5 held ones) becomes at most 3 characters; a soft
    // break (3 characters) follows at least 73 characters of content.
    const content = (inputLength + 6) * 3;
    const worst = content + Math.ceil(content / 73) * 3 + 3;
    if (this.scratch.length < worst) this.scratch = Buffer.allocUnsafe(Math.max(worst, 256));
    this.pos = 0;
  }

  private take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.scratch.copy(out, 0, 0, this.pos);
    this.pos = 0;
    return out;
  }

  private byte(b: number): void {
    if (this.afterCr) {
      this.afterCr = false;
      if (b === LF) return;
    }
    if (this.heldFrom > 0) {
      if (this.heldFrom < 4 && b === FROM[this.heldFrom]) {
        this.heldFrom++;
        return;
      }
      if (this.heldFrom === 4 && b === SPACE) {
        this.heldFrom = 0;
        this.escape(0x46);
        this.literal(0x72);
        this.literal(0x6f);
        this.literal(0x6d);
        this.heldSpace = SPACE;
        return;
      }
      this.releaseFrom();
    }
    if (b === CR || b === LF) {
      if (this.heldSpace !== NO_WSP) this.escape(this.heldSpace);
      this.heldSpace = NO_WSP;
      this.hardBreak();
      this.afterCr = b === CR;
      return;
    }
    if (this.heldSpace !== NO_WSP) {
      this.literal(this.heldSpace);
      this.heldSpace = NO_WSP;
    }
    const cls = BYTE_CLASS[b]!;
    if (cls & WSP) {
      this.heldSpace = b;
      return;
    }
    const literal = (cls & QP_LITERAL) !== 0;
    // Break first, so that the line-start rules also apply after a soft break.
    this.softBreakFor(literal ? 1 : 3);
    if (this.column === 0 && b === 0x46) {
      this.heldFrom = 1;
    } else if (literal && !(this.column === 0 && b === DOT)) {
      this.scratch[this.pos++] = b;
      this.column++;
    } else {
      this.escape(b);
    }
  }

  /** Emits the held prefix of a line-initial `From` that turned out not to be `From `. */
  private releaseFrom(): void {
    const n = this.heldFrom;
    this.heldFrom = 0;
    for (let k = 0; k < n; k++) this.literal(FROM[k]!);
  }

  private softBreakFor(width: number): void {
    if (this.column + width > MAX_CONTENT) {
      const s = this.scratch;
      s[this.pos++] = EQUALS;
      s[this.pos++] = CR;
      s[this.pos++] = LF;
      this.column = 0;
    }
  }

  /** A literal byte that is never a `.` (held white space and the held `From` prefix). */
  private literal(b: number): void {
    this.softBreakFor(1);
    this.scratch[this.pos++] = b;
    this.column++;
  }

  private escape(b: number): void {
    this.softBreakFor(3);
    const s = this.scratch;
    s[this.pos++] = EQUALS;
    s[this.pos++] = HEX_DIGITS[b >> 4]!;
    s[this.pos++] = HEX_DIGITS[b & 15]!;
    this.column += 3;
  }

  private hardBreak(): void {
    this.scratch[this.pos++] = CR;
    this.scratch[this.pos++] = LF;
    this.column = 0;
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
