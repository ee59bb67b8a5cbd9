/**
 * A minimal quoted-printable encoder (RFC 2045 §6.7, text mode): the yardstick for
 * missive's. Printable ASCII but `=` goes as it is, everything else as `=XX`; CRLF, LF and
 * CR in the input are line breaks (CRLF out); a space or tab before a break is encoded;
 * soft breaks keep lines at most 76. State across chunks: the column, a held space or tab,
 * and whether the last byte was a CR. Nothing else (no `.` or `From ` at line starts).
 */
const HEX = Buffer.from("0123456789ABCDEF", "latin1");
/** 1: printable ASCII other than `=` (literal); 2: space or tab. */
const CLASS = new Uint8Array(256);
for (let b = 33; b <= 126; b++) if (b !== 0x3d) CLASS[b] = 1;
CLASS[0x20] = 2;
CLASS[0x09] = 2;

export class ReferenceQpEncoder {
  #column = 0;
  #held = -1;
  #afterCr = false;

  encode(chunk: Uint8Array): Buffer {
    // Worst case: every byte =XX, plus a soft break per 24 of them.
    const out = Buffer.allocUnsafe(chunk.length * 4 + 8);
    let o = 0;
    let column = this.#column;
    let held = this.#held;
    let afterCr = this.#afterCr;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (afterCr) {
        afterCr = false;
        if (b === 0x0a) continue;
      }
      if (b === 0x0d || b === 0x0a) {
        if (held !== -1) {
          if (column > 72) {
            out[o++] = 0x3d; out[o++] = 0x0d; out[o++] = 0x0a;
          }
          out[o++] = 0x3d; out[o++] = HEX[held >> 4]!; out[o++] = HEX[held & 15]!;
          held = -1;
        }
        out[o++] = 0x0d; out[o++] = 0x0a;
        column = 0;
        afterCr = b === 0x0d;
        continue;
      }
      if (held !== -1) {
        if (column >= 75) {
          out[o++] = 0x3d; out[o++] = 0x0d; out[o++] = 0x0a;
          column = 0;
        }
        out[o++] = held;
        column++;
        held = -1;
      }
      const cls = CLASS[b]!;
      if (cls === 2) {
        held = b;
      } else if (cls === 1) {
        if (column >= 75) {
          out[o++] = 0x3d; out[o++] = 0x0d; out[o++] = 0x0a;
          column = 0;
        }
        out[o++] = b;
        column++;
      } else {
        if (column > 72) {
          out[o++] = 0x3d; out[o++] = 0x0d; out[o++] = 0x0a;
          column = 0;
        }
        out[o++] = 0x3d; out[o++] = HEX[b >> 4]!; out[o++] = HEX[b & 15]!;
        column += 3;
      }
    }
    this.#column = column;
    this.#held = held;
    this.#afterCr = afterCr;
    return out.subarray(0, o);
  }

  flush(): Buffer {
    const held = this.#held;
    const out = Buffer.allocUnsafe(6);
    let o = 0;
    if (held !== -1) {
      if (this.#column > 72) {
        out[o++] = 0x3d; out[o++] = 0x0d; out[o++] = 0x0a;
      }
      out[o++] = 0x3d; out[o++] = HEX[held >> 4]!; out[o++] = HEX[held & 15]!;
    }
    this.#column = 0;
    this.#held = -1;
    this.#afterCr = false;
    return out.subarray(0, o);
  }
}
