/**
 * Header blocks (RFC 5322 §2.2): which lines are header lines, how folded lines join, and
 * the bounds that keep a hostile block (a million fields, one endless field) from costing
 * more than `maxHeaders` fields and `maxHeaderBytes` bytes.
 *
 * A line is a header line when it starts with white space (a continuation), with `From `
 * (an mbox envelope line), or with printable characters other than `:` and then a `:` —
 * the rule Python's email package uses, so that both readers end a header block at the
 * same line.
 */
import { isUtf8 } from "node:buffer";
import { decodeWords } from "../mime/encoding/encoded-word.js";
import type { DefectCode, HeaderField, Headers } from "./types.js";

const COLON = 0x3a;

/** Whether the line may start a header field or continue one (see the module comment). */
export function isHeaderLine(line: Buffer): boolean {
  if (line.length === 0) return false;
  const first = line[0]!;
  if (first === 0x20 || first === 0x09) return true;
  if (line.length >= 5 && line.toString("latin1", 0, 5) === "From ") return true;
  for (let i = 0; i < line.length; i++) {
    const b = line[i]!;
    if (b === COLON) return true;
    if (b < 0x21 || b > 0x7e) return false;
  }
  return false;
}

/** Header bytes as text: UTF-8 when they are valid UTF-8 (RFC 6532), else ISO-8859-1 so that no byte is lost. */
export function headerText(bytes: Buffer): string {
  return isUtf8(bytes) ? bytes.toString("utf8") : bytes.toString("latin1");
}

export interface CollectorLimits {
  maxHeaders: number;
  maxHeaderBytes: number;
}

type Report = (code: DefectCode, message: string) => void;

/** Gathers one header block's lines into fields, within the limits. */
export class HeaderCollector {
  readonly #limits: CollectorLimits;
  readonly #report: Report;
  readonly #fields: { name: string; pieces: Buffer[]; bytes: number }[] = [];
  #bytes = 0;
  #lines = 0;
  #full = false;
  #fieldTooLong = false;

  constructor(limits: CollectorLimits, report: Report) {
    this.#limits = limits;
    this.#report = report;
  }

  /** True before any line was added: a block that has not started yet. */
  get empty(): boolean {
    return this.#lines === 0;
  }

  /**
   * One line (or a fragment of one) of the block; `continued` fragments extend the field
   * they belong to. Returns false when the line is not a header line (the block ends).
   */
  add(content: Buffer, continued: boolean): boolean {
    if (continued) {
      this.#append(content);
      return true;
    }
    if (!isHeaderLine(content)) return false;
    const lineNumber = this.#lines++;
    const first = content[0]!;
    if (first === 0x20 || first === 0x09) {
      if (this.#fields.length === 0) {
        this.#report("first-header-line-is-continuation", "The first header line starts with white space; it was ignored");
        return true;
      }
      // Folding (RFC 5322 §2.2.3): the line break goes, the white space stays.
      this.#append(content);
      return true;
    }
    if (content.toString("latin1", 0, Math.min(5, content.length)) === "From " && content.indexOf(COLON) === -1) {
      // An mbox envelope line ("From sender date") before the headers is not a header.
      if (lineNumber > 0) this.#report("misplaced-envelope-header", "A \"From \" envelope line among the header fields was ignored");
      this.#fields.push({ name: "", pieces: [], bytes: 0 });
      return true;
    }
    const colon = content.indexOf(COLON);
    if (colon === 0) {
      this.#report("missing-header-name", "A header line has no field name before its colon; it was ignored");
      this.#fields.push({ name: "", pieces: [], bytes: 0 });
      return true;
    }
    if (this.#full) return true;
    if (this.#fields.length >= this.#limits.maxHeaders) {
      this.#overflow(`more than ${this.#limits.maxHeaders} header fields`);
      return true;
    }
    this.#fields.push({ name: content.toString("latin1", 0, colon), pieces: [], bytes: 0 });
    this.#append(content.subarray(colon + 1));
    return true;
  }

  #append(piece: Buffer): void {
    const field = this.#fields[this.#fields.length - 1];
    if (field === undefined || this.#full || field.name === "") return;
    if (this.#bytes + piece.length > this.#limits.maxHeaderBytes) {
      const room = this.#limits.maxHeaderBytes - this.#bytes;
      if (room > 0) field.pieces.push(Buffer.from(piece.subarray(0, room)));
      this.#bytes = this.#limits.maxHeaderBytes;
      if (!this.#fieldTooLong) {
        this.#fieldTooLong = true;
        this.#report("header-too-long", `The ${field.name} header is longer than the ${this.#limits.maxHeaderBytes}-byte limit for a header block; it was cut`);
      }
      this.#overflow(`a header block over ${this.#limits.maxHeaderBytes} bytes`);
      return;
    }
    this.#bytes += piece.length;
    field.bytes += piece.length;
    // The bytes are copied: lines only live during the splitter's call.
    field.pieces.push(Buffer.from(piece));
  }

  #overflow(why: string): void {
    if (this.#full) return;
    this.#full = true;
    this.#report("too-many-headers", `The header block has ${why}; the rest of its fields were dropped`);
  }

  /** The fields, unfolded and decoded. */
  finish(): HeaderField[] {
    const out: HeaderField[] = [];
    for (const f of this.#fields) {
      if (f.name === "") continue;
      let raw = headerText(Buffer.concat(f.pieces));
      // White space after the colon is not part of the value (RFC 5322 §2.2 leaves it to readers; all drop it).
      let start = 0;
      while (start < raw.length && (raw.charCodeAt(start) === 0x20 || raw.charCodeAt(start) === 0x09)) start++;
      raw = raw.slice(start);
      out.push({ name: f.name, raw, value: decodeWords(raw) });
    }
    return out;
  }
}

class HeaderList implements Headers {
  readonly fields: readonly HeaderField[];
  readonly #byName = new Map<string, HeaderField[]>();

  constructor(fields: readonly HeaderField[]) {
    this.fields = fields;
    for (const f of fields) {
      const key = f.name.toLowerCase();
      const list = this.#byName.get(key);
      if (list) list.push(f);
      else this.#byName.set(key, [f]);
    }
  }

  get(name: string): string | undefined {
    return this.#byName.get(name.toLowerCase())?.[0]?.value;
  }

  getAll(name: string): string[] {
    return (this.#byName.get(name.toLowerCase()) ?? []).map((f) => f.value);
  }

  raw(name: string): string | undefined {
    return this.#byName.get(name.toLowerCase())?.[0]?.raw;
  }

  has(name: string): boolean {
    return this.#byName.has(name.toLowerCase());
  }

  toJSON(): HeaderField[] {
    return [...this.fields];
  }
}

export function headerList(fields: readonly HeaderField[]): Headers {
  return new HeaderList(fields);
}
