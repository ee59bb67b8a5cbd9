/**
 * Choosing a Content-Transfer-Encoding for a leaf part (RFC 2045 §6):
 * 7bit for short-lined ASCII, quoted-printable for mostly-ASCII text, base64 for binary
 * and mostly-non-ASCII text, 8bit only when the policy allows it. Every choice is
 * lossless: the bytes a reader decodes are the bytes we were given.
 */

export type TransferEncoding = "7bit" | "8bit" | "quoted-printable" | "base64" | "binary";

const CR = 0x0d;
const LF = 0x0a;
/** RFC 5321 §4.5.3.1.6: 1000 octets per line including CRLF. */
export const MAX_LINE_OCTETS = 998;

/** What a single pass over some bytes learns about them; can be fed chunk by chunk. */
export class TextScan {
  length = 0;
  /** Bytes >= 0x80. */
  highBytes = 0;
  /** Bytes quoted-printable must escape: controls (not CR/LF/TAB), '=', and high bytes. */
  qpEscapes = 0;
  nul = false;
  /** A CR not followed by LF, or an LF not preceded by CR. */
  bareLineBreak = false;
  /** How many of those; canonicalising adds one octet for each. */
  bareLineBreaks = 0;
  longestLine = 0;
  private lineLength = 0;
  private pendingCr = false;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  utf8 = true;

  push(chunk: Uint8Array): void {
    this.length += chunk.length;
    if (this.utf8) {
      try {
        this.decoder.decode(chunk, { stream: true });
      } catch {
        this.utf8 = false;
      }
    }
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.pendingCr) {
        this.pendingCr = false;
        if (b === LF) {
          this.endLine();
          continue;
        }
        this.bareLineBreak = true;
        this.bareLineBreaks++;
        this.endLine();
      }
      if (b === CR) {
        this.pendingCr = true;
        continue;
      }
      if (b === LF) {
        this.bareLineBreak = true;
        this.bareLineBreaks++;
        this.endLine();
        continue;
      }
      this.lineLength++;
      if (b >= 0x80) {
        this.highBytes++;
        this.qpEscapes++;
      } else if (b === 0x3d || (b < 0x20 && b !== 0x09) || b === 0x7f) {
        this.qpEscapes++;
        if (b === 0) this.nul = true;
      }
    }
  }

  finish(): this {
    if (this.pendingCr) {
      this.pendingCr = false;
      this.bareLineBreak = true;
      this.bareLineBreaks++;
    }
    this.endLine();
    if (this.utf8) {
      try {
        this.decoder.decode();
      } catch {
        this.utf8 = false;
      }
    }
    return this;
  }

  private endLine(): void {
    if (this.lineLength > this.longestLine) this.longestLine = this.lineLength;
    this.lineLength = 0;
  }
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
 * The encoding for text whose line breaks are already CRLF (bodies are canonicalised first).
 * Quoted-printable versus base64 is decided by which output is smaller.
 */
export function chooseTextEncoding(scan: TextScan, allow8bit: boolean): TransferEncoding {
  if (sendableAsLines(scan)) {
    if (scan.highBytes === 0) return "7bit";
    if (allow8bit) return "8bit";
  }
  // Quoted-printable turns a bare CR or LF into a hard CRLF break, so it is only lossless
  // when every line break already is CRLF.
  if (scan.bareLineBreak) return "base64";
  const qpSize = scan.length + 2 * scan.qpEscapes + Math.ceil(scan.length / 73) * 3;
  const base64Size = Math.ceil(scan.length / 3) * 4 * (78 / 76);
  return qpSize <= base64Size ? "quoted-printable" : "base64";
}

/**
 * `message/rfc822` is never base64-encoded (RFC 2046 §5.2.1): 7bit or 8bit only. Its line
 * breaks are canonicalised while it streams, so only NUL and over-long lines rule it out.
 */
export function chooseMessageEncoding(scan: TextScan): "7bit" | "8bit" | undefined {
  if (scan.nul || scan.longestLine > MAX_LINE_OCTETS) return undefined;
  return scan.highBytes === 0 ? "7bit" : "8bit";
}

/** Turns every CRLF, bare CR and bare LF into CRLF: the canonical form of text (RFC 2046 §4.1.1). */
export function canonicalLineBreaks(text: string): string {
  if (!text.includes("\r") && !text.includes("\n")) return text;
  return text.replace(/\r\n|\r|\n/g, "\r\n");
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
