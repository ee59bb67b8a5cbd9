/**
 * Choosing a Content-Transfer-Encoding for a leaf part (RFC 2045 §6):
 * 7bit for short-lined ASCII, quoted-printable for mostly-ASCII text, base64 for binary
 * and mostly-non-ASCII text, 8bit only when the policy allows it. Every choice is
 * lossless: the bytes a reader decodes are the bytes we were given.
 */
import { isAscii as nodeIsAscii, isUtf8 as nodeIsUtf8 } from "node:buffer";

export type TransferEncoding = "7bit" | "8bit" | "quoted-printable" | "base64" | "binary";

const CR = 0x0d;
const LF = 0x0a;
/** RFC 5321 §4.5.3.1.6: 1000 octets per line including CRLF. */
export const MAX_LINE_OCTETS = 998;

/**
 * What a single pass over some bytes learns about them; can be fed chunk by chunk.
 *
 * Built on Node's native scans (byte loops in JavaScript cost several times as much): ASCII
 * and UTF-8 validity with `isAscii`/`isUtf8` from node:buffer (the bytes of a character cut
 * by a chunk boundary carried to the next chunk), lines by `indexOf` from one CR or LF to
 * the next, NUL by `indexOf`. How many bytes quoted-printable would escape is counted only
 * when a choice needs it (`countQpEscapes`).
 */
export class TextScan {
  length = 0;
  /** A byte >= 0x80. */
  hasHighBytes = false;
  nul = false;
  /** A CR not followed by LF, or an LF not preceded by CR. */
  bareLineBreak = false;
  /** How many of those; canonicalising adds one octet for each. */
  bareLineBreaks = 0;
  longestLine = 0;
  utf8 = true;
  /** Octets of the current line seen so far (it may have started in an earlier chunk). */
  #lineLength = 0;
  /** The last byte pushed was a CR (whether a LF follows is in the next chunk). */
  #pendingCr = false;
  /** The start of a UTF-8 character cut by the end of the last chunk (at most 3 bytes). */
  #utf8Carry: Buffer | undefined;

  push(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n === 0) return;
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, n);
    this.length += n;
    const ascii = nodeIsAscii(bytes);
    if (!ascii) this.hasHighBytes = true;
    if (this.utf8 && !(ascii && this.#utf8Carry === undefined)) this.#checkUtf8(bytes);
    if (!this.nul && bytes.indexOf(0) !== -1) this.nul = true;

    let longest = this.longestLine;
    let bare = this.bareLineBreaks;
    let line = this.#lineLength;
    let start = 0;
    if (this.#pendingCr) {
      this.#pendingCr = false;
      if (bytes[0] === LF) start = 1;
      else bare++;
      if (line > longest) longest = line;
      line = 0;
    }
    let cr = bytes.indexOf(CR, start);
    let lf = bytes.indexOf(LF, start);
    while (cr !== -1 || lf !== -1) {
      if (lf !== -1 && (cr === -1 || lf < cr)) {
        // An LF with no CR before it.
        bare++;
        line += lf - start;
        start = lf + 1;
        lf = bytes.indexOf(LF, start);
      } else {
        line += cr - start;
        if (cr + 1 === n) {
          this.#pendingCr = true;
          start = n;
        } else if (bytes[cr + 1] === LF) {
          start = cr + 2;
          lf = bytes.indexOf(LF, start);
        } else {
          bare++;
          start = cr + 1;
        }
        cr = bytes.indexOf(CR, start);
      }
      if (line > longest) longest = line;
      line = 0;
    }
    this.#lineLength = line + (n - start);
    this.longestLine = longest;
    this.bareLineBreaks = bare;
    this.bareLineBreak = bare > 0;
  }

  finish(): this {
    if (this.#pendingCr) {
      this.#pendingCr = false;
      this.bareLineBreak = true;
      this.bareLineBreaks++;
    }
    if (this.#lineLength > this.longestLine) this.longestLine = this.#lineLength;
    this.#lineLength = 0;
    // A character cut off by the end of the input.
    if (this.#utf8Carry !== undefined) this.utf8 = false;
    this.#utf8Carry = undefined;
    return this;
  }

  /** Validates `chunk` as the continuation of what came before, holding back a character it cuts. */
  #checkUtf8(chunk: Buffer): void {
    let bytes = chunk;
    const carry = this.#utf8Carry;
    if (carry !== undefined) {
      // Complete the held character with the continuation bytes it needs.
      const need = utf8SequenceLength(carry[0]!) - carry.length;
      const take = Math.min(need, chunk.length);
      const joined = Buffer.concat([carry, chunk.subarray(0, take)]);
      if (take < need) {
        if (!continuationBytes(joined, carry.length)) this.utf8 = false;
        else this.#utf8Carry = joined;
        return;
      }
      this.#utf8Carry = undefined;
      if (!nodeIsUtf8(joined)) {
        this.utf8 = false;
        return;
      }
      bytes = chunk.subarray(take);
    }
    const cut = incompleteTail(bytes);
    if (!nodeIsUtf8(cut === bytes.length ? bytes : bytes.subarray(0, cut))) {
      this.utf8 = false;
      return;
    }
    if (cut < bytes.length) this.#utf8Carry = Buffer.from(bytes.subarray(cut));
  }
}

/** Bytes quoted-printable must escape: controls other than TAB, CR and LF; DEL; `=`; bytes >= 0x80. */
export function countQpEscapes(bytes: Uint8Array): number {
  let count = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b >= 0x7f || b === 0x3d || (b < 0x20 && b !== 0x09 && b !== CR && b !== LF)) count++;
  }
  return count;
}

/** The length of the UTF-8 sequence a lead byte starts (1 for anything that is not a multi-byte lead). */
function utf8SequenceLength(lead: number): number {
  return lead >= 0xf0 && lead <= 0xf7 ? 4 : lead >= 0xe0 ? (lead <= 0xef ? 3 : 1) : lead >= 0xc0 ? 2 : 1;
}

function continuationBytes(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if ((bytes[i]! & 0xc0) !== 0x80) return false;
  return true;
}

/**
 * Where the last character of `bytes` starts when the bytes end before it does (a
 * multi-byte lead among the last three bytes, with too few bytes after it); else the length.
 */
function incompleteTail(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= 3 && back <= n; back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue;
    return utf8SequenceLength(b) > back ? n - back : n;
  }
  return n;
}

export function scanBytes(bytes: Uint8Array): TextScan {
  const scan = new TextScan();
  scan.push(bytes);
  return scan.finish();
}

/** Lines of CRLF-terminated text with no NUL and no bare CR/LF can go as-is (7bit/8bit). */
export function sendableAsLines(scan: TextScan): boolean {
  return !scan.nul && !scan.bareLineBreak && scan.longestLine <= MAX_LINE_OCTETS;
}

/**
 * The encoding for `bytes`, text whose line breaks are already CRLF (bodies are
 * canonicalised first), scanned as `scan`. Quoted-printable versus base64 is decided by
 * which output is smaller.
 */
export function chooseTextEncoding(scan: TextScan, allow8bit: boolean, bytes: Uint8Array): TransferEncoding {
  if (sendableAsLines(scan)) {
    if (!scan.hasHighBytes) return "7bit";
    if (allow8bit) return "8bit";
  }
  // Quoted-printable turns a bare CR or LF into a hard CRLF break, so it is only lossless
  // when every line break already is CRLF.
  if (scan.bareLineBreak) return "base64";
  const qpSize = scan.length + 2 * countQpEscapes(bytes) + Math.ceil(scan.length / 73) * 3;
  const base64Size = Math.ceil(scan.length / 3) * 4 * (78 / 76);
  return qpSize <= base64Size ? "quoted-printable" : "base64";
}

/**
 * Whether canonical text (its only line breaks CRLF, as `canonicalLineBreaks` returns it)
 * can go as lines of at most 998 octets with no NUL, judged on the string: one `indexOf`
 * per line, several times cheaper than scanning the encoded bytes. A line of `n` UTF-16
 * units is at most `n * octetsPerUnit` octets (1 for ASCII text, 3 for UTF-8 of any text).
 * `false` means "not shown here", not "not sendable": the caller scans the bytes then.
 */
export function canonicalTextFitsLines(text: string, octetsPerUnit: number): boolean {
  if (text.includes("\0")) return false;
  const maxUnits = Math.floor(MAX_LINE_OCTETS / octetsPerUnit);
  let start = 0;
  for (let lf = text.indexOf("\n"); lf !== -1; lf = text.indexOf("\n", start)) {
    // The line is start .. lf - 1, its CR excluded.
    if (lf - 1 - start > maxUnits) return false;
    start = lf + 1;
  }
  return text.length - start <= maxUnits;
}

/**
 * `message/rfc822` is never base64-encoded (RFC 2046 §5.2.1): 7bit or 8bit only. Its line
 * breaks are canonicalised while it streams, so only NUL and over-long lines rule it out.
 */
export function chooseMessageEncoding(scan: TextScan): "7bit" | "8bit" | undefined {
  if (scan.nul || scan.longestLine > MAX_LINE_OCTETS) return undefined;
  return scan.hasHighBytes ? "8bit" : "7bit";
}

/**
 * Turns every CRLF, bare CR and bare LF into CRLF: the canonical form of text (RFC 2046
 * §4.1.1). Text that is canonical already comes back as it is; text with LF breaks only
 * (what people write) gets one native `replaceAll`, several times cheaper than a regular
 * expression.
 */
export function canonicalLineBreaks(text: string): string {
  // Only LFs (or none): about a third faster than split and join on a 10 KB body.
  if (!text.includes("\r")) return text.replaceAll("\n", "\r\n");
  return isCanonical(text) ? text : text.replace(/\r\n|\r|\n/g, "\r\n");
}

/** Every CR is followed by LF and every LF follows a CR. */
function isCanonical(text: string): boolean {
  for (let i = text.indexOf("\r"); i !== -1; i = text.indexOf("\r", i + 2)) if (text.charCodeAt(i + 1) !== LF) return false;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) if (text.charCodeAt(i - 1) !== CR) return false;
  return true;
}

/** Turns bare CR and bare LF into CRLF in a byte stream, with one flag of state between chunks. */
export class LineBreakCanonicaliser {
  /** The previous byte was a CR, already written as CRLF: an LF right after it is dropped. */
  #afterCr = false;

  encode(chunk: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(chunk.length * 2);
    let o = 0;
    let afterCr = this.#afterCr;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === CR) {
        out[o++] = CR;
        out[o++] = LF;
        afterCr = true;
      } else if (b === LF) {
        if (!afterCr) {
          out[o++] = CR;
          out[o++] = LF;
        }
        afterCr = false;
      } else {
        out[o++] = b;
        afterCr = false;
      }
    }
    this.#afterCr = afterCr;
    return out.subarray(0, o);
  }

  flush(): Buffer {
    this.#afterCr = false;
    return Buffer.alloc(0);
  }
}
