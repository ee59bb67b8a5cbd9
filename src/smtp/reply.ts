/**
 * SMTP replies: parsed once, whole and incrementally (RFC 5321 §4.2).
 *
 *   Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF
 *
 * `ReplyParser` is fed bytes as they arrive and hands back complete replies; a partial
 * reply is "need more", never an error. Malformed input (a code outside 2xx–5xx, a
 * multi-line reply whose codes differ, a line or reply over the bounds) throws
 * `SmtpProtocolError`: the connection cannot be trusted after that and is dropped.
 * State across chunks is only the current line's bytes and the lines of the current
 * reply, so a server trickling one byte at a time costs O(n), not O(n²).
 */
import { SmtpProtocolError } from "../errors.js";

export interface SmtpReply {
  /** The three-digit reply code, 200–599. */
  readonly code: number;
  /** The RFC 3463 enhanced status code of the first line ("2.1.0"), when the server uses them. */
  readonly enhancedCode?: string | undefined;
  /** The text of each line, without the code, separator and (when split) enhanced code. */
  readonly lines: readonly string[];
  /** The lines joined by a space: what a human reads. */
  readonly text: string;
}

export interface ReplyParserOptions {
  /** Split RFC 3463 enhanced codes from the text (set after EHLO advertises ENHANCEDSTATUSCODES). */
  enhancedStatusCodes?: boolean;
  /** Longest accepted line in bytes, terminator included (default 8 KiB). */
  maxLineLength?: number;
  /** Longest accepted reply in bytes, all lines included (default 64 KiB). */
  maxReplyLength?: number;
}

export const MAX_LINE_LENGTH = 8 * 1024;
export const MAX_REPLY_LENGTH = 64 * 1024;
/**
 * Empty lines skipped before a reply. Some servers send a stray CRLF (before the greeting,
 * after a reply); it carries nothing, so it is tolerated, but only this many in a row, so
 * that a server cannot keep a client reading blank lines forever.
 */
export const MAX_BLANK_LINES = 16;

const LF = 0x0a;
const CR = 0x0d;

export class ReplyParser {
  enhancedStatusCodes: boolean;
  readonly #maxLine: number;
  readonly #maxReply: number;
  /** Bytes of the current, unfinished line. */
  #partial: Buffer[] = [];
  #partialLength = 0;
  /** Complete lines of the current, unfinished multi-line reply. */
  #code = 0;
  #texts: string[] = [];
  #replyLength = 0;
  /** Empty lines seen since the last reply line. */
  #blankLines = 0;
  /** Complete replies not yet taken. */
  #ready: SmtpReply[] = [];

  constructor(options: ReplyParserOptions = {}) {
    this.enhancedStatusCodes = options.enhancedStatusCodes ?? false;
    this.#maxLine = options.maxLineLength ?? MAX_LINE_LENGTH;
    this.#maxReply = options.maxReplyLength ?? MAX_REPLY_LENGTH;
  }

  /**
   * Feeds bytes; throws SmtpProtocolError on malformed or oversized input, or when more
   * than `maxPending` complete replies would be waiting to be taken (a server flooding
   * replies nobody asked for must not grow memory without bound).
   */
  push(chunk: Uint8Array, maxPending = Number.POSITIVE_INFINITY): void {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    while (start < bytes.length) {
      const lf = bytes.indexOf(LF, start);
      const end = lf === -1 ? bytes.length : lf + 1;
      this.#partialLength += end - start;
      this.#replyLength += end - start;
      if (this.#partialLength > this.#maxLine) {
        throw new SmtpProtocolError(`The server sent a reply line longer than ${this.#maxLine} bytes`);
      }
      if (this.#replyLength > this.#maxReply) {
        throw new SmtpProtocolError(`The server sent a reply longer than ${this.#maxReply} bytes`);
      }
      this.#partial.push(bytes.subarray(start, end));
      start = end;
      if (lf !== -1) {
        const line = this.#partial.length === 1 ? this.#partial[0]! : Buffer.concat(this.#partial, this.#partialLength);
        this.#partial = [];
        this.#partialLength = 0;
        this.#line(line, maxPending);
      }
    }
  }

  /** The next complete reply, or undefined if more bytes are needed. */
  next(): SmtpReply | undefined {
    return this.#ready.shift();
  }

  /** Complete replies waiting to be taken. */
  get pending(): number {
    return this.#ready.length;
  }

  /** True when part of a reply has been received but not all of it. */
  get midReply(): boolean {
    return this.#partialLength > 0 || this.#texts.length > 0;
  }

  /** Forgets everything buffered (RFC 3207 §4.2: nothing read before TLS may be used after it). */
  reset(): void {
    this.#partial = [];
    this.#partialLength = 0;
    this.#code = 0;
    this.#texts = [];
    this.#replyLength = 0;
    this.#blankLines = 0;
    this.#ready = [];
  }

  #line(raw: Buffer, maxPending: number): void {
    // Strip LF and an optional CR before it (a bare LF terminator is tolerated).
    let end = raw.length - 1;
    if (end > 0 && raw[end - 1] === CR) end -= 1;
    if (end === 0 && this.#texts.length === 0) {
      // A blank line between replies: skipped (bounded). Inside a multi-line reply it is malformed.
      this.#blankLines += 1;
      this.#replyLength = 0;
      if (this.#blankLines > MAX_BLANK_LINES) {
        throw new SmtpProtocolError(`The server sent more than ${MAX_BLANK_LINES} empty lines in a row`);
      }
      return;
    }
    this.#blankLines = 0;
    if (end < 3) throw malformed(raw);
    const d0 = raw[0]! - 0x30;
    const d1 = raw[1]! - 0x30;
    const d2 = raw[2]! - 0x30;
    if (d0 < 2 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) throw malformed(raw);
    const code = d0 * 100 + d1 * 10 + d2;
    let last: boolean;
    if (end === 3) last = true;
    else if (raw[3] === 0x20) last = true;
    else if (raw[3] === 0x2d) last = false;
    else throw malformed(raw);
    if (this.#texts.length > 0 && code !== this.#code) {
      throw new SmtpProtocolError(`The server sent a multi-line reply whose codes differ (${this.#code} then ${code})`);
    }
    this.#code = code;
    this.#texts.push(end > 4 ? raw.toString("utf8", 4, end) : "");
    if (last) {
      if (this.#ready.length >= maxPending) {
        throw new SmtpProtocolError(`The server sent more replies than were asked for (over ${maxPending} waiting unread)`);
      }
      this.#ready.push(buildReply(code, this.#texts, this.enhancedStatusCodes));
      this.#code = 0;
      this.#texts = [];
      this.#replyLength = 0;
    }
  }
}

function malformed(raw: Buffer): SmtpProtocolError {
  const shown = JSON.stringify(raw.toString("latin1", 0, Math.min(raw.length, 80)));
  return new SmtpProtocolError(`The server sent a malformed reply line ${shown}; expected a code 200–599 then " " or "-"`);
}

/**
 * Builds a reply from its line texts. With `enhanced`, a leading "class.subject.detail "
 * whose class matches the reply code's first digit is split from every line (RFC 3463 §2,
 * RFC 2034 §4); the first line's becomes `enhancedCode`.
 */
export function buildReply(code: number, texts: readonly string[], enhanced: boolean): SmtpReply {
  let enhancedCode: string | undefined;
  let lines = texts;
  if (enhanced) {
    const klass = Math.floor(code / 100);
    lines = texts.map((text, i) => {
      const len = enhancedCodeLength(text, klass);
      if (len === 0) return text;
      if (i === 0) enhancedCode = text.slice(0, len);
      return text.slice(text.charCodeAt(len) === 0x20 ? len + 1 : len);
    });
  }
  return { code, enhancedCode, lines, text: lines.join(" ") };
}

/** Length of an enhanced status code at the start of `text`, or 0. No regex: a small scanner. */
function enhancedCodeLength(text: string, klass: number): number {
  if (text.charCodeAt(0) !== 0x30 + klass || text.charCodeAt(1) !== 0x2e) return 0;
  let i = 2;
  for (let part = 0; part < 2; part++) {
    const begin = i;
    while (i < text.length && i - begin < 4 && isDigit(text.charCodeAt(i))) i++;
    const digits = i - begin;
    if (digits < 1 || digits > 3) return 0;
    if (part === 0) {
      if (text.charCodeAt(i) !== 0x2e) return 0;
      i++;
    }
  }
  if (i < text.length && text.charCodeAt(i) !== 0x20) return 0;
  return i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Parses one complete reply from a string or bytes (tests, tools). Throws if incomplete or malformed. */
export function parseReply(input: string | Uint8Array, options: ReplyParserOptions = {}): SmtpReply {
  const parser = new ReplyParser(options);
  parser.push(typeof input === "string" ? Buffer.from(input, "utf8") : input);
  const reply = parser.next();
  if (!reply || parser.pending > 0 || parser.midReply) {
    throw new SmtpProtocolError("Expected exactly one complete reply");
  }
  return reply;
}

/**
 * Renders a reply back into wire lines, without CRLF (transcripts). The enhanced code, split
 * from every line by the parser, is put back on every line, as servers send it (RFC 2034).
 */
export function formatReplyLines(reply: SmtpReply): string[] {
  const lines = reply.lines.length === 0 ? [""] : reply.lines;
  const prefix = reply.enhancedCode ? `${reply.enhancedCode} ` : "";
  return lines.map((text, i) => `${reply.code}${i === lines.length - 1 ? " " : "-"}${prefix}${text}`);
}

/** The queue id a server names in its final reply: Postfix "queued as X", Exim "id=X", Sendmail "X Message accepted". */
export function queueId(text: string): string | undefined {
  const bounded = text.slice(0, 512);
  const queued = /queued as ([A-Za-z0-9._@<>-]{1,128})/i.exec(bounded);
  if (queued) return queued[1];
  const id = /\bid=([A-Za-z0-9._@<>-]{1,128})/i.exec(bounded);
  return id?.[1];
}
