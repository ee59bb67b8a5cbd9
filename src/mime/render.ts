/**
 * A message in two steps: `freeze(message)` fixes what must not change between renders,
 * `render(frozen, policy)` turns it into header fields and a replayable body for one policy.
 *
 *   const frozen = await freeze(message);           // Message-ID, Date, randomness, content
 *   const r = await render(frozen, policies.eightBit);
 *   r.headers;                                      // [name, value][], every top-level field
 *   for await (const chunk of renderedChunks(r)) …  // header block, CRLF, body
 *
 * Freezing draws the Message-ID (unless the message sets one), calls the clock once for the
 * Date, takes a snapshot of the content (header values, addresses, the MIME tree with its
 * sources) and starts a tape of random draws: rendering takes its boundaries from the tape
 * by index, drawing (and recording) only when it needs more than any render before it. So
 * the same frozen message and the same policy give the same bytes every time, and another
 * policy (7-bit for a server without 8BITMIME) gives the other valid rendering of the very
 * same message: same Message-ID, same Date. DKIM signs a Rendered, an outbox stores one,
 * failover renders again for the next server's extensions.
 *
 * Replayable sources: strings, bytes, files (read again on each body()) and stream
 * factories. A Readable or async iterable given directly can be read once: a second
 * body() fails with InvalidArgumentError rather than going out without it.
 */
import { isAscii } from "node:buffer";
import { BadHeaderError, InvalidArgumentError, SmtpCapabilityError } from "../errors.js";
import type { Group, Mailbox } from "./address.js";
import { renderHeader, type HeaderKind, type RenderHeaderOptions } from "./headers.js";
import { prepareRoot, type MimePart } from "./part.js";
import type { Policy } from "./policy.js";

/** `[name, value]`: the wire form is `${name}:${value}\r\n`; value is what follows the colon, folds included. */
export type HeaderField = readonly [name: string, value: string];

export interface Rendered {
  readonly messageId: string;
  /** Every top-level field in wire order, MIME-Version and the root part's Content-* included. */
  readonly headers: readonly HeaderField[];
  /** The bytes after the blank line; every call yields the same bytes. */
  body(): AsyncIterable<Uint8Array>;
  /** Octets of header block + CRLF + body, when every source's size is known. */
  readonly size: number | undefined;
  /** The output holds 8-bit data (BODY=8BITMIME over SMTP). */
  readonly eightBit: boolean;
  /** The message needs SMTPUTF8: UTF-8 in its headers, or an envelope address that needs it. */
  readonly smtputf8: boolean;
  /** MAIL FROM and RCPT TO: domains in IDNA unless `smtputf8`. */
  readonly envelope: { readonly from: string; readonly to: readonly string[] };
}

/** One header of the message as frozen: rendered (encoded, folded) per policy. */
export type FieldSpec =
  | { readonly name: string; readonly kind: "address"; readonly entries: readonly (Mailbox | Group)[] }
  | { readonly name: string; readonly kind: Exclude<HeaderKind, "address">; readonly value: string };

/** What a message hands to `freeze` (EmailMessage implements it; nothing here imports it). */
export interface FreezeInput {
  /** The message itself: a message/rfc822 part refuses to hold it (cycles). */
  readonly owner: object;
  readonly charset: string;
  readonly random: (size: number) => Buffer;
  readonly clock: () => Date;
  /** A Message-ID the message sets itself; else one is drawn, `<random@messageIdDomain>`. */
  readonly messageId: string | undefined;
  readonly messageIdDomain: string;
  /** A Date the message sets itself; else the clock's, once. */
  readonly date: string | undefined;
  /** The fields above Date, in order (From, To, Cc, Reply-To, Subject). */
  readonly before: readonly FieldSpec[];
  /** The fields after Message-ID (extra headers), in order. */
  readonly after: readonly FieldSpec[];
  readonly tree: MimePart;
  readonly needsSmtpUtf8: boolean;
  envelope(smtputf8: boolean): { from: string; to: string[] };
}

/** Messages that can be frozen carry this method (a symbol: not part of their public surface). */
export const FREEZE: unique symbol = Symbol.for("missive.mime.freeze");

export interface Freezable {
  [FREEZE](): Promise<Frozen>;
}

/** A message with its Message-ID, Date, content and randomness fixed. Render it as often as needed. */
export interface Frozen {
  readonly messageId: string;
  /** The Date header as written. */
  readonly date: string;
  /** Render-time details; treat as opaque. */
  readonly [FROZEN]: FrozenState;
}

const FROZEN: unique symbol = Symbol("missive.mime.frozen");

type FrozenState =
  | { readonly input: FreezeInput; readonly tape: RandomTape; readonly stored?: undefined }
  | { readonly stored: StoredContent; readonly input?: undefined; readonly tape?: undefined };

/**
 * A message already rendered once and kept as bytes (an outbox spool, a Redis queue): the
 * header block in memory, the body read again from where it is kept on each `body()`.
 */
export interface StoredContent {
  readonly messageId: string;
  /** The Date header as written. */
  readonly date: string;
  /** The header block: every field as `name:value\r\n`, without the blank line after it. */
  readonly header: Buffer;
  /** The bytes after the blank line; each call reads them afresh. */
  body(): AsyncIterable<Uint8Array>;
  /** Octets of the body, when known. */
  readonly bodySize: number | undefined;
  /** The bytes hold 8-bit data: only a policy that allows 8bit may send them. */
  readonly eightBit: boolean;
  /** The bytes need SMTPUTF8 (UTF-8 headers, or an address with a non-ASCII local part). */
  readonly smtputf8: boolean;
  /** MAIL FROM and RCPT TO for a render with (or without) SMTPUTF8. */
  envelope(smtputf8: boolean): { from: string; to: string[] };
}

/**
 * Fixes a message for rendering. An EmailMessage freezes itself once and returns the same
 * Frozen until its content changes (so a message keeps its Message-ID and Date across
 * renders and resends); a changed message is frozen afresh.
 */
export function freeze(message: Freezable): Promise<Frozen> {
  if (typeof message !== "object" || message === null || typeof (message as Partial<Freezable>)[FREEZE] !== "function") {
    return Promise.reject(new InvalidArgumentError("freeze() takes an EmailMessage"));
  }
  return message[FREEZE]();
}

/** Builds a Frozen from a message's input: draws the Message-ID and reads the clock, once each. */
export function createFrozen(input: FreezeInput): Frozen {
  const messageId = input.messageId ?? `<${input.random(18).toString("base64url")}@${input.messageIdDomain}>`;
  const date = input.date ?? formatDate(input.clock());
  return Object.freeze({ messageId, date, [FROZEN]: Object.freeze({ input, tape: new RandomTape(input.random) }) });
}

/**
 * A Frozen whose every render is `content`'s bytes, unchanged: what an outbox hands to a
 * backend, so that stored mail goes through the same send path (signing, SIZE, the
 * envelope) as a message built in memory. Bytes rendered once cannot be rendered again for
 * another policy: a policy that may not carry them (8-bit data without `allow8bit`, UTF-8
 * headers without `utf8`) is refused with SmtpCapabilityError, which the delivery engine
 * reads as "try the next route". Store 7-bit bytes (the SMTPUTF8 form only when the message
 * needs it) and every server that can take the message at all takes them.
 */
export function frozenFromStored(content: StoredContent): Frozen {
  return Object.freeze({ messageId: content.messageId, date: content.date, [FROZEN]: Object.freeze({ stored: content }) });
}

/**
 * A Frozen for `input` (a copy of the message `frozen` was made from) with the same
 * Message-ID, Date and random draws: the copy renders to the same bytes as the original did.
 */
export function frozenLike(frozen: Frozen, input: FreezeInput): Frozen {
  const state = frozen[FROZEN];
  // Stored bytes render as themselves whatever the message object says: nothing to copy.
  if (state.stored !== undefined) return frozen;
  return Object.freeze({ messageId: frozen.messageId, date: frozen.date, [FROZEN]: Object.freeze({ input, tape: state.tape }) });
}

/** Renders a frozen message for `policy`. The same frozen message and policy give the same bytes. */
export function render(frozen: Frozen, policy: Policy): Promise<Rendered> {
  return renderWithin(frozen, policy, new Set());
}

interface RenderedState {
  /** How the header block is turned into bytes: UTF-8 under a UTF-8 policy, else Latin-1 (it is ASCII). */
  readonly encoding: "utf-8" | "latin1";
  /** Whether a header holds raw UTF-8 (RFC 6532). */
  readonly utf8Headers: boolean;
  /** The header block's bytes (the fields, without the blank line), made once. */
  readonly headerBytes: Buffer;
  /** `headerBytes` and the blank line's CRLF in one buffer, when made together. */
  readonly wire?: Buffer | undefined;
  /** The body, when it is one buffer in memory: streamed without the part serializer's generators. */
  readonly bodyBytes?: Buffer | undefined;
  /** Whether `text` (ASCII) occurs in the bytes held in memory: an enclosing message's boundary check. */
  occurs(text: string): boolean;
}

const renderedState = new WeakMap<Rendered, RenderedState>();

/** `render`, inside the messages in `within` (a message/rfc822 attachment refuses to hold any of them). */
export async function renderWithin(frozen: Frozen, policy: Policy, within: ReadonlySet<object>): Promise<Rendered> {
  const state = frozen[FROZEN];
  if (state === undefined) throw new InvalidArgumentError("render() takes what freeze() returned");
  if (state.stored !== undefined) return renderStored(state.stored, policy);
  const { input, tape } = state;
  // The renderer's options for each kind of field, made once per render rather than per field.
  const options = (kind: HeaderKind): RenderHeaderOptions => ({ utf8: policy.utf8, charset: input.charset, maxLineLength: policy.maxLineLength, kind });
  const byKind: Record<HeaderKind, RenderHeaderOptions> = { address: options("address"), unstructured: options("unstructured"), raw: options("raw") };
  const field = (spec: FieldSpec): string => (spec.kind === "address" ? renderHeader(spec.name, spec.entries, byKind.address) : renderHeader(spec.name, spec.value, byKind[spec.kind]));
  let top = "";
  for (const spec of input.before) top += field(spec);
  top += renderHeader("Date", frozen.date, byKind.raw);
  top += renderHeader("Message-ID", frozen.messageId, byKind.raw);
  for (const spec of input.after) top += field(spec);
  const encoding = policy.utf8 ? "utf-8" : "latin1";
  let draw = 0;
  const root = await prepareRoot(input.tree, {
    policy,
    charset: input.charset,
    within: new Set([...within, input.owner]),
    boundary: () => `=_${tape.at(draw++, 16).toString("hex")}`,
  });
  // The whole header block and the blank line after it, made into bytes at once: what goes
  // on the wire before the body, with `headerBytes` a view of it.
  const wire = Buffer.from(`${top}MIME-Version: 1.0\r\n${root.headerText}\r\n`, encoding);
  const headerBytes = wire.subarray(0, wire.length - CRLF.length);
  const utf8Headers = root.utf8Headers || !isAscii(headerBytes);
  const smtputf8 = policy.utf8 && (utf8Headers || input.needsSmtpUtf8);
  let envelope: { from: string; to: string[] } | undefined;
  let headers: readonly HeaderField[] | undefined;
  const rendered: Rendered = {
    messageId: frozen.messageId,
    // Split into fields when first asked (streaming the message needs only the bytes).
    get headers() {
      headers ??= Object.freeze(splitFields(headerBytes.toString(encoding)));
      return headers;
    },
    body: root.bodyBytes === undefined ? () => root.body() : () => once(root.bodyBytes!),
    size: root.bodySize === undefined ? undefined : wire.length + root.bodySize,
    eightBit: root.eightBit,
    smtputf8,
    // Computed when asked: a 7-bit rendering of a message whose Bcc needs SMTPUTF8 is still a valid rendering.
    get envelope() {
      envelope ??= input.envelope(smtputf8);
      return envelope;
    },
  };
  renderedState.set(rendered, { encoding, utf8Headers, headerBytes, wire, bodyBytes: root.bodyBytes, occurs: (text) => headerBytes.includes(text, 0, "latin1") || root.occurs(text) });
  return Object.freeze(rendered);
}

/** The Rendered of stored bytes: the same bytes for every policy that may carry them. */
function renderStored(content: StoredContent, policy: Policy): Rendered {
  if (content.smtputf8 && !policy.utf8) {
    throw new SmtpCapabilityError("SMTPUTF8", "The stored message needs SMTPUTF8 (UTF-8 headers or an address with a non-ASCII local part), which the server does not offer");
  }
  if (content.eightBit && !policy.allow8bit) throw new SmtpCapabilityError("8BITMIME", "The stored message holds 8-bit data, which needs 8BITMIME, which the server does not offer");
  const headerBytes = content.header;
  const utf8Headers = headerBytes.some((b) => b >= 0x80);
  const encoding = utf8Headers ? "utf-8" : "latin1";
  let headers: readonly HeaderField[] | undefined;
  let envelope: { from: string; to: string[] } | undefined;
  const rendered: Rendered = {
    messageId: content.messageId,
    get headers() {
      headers ??= Object.freeze(splitFields(headerBytes.toString(encoding)));
      return headers;
    },
    body: () => content.body(),
    size: content.bodySize === undefined ? undefined : headerBytes.length + 2 + content.bodySize,
    eightBit: content.eightBit,
    smtputf8: content.smtputf8,
    get envelope() {
      envelope ??= content.envelope(content.smtputf8);
      return envelope;
    },
  };
  renderedState.set(rendered, { encoding, utf8Headers, headerBytes, occurs: (text) => headerBytes.includes(text, 0, "latin1") });
  return Object.freeze(rendered);
}

/**
 * A copy of `rendered` with `fields` written above its headers (DKIM-Signature, Received),
 * in the order given. Each field is checked: a header name, and a value whose only line
 * breaks are folds (CRLF followed by a space or tab).
 */
export function withHeaders(rendered: Rendered, fields: readonly HeaderField[]): Rendered {
  const state = stateOf(rendered);
  for (const [name, value] of fields) assertField(name, value);
  const addedBytes = Buffer.from(fields.map(([name, value]) => `${name}:${value}\r\n`).join(""), state.encoding);
  const added = addedBytes.length;
  const utf8Headers = state.utf8Headers || fields.some(([n, v]) => /[^\x00-\x7f]/.test(n + v));
  const copy: Rendered = {
    messageId: rendered.messageId,
    headers: Object.freeze([...fields.map(([n, v]) => Object.freeze([n, v] as const)), ...rendered.headers]),
    body: () => rendered.body(),
    size: rendered.size === undefined ? undefined : rendered.size + added,
    eightBit: rendered.eightBit,
    smtputf8: rendered.smtputf8,
    get envelope() {
      return rendered.envelope;
    },
  };
  const wire = Buffer.concat([addedBytes, state.headerBytes, CRLF]);
  const headerBytes = wire.subarray(0, wire.length - CRLF.length);
  renderedState.set(copy, { encoding: state.encoding, utf8Headers, headerBytes, wire, bodyBytes: state.bodyBytes, occurs: (text) => addedBytes.includes(text, 0, "latin1") || state.occurs(text) });
  return Object.freeze(copy);
}

/** The header block's bytes (`name:value\r\n` each), without the blank line. */
export function renderedHeaderBytes(rendered: Rendered): Buffer {
  return stateOf(rendered).headerBytes;
}

/** The whole message as it goes on the wire: header block, CRLF, body. */
export async function* renderedChunks(rendered: Rendered): AsyncGenerator<Buffer> {
  const state = stateOf(rendered);
  yield state.wire ?? Buffer.concat([state.headerBytes, CRLF]);
  if (state.bodyBytes !== undefined) {
    yield state.bodyBytes;
    return;
  }
  for await (const chunk of rendered.body()) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * The whole message in one new Buffer when its body is already in memory and at most
 * `limit` octets (so memory stays bounded by about that), else undefined: a sender that
 * takes one buffer is spared the chunks' generators (the SMTP backend).
 */
export function renderedSmallBytes(rendered: Rendered, limit: number): Buffer | undefined {
  const state = stateOf(rendered);
  if (state.bodyBytes === undefined || state.bodyBytes.length > limit) return undefined;
  return Buffer.concat([state.wire ?? Buffer.concat([state.headerBytes, CRLF]), state.bodyBytes]);
}

/** The whole message in one Buffer (tests, small messages; streaming is `renderedChunks`). */
export async function renderedBytes(rendered: Rendered): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of renderedChunks(rendered)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Whether any header holds raw UTF-8 (RFC 6532), for callers that kept the old prepare() view. */
export function hasUtf8Headers(rendered: Rendered): boolean {
  return stateOf(rendered).utf8Headers;
}

const CRLF = Buffer.from("\r\n", "latin1");

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/** Whether `text` (ASCII) occurs in the bytes of `rendered` held in memory (for the boundaries of a message it is attached to). */
export function renderedOccurs(rendered: Rendered, text: string): boolean {
  return stateOf(rendered).occurs(text);
}

function stateOf(rendered: Rendered): RenderedState {
  const state = renderedState.get(rendered);
  if (state === undefined) throw new InvalidArgumentError("Expected a Rendered made by render() or withHeaders()");
  return state;
}

/** Splits a header block (fields of `name:value`, continuation lines starting with WSP) into fields. */
function splitFields(block: string): HeaderField[] {
  const fields: HeaderField[] = [];
  let start = 0;
  while (start < block.length) {
    let end = block.indexOf("\r\n", start);
    // A CRLF followed by a space or tab is a fold inside the field.
    while (end !== -1 && (block[end + 2] === " " || block[end + 2] === "\t")) end = block.indexOf("\r\n", end + 2);
    if (end === -1) end = block.length;
    const line = block.slice(start, end);
    const colon = line.indexOf(":");
    fields.push(Object.freeze([line.slice(0, colon), line.slice(colon + 1)] as const));
    start = end + 2;
  }
  return fields;
}

/** A field given to withHeaders: RFC 5322 §2.2 name, and no line break that is not a fold. */
function assertField(name: string, value: string): void {
  if (typeof name !== "string" || !/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
    throw new BadHeaderError(String(name), `Invalid header name ${JSON.stringify(name)}`);
  }
  if (typeof value !== "string" || /[\0]|\r(?!\n[ \t])|(?<!\r)\n/.test(value)) {
    throw new BadHeaderError(name, `The value of ${name} has a NUL or a line break that is not a fold (CRLF then a space or tab)`);
  }
}

/** Random draws recorded in order and replayed by index, so every render picks the same boundaries. */
class RandomTape {
  readonly #random: (size: number) => Buffer;
  readonly #draws: Buffer[] = [];

  constructor(random: (size: number) => Buffer) {
    this.#random = random;
  }

  at(index: number, size: number): Buffer {
    while (this.#draws.length <= index) this.#draws.push(Buffer.from(this.#random(size)));
    return this.#draws[index]!;
  }
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The last date formatted, by its whole second: a bulk send formats the same second many times. */
let lastDate: { readonly second: number; readonly text: string } | undefined;

/** RFC 5322 §3.3 date-time in UTC: `Sat, 21 Nov 2026 04:01:00 +0000`. */
export function formatDate(date: Date): string {
  const time = date.getTime();
  if (Number.isNaN(time)) throw new InvalidArgumentError("The clock returned an invalid Date");
  const second = Math.floor(time / 1000);
  if (lastDate !== undefined && lastDate.second === second) return lastDate.text;
  const pad = (n: number) => String(n).padStart(2, "0");
  const text = `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
  lastDate = { second, text };
  return text;
}
