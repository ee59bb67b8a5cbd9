/**
 * Splits a byte stream into lines as mail readers do: CRLF, a bare LF or a bare CR each end
 * a line (RFC 5322 allows only CRLF; files and pipes bring the others). A line longer than
 * `maxFragment` comes out in fragments, so no line is ever held whole: only a line's first
 * fragment can be a header line or a MIME boundary, and those are short.
 */

const CR = 0x0d;
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);
const CRLF_BYTES = Buffer.from("\r\n");
const LF_BYTES = Buffer.from("\n");
const CR_BYTES = Buffer.from("\r");

/**
 * Called once per line or fragment. `content` excludes the line break, `eol` is the break
 * itself (empty for a fragment cut short, or for the last line of the input when it has
 * none); `continued` says the fragment carries on a line whose start came before.
 * The buffers are only valid during the call.
 */
export type LineSink = (content: Buffer, eol: Buffer, continued: boolean) => void;

export class LineSplitter {
  readonly #maxFragment: number;
  readonly #sink: LineSink;
  #carry: Buffer = EMPTY;
  /** The line being cut into fragments has already had one out. */
  #continued = false;

  constructor(sink: LineSink, maxFragment = 4096) {
    this.#sink = sink;
    this.#maxFragment = maxFragment;
  }

  push(chunk: Uint8Array): void {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#carry.length > 0) {
      buf = Buffer.concat([this.#carry, buf]);
      this.#carry = EMPTY;
    }
    let pos = 0;
    // Positions of the next CR and LF, found once and reused until passed (no rescans).
    let nextCr = buf.indexOf(CR, pos);
    let nextLf = buf.indexOf(LF, pos);
    while (pos < buf.length) {
      if (nextCr !== -1 && nextCr < pos) nextCr = buf.indexOf(CR, pos);
      if (nextLf !== -1 && nextLf < pos) nextLf = buf.indexOf(LF, pos);
      const end = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
      if (end === -1 || end - pos > this.#maxFragment) {
        // No line break within reach: cut a fragment if the rest is long, else wait for more.
        if (buf.length - pos > this.#maxFragment) {
          this.#emit(buf.subarray(pos, pos + this.#maxFragment), EMPTY);
          pos += this.#maxFragment;
          continue;
        }
        break;
      }
      if (buf[end] === CR) {
        // CR as the last byte: it may be the first half of CRLF, so wait for the next chunk.
        if (end + 1 === buf.length) break;
        const crlf = buf[end + 1] === LF;
        this.#emit(buf.subarray(pos, end), crlf ? CRLF_BYTES : CR_BYTES);
        pos = end + (crlf ? 2 : 1);
      } else {
        this.#emit(buf.subarray(pos, end), LF_BYTES);
        pos = end + 1;
      }
    }
    if (pos < buf.length) this.#carry = Buffer.from(buf.subarray(pos));
  }

  /** The end of input: whatever is left is the last line, without a line break (a lone CR is one). */
  end(): void {
    const rest = this.#carry;
    this.#carry = EMPTY;
    if (rest.length === 0) return;
    if (rest[rest.length - 1] === CR) this.#emit(rest.subarray(0, rest.length - 1), CR_BYTES);
    else this.#emit(rest, EMPTY);
  }

  #emit(content: Buffer, eol: Buffer): void {
    const continued = this.#continued;
    this.#continued = eol.length === 0;
    this.#sink(content, eol, continued);
  }
}
