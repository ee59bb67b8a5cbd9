/**
 * DKIM canonicalization, RFC 6376 §3.4: the "simple" and "relaxed" forms of a header field
 * and of a body, on bytes.
 *
 * The body canonicalizers are streaming cores: `push(chunk)` hands every byte that is final
 * to a sink, `end()` hands over what was held back and resets. Across chunks they keep only
 * a count of line breaks not yet written (an empty line is only dropped when nothing but
 * empty lines follows it, §3.4.3/§3.4.4), a "white space pending" flag and a "last byte was
 * CR" flag, so memory is bounded by the scratch buffer, not by the body.
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

/**
 * RFC 6376 §3.4.3: the body unchanged, except that all empty lines at its end are ignored
 * and a missing final CRLF is added; an empty body becomes one CRLF.
 */
export class SimpleBodyCanonicalizer implements BodyCanonicalizer {
  readonly #sink: ByteSink;
  readonly #out = Buffer.allocUnsafe(SCRATCH);
  /** Line breaks read but not yet written: they are written only when content follows. */
  #held = 0;
  #lastWasCR = false;

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  push(chunk: Uint8Array): void {
    const out = this.#out;
    let o = 0;
    let held = this.#held;
    let lastWasCR = this.#lastWasCR;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      const k = CLASS[c]!;
      if (k === CR) {
        held++;
        lastWasCR = true;
      } else if (k === LF) {
        if (!lastWasCR) held++;
        lastWasCR = false;
      } else {
        for (; held > 0; held--) {
          if (o > SCRATCH - 2) {
            this.#sink(out.subarray(0, o));
            o = 0;
          }
          out[o++] = 0x0d;
          out[o++] = 0x0a;
        }
        if (o === SCRATCH) {
          this.#sink(out.subarray(0, o));
          o = 0;
        }
        out[o++] = c;
        lastWasCR = false;
      }
    }
    if (o > 0) this.#sink(out.subarray(0, o));
    this.#held = held;
    this.#lastWasCR = lastWasCR;
  }

  end(): void {
    // Whatever ended the body (content, one CRLF or many, nothing at all): exactly one CRLF.
    this.#sink(CRLF);
    this.#held = 0;
    this.#lastWasCR = false;
  }
}

/**
 * RFC 6376 §3.4.4: white space at the end of a line is ignored, every other run of SP/HTAB
 * becomes one SP, and all empty lines at the end are ignored; a body that is empty after
 * that stays empty (the CRLF is added only to a non-empty body, §3.4.4).
 */
export class RelaxedBodyCanonicalizer implements BodyCanonicalizer {
  readonly #sink: ByteSink;
  readonly #out = Buffer.allocUnsafe(SCRATCH);
  #held = 0;
  /** SP/HTAB seen since the last content byte on this line: one SP if content follows. */
  #wsp = false;
  #lastWasCR = false;
  /** Something was written, so the body must end with CRLF. */
  #open = false;

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  push(chunk: Uint8Array): void {
    const out = this.#out;
    let o = 0;
    let held = this.#held;
    let wsp = this.#wsp;
    let lastWasCR = this.#lastWasCR;
    let open = this.#open;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      const k = CLASS[c]!;
      if (k === CONTENT) {
        for (; held > 0; held--) {
          if (o > SCRATCH - 2) {
            this.#sink(out.subarray(0, o));
            o = 0;
          }
          out[o++] = 0x0d;
          out[o++] = 0x0a;
        }
        if (o > SCRATCH - 2) {
          this.#sink(out.subarray(0, o));
          o = 0;
        }
        if (wsp) {
          out[o++] = 0x20;
          wsp = false;
        }
        out[o++] = c;
        open = true;
        lastWasCR = false;
      } else if (k === WSP) {
        wsp = true;
        lastWasCR = false;
      } else if (k === CR) {
        held++;
        wsp = false; // white space at the end of a line is dropped
        lastWasCR = true;
      } else {
        if (!lastWasCR) {
          held++;
          wsp = false;
        }
        lastWasCR = false;
      }
    }
    if (o > 0) this.#sink(out.subarray(0, o));
    this.#held = held;
    this.#wsp = wsp;
    this.#lastWasCR = lastWasCR;
    this.#open = open;
  }

  end(): void {
    // The last thing written is always content (held breaks are written only before
    // content), so its line needs its CRLF; the held breaks beyond it are empty lines.
    if (this.#open) this.#sink(CRLF);
    this.#held = 0;
    this.#wsp = false;
    this.#lastWasCR = false;
    this.#open = false;
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
