/**
 * The MIME tree, built while the bytes stream past (RFC 2045, RFC 2046 §5). One stack of
 * frames, one per open part; each line goes either to a multipart on the stack (when it is
 * one of their delimiters) or to the innermost part (its header block, its body, or a
 * multipart's preamble or epilogue). Bodies are transfer-decoded as they arrive and kept
 * only when asked, so a large attachment costs its chunk, not its size.
 *
 * Readers disagree on broken mail; where RFC 2046 is silent this follows Python's email
 * package (feedparser): any enclosing boundary ends a part, repeated delimiters do not make
 * empty parts, the line break before a delimiter belongs to the delimiter (§5.1.1).
 */
import { decodeText, normalizeCharset } from "../mime/encoding/charset.js";
import { bareId, parseContentType, parseDisposition } from "./fields.js";
import { HeaderCollector, headerList } from "./headers.js";
import { LineSplitter } from "./lines.js";
import { IDENTITY_ENCODINGS, decoderFor, passThrough, type ChunkDecoder } from "./transfer-decoding.js";
import type { ContentSelection, Defect, DefectCode, MimeNode, ParseOptions, PartInfo } from "./types.js";

interface Limits {
  maxDepth: number;
  maxParts: number;
  maxHeaders: number;
  maxHeaderBytes: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({ maxDepth: 32, maxParts: 2000, maxHeaders: 1000, maxHeaderBytes: 256 * 1024 });

/** Longest preamble kept, to show as the body of a multipart whose first delimiter never came. */
const MAX_PREAMBLE = 1024 * 1024;

const EMPTY = Buffer.alloc(0);

/** A node while it is built; `inner` is the enclosed message's root for message/rfc822. */
export interface BuildingNode extends MimeNode {
  inner?: BuildingNode;
  children?: BuildingNode[];
}

type FrameState = "headers" | "body" | "preamble" | "parts" | "epilogue" | "message";

interface Frame {
  node: BuildingNode;
  depth: number;
  state: FrameState;
  /** The Content-Type a part without one gets (message/rfc822 inside multipart/digest). */
  defaultType: string;
  collector: HeaderCollector;
  /** Multiparts: `--` and the boundary. */
  delimiter?: Buffer;
  /** Leaves: the decoded body; messages: the enclosed message's bytes; multiparts: the preamble. */
  sink?: BodySink;
  /** Whether any line reached this part (a part between two delimiters in a row has none). */
  touched: boolean;
  /** Enclosed messages: where their bytes start in the input. */
  rawStart?: number;
  /**
   * Enclosed messages whose bytes are kept: the outermost one keeps them, and the ones inside
   * it are slices of those (so nesting never multiplies the memory a message costs).
   */
  rawOwner?: Frame;
  slices?: { node: BuildingNode; start: number; size: number }[];
}

class BodySink {
  readonly #decoder: ChunkDecoder;
  readonly #keep: boolean;
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #held: Buffer = EMPTY;
  size = 0;
  encodedSize = 0;

  constructor(decoder: ChunkDecoder, keep: boolean, limit = Infinity) {
    this.#decoder = decoder;
    this.#keep = keep;
    this.#limit = limit;
  }

  get damaged(): boolean {
    return this.#decoder.damaged;
  }

  /** A line of the body; its line break is held back until the next line shows it is not a delimiter's. */
  line(content: Buffer, eol: Buffer): void {
    if (this.#held.length > 0) this.#write(this.#held);
    this.#write(content);
    this.#held = eol;
  }

  /** The body ended: at a delimiter the held line break belongs to it; at the end of input, to the body. */
  finish(atDelimiter: boolean): Buffer | undefined {
    if (!atDelimiter && this.#held.length > 0) this.#write(this.#held);
    this.#held = EMPTY;
    this.#take(this.#decoder.flush());
    if (!this.#keep) return undefined;
    const content = Buffer.concat(this.#chunks);
    this.#chunks = [];
    return content;
  }

  #write(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.encodedSize += bytes.length;
    this.#take(this.#decoder.decode(bytes));
  }

  #take(decoded: Buffer): void {
    if (decoded.length === 0) return;
    const room = this.#limit - this.size;
    this.size += decoded.length;
    // Lines live only during the splitter's call: what is kept is copied.
    if (this.#keep && room > 0) this.#chunks.push(Buffer.from(decoded.subarray(0, Math.min(room, decoded.length))));
  }
}

function isIdentity(transferEncoding: string): boolean {
  return IDENTITY_ENCODINGS.has(transferEncoding);
}

/** A text/plain or text/html part that is not an attachment: what a mail client shows as the message. */
export function isBodyPart(info: PartInfo): boolean {
  return (info.contentType === "text/plain" || info.contentType === "text/html") && info.disposition !== "attachment" && info.filename === null;
}

function keepFor(selection: ContentSelection): (info: PartInfo) => boolean {
  if (typeof selection === "function") return selection;
  if (selection === "all") return () => true;
  if (selection === "none") return () => false;
  return isBodyPart;
}

/** Decodes text in its charset; unknown charsets are read as UTF-8 (invalid bytes become U+FFFD). */
function decodeBody(bytes: Buffer, charset: string | null, report: (code: DefectCode, message: string) => void): string {
  let text: string;
  if (charset === null) {
    // RFC 2045 §5.2 says US-ASCII; 8-bit bytes without a charset are UTF-8 far more often than not.
    text = bytes.toString("utf8");
  } else {
    try {
      text = decodeText(bytes, normalizeCharset(charset));
    } catch {
      report("unknown-charset", `The charset ${JSON.stringify(charset.slice(0, 40))} is unknown; the text was read as UTF-8`);
      text = bytes.toString("utf8");
    }
  }
  return text.includes("\r") ? text.replace(/\r\n?/g, "\n") : text;
}

/** Python-compatible delimiter match: the delimiter, optionally `--`, then only spaces and tabs. */
function matchDelimiter(line: Buffer, delimiter: Buffer): "delimiter" | "close" | undefined {
  if (line.length < delimiter.length || line.compare(delimiter, 0, delimiter.length, 0, delimiter.length) !== 0) return undefined;
  let i = delimiter.length;
  let close = false;
  if (line[i] === 0x2d && line[i + 1] === 0x2d) {
    close = true;
    i += 2;
  }
  for (; i < line.length; i++) if (line[i] !== 0x20 && line[i] !== 0x09) return undefined;
  return close ? "close" : "delimiter";
}

export class MimeParser {
  readonly #limits: Limits;
  readonly #keep: (info: PartInfo) => boolean;
  readonly #splitter: LineSplitter;
  readonly #stack: Frame[] = [];
  readonly defects: Defect[] = [];
  readonly root: BuildingNode;
  size = 0;
  /** Input offset of the line after the one being handled. */
  #offset = 0;
  /** Input offset of the line being handled. */
  #lineStart = 0;
  #parts = 1;
  /** Set when maxParts was reached: the rest of the input is not parsed. */
  #stopped = false;
  #ended = false;

  constructor(options: ParseOptions = {}) {
    this.#limits = {
      maxDepth: options.maxDepth ?? DEFAULT_LIMITS.maxDepth,
      maxParts: options.maxParts ?? DEFAULT_LIMITS.maxParts,
      maxHeaders: options.maxHeaders ?? DEFAULT_LIMITS.maxHeaders,
      maxHeaderBytes: options.maxHeaderBytes ?? DEFAULT_LIMITS.maxHeaderBytes,
    };
    this.#keep = keepFor(options.content ?? "all");
    this.#splitter = new LineSplitter((content, eol, continued) => this.#onLine(content, eol, continued));
    this.root = this.#open("1", 0, "text/plain").node;
  }

  write(chunk: Uint8Array): void {
    if (this.#ended) throw new Error("MimeParser: write after end");
    this.size += chunk.byteLength;
    this.#splitter.push(chunk);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#splitter.end();
    while (this.#stack.length > 0) this.#closeTop(false);
  }

  #report(frame: Frame | undefined, code: DefectCode, message: string): void {
    this.defects.push({ code, part: frame?.node.path ?? "1", message });
  }

  #open(path: string, depth: number, defaultType: string): Frame {
    const node: BuildingNode = {
      path,
      headers: headerList([]),
      contentType: defaultType,
      params: {},
      disposition: null,
      filename: null,
      contentId: null,
      charset: null,
      transferEncoding: "7bit",
      size: 0,
      encodedSize: 0,
    };
    const frame: Frame = { node, depth, state: "headers", defaultType, touched: false, collector: undefined! };
    frame.collector = new HeaderCollector(this.#limits, (code, message) => this.#report(frame, code, message));
    this.#stack.push(frame);
    return frame;
  }

  #onLine(content: Buffer, eol: Buffer, continued: boolean): void {
    this.#lineStart = this.#offset;
    this.#offset += content.length + eol.length;
    if (this.#stopped) return;
    let hit: { index: number; kind: "delimiter" | "close" } | undefined;
    if (!continued && content[0] === 0x2d && content[1] === 0x2d) {
      for (let i = this.#stack.length - 1; i >= 0 && hit === undefined; i--) {
        const f = this.#stack[i]!;
        if (f.delimiter === undefined || (f.state !== "preamble" && f.state !== "parts")) continue;
        const kind = matchDelimiter(content, f.delimiter);
        if (kind !== undefined) hit = { index: i, kind };
      }
    }
    // Enclosed messages keep their bytes as they were, up to the delimiter that ends them.
    const end = hit === undefined ? this.#stack.length : hit.index;
    for (let i = 0; i < end; i++) {
      const f = this.#stack[i]!;
      if (f.state === "message") f.sink!.line(content, eol);
    }
    if (hit !== undefined) this.#onDelimiter(hit.index, hit.kind);
    else this.#deliver(content, eol, continued);
  }

  #onDelimiter(index: number, kind: "delimiter" | "close"): void {
    while (this.#stack.length - 1 > index) this.#closeTop(true);
    const multipart = this.#stack[index]!;
    multipart.touched = true;
    if (multipart.state === "preamble") multipart.sink!.finish(true);
    if (kind === "close") {
      multipart.state = "epilogue";
      return;
    }
    multipart.state = "parts";
    if (this.#parts >= this.#limits.maxParts) {
      this.#report(multipart, "too-many-parts", `The message has more than ${this.#limits.maxParts} parts; the rest of it was not parsed`);
      this.#stopped = true;
      return;
    }
    this.#parts++;
    const children = multipart.node.children!;
    const childType = multipart.node.contentType === "multipart/digest" ? "message/rfc822" : "text/plain";
    const child = this.#open(`${multipart.node.path}.${children.length + 1}`, multipart.depth + 1, childType);
    children.push(child.node);
  }

  #deliver(content: Buffer, eol: Buffer, continued: boolean): void {
    const frame = this.#stack[this.#stack.length - 1];
    if (frame === undefined) return;
    frame.touched = true;
    switch (frame.state) {
      case "headers":
        if (continued && content.length === 0) return; // the line break after a long header line
        if (!continued && content.length === 0 && eol.length > 0) {
          this.#endHeaders(frame);
          return;
        }
        if (frame.collector.add(content, continued)) return;
        this.#report(frame, "missing-header-body-separator", "A line that is not a header field ended the header block without the empty line; it starts the body");
        this.#endHeaders(frame, this.#lineStart);
        this.#deliver(content, eol, continued);
        return;
      case "body":
      case "preamble":
        frame.sink!.line(content, eol);
        return;
      case "epilogue":
      case "parts":
      case "message":
        return;
    }
  }

  /** The header block is complete: decide what the body is (its bytes start at `bodyStart`). */
  #endHeaders(frame: Frame, bodyStart = this.#offset): void {
    const node = frame.node;
    const report = (code: DefectCode, message: string) => this.#report(frame, code, message);
    node.headers = headerList(frame.collector.finish());
    const type = parseContentType(node.headers.raw("content-type"), frame.defaultType, report);
    const disposition = parseDisposition(node.headers.raw("content-disposition"));
    node.contentType = type.type;
    node.params = type.params;
    node.disposition = disposition.disposition;
    node.filename = disposition.params["filename"] ?? type.params["name"] ?? null;
    node.contentId = bareId(node.headers.raw("content-id"));
    node.charset = type.params["charset"]?.trim().toLowerCase() || null;
    const cte = node.headers.raw("content-transfer-encoding");
    node.transferEncoding = cte === undefined ? "7bit" : cte.replace(/\([^)]*\)/g, "").trim().toLowerCase() || "7bit";
    const info: PartInfo = { path: node.path, contentType: node.contentType, disposition: node.disposition, filename: node.filename, contentId: node.contentId };

    const major = node.contentType.slice(0, node.contentType.indexOf("/"));
    const deep = frame.depth >= this.#limits.maxDepth;
    if (major === "multipart") {
      // Python's get_boundary() strips trailing white space; an empty boundary would match every "--" line.
      const boundary = (type.params["boundary"] ?? "").trimEnd();
      if (deep) {
        report("too-deep", `Parts are nested more than ${this.#limits.maxDepth} deep; this one is kept whole`);
      } else if (boundary === "") {
        report("no-boundary", `The ${node.contentType} part has no boundary parameter; its body is kept as one part`);
      } else {
        if (!isIdentity(node.transferEncoding)) {
          report("invalid-multipart-transfer-encoding", `A multipart must be 7bit, 8bit or binary (RFC 2045 §6.4), not ${JSON.stringify(node.transferEncoding)}`);
        }
        frame.state = "preamble";
        frame.delimiter = Buffer.from(`--${boundary}`, /^[\0-\xff]*$/.test(boundary) ? "latin1" : "utf8");
        frame.sink = new BodySink(passThrough(), this.#keep(info), MAX_PREAMBLE);
        node.children = [];
        return;
      }
    }
    if ((node.contentType === "message/rfc822" || node.contentType === "message/global") && isIdentity(node.transferEncoding)) {
      if (deep) {
        report("too-deep", `Parts are nested more than ${this.#limits.maxDepth} deep; this enclosed message is kept whole`);
      } else if (this.#parts >= this.#limits.maxParts) {
        this.#report(frame, "too-many-parts", `The message has more than ${this.#limits.maxParts} parts; the rest of it was not parsed`);
        this.#stopped = true;
        return;
      } else {
        this.#parts++;
        frame.state = "message";
        frame.rawStart = bodyStart;
        const keep = this.#keep(info);
        const owner = keep ? this.#stack.find((f) => f.state === "message" && f !== frame && f.slices !== undefined) : undefined;
        if (owner !== undefined) frame.rawOwner = owner;
        else if (keep) frame.slices = [];
        // Only the outermost kept message stores bytes; the others count them.
        frame.sink = new BodySink(passThrough(), keep && owner === undefined);
        node.inner = this.#open(`${node.path}.1`, frame.depth + 1, "text/plain").node;
        return;
      }
    }
    let decoder = decoderFor(node.transferEncoding);
    if (decoder === undefined) {
      report("unknown-transfer-encoding", `The Content-Transfer-Encoding ${JSON.stringify(node.transferEncoding.slice(0, 40))} is unknown; the content is kept as it was`);
      decoder = passThrough();
    }
    frame.state = "body";
    frame.sink = new BodySink(decoder, this.#keep(info));
  }

  /** Closes the innermost open part, at a delimiter of an enclosing multipart or at the end of input. */
  #closeTop(atDelimiter: boolean): void {
    const frame = this.#stack[this.#stack.length - 1]!;
    const parent = this.#stack[this.#stack.length - 2];
    if (frame.state === "headers") {
      if (atDelimiter && !frame.touched && parent?.node.children !== undefined) {
        // Two delimiters in a row: no part between them (as Python's feedparser reads it).
        parent.node.children.pop();
        this.#parts--;
        this.#stack.pop();
        return;
      }
      this.#endHeaders(frame);
      if (this.#stack[this.#stack.length - 1] !== frame) {
        this.#closeTop(atDelimiter); // the enclosed message just opened, empty
      }
    }
    const node = frame.node;
    const report = (code: DefectCode, message: string) => this.#report(frame, code, message);
    switch (frame.state) {
      case "body": {
        const sink = frame.sink!;
        const content = sink.finish(atDelimiter);
        node.size = sink.size;
        node.encodedSize = sink.encodedSize;
        if (sink.damaged) report("invalid-base64", "The base64 content has characters outside the base64 alphabet or a stray last character");
        if (content !== undefined) {
          node.content = content;
          if (node.contentType.startsWith("text/")) node.text = decodeBody(content, node.charset, report);
        }
        break;
      }
      case "preamble": {
        report("start-boundary-not-found", `The ${node.contentType} part never reached its first boundary; its body is kept as one part`);
        const content = frame.sink!.finish(atDelimiter);
        node.size = node.encodedSize = frame.sink!.size;
        delete node.children;
        if (content !== undefined) {
          node.content = content;
          node.text = decodeBody(content, node.charset, report);
        }
        break;
      }
      case "parts":
        // After maxParts the rest was skipped on purpose: the missing delimiter is not news.
        if (!this.#stopped) report("close-boundary-not-found", `The ${node.contentType} part ended without its close delimiter`);
        break;
      case "message": {
        const content = frame.sink!.finish(atDelimiter);
        node.size = node.encodedSize = frame.sink!.size;
        if (frame.rawOwner !== undefined) frame.rawOwner.slices!.push({ node, start: frame.rawStart!, size: node.size });
        if (content !== undefined) {
          node.content = content;
          for (const slice of frame.slices ?? []) {
            const at = slice.start - frame.rawStart!;
            slice.node.content = content.subarray(at, at + slice.size);
          }
        }
        break;
      }
      case "epilogue":
      case "headers":
        break;
    }
    this.#stack.pop();
  }
}
