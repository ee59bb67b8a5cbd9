/**
 * The MIME part tree and its streaming serializer.
 *
 * Serialising happens in two passes (STYLE.md "prepare, then stream"): `preparePart`
 * decides every header — transfer encoding, boundary, charset — and may read files to
 * learn what they hold; `streamPrepared` then only writes, pulling file and stream
 * sources chunk by chunk as the consumer reads, so memory is bounded by the chunk size.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { BadHeaderError, EncodingError, InvalidArgumentError } from "../errors.js";
import { Base64Encoder, base64EncodedLength } from "./encoding/base64.js";
import { encodeText, normalizeCharset } from "./encoding/charset.js";
import { QuotedPrintableEncoder } from "./encoding/quoted-printable.js";
import { formatParameter } from "./encoding/rfc2231.js";
import { assertHeaderName, assertHeaderValue, renderHeader } from "./headers.js";
import type { Policy } from "./policy.js";
import {
  canonicalLineBreaks,
  chooseMessageEncoding,
  chooseTextEncoding,
  scanBytes,
  TextScan,
  type TransferEncoding,
} from "./transfer-encoding.js";

const CHUNK_SIZE = 64 * 1024;
const CRLF = "\r\n";

/** A message that can be attached as `message/rfc822` (an EmailMessage, without importing it). */
export interface NestedMessage {
  prepare(policy: Policy): Promise<PreparedOutput>;
}

/** Anything that serialises to a byte stream after a prepare pass. */
export interface PreparedOutput {
  /** The output contains 8-bit data (needs BODY=8BITMIME over SMTP). */
  readonly eightBit: boolean;
  /** Exact size in octets when every source's size is known in advance. */
  readonly size: number | undefined;
  chunks(): AsyncGenerator<Buffer>;
}

/**
 * What a leaf part holds. Strings are text; byte arrays are kept exactly; `{ path }` is a
 * file read lazily; a Readable or async iterable is consumed once, as the message streams;
 * a function returning one is called each time the message is streamed.
 */
export type BodySource =
  | string
  | Uint8Array
  | { readonly path: string }
  | Readable
  | AsyncIterable<Uint8Array>
  | (() => Readable | AsyncIterable<Uint8Array>)
  | { readonly message: NestedMessage | Uint8Array | string };

export interface MimePartOptions {
  /** `type/subtype`, e.g. "text/plain", "image/png", "multipart/alternative". */
  contentType: string;
  /** Content-Type parameters other than charset and boundary (e.g. `{ method: "REQUEST" }`). */
  params?: Record<string, string>;
  /** Charset of a text part; string bodies are encoded with it (default utf-8). */
  charset?: string;
  body?: BodySource;
  children?: readonly MimePart[];
  disposition?: "inline" | "attachment";
  filename?: string;
  /** Bare id (`"logo"`), rendered `Content-ID: <logo>` and referenced as `cid:logo`. */
  contentId?: string;
  /** Force a transfer encoding instead of letting the serializer choose. */
  transferEncoding?: TransferEncoding;
  /** Extra headers of this part, in order. */
  headers?: Record<string, string> | readonly (readonly [string, string])[];
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export class MimePart {
  readonly contentType: string;
  readonly params: Readonly<Record<string, string>>;
  readonly charset: string | undefined;
  readonly body: BodySource | undefined;
  readonly children: readonly MimePart[];
  readonly disposition: "inline" | "attachment" | undefined;
  readonly filename: string | undefined;
  readonly contentId: string | undefined;
  readonly transferEncoding: TransferEncoding | undefined;
  readonly headers: readonly (readonly [string, string])[];

  constructor(options: MimePartOptions) {
    const [type, subtype, ...rest] = options.contentType.toLowerCase().split("/");
    if (!type || !subtype || rest.length > 0 || !TOKEN.test(type) || !TOKEN.test(subtype)) {
      throw new InvalidArgumentError(`Invalid MIME type ${JSON.stringify(options.contentType)}: expected "type/subtype"`);
    }
    this.contentType = `${type}/${subtype}`;
    const isMultipart = type === "multipart";
    if (isMultipart && options.body !== undefined) throw new InvalidArgumentError(`A ${this.contentType} part has children, not a body`);
    if (!isMultipart && options.children?.length) throw new InvalidArgumentError(`Only multipart parts have children (got ${this.contentType})`);
    for (const [name, value] of Object.entries(options.params ?? {})) {
      if (!TOKEN.test(name)) throw new BadHeaderError("Content-Type", `Invalid Content-Type parameter name ${JSON.stringify(name)}`);
      assertHeaderValue(`Content-Type parameter ${name}`, value);
    }
    if (options.filename !== undefined) assertHeaderValue("attachment filename", options.filename);
    if (options.contentId !== undefined) assertContentId(options.contentId);
    this.params = Object.freeze({ ...options.params });
    this.charset = options.charset === undefined ? undefined : normalizeCharset(options.charset);
    this.body = options.body;
    this.children = Object.freeze([...(options.children ?? [])]);
    this.disposition = options.disposition;
    this.filename = options.filename;
    this.contentId = options.contentId;
    this.transferEncoding = options.transferEncoding;
    const headers = Array.isArray(options.headers) ? options.headers : Object.entries(options.headers ?? {});
    for (const [name, value] of headers as readonly (readonly [string, string])[]) {
      assertHeaderName(name);
      assertHeaderValue(name, value);
    }
    this.headers = Object.freeze(headers.map(([n, v]) => [n, v] as const));
  }

  get isMultipart(): boolean {
    return this.contentType.startsWith("multipart/");
  }
}

function assertContentId(id: string): void {
  assertHeaderValue("contentId", id);
  if (id.length === 0 || /[\s<>"\\\u0080-\uffff]/.test(id)) {
    throw new BadHeaderError("contentId", `Invalid Content-ID ${JSON.stringify(id)}: give it bare ("logo"), ASCII without spaces, quotes or angle brackets`);
  }
}

/** Headers that sit above a part's own content headers (the message's From, To, ...). */
export type HeaderLines = readonly (readonly [string, string])[];

interface PreparedLeaf {
  readonly kind: "leaf";
  readonly header: Buffer;
  readonly encoding: TransferEncoding;
  /** Already-encoded body bytes (small text), or a plan to encode a source while streaming. */
  readonly encoded: Buffer | undefined;
  readonly source: (() => AsyncIterable<Uint8Array>) | undefined;
  readonly nested: PreparedOutput | undefined;
  readonly size: number | undefined;
  readonly eightBit: boolean;
}

interface PreparedMultipart {
  readonly kind: "multipart";
  readonly header: Buffer;
  readonly boundary: string;
  readonly children: readonly PreparedNode[];
  readonly size: number | undefined;
  readonly eightBit: boolean;
}

type PreparedNode = PreparedLeaf | PreparedMultipart;

export interface PrepareContext {
  readonly policy: Policy;
  /** Default charset for text given as strings. */
  readonly charset: string;
  /** A fresh, unpredictable boundary each call. */
  readonly boundary: () => string;
}

/** Prepares `part` with `topHeaders` rendered above its content headers (for the message root). */
export async function preparePart(part: MimePart, context: PrepareContext, topHeaders: Buffer = Buffer.alloc(0)): Promise<PreparedOutput> {
  const node = await prepareNode(part, context, topHeaders);
  return {
    eightBit: node.eightBit,
    size: node.size,
    chunks: () => emit(node),
  };
}

async function prepareNode(part: MimePart, context: PrepareContext, topHeaders: Buffer): Promise<PreparedNode> {
  return part.isMultipart ? prepareMultipart(part, context, topHeaders) : prepareLeaf(part, context, topHeaders);
}

async function prepareMultipart(part: MimePart, context: PrepareContext, topHeaders: Buffer): Promise<PreparedMultipart> {
  const children = await Promise.all(part.children.map((child) => prepareNode(child, context, Buffer.alloc(0))));
  let boundary = context.boundary();
  // A random boundary practically never occurs in content; for in-memory 7bit/8bit parts we
  // can afford to make sure.
  while (children.some((c) => c.kind === "leaf" && c.encoded !== undefined && c.encoded.includes(`--${boundary}`))) boundary = context.boundary();
  const header = Buffer.concat([topHeaders, headerBlockBytes(contentHeaders(part, context, { boundary }, undefined) + CRLF, context.policy)]);
  let size: number | undefined = header.length;
  for (const child of children) {
    const delimiter = `--${boundary}\r\n`.length;
    size = size === undefined || child.size === undefined ? undefined : size + delimiter + child.size + 2;
  }
  if (size !== undefined) size += `--${boundary}--\r\n`.length;
  return { kind: "multipart", header, boundary, children, size, eightBit: children.some((c) => c.eightBit) };
}

async function prepareLeaf(part: MimePart, context: PrepareContext, topHeaders: Buffer): Promise<PreparedLeaf> {
  const { policy } = context;
  const [type] = part.contentType.split("/");
  const body = part.body ?? "";
  let contentType = part.contentType;
  let charset = part.charset;
  let encoding = part.transferEncoding;
  let encoded: Buffer | undefined;
  let source: (() => AsyncIterable<Uint8Array>) | undefined;
  let nested: PreparedOutput | undefined;
  let sourceSize: number | undefined;

  if (isNestedMessage(body)) {
    if (part.contentType !== "message/rfc822") throw new InvalidArgumentError("Only a message/rfc822 part can hold a message");
    const inner = body.message;
    if (typeof inner === "string" || inner instanceof Uint8Array) {
      // A serialized message: canonical CRLF line breaks, sent as 7bit or 8bit, never base64.
      const bytes = typeof inner === "string" ? Buffer.from(canonicalLineBreaks(inner), "utf-8") : Buffer.from(canonicalLineBreaks(Buffer.from(inner).toString("latin1")), "latin1");
      const chosen = chooseMessageEncoding(scanBytes(bytes));
      if (chosen === undefined) throw new InvalidArgumentError("A message/rfc822 attachment has a line longer than 998 octets or a NUL byte; attach it as application/octet-stream instead");
      encoding = chosen;
      encoded = bytes;
    } else {
      nested = await inner.prepare(policy);
      encoding = nested.eightBit ? "8bit" : "7bit";
    }
  } else if (typeof body === "string") {
    const cs = charset ?? context.charset;
    const isText = type === "text";
    const bytes = encodeText(isText ? ensureFinalLineBreak(canonicalLineBreaks(body)) : body, cs);
    if (isText || cs !== "utf-8" || bytes.some((b) => b >= 0x80)) charset = cs;
    if (isText) {
      encoding ??= chooseTextEncoding(scanBytes(bytes), policy.allow8bit);
    } else {
      encoding ??= "base64";
    }
    encoded = encodeWhole(bytes, encoding);
  } else if (body instanceof Uint8Array) {
    const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (type === "text" && encoding === undefined) {
      const scan = scanBytes(bytes);
      if (!scan.utf8 && (charset === undefined || charset === "utf-8")) {
        // text/* bytes that are not UTF-8 cannot be labelled honestly: send them unchanged.
        contentType = "application/octet-stream";
        charset = undefined;
        encoding = "base64";
      } else {
        charset ??= scan.highBytes > 0 ? "utf-8" : "us-ascii";
        encoding = chooseTextEncoding(scan, policy.allow8bit);
      }
    }
    encoding ??= "base64";
    if (encoding === "base64") {
      source = () => inChunks(bytes);
      sourceSize = bytes.length;
    } else {
      encoded = encodeWhole(bytes, encoding);
    }
  } else if (isFileSource(body)) {
    const path = body.path;
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
      throw new InvalidArgumentError(`Cannot attach ${path}: ${error.code === "ENOENT" ? "no such file" : error.message}`);
    });
    if (!info.isFile()) throw new InvalidArgumentError(`Cannot attach ${path}: not a regular file`);
    sourceSize = info.size;
    source = () => createReadStream(path, { highWaterMark: CHUNK_SIZE });
    if (type === "text" && encoding === undefined) {
      const scan = new TextScan();
      for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_SIZE })) scan.push(chunk as Buffer);
      scan.finish();
      if (!scan.utf8 && (charset === undefined || charset === "utf-8")) {
        contentType = "application/octet-stream";
        charset = undefined;
      } else {
        charset ??= scan.highBytes > 0 ? "utf-8" : "us-ascii";
        if (!scan.nul && !scan.bareLineBreak && scan.longestLine <= 998 && (scan.highBytes === 0 || policy.allow8bit)) {
          encoding = scan.highBytes === 0 ? "7bit" : "8bit";
        }
      }
    }
    encoding ??= "base64";
  } else {
    source = streamSource(body);
    encoding ??= "base64";
  }

  if (encoding === "8bit" && !policy.allow8bit && part.contentType !== "message/rfc822") {
    throw new InvalidArgumentError(`The ${part.contentType} part asks for 8bit transfer encoding, which this policy does not allow`);
  }

  const header = Buffer.concat([topHeaders, headerBlockBytes(contentHeaders(part, context, { contentType, charset }, encoding) + CRLF, policy)]);
  let bodySize: number | undefined;
  if (encoded) bodySize = encoded.length;
  else if (nested) bodySize = nested.size;
  else if (sourceSize !== undefined) bodySize = encoding === "base64" ? base64EncodedLength(sourceSize) : sourceSize;
  const eightBit = encoding === "8bit" || encoding === "binary" || (nested?.eightBit ?? false);
  return {
    kind: "leaf",
    header,
    encoding,
    encoded,
    source,
    nested,
    size: bodySize === undefined ? undefined : header.length + bodySize,
    eightBit,
  };
}

function contentHeaders(
  part: MimePart,
  context: PrepareContext,
  resolved: { contentType?: string; charset?: string | undefined; boundary?: string },
  encoding: TransferEncoding | undefined,
): string {
  const { policy } = context;
  const opts = { utf8: policy.utf8, charset: context.charset };
  const params: string[] = [];
  if (resolved.boundary) params.push(...formatParameter("boundary", resolved.boundary, { charset: "utf-8" }));
  if (resolved.charset) params.push(...formatParameter("charset", resolved.charset, { charset: "utf-8" }));
  for (const [name, value] of Object.entries(part.params)) {
    if (name.toLowerCase() === "charset" || name.toLowerCase() === "boundary") continue;
    params.push(...formatParameter(name, value, { charset: "utf-8" }));
  }
  let out = guardedHeader("Content-Type", [resolved.contentType ?? part.contentType, ...params].join("; "), { ...opts, kind: "raw" });
  if (encoding) out += guardedHeader("Content-Transfer-Encoding", encoding, { ...opts, kind: "raw" });
  if (part.disposition || part.filename !== undefined) {
    const disposition = part.disposition ?? "attachment";
    const dparams = part.filename === undefined ? [] : formatParameter("filename", part.filename, { charset: "utf-8" });
    out += guardedHeader("Content-Disposition", [disposition, ...dparams].join("; "), { ...opts, kind: "raw" });
  }
  if (part.contentId !== undefined) out += guardedHeader("Content-ID", `<${part.contentId}>`, { ...opts, kind: "raw" });
  for (const [name, value] of part.headers) out += guardedHeader(name, value, opts);
  return out;
}

/**
 * The second injection guard (after the checks at the API edge, as Python's email package
 * does since CVE-2024-6923): a rendered header is one logical line — every CRLF but the
 * last starts a fold — with no bare CR, LF or NUL, and ASCII unless the policy is UTF-8.
 */
export function guardedHeader(name: string, value: Parameters<typeof renderHeader>[1], options: Parameters<typeof renderHeader>[2]): string {
  const text = renderHeader(name, value, options);
  const end = text.length - 2;
  if (!text.endsWith(CRLF)) throw new BadHeaderError(name, `The rendered ${name} header does not end its line`);
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0d) {
      const fold = text.charCodeAt(i + 1) === 0x0a && (text.charCodeAt(i + 2) === 0x20 || text.charCodeAt(i + 2) === 0x09);
      if (!fold) throw new BadHeaderError(name, `The rendered ${name} header holds a line break that is not a fold`);
      i++;
    } else if (c === 0x0a || c === 0) {
      throw new BadHeaderError(name, `The rendered ${name} header holds a bare LF or a NUL`);
    } else if (c > 0x7e && !options.utf8) {
      throw new BadHeaderError(name, `The rendered ${name} header holds non-ASCII text although 7-bit headers were asked for`);
    }
  }
  return text;
}

function headerBlockBytes(text: string, policy: Policy): Buffer {
  return Buffer.from(text, policy.utf8 ? "utf-8" : "latin1");
}

function encodeWhole(bytes: Buffer, encoding: TransferEncoding): Buffer {
  switch (encoding) {
    case "base64": {
      const encoder = new Base64Encoder();
      return Buffer.concat([encoder.encode(bytes), encoder.flush()]);
    }
    case "quoted-printable": {
      const encoder = new QuotedPrintableEncoder();
      const out = Buffer.concat([encoder.encode(bytes), encoder.flush()]);
      return out;
    }
    default:
      return bytes;
  }
}

function ensureFinalLineBreak(text: string): string {
  return text === "" || text.endsWith(CRLF) ? text : text + CRLF;
}

function isNestedMessage(body: BodySource): body is { readonly message: NestedMessage | Uint8Array | string } {
  return typeof body === "object" && body !== null && !(body instanceof Uint8Array) && "message" in body && !isReadableLike(body);
}

function isFileSource(body: BodySource): body is { readonly path: string } {
  return typeof body === "object" && body !== null && !(body instanceof Uint8Array) && "path" in body && typeof body.path === "string" && !isReadableLike(body);
}

function isReadableLike(value: object): boolean {
  return value instanceof Readable || Symbol.asyncIterator in value;
}

/** Streams (not factories) already handed to a serializer: they cannot be read twice. */
const consumedStreams = new WeakSet<object>();

function streamSource(body: BodySource): () => AsyncIterable<Uint8Array> {
  if (typeof body === "function") return body;
  const stream = body as AsyncIterable<Uint8Array>;
  // Checked while preparing, so that a second send fails before any byte is written.
  if (consumedStreams.has(stream) || (stream instanceof Readable && (stream.readableDidRead || stream.destroyed))) {
    throw new InvalidArgumentError("An attachment given as a stream can be sent only once; pass a function that returns a new stream to send it again");
  }
  return () => {
    consumedStreams.add(stream);
    return stream;
  };
}

/** In-memory bytes as chunk-sized views (no copy), so the encoder works within the cache. */
async function* inChunks(bytes: Buffer): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += CHUNK_SIZE) yield bytes.subarray(offset, offset + CHUNK_SIZE);
}

async function* emit(node: PreparedNode): AsyncGenerator<Buffer> {
  yield node.header;
  if (node.kind === "multipart") {
    for (const child of node.children) {
      yield Buffer.from(`--${node.boundary}\r\n`, "latin1");
      yield* emit(child);
      yield Buffer.from(CRLF, "latin1");
    }
    yield Buffer.from(`--${node.boundary}--\r\n`, "latin1");
    return;
  }
  if (node.encoded) {
    yield node.encoded;
  } else if (node.nested) {
    yield* node.nested.chunks();
  } else if (node.source) {
    yield* encodeSource(node.source(), node.encoding);
  }
}

async function* encodeSource(source: AsyncIterable<Uint8Array>, encoding: TransferEncoding): AsyncGenerator<Buffer> {
  if (encoding !== "base64" && encoding !== "quoted-printable") {
    for await (const chunk of source) yield Buffer.from(chunk);
    return;
  }
  const encoder = encoding === "base64" ? new Base64Encoder() : new QuotedPrintableEncoder();
  for await (const chunk of source) {
    if (typeof chunk === "string") throw new EncodingError("An attachment stream produced text; give attachment streams as bytes");
    const out = encoder.encode(chunk);
    if (out.length > 0) yield out;
  }
  const rest = encoder.flush();
  if (rest.length > 0) yield rest;
}

/** A Readable over prepared output, pulling sources only as the consumer reads. */
export function toReadable(output: PreparedOutput): Readable {
  return Readable.from(output.chunks(), { objectMode: false, highWaterMark: CHUNK_SIZE });
}
