/**
 * DKIM canonicalization, RFC 6376 §3.4: the "simple" and "relaxed" forms of a header field
 * and of a body, on bytes.
 *
 * The body canonicalizers are streaming cores: `push(chunk)` hands every byte that is final
 * to a sink, `end()` hands over what was held back and resets. Across chunks they keep only
 * a count of empty lines not yet written (an empty line is dropped only when nothing but
 * empty lines follows it, §3.4.3/§3.4.4) and three flags: "a line is open", "white space
 * pending" (relaxed) and "the last byte was CR", so memory is bounded by the scratch buffer,
 * not by the body.
 *
 * Line breaks are read the way the SMTP data stream writes them (RFC 5321 §2.3.8): CRLF,
 * and also a bare CR or a bare LF, each of which becomes CRLF on the wire. A body whose last
 * line has no line break is canonicalized as if it had one, because SMTP adds it before the
 * final dot: the verifier sees the body as it arrived.
 */

/** Receives canonical bytes. The view is only valid during the call (the buffer is reused). */
export type ByteSink = (bytes: Uint8Array) => void;

export type CanonicalizationAlgorithm = "simple" | "relaxed";

export interface BodyCanonicalizer {
  /** Canonicalizes one chunk; what is certain goes to the sink now. */
  push(chunk: Uint8Array): void;
  /** Ends the body: the held-back tail goes to the sink; the canonicalizer is then reset. */
  end(): void;
}

const CONTENT = 0;
const WSP = 1;
const CR = 2;
const LF = 3;
/** SP and HTAB are WSP (RFC 5234); CR and LF are line breaks; every other byte is content. */
const CLASS = new Uint8Array(256);
CLASS[0x20] = WSP;
CLASS[0x09] = WSP;
CLASS[0x0d] = CR;
CLASS[0x0a] = LF;

const SCRATCH = 16 * 1024;
const CRLF = Buffer.from("\r\n");
const CRLF_BLOCK = Buffer.from("\r\n".repeat(512));

/** `indexOf`'s answer, with "none" as a position past every index. */
const found = (at: number, none: number) => (at < 0 ? none : at);

/**
 * What the two body canonicalizers share: the state, the bytes they write, and the walk over
 * a chunk line by line. A line that needs no change (CRLF-terminated, no bare CR, and for
 * relaxed no SP/HTAB) joins a run of verbatim bytes handed to the sink as one view of the
 * chunk, found with native `indexOf`: base64 lines never touch JavaScript byte by byte. Any
 * other line goes through the byte loop of the subclass, which writes into a scratch buffer.
 */
abstract class LineCanonicalizer implements BodyCanonicalizer {
  protected readonly sink: ByteSink;
  protected readonly out = Buffer.allocUnsafe(SCRATCH);
  /** Empty lines read but not written: written only if content follows (§3.4.3, §3.4.4). */
  protected held = 0;
  /** Content was written on the current line and its line break not yet. */
  protected lineOpen = false;
  /** The previous chunk ended in a CR (already counted as a line break): an LF opening the next is its pair. */
  protected lastWasCR = false;

  constructor(sink: ByteSink) {
    this.sink = sink;
  }

  /** Relaxed: a line with SP or HTAB is not copied as it is. */
  protected abstract readonly whiteSpaceMatters: boolean;
  /** Canonicalizes bytes [from, to) one at a time, through the scratch buffer, flushed at the end. */
  protected abstract slow(chunk: Uint8Array, from: number, to: number): void;
  /** Resets the subclass's own state after end(). */
  protected abstract resetLine(): void;
  /** Whether the walk may copy lines right now (relaxed: no white space pending from before). */
  protected abstract ready(): boolean;
  /** Called when a verbatim content line is taken. */
  protected abstract wroteContent(): void;

  push(chunk: Uint8Array): void {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = bytes.length;
    let i = 0;
    if (this.lastWasCR && n > 0 && bytes[0] === 0x0a) i = 1;
    if (n > 0) this.lastWasCR = false;
    let run = -1;
    // Where the next CR, SP and HTAB are, looked up again only once passed.
    let nextCR = -1;
    let nextSP = this.whiteSpaceMatters ? -1 : n;
    let nextTab = nextSP;
    while (i < n) {
      const lf = bytes.indexOf(0x0a, i);
      if (this.ready() && lf > i && bytes[lf - 1] === 0x0d) {
        if (nextCR < i) nextCR = found(bytes.indexOf(0x0d, i), n);
        if (nextSP < i) nextSP = found(bytes.indexOf(0x20, i), n);
        if (nextTab < i) nextTab = found(bytes.indexOf(0x09, i), n);
        if (nextCR === lf - 1 && nextSP >= lf && nextTab >= lf) {
          if (lf - 1 === i) {
            // An empty line: it ends a line left open by earlier bytes, or it is held.
            if (this.lineOpen) {
              if (run < 0) run = i;
              this.lineOpen = false;
            } else {
              if (run >= 0) this.sink(bytes.subarray(run, i));
              run = -1;
              this.held++;
            }
          } else {
            if (this.held > 0) {
              if (run >= 0) this.sink(bytes.subarray(run, i));
              run = -1;
              this.writeHeld();
            }
            if (run < 0) run = i;
            this.lineOpen = false;
            this.wroteContent();
          }
          i = lf + 1;
          continue;
        }
      }
      if (run >= 0) this.sink(bytes.subarray(run, i));
      run = -1;
      const end = lf < 0 ? n : lf + 1;
      this.slow(bytes, i, end);
      i = end;
    }
    if (run >= 0) this.sink(bytes.subarray(run, n));
  }

  end(): void {
    this.finish();
    this.held = 0;
    this.lineOpen = false;
    this.lastWasCR = false;
    this.resetLine();
  }

  /** The body's last bytes: a CRLF when the last line is still open (the data stream adds one). */
  protected abstract finish(): void;

  private writeHeld(): void {
    for (let left = this.held; left > 0; left -= 512) this.sink(CRLF_BLOCK.subarray(0, 2 * Math.min(left, 512)));
    this.held = 0;
  }
}

/**
 * RFC 6376 §3.4.3: the body unchanged, except that all empty lines at its end are ignored
 * and a missing final CRLF is added; an empty body becomes one CRLF.
 */
export class SimpleBodyCanonicalizer extends LineCanonicalizer {
  protected readonly whiteSpaceMatters = false;
  #wroteAny = false;

  protected ready(): boolean {
    return true;
  }

  protected wroteContent(): void {
    this.#wroteAny = true;
  }

  protected slow(chunk: Uint8Array, from: number, to: number): void {
    const out = this.out;
    let o = 0;
    let held = this.held;
    let lineOpen = this.lineOpen;
    let lastWasCR = false;
    for (let i = from; i < to; i++) {
      const c = chunk[i]!;
      const k = CLASS[c]!;
      if (k === CR || (k === LF && !lastWasCR)) {
        if (lineOpen) {
          if (o > SCRATCH - 2) {
            this.sink(out.subarray(0, o));
            o = 0;
          }
          out[o++] = 0x0d;
          out[o++] = 0x0a;
          lineOpen = false;
        } else held++;
        lastWasCR = k === CR;
      } else if (k === LF) {
        lastWasCR = false;
      } else {
        for (; held > 0; held--) {
          if (o > SCRATCH - 2) {
            this.sink(out.subarray(0, o));
            o = 0;
          }
          out[o++] = 0x0d;
          out[o++] = 0x0a;
        }
        if (o === SCRATCH) {
          this.sink(out.subarray(0, o));
          o = 0;
        }
        out[o++] = c;
        lineOpen = true;
        this.#wroteAny = true;
        lastWasCR = false;
      }
    }
    if (o > 0) this.sink(out.subarray(0, o));
    this.held = held;
    this.lineOpen = lineOpen;
    this.lastWasCR = lastWasCR;
  }

  protected finish(): void {
    // Content without its line break, or nothing at all: one CRLF. A body that ended in
    // line breaks already has the CRLF of its last line; the empty lines after it go.
    if (this.lineOpen || !this.#wroteAny) this.sink(CRLF);
  }

  protected resetLine(): void {
    this.#wroteAny = false;
  }
}

/**
 * RFC 6376 §3.4.4: white space at the end of a line is ignored, every other run of SP/HTAB
 * becomes one SP, and all empty lines at the end are ignored; a body that is empty after
 * that stays empty (the CRLF is added only to a non-empty body, §3.4.4).
 */
export class RelaxedBodyCanonicalizer extends LineCanonicalizer {
  /** SP/HTAB seen since the last content byte on this line: one SP if content follows. */
  #wsp = false;
  protected readonly whiteSpaceMatters = true;

  protected ready(): boolean {
    return !this.#wsp;
  }

  protected wroteContent(): void {}

  protected slow(chunk: Uint8Array, from: number, to: number): void {
    const out = this.out;
    let o = 0;
    let held = this.held;
    let lineOpen = this.lineOpen;
    let wsp = this.#wsp;
    let lastWasCR = false;
    for (let i = from; i < to; i++) {
      const c = chunk[i]!;
      const k = CLASS[c]!;
      if (k === CONTENT) {
        for (; held > 0; held--) {
          if (o > SCRATCH - 2) {
            this.sink(out.subarray(0, o));
            o = 0;
          }
          out[o++] = 0x0d;
          out[o++] = 0x0a;
        }
        if (o > SCRATCH - 2) {
          this.sink(out.subarray(0, o));
          o = 0;
        }
        if (wsp) {
          out[o++] = 0x20;
          wsp = false;
        }
        out[o++] = c;
        lineOpen = true;
        lastWasCR = false;
      } else if (k === WSP) {
        wsp = true;
        lastWasCR = false;
      } else if (k === CR || !lastWasCR) {
        wsp = false; // white space at the end of a line is dropped
        if (lineOpen) {
          if (o > SCRATCH - 2) {
            this.sink(out.subarray(0, o));
            o = 0;
          }
          out[o++] = 0x0d;
          out[o++] = 0x0a;
          lineOpen = false;
        } else held++;
        lastWasCR = k === CR;
      } else {
        lastWasCR = false; // the LF of a CRLF
      }
    }
    if (o > 0) this.sink(out.subarray(0, o));
    this.held = held;
    this.lineOpen = lineOpen;
    this.#wsp = wsp;
    this.lastWasCR = lastWasCR;
  }

  protected finish(): void {
    if (this.lineOpen) this.sink(CRLF);
  }

  protected resetLine(): void {
    this.#wsp = false;
  }
}

export function bodyCanonicalizer(algorithm: CanonicalizationAlgorithm, sink: ByteSink): BodyCanonicalizer {
  return algorithm === "simple" ? new SimpleBodyCanonicalizer(sink) : new RelaxedBodyCanonicalizer(sink);
}

/** The canonical form of a whole body in memory (tests, small bodies). */
export function canonicalizeBody(algorithm: CanonicalizationAlgorithm, body: Uint8Array): Buffer {
  const parts: Buffer[] = [];
  const c = bodyCanonicalizer(algorithm, (bytes) => parts.push(Buffer.from(bytes)));
  c.push(body);
  c.end();
  return Buffer.concat(parts);
}

/**
 * RFC 6376 §3.4.1: the header field exactly as it is, `name:value` with its folding, plus
 * CRLF. `field` is the field without its final CRLF.
 */
export function canonicalizeHeaderSimple(field: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(field.length + 2);
  out.set(field, 0);
  out[field.length] = 0x0d;
  out[field.length + 1] = 0x0a;
  return out;
}

/**
 * RFC 6376 §3.4.2: the name in lower case without white space before the colon; the value
 * unfolded (CRLF removed), every run of SP/HTAB made one SP, white space at either end
 * removed; then `name:value` CRLF. `field` is the field without its final CRLF.
 */
export function canonicalizeHeaderRelaxed(field: Uint8Array): Buffer {
  const colon = field.indexOf(0x3a);
  if (colon < 0) throw new TypeError("a header field needs a colon");
  let nameEnd = colon;
  while (nameEnd > 0 && CLASS[field[nameEnd - 1]!] === WSP) nameEnd--;
  const out = Buffer.allocUnsafe(field.length + 2);
  let o = 0;
  for (let i = 0; i < nameEnd; i++) {
    const c = field[i]!;
    out[o++] = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
  }
  out[o++] = 0x3a;
  let wsp = false;
  let started = false;
  for (let i = colon + 1; i < field.length; i++) {
    const c = field[i]!;
    const k = CLASS[c]!;
    if (k === CR || k === LF) continue; // unfolding: the WSP after the break stays
    if (k === WSP) {
      wsp = true;
      continue;
    }
    if (wsp && started) out[o++] = 0x20;
    wsp = false;
    started = true;
    out[o++] = c;
  }
  out[o++] = 0x0d;
  out[o++] = 0x0a;
  return out.subarray(0, o);
}

export function canonicalizeHeader(algorithm: CanonicalizationAlgorithm, field: Uint8Array): Buffer {
  return algorithm === "simple" ? canonicalizeHeaderSimple(field) : canonicalizeHeaderRelaxed(field);
}
