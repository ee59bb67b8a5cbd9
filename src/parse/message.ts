/**
 * `parseMessage`: bytes, a string or a stream in, a `ParsedMessage` out — never an
 * exception for what the bytes hold (that is what `defects` are for). The tree comes from
 * `MimeParser`; this module reads the message-level fields and sorts the leaves into the
 * bodies a mail client shows and the attachments it lists.
 */
import type { Readable } from "node:stream";
import { InvalidArgumentError } from "../errors.js";
import { messageIdOf, parseAddresses, parseDate } from "./fields.js";
import { MimeParser, isBodyPart, type BuildingNode } from "./parser.js";
import type { Defect, DefectCode, MimeNode, ParseOptions, ParsedAttachment, ParsedMessage } from "./types.js";

export type ParseInput = Uint8Array | string | Readable | AsyncIterable<Uint8Array | string>;

/**
 * A push parser for callers that hold the bytes themselves: `write()` chunks of any size,
 * then `end()` gives the message.
 */
export class MessageParser {
  readonly #parser: MimeParser;
  #result: ParsedMessage | undefined;

  constructor(options: ParseOptions = {}) {
    validateOptions(options);
    this.#parser = new MimeParser(options);
  }

  write(chunk: Uint8Array | string): void {
    if (this.#result !== undefined) throw new InvalidArgumentError("MessageParser: write() after end()");
    this.#parser.write(typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk);
  }

  end(): ParsedMessage {
    if (this.#result === undefined) {
      this.#parser.end();
      this.#result = assemble(this.#parser.root, this.#parser.defects, this.#parser.size);
    }
    return this.#result;
  }
}

function validateOptions(options: ParseOptions): void {
  for (const key of ["maxDepth", "maxParts", "maxHeaders", "maxHeaderBytes"] as const) {
    const value = options[key];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
      throw new InvalidArgumentError(`parseMessage: ${key} must be a positive integer, got ${String(value)}`);
    }
  }
  const content = options.content;
  if (content !== undefined && typeof content !== "function" && !["all", "bodies", "none"].includes(content)) {
    throw new InvalidArgumentError(`parseMessage: content must be "all", "bodies", "none" or a function, got ${JSON.stringify(content)}`);
  }
}

/**
 * Parses a message. A string is taken as UTF-8. A stream is read chunk by chunk, so with
 * `content: "bodies"` (or "none") an attachment of any size costs its chunk, not its size.
 * Malformed input yields `defects`; only a bad option or a failing stream rejects.
 */
export async function parseMessage(input: ParseInput, options: ParseOptions = {}): Promise<ParsedMessage> {
  const parser = new MessageParser(options);
  if (typeof input === "string" || input instanceof Uint8Array) {
    parser.write(input);
    return parser.end();
  }
  if (input === null || typeof input !== "object" || !(Symbol.asyncIterator in input)) {
    throw new InvalidArgumentError("parseMessage takes a Buffer, a Uint8Array, a string, a Readable or an async iterable of chunks");
  }
  for await (const chunk of input as AsyncIterable<Uint8Array | string>) parser.write(chunk);
  return parser.end();
}

/** Synchronous parsing of bytes already in memory. */
export function parseMessageSync(input: Uint8Array | string, options: ParseOptions = {}): ParsedMessage {
  const parser = new MessageParser(options);
  parser.write(input);
  return parser.end();
}

const ADDRESS_FIELDS = [
  ["from", "From"],
  ["to", "To"],
  ["cc", "Cc"],
  ["bcc", "Bcc"],
  ["replyTo", "Reply-To"],
  ["sender", "Sender"],
] as const;

function isWithin(path: string, root: string): boolean {
  return path === root || path.startsWith(`${root}.`);
}

function assemble(root: BuildingNode, defects: Defect[], size: number): ParsedMessage {
  const report = (code: DefectCode, message: string) => defects.push({ code, part: root.path, message });
  const headers = root.headers;
  const rawAll = (name: string) => headers.fields.filter((f) => f.name.toLowerCase() === name.toLowerCase()).map((f) => f.raw);
  const addresses = Object.fromEntries(ADDRESS_FIELDS.map(([key, name]) => [key, parseAddresses(rawAll(name), name, report)])) as Record<
    (typeof ADDRESS_FIELDS)[number][0],
    ParsedMessage["from"]
  >;
  const dateRaw = headers.raw("date");
  const date = dateRaw === undefined ? null : parseDate(dateRaw);
  if (dateRaw !== undefined && date === null) report("invalid-date", `The Date header ${JSON.stringify(dateRaw.slice(0, 80))} is not an RFC 5322 date`);

  const textBodies: string[] = [];
  const htmlBodies: string[] = [];
  const attachments: ParsedAttachment[] = [];
  const walk = (node: BuildingNode): void => {
    if (node.inner !== undefined) {
      // The enclosed message is parsed now, so its address and date defects are found before the outer list is read.
      const message = assemble(node.inner, defects, node.size);
      node.message = message;
      delete node.inner;
      attachments.push(attachmentOf(node, message));
      return;
    }
    if (node.children !== undefined) {
      for (const child of node.children) walk(child);
      return;
    }
    if (isBodyPart(node)) {
      if (node.text !== undefined) (node.contentType === "text/plain" ? textBodies : htmlBodies).push(node.text);
      return;
    }
    attachments.push(attachmentOf(node));
  };
  walk(root);

  return {
    headers,
    subject: headers.get("subject") ?? null,
    ...addresses,
    date,
    messageId: messageIdOf(headers.raw("message-id")),
    text: textBodies[0] ?? null,
    html: htmlBodies[0] ?? null,
    textBodies,
    htmlBodies,
    attachments,
    tree: root as MimeNode,
    // Every defect inside this message, its own and its parts' (enclosed messages' too).
    defects: defects.filter((d) => isWithin(d.part, root.path)),
    size,
  };
}

function attachmentOf(node: MimeNode, message?: ParsedMessage): ParsedAttachment {
  const attachment: ParsedAttachment = {
    path: node.path,
    filename: node.filename,
    contentType: node.contentType,
    disposition: node.disposition,
    contentId: node.contentId,
    transferEncoding: node.transferEncoding,
    size: node.size,
  };
  if (node.content !== undefined) attachment.content = node.content;
  if (message !== undefined) attachment.message = message;
  return attachment;
}
