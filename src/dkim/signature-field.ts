/**
 * The DKIM-Signature header field's text (RFC 6376 §3.5), folded so that no line passes
 * 78 columns where that can be helped: between tags, after a colon in h=, and anywhere in
 * the base64 of bh= and b= (white space there is ignored, §3.5). b= is last and starts a
 * line of its own, so the field with an empty b= (what is signed, §3.7) is exactly the
 * finished field cut after "b=": the signature's own folding is part of the b= value that
 * verifiers delete.
 */

export const SIGNATURE_FIELD_NAME = "DKIM-Signature";
const WIDTH = 78;

export interface SignatureTags {
  algorithm: string;
  canonicalization: string;
  domain: string;
  selector: string;
  identity?: string | undefined;
  /** t=, seconds since 1970. */
  timestamp: number;
  /** x=, seconds since 1970. */
  expires?: number | undefined;
  /** h=, lower-case names in order. */
  signedHeaders: readonly string[];
  /** bh=, base64. */
  bodyHash: string;
}

/** Lays out lines with a running column; `\r\n ` folds. */
class Lines {
  text: string;
  column: number;

  constructor(start: string) {
    this.text = start;
    this.column = start.length;
  }

  /** An unbreakable piece, after a space on this line if it fits, else on a new line. */
  piece(piece: string): void {
    if (this.column + 1 + piece.length > WIDTH) this.fold();
    else {
      this.text += " ";
      this.column += 1;
    }
    this.append(piece);
  }

  /** A piece glued to what precedes it, or on a new line when this one is full. */
  glued(piece: string): void {
    if (this.column + piece.length > WIDTH) this.fold();
    this.append(piece);
  }

  /** Characters that may be cut anywhere (base64), filling each line to the width. */
  breakable(chars: string): void {
    let i = 0;
    while (i < chars.length) {
      if (this.column >= WIDTH) this.fold();
      const room = WIDTH - this.column;
      this.append(chars.slice(i, i + room));
      i += room;
    }
  }

  fold(): void {
    this.text += "\r\n ";
    this.column = 1;
  }

  append(s: string): void {
    this.text += s;
    this.column += s.length;
  }
}

/**
 * The field's value up to and including "b=" (everything after the colon, starting with a
 * space); append the folded signature with `withSignature`.
 */
export function unsignedValue(tags: SignatureTags): string {
  const lines = new Lines(`${SIGNATURE_FIELD_NAME}:`);
  lines.piece("v=1;");
  lines.piece(`a=${tags.algorithm};`);
  lines.piece(`c=${tags.canonicalization};`);
  lines.piece(`d=${tags.domain};`);
  lines.piece(`s=${tags.selector};`);
  if (tags.identity !== undefined) lines.piece(`i=${tags.identity};`);
  lines.piece(`t=${tags.timestamp};`);
  if (tags.expires !== undefined) lines.piece(`x=${tags.expires};`);
  tags.signedHeaders.forEach((name, i) => {
    const last = i === tags.signedHeaders.length - 1;
    const unit = `${i === 0 ? "h=" : ""}${name}${last ? ";" : ":"}`;
    if (i === 0) lines.piece(unit);
    else lines.glued(unit);
  });
  lines.piece(`bh=${tags.bodyHash};`);
  lines.fold();
  lines.append("b=");
  return lines.text.slice(SIGNATURE_FIELD_NAME.length + 1);
}

/** The finished value: the unsigned value (ending in "b=") with the base64 signature folded after it. */
export function withSignature(unsigned: string, signatureBase64: string): string {
  const lines = new Lines(unsigned);
  lines.column = unsigned.length - unsigned.lastIndexOf("\n") - 1; // "b=" always starts a line
  lines.breakable(signatureBase64);
  return lines.text;
}
