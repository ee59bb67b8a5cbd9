/**
 * The MIME part tree and its streaming serializer.
 *
 * Serialising happens in two passes, prepare then stream: `preparePart`
 * decides every header — transfer encoding, boundary, charset (body.ts plans each leaf) —
 * and may read files to learn what they hold; `emit` then only writes, pulling file and
 * stream sources chunk by chunk as the consumer reads, so memory is bounded by the chunk size.
 */
import { isAscii } from "node:buffer";
import { Readable } from "node:stream";
import { BadHeaderError, InvalidArgumentError } from "../errors.js";
import { formatParameter } from "./encoding/rfc2231.js";
import { chooseBoundary } from "./boundary.js";
import { mergeParameters, parseMimeType, partCharset } from "./content-type.js";
import { assertDistinctHeaderNames, assertHeaderName, assertHeaderValue, renderHeader } from "./headers.js";
import type { Policy } from "./policy.js";
import { assertBodySource, bodyChunks, CHUNK_SIZE, planBody, type BodyContext, type BodyPlan, type BodySource, type PreparedOutput } from "./body.js";
import type { TransferEncoding } from "./transfer-encoding.js";

export type { BodySource, NestedMessage, PreparedOutput } from "./body.js";

const CRLF = "\r\n";

export interface MimePartOptions {
  /** `type/subtype`, e.g. "text/plain", "image/png", optionally with parameters ("text/calendar; method=REQUEST"). */
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

/** Headers a part renders from its options; giving them again would duplicate them. */
const PART_OWNED_HEADERS = new Set(["content-type", "content-transfer-encoding", "content-disposition", "content-id", "mime-version"]);

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
    const parsed = parseMimeType(options.contentType);
    this.contentType = parsed.type;
    const isMultipart = this.contentType.startsWith("multipart/");
    if (isMultipart && options.body !== undefined) throw new InvalidArgumentError(`A ${this.contentType} part has children, not a body`);
    if (!isMultipart && options.children?.length) throw new InvalidArgumentError(`Only multipart parts have children (got ${this.contentType})`);
    if (options.body !== undefined) assertBodySource(options.body, `The body of a ${this.contentType} part`);
    const params = mergeParameters(parsed.params, options.params, this.contentType);
    for (const [name, value] of Object.entries(params)) {
      if (!TOKEN.test(name)) throw new BadHeaderError("Content-Type", `Invalid Content-Type parameter name ${JSON.stringify(name)}`);
      assertHeaderValue(`Content-Type parameter ${name}`, value);
    }
    if (options.filename !== undefined) assertHeaderValue("attachment filename", options.filename);
    if (options.disposition !== undefined && options.disposition !== "inline" && options.disposition !== "attachment") {
      throw new BadHeaderError("Content-Disposition", `disposition must be "inline" or "attachment", not ${JSON.stringify(options.disposition)}`);
    }
    if (options.contentId !== undefined) assertContentId(options.contentId);
    this.params = Object.freeze(params);
    this.charset = partCharset(parsed.charset, options.charset);
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
      if (PART_OWNED_HEADERS.has(name.toLowerCase())) {
        throw new BadHeaderError(name, `${name} is written from the part's own options (contentType, transferEncoding, disposition, filename, contentId); do not give it as a header`);
      }
    }
    assertDistinctHeaderNames(headers.map(([name]) => name), "The part's headers");
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

/** A leaf with its header lines decided (as text) and its body planned. */
interface LeafContent {
  readonly kind: "leaf";
  /** The part's header lines, `name: value\r\n` each, without the blank line after them. */
  readonly headerText: string;
  readonly plan: BodyPlan;
  /** Octets after the blank line, when known. */
  readonly bodySize: number | undefined;
  readonly eightBit: boolean;
  /** Whether something below the part's own header lines holds raw UTF-8 headers. */
  readonly contentUtf8Headers: boolean;
}

interface MultipartContent {
  readonly kind: "multipart";
  readonly headerText: string;
  readonly boundary: string;
  readonly children: readonly PreparedNode[];
  readonly bodySize: number | undefined;
  readonly eightBit: boolean;
  readonly contentUtf8Headers: boolean;
}

type NodeContent = LeafContent | MultipartContent;

/** A part ready to stream: its header block in bytes (the blank line included) above its content. */
type PreparedNode = NodeContent & {
  readonly header: Buffer;
  readonly size: number | undefined;
  readonly utf8Headers: boolean;
};

export interface PrepareContext extends BodyContext {
  /** A fresh, unpredictable boundary each call. */
  readonly boundary: () => string;
}

/** Prepares `part` with `topHeaders` rendered above its content headers (for the message root). */
export async function preparePart(part: MimePart, context: PrepareContext, topHeaders: Buffer = Buffer.alloc(0)): Promise<PreparedOutput> {
  const node = await prepareNode(part, context, topHeaders);
  return {
    eightBit: node.eightBit,
    utf8Headers: node.utf8Headers,
    size: node.size,
    chunks: () => emit(node),
    occurs: (text) => occursIn(node, text),
  };
}

/** A message's root part prepared apart from the message headers above it (render.ts). */
export interface PreparedRoot {
  /**
   * The root's own header lines (Content-Type, Content-Transfer-Encoding, …) as text, without
   * the blank line: the message writes them into its header block with its own fields.
   */
  readonly headerText: string;
  /** The bytes after the blank line; each call streams them again from the same plan. */
  body(): AsyncGenerator<Buffer>;
  /** Octets of `body()`, when every source's size is known. */
  readonly bodySize: number | undefined;
  /** The whole body, when it is one buffer already in memory (a leaf of encoded text): what `body()` yields. */
  readonly bodyBytes: Buffer | undefined;
  readonly eightBit: boolean;
  /** Whether a part below the root's own header lines holds raw UTF-8 headers (the root's lines are the caller's to check). */
  readonly utf8Headers: boolean;
  /** Whether `text` (ASCII) occurs in the bytes below the root's header lines held in memory (boundary checks of an enclosing message). */
  occurs(text: string): boolean;
}

/** Prepares a message's root part, its header lines kept as text (the message turns its whole header block into bytes at once). */
export async function prepareRoot(part: MimePart, context: PrepareContext): Promise<PreparedRoot> {
  const content = await prepareContent(part, context);
  return {
    headerText: content.headerText,
    body: () => emitContent(content),
    bodySize: content.bodySize,
    bodyBytes: content.kind === "leaf" ? content.plan.encoded : undefined,
    eightBit: content.eightBit,
    utf8Headers: content.contentUtf8Headers,
    occurs: (text) => occursInContent(content, text),
  };
}

async function prepareNode(part: MimePart, context: PrepareContext, topHeaders: Buffer): Promise<PreparedNode> {
  const content = await prepareContent(part, context);
  const own = headerBlockBytes(content.headerText + CRLF, context.policy);
  const header = topHeaders.length === 0 ? own : Buffer.concat([topHeaders, own]);
  return {
    ...content,
    header,
    size: content.bodySize === undefined ? undefined : header.length + content.bodySize,
    utf8Headers: hasHighBytes(header) || content.contentUtf8Headers,
  };
}

async function prepareContent(part: MimePart, context: PrepareContext): Promise<NodeContent> {
  return part.isMultipart ? prepareMultipart(part, context) : prepareLeaf(part, context);
}

async function prepareMultipart(part: MimePart, context: PrepareContext): Promise<MultipartContent> {
  // One child at a time: preparing may open files, and a message may have many.
  const children: PreparedNode[] = [];
  for (const child of part.children) children.push(await prepareNode(child, context, Buffer.alloc(0)));
  const boundary = chooseBoundary(context.boundary, (delimiter) => children.some((child) => occursIn(child, delimiter)));
  // RFC 2045 §6.4: a multipart's own encoding is 7bit (the default, left unsaid) or, when a
  // part inside holds 8-bit data, 8bit.
  const eightBit = children.some((c) => c.eightBit);
  const resolved = { boundary, rootType: relatedRootType(part, children) };
  const headerText = contentHeaders(part, context, resolved, eightBit ? "8bit" : undefined);
  let bodySize: number | undefined = 0;
  for (const child of children) {
    const delimiter = `--${boundary}\r\n`.length;
    bodySize = bodySize === undefined || child.size === undefined ? undefined : bodySize + delimiter + child.size + 2;
  }
  if (bodySize !== undefined) bodySize += `--${boundary}--\r\n`.length;
  return {
    kind: "multipart",
    headerText,
    boundary,
    children,
    bodySize,
    eightBit,
    contentUtf8Headers: children.some((c) => c.utf8Headers),
  };
}

/**
 * RFC 2387 §3.1: multipart/related must name the type of its root (first) part in `type`,
 * the type as written (text/* bytes that are not UTF-8 go out as application/octet-stream).
 */
function relatedRootType(part: MimePart, children: readonly PreparedNode[]): string | undefined {
  const root = children[0];
  if (part.contentType !== "multipart/related" || root === undefined) return undefined;
  const type = root.kind === "leaf" ? root.plan.contentType : part.children[0]!.contentType;
  const given = Object.entries(part.params).find(([name]) => name.toLowerCase() === "type")?.[1];
  if (given !== undefined && given.toLowerCase() !== type) {
    throw new InvalidArgumentError(`multipart/related has type=${JSON.stringify(given)} but its root (first) part is ${type}; RFC 2387 §3.1 wants the root's type (leave the parameter out to have it written)`);
  }
  return type;
}

/** Whether `text` occurs in the bytes of `node` held in memory, its descendants' included. */
function occursIn(node: PreparedNode, text: string): boolean {
  return node.header.includes(text, 0, "latin1") || occursInContent(node, text);
}

/** `occursIn` below the node's own header lines. */
function occursInContent(node: NodeContent, text: string): boolean {
  if (node.kind === "multipart") return `--${node.boundary}`.includes(text) || node.children.some((child) => occursIn(child, text));
  return (node.plan.encoded?.includes(text, 0, "latin1") ?? false) || (node.plan.nested?.occurs?.(text) ?? false);
}

async function prepareLeaf(part: MimePart, context: PrepareContext): Promise<LeafContent> {
  const plan = await planBody(part, context);
  return {
    kind: "leaf",
    headerText: contentHeaders(part, context, plan, plan.encoding),
    plan,
    bodySize: plan.size,
    eightBit: plan.eightBit,
    contentUtf8Headers: plan.utf8Headers,
  };
}

function hasHighBytes(bytes: Buffer): boolean {
  return !isAscii(bytes);
}

function contentHeaders(
  part: MimePart,
  context: PrepareContext,
  resolved: { contentType?: string; charset?: string | undefined; boundary?: string; rootType?: string | undefined },
  encoding: TransferEncoding | undefined,
): string {
  const { policy } = context;
  // A leaf with nothing but a type, a charset and an encoding (most text bodies) renders the
  // same lines as every other such leaf: kept, keyed by everything they are made from.
  const plain = !resolved.boundary && !resolved.rootType && part.disposition === undefined && part.filename === undefined && part.contentId === undefined && part.headers.length === 0 && isEmpty(part.params);
  const key = plain ? `${resolved.contentType ?? part.contentType}\0${resolved.charset ?? ""}\0${encoding ?? ""}\0${policy.utf8}\0${policy.maxLineLength}\0${context.charset}` : undefined;
  const known = key === undefined ? undefined : PLAIN_CONTENT_HEADERS.get(key);
  if (known !== undefined) return known;
  const out = renderContentHeaders(part, context, resolved, encoding);
  if (key !== undefined) {
    if (PLAIN_CONTENT_HEADERS.size >= 64) PLAIN_CONTENT_HEADERS.clear();
    PLAIN_CONTENT_HEADERS.set(key, out);
  }
  return out;
}

/** The content header lines of plain leaves (see contentHeaders), by what they are made from. */
const PLAIN_CONTENT_HEADERS = new Map<string, string>();

function isEmpty(record: Readonly<Record<string, string>>): boolean {
  for (const _ in record) return false;
  return true;
}

function renderContentHeaders(
  part: MimePart,
  context: PrepareContext,
  resolved: { contentType?: string; charset?: string | undefined; boundary?: string; rootType?: string | undefined },
  encoding: TransferEncoding | undefined,
): string {
  const { policy } = context;
  const opts = { utf8: policy.utf8, charset: context.charset, maxLineLength: policy.maxLineLength };
  const params: string[] = [];
  if (resolved.boundary) params.push(...formatParameter("boundary", resolved.boundary, { charset: "utf-8" }));
  if (resolved.rootType) params.push(...formatParameter("type", resolved.rootType, { charset: "utf-8" }));
  if (resolved.charset) params.push(...formatParameter("charset", resolved.charset, { charset: "utf-8" }));
  for (const [name, value] of Object.entries(part.params)) {
    if (name.toLowerCase() === "charset" || name.toLowerCase() === "boundary" || (resolved.rootType && name.toLowerCase() === "type")) continue;
    params.push(...formatParameter(name, value, { charset: "utf-8" }));
  }
  let out = renderHeader("Content-Type", [resolved.contentType ?? part.contentType, ...params].join("; "), { ...opts, kind: "raw" });
  if (encoding) out += renderHeader("Content-Transfer-Encoding", encoding, { ...opts, kind: "raw" });
  if (part.disposition || part.filename !== undefined) {
    const disposition = part.disposition ?? "attachment";
    const dparams = part.filename === undefined ? [] : formatParameter("filename", part.filename, { charset: "utf-8" });
    out += renderHeader("Content-Disposition", [disposition, ...dparams].join("; "), { ...opts, kind: "raw" });
  }
  if (part.contentId !== undefined) out += renderHeader("Content-ID", `<${part.contentId}>`, { ...opts, kind: "raw" });
  for (const [name, value] of part.headers) out += renderHeader(name, value, opts);
  return out;
}

function headerBlockBytes(text: string, policy: Policy): Buffer {
  return Buffer.from(text, policy.utf8 ? "utf-8" : "latin1");
}

async function* emit(node: PreparedNode): AsyncGenerator<Buffer> {
  yield node.header;
  yield* emitContent(node);
}

/** A node's bytes after its header block. */
async function* emitContent(node: NodeContent): AsyncGenerator<Buffer> {
  if (node.kind === "multipart") {
    for (const child of node.children) {
      yield Buffer.from(`--${node.boundary}\r\n`, "latin1");
      yield* emit(child);
      yield Buffer.from(CRLF, "latin1");
    }
    yield Buffer.from(`--${node.boundary}--\r\n`, "latin1");
    return;
  }
  yield* bodyChunks(node.plan);
}

/** A Readable over prepared output, pulling sources only as the consumer reads. */
export function toReadable(output: PreparedOutput): Readable {
  return Readable.from(output.chunks(), { objectMode: false, highWaterMark: CHUNK_SIZE });
}
