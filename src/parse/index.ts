/**
 * `missive/parse`: a MIME parser of missive's own, for reading what was sent — the local
 * mail catcher uses it, and so can tests. Streaming and bounded; malformed input gives
 * `defects`, never an exception.
 */
export { parseMessage, parseMessageSync, MessageParser } from "./message.js";
export type { ParseInput } from "./message.js";
export { DEFAULT_LIMITS, isBodyPart } from "./parser.js";
export { parseDate } from "./fields.js";
export type {
  ContentSelection,
  Defect,
  DefectCode,
  HeaderField,
  Headers,
  Mailbox,
  MimeNode,
  ParseOptions,
  ParsedAttachment,
  ParsedMessage,
  PartInfo,
} from "./types.js";
