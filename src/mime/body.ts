/**
 * What a leaf part's body becomes on the wire: its transfer encoding, its charset, and
 * either the encoded bytes (small in-memory text) or a source to encode while streaming.
 *
 * Every decision is made here, before the first byte is written, and every choice is
 * checked: a forced `transferEncoding` is refused where the bytes would not survive it
 * (a 7bit label on 8-bit data, lines over 998 octets, bare line breaks), because that is
 * exactly what a lenient reader would later misrender.
 */
import { isAscii } from "node:buffer";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { EncodingError, InvalidArgumentError } from "../errors.js";
import { Base64Encoder, base64EncodedLength } from "./encoding/base64.js";
import { assertWellFormed, encodeText } from "./encoding/charset.js";
import { QuotedPrintableEncoder } from "./encoding/quoted-printable.js";
import { isFileContent, type FileContent } from "./file-content.js";
import type { Policy } from "./policy.js";
import {
  canonicalLineBreaks,
  canonicalTextFitsLines,
  chooseMessageEncoding,
  chooseTextEncoding,
  LineBreakCanonicaliser,
  MAX_LINE_OCTETS,
  scanBytes,
  sendableAsLines,
  TextScan,
  type TransferEncoding,
} from "./transfer-encoding.js";

export const CHUNK_SIZE = 64 * 1024;

/** Anything that serialises to a byte stream after a prepare pass. */
export interface PreparedOutput {
  /** The output contains 8-bit data (needs BODY=8BITMIME over SMTP). */
  readonly eightBit: boolean;
  /** Some header holds raw UTF-8 (RFC 6532; needs SMTPUTF8 over SMTP). */
  readonly utf8Headers: boolean;
  /** Exact size in octets when every source's size is known in advance. */
  readonly size: number | undefined;
  chunks(): AsyncGenerator<Buffer>;
  /** Whether `text` (ASCII) occurs in the output's bytes held in memory; for boundary checks. */
  occurs?(text: string): boolean;
}

/** A message that can be attached as `message/rfc822` (an EmailMessage, without importing it). */
export interface NestedMessage {
  /** `within` holds the messages this one is being attached inside, to refuse cycles. */
  prepare(policy: Policy, within?: ReadonlySet<object>): Promise<PreparedOutput>;
}

/**
 * What a leaf part holds. Strings are text; byte arrays are kept exactly; `fileContent(path)`
 * is a file read lazily; a Readable or async iterable is consumed once, as the message streams;
 * a function returning one is called each time the message is streamed.
 */
export type BodySource =
  | string
  | Uint8Array
  | FileContent
  | Readable
  | AsyncIterable<Uint8Array>
  | (() => Readable | AsyncIterable<Uint8Array>)
  | { readonly message: NestedMessage | Uint8Array | string | FileContent };

/** The leaf as `planBody` sees it (a MimePart, without importing it). */
export interface LeafSpec {
  readonly contentType: string;
  readonly charset: string | undefined;
  readonly body: BodySource | undefined;
  readonly transferEncoding: TransferEncoding | undefined;
}

export interface BodyContext {
  readonly policy: Policy;
  /** Default charset for text given as strings. */
  readonly charset: string;
  /** Messages the part is nested in (cycle check for message/rfc822). */
  readonly within: ReadonlySet<object>;
}

export interface BodyPlan {
  /** The Content-Type to write: `application/octet-stream` for text/* bytes that are not UTF-8. */
  readonly contentType: string;
  readonly charset: string | undefined;
  readonly encoding: TransferEncoding;
  /** Already-encoded bytes, or a source of raw bytes to encode while streaming, or a message. */
  readonly encoded?: Buffer;
  readonly source?: () => AsyncIterable<Uint8Array>;
  /** Canonicalise the source's line breaks while streaming (message/rfc822 files). */
  readonly canonicalise?: boolean;
  readonly nested?: PreparedOutput;
  /** Encoded body size in octets, when known in advance. */
  readonly size: number | undefined;
  readonly eightBit: boolean;
  readonly utf8Headers: boolean;
}

export async function planBody(leaf: LeafSpec, context: BodyContext): Promise<BodyPlan> {
  const body = leaf.body ?? "";
  if (leaf.contentType === "message/rfc822") return planMessage(leaf, body, context);
  if (isNestedMessage(body)) throw new InvalidArgumentError(`Only a message/rfc822 part can hold a message, not ${leaf.contentType}`);
  if (leaf.transferEncoding === "binary") {
    throw new InvalidArgumentError("The binary transfer encoding cannot go over SMTP without BINARYMIME; leave transferEncoding unset or use base64");
  }
  if (typeof body === "string") return planString(leaf, body, context);
  if (body instanceof Uint8Array) return planBytes(leaf, Buffer.from(body.buffer, body.byteOffset, body.byteLength), context);
  if (isFileSource(body)) return planFile(leaf, body.path, context);
  return planStream(leaf, body);
}

function planString(leaf: LeafSpec, text: string, context: BodyContext): BodyPlan {
  const charset = leaf.charset ?? context.charset;
  const isText = leaf.contentType.startsWith("text/");
  // Text is canonical CRLF and ends with a line break (as Python's set_content does).
  const content = isText ? ensureFinalLineBreak(canonicalLineBreaks(text)) : text;
  const bytes = encodeText(content, charset);
  if (isText && charset === "utf-8" && leaf.transferEncoding === undefined) {
    // The usual case, decided without scanning the bytes: UTF-8 text whose lines are short
    // enough whatever their characters go as they are, 7bit if ASCII, else 8bit if allowed.
    const ascii = isAscii(bytes);
    if ((ascii || context.policy.allow8bit) && canonicalTextFitsLines(content, ascii ? 1 : 3)) {
      const encoding = ascii ? "7bit" : "8bit";
      return { contentType: leaf.contentType, charset, encoding, encoded: bytes, size: bytes.length, eightBit: !ascii, utf8Headers: false };
    }
  }
  const scan = scanBytes(bytes);
  const encoding = leaf.transferEncoding ?? (isText ? chooseTextEncoding(scan, context.policy.allow8bit, bytes) : "base64");
  const labelled = isText || charset !== "utf-8" || scan.hasHighBytes ? charset : undefined;
  return inMemory(leaf.contentType, labelled, bytes, scan, encoding, context.policy);
}

function planBytes(leaf: LeafSpec, bytes: Buffer, context: BodyContext): BodyPlan {
  if (!leaf.contentType.startsWith("text/")) return inMemory(leaf.contentType, leaf.charset, bytes, undefined, leaf.transferEncoding ?? "base64", context.policy);
  const scan = scanBytes(bytes);
  if (leaf.transferEncoding === undefined && !scan.utf8 && (leaf.charset === undefined || leaf.charset === "utf-8")) {
    // text/* bytes that are not UTF-8 cannot be labelled honestly: send them unchanged.
    return inMemory("application/octet-stream", undefined, bytes, scan, "base64", context.policy);
  }
  const charset = leaf.charset ?? (scan.hasHighBytes ? "utf-8" : "us-ascii");
  return inMemory(leaf.contentType, charset, bytes, scan, leaf.transferEncoding ?? chooseTextEncoding(scan, context.policy.allow8bit, bytes), context.policy);
}

async function planFile(leaf: LeafSpec, path: string, context: BodyContext): Promise<BodyPlan> {
  const size = await fileSize(path);
  const source = () => createReadStream(path, { highWaterMark: CHUNK_SIZE });
  const forced = leaf.transferEncoding;
  const isText = leaf.contentType.startsWith("text/");
  let contentType = leaf.contentType;
  let charset = leaf.charset;
  let encoding: TransferEncoding = forced ?? "base64";
  if (isText || forced === "7bit" || forced === "8bit") {
    // One streaming pass to learn what the file holds; memory stays at one chunk.
    const scan = await scanFile(path);
    if (forced !== undefined) {
      assertFits(scan, forced, context.policy, leaf.contentType);
    } else if (!scan.utf8 && (charset === undefined || charset === "utf-8")) {
      contentType = "application/octet-stream";
      charset = undefined;
    } else {
      charset ??= scan.hasHighBytes ? "utf-8" : "us-ascii";
      // Files go as they are or as base64, so that the size is known before sending (SIZE).
      if (sendableAsLines(scan) && (!scan.hasHighBytes || context.policy.allow8bit)) encoding = scan.hasHighBytes ? "8bit" : "7bit";
    }
  }
  const encodedSize = encoding === "base64" ? base64EncodedLength(size) : encoding === "quoted-printable" ? undefined : size;
  return { contentType, charset, encoding, source, size: encodedSize, eightBit: encoding === "8bit", utf8Headers: false };
}

function planStream(leaf: LeafSpec, body: BodySource): BodyPlan {
  const encoding = leaf.transferEncoding ?? "base64";
  if (encoding !== "base64" && encoding !== "quoted-printable") {
    throw new InvalidArgumentError(`A ${leaf.contentType} stream cannot be checked in advance for ${encoding}; use base64 or quoted-printable, or give the content as bytes or a file`);
  }
  return { contentType: leaf.contentType, charset: leaf.charset, encoding, source: streamSource(body), size: undefined, eightBit: false, utf8Headers: false };
}

async function planMessage(leaf: LeafSpec, body: BodySource, context: BodyContext): Promise<BodyPlan> {
  const forced = leaf.transferEncoding;
  if (forced !== undefined && forced !== "7bit" && forced !== "8bit") {
    throw new InvalidArgumentError(`message/rfc822 is sent as 7bit or 8bit, never ${forced} (RFC 2046 §5.2.1)`);
  }
  const inner = isNestedMessage(body) ? body.message : body;
  const base = { contentType: leaf.contentType, charset: undefined };
  if (typeof inner === "object" && inner !== null && !(inner instanceof Uint8Array) && "prepare" in inner) {
    if (context.within.has(inner)) throw new InvalidArgumentError("A message cannot be attached inside itself");
    const nested = await inner.prepare(context.policy, context.within);
    const eightBit = nested.eightBit || nested.utf8Headers;
    return { ...base, encoding: eightBit ? "8bit" : "7bit", nested, size: nested.size, eightBit, utf8Headers: nested.utf8Headers };
  }
  if (typeof inner === "string" || inner instanceof Uint8Array) {
    let bytes: Buffer;
    if (typeof inner === "string") {
      assertWellFormed(inner, "The message/rfc822 attachment");
      bytes = Buffer.from(canonicalLineBreaks(inner), "utf-8");
    } else {
      bytes = new LineBreakCanonicaliser().encode(inner);
    }
    const encoding = messageEncoding(scanBytes(bytes));
    return { ...base, encoding, encoded: bytes, size: bytes.length, eightBit: encoding === "8bit", utf8Headers: false };
  }
  if (isFileSource(inner)) {
    const path = inner.path;
    await fileSize(path);
    const scan = await scanFile(path);
    const encoding = messageEncoding(scan);
    const source = () => createReadStream(path, { highWaterMark: CHUNK_SIZE });
    return { ...base, encoding, source, canonicalise: true, size: scan.length + scan.bareLineBreaks, eightBit: encoding === "8bit", utf8Headers: false };
  }
  throw new InvalidArgumentError("A message/rfc822 attachment takes an EmailMessage, a serialized message (string or bytes) or a file; not a stream");
}

function messageEncoding(scan: TextScan): "7bit" | "8bit" {
  const encoding = chooseMessageEncoding(scan);
  if (encoding === undefined) {
    throw new InvalidArgumentError(`A message/rfc822 attachment has a line longer than ${MAX_LINE_OCTETS} octets or a NUL byte; attach it as application/octet-stream instead`);
  }
  return encoding;
}

/** In-memory bytes: checks a forced encoding, and encodes small text now. */
function inMemory(contentType: string, charset: string | undefined, bytes: Buffer, scan: TextScan | undefined, encoding: TransferEncoding, policy: Policy): BodyPlan {
  const base = { contentType, charset, encoding, eightBit: encoding === "8bit", utf8Headers: false };
  switch (encoding) {
    case "base64":
      return { ...base, source: () => inChunks(bytes), size: base64EncodedLength(bytes.length) };
    case "quoted-printable": {
      const encoder = new QuotedPrintableEncoder();
      const encoded = Buffer.concat([encoder.encode(bytes), encoder.flush()]);
      return { ...base, encoded, size: encoded.length };
    }
    default:
      assertFits(scan ?? scanBytes(bytes), encoding, policy, contentType);
      return { ...base, encoded: bytes, size: bytes.length };
  }
}

/** A 7bit or 8bit label must be true of the bytes, and 8bit must be allowed. */
function assertFits(scan: TextScan, encoding: TransferEncoding, policy: Policy, contentType: string): void {
  if (encoding !== "7bit" && encoding !== "8bit") return;
  const problem = !sendableAsLines(scan)
    ? `it has ${scan.nul ? "a NUL byte" : scan.bareLineBreak ? "a bare CR or LF" : `a line over ${MAX_LINE_OCTETS} octets`}`
    : encoding === "7bit" && scan.hasHighBytes
      ? "it has 8-bit bytes"
      : encoding === "8bit" && !policy.allow8bit
        ? "this policy does not allow 8bit (the default output is 7-bit)"
        : undefined;
  if (problem) throw new InvalidArgumentError(`The ${contentType} part cannot be sent as ${encoding}: ${problem}; leave transferEncoding unset to let missive choose`);
}

async function fileSize(path: string): Promise<number> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new InvalidArgumentError(`Cannot attach ${path}: ${error.code === "ENOENT" ? "no such file" : error.message}`);
  });
  if (!info.isFile()) throw new InvalidArgumentError(`Cannot attach ${path}: not a regular file`);
  return info.size;
}

async function scanFile(path: string): Promise<TextScan> {
  const scan = new TextScan();
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_SIZE })) scan.push(chunk as Buffer);
  return scan.finish();
}

function ensureFinalLineBreak(text: string): string {
  return text === "" || text.endsWith("\r\n") ? text : `${text}\r\n`;
}

function isNestedMessage(body: BodySource): body is { readonly message: NestedMessage | Uint8Array | string } {
  return typeof body === "object" && body !== null && !(body instanceof Uint8Array) && "message" in body && !isReadableLike(body);
}

function isFileSource(body: unknown): body is FileContent {
  return isFileContent(body);
}

/**
 * Refuses, when a part is made (before anything is sent), a body that is none of the
 * sources above. A plain `{ path }` object in particular is refused: only `fileContent()`
 * reads a file (see file-content.ts).
 */
export function assertBodySource(body: unknown, what: string): asserts body is BodySource {
  if (typeof body === "string" || body instanceof Uint8Array || typeof body === "function" || isFileContent(body)) return;
  if (typeof body === "object" && body !== null) {
    if (isReadableLike(body)) return;
    if ("message" in body) {
      const inner = (body as { message: unknown }).message;
      if (typeof inner === "string" || inner instanceof Uint8Array || isFileContent(inner)) return;
      if (typeof inner === "object" && inner !== null && typeof (inner as { prepare?: unknown }).prepare === "function") return;
      throw new InvalidArgumentError(`${what}: a nested message is an EmailMessage, a serialized message (string or bytes) or fileContent(path)`);
    }
    if ("path" in body) {
      throw new InvalidArgumentError(
        `${what}: a plain { path } object is not a file source, because it could come from untrusted data; use attachFile(path) or fileContent(path)`,
      );
    }
  }
  throw new InvalidArgumentError(`${what} must be a string, bytes (Uint8Array), fileContent(path), a Readable or async iterable, or a function returning one; got ${describe(body)}`);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") {
    const keys = Object.keys(value).slice(0, 5);
    return keys.length > 0 ? `an object with ${keys.map((k) => JSON.stringify(k)).join(", ")}` : "an empty object";
  }
  return typeof value;
}

function isReadableLike(value: object): boolean {
  return value instanceof Readable || Symbol.asyncIterator in value;
}

/** Streams (not factories) already handed to a serializer: they cannot be read twice. */
const consumedStreams = new WeakSet<object>();

function streamSource(body: BodySource): () => AsyncIterable<Uint8Array> {
  if (typeof body === "function") return body;
  const stream = body as AsyncIterable<Uint8Array>;
  const used = () => consumedStreams.has(stream) || (stream instanceof Readable && (stream.readableDidRead || stream.destroyed));
  const error = () => new InvalidArgumentError("An attachment given as a stream can be sent only once; pass a function that returns a new stream to send it again");
  // Checked while preparing, so that a second send fails before any byte is written, and
  // again when streaming, for two messages prepared before either was sent.
  if (used()) throw error();
  return () => {
    if (used()) throw error();
    consumedStreams.add(stream);
    return stream;
  };
}

/** In-memory bytes as chunk-sized views (no copy), so the encoder works within the cache. */
async function* inChunks(bytes: Buffer): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += CHUNK_SIZE) yield bytes.subarray(offset, offset + CHUNK_SIZE);
}

/** The body bytes of a planned leaf, encoded as they stream. */
export async function* bodyChunks(plan: BodyPlan): AsyncGenerator<Buffer> {
  if (plan.encoded) {
    yield plan.encoded;
    return;
  }
  if (plan.nested) {
    yield* plan.nested.chunks();
    return;
  }
  if (!plan.source) return;
  const encoder =
    plan.encoding === "base64" ? new Base64Encoder() : plan.encoding === "quoted-printable" ? new QuotedPrintableEncoder() : plan.canonicalise ? new LineBreakCanonicaliser() : undefined;
  for await (const chunk of plan.source()) {
    if (typeof chunk === "string") throw new EncodingError("An attachment stream produced text; give attachment streams as bytes");
    const out = encoder ? encoder.encode(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (out.length > 0) yield out;
  }
  const rest = encoder?.flush();
  if (rest && rest.length > 0) yield rest;
}
