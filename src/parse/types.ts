/**
 * What `parseMessage` gives back: the header fields (raw and decoded), the MIME tree with
 * each part's decoded content, the message's bodies and attachments, and every defect found
 * on the way. Nothing here throws; malformed input is described by `defects`.
 */
import type { Mailbox } from "../mime/address.js";

export type { Mailbox };

/** Kinds of damage the parser recovers from. Each names what was wrong, not how it was fixed. */
export type DefectCode =
  /** A line that is neither a header nor the blank line ended the header block (RFC 5322 §2.1). */
  | "missing-header-body-separator"
  /** The first header line is a continuation (starts with white space). */
  | "first-header-line-is-continuation"
  /** A header line with an empty name (`: value`). */
  | "missing-header-name"
  /** A `From ` envelope line where a header belongs. */
  | "misplaced-envelope-header"
  /** A header field longer than `maxHeaderBytes`: its value is cut there. */
  | "header-too-long"
  /** More header fields than `maxHeaders`, or a header block larger than `maxHeaderBytes`: the rest are dropped. */
  | "too-many-headers"
  /** An address header that does not parse as an RFC 5322 address list; the parsable pieces are kept. */
  | "invalid-address"
  /** A Date header that is not an RFC 5322 date. */
  | "invalid-date"
  /** A Content-Type that is not `type/subtype`: read as text/plain (RFC 2045 §5.2). */
  | "invalid-content-type"
  /** A multipart without a boundary parameter: its body is kept as one text part. */
  | "no-boundary"
  /** A multipart whose first delimiter never came: its body is the preamble. */
  | "start-boundary-not-found"
  /** A multipart whose close delimiter never came. */
  | "close-boundary-not-found"
  /** A multipart with a Content-Transfer-Encoding other than 7bit, 8bit or binary (RFC 2045 §6.4). */
  | "invalid-multipart-transfer-encoding"
  /** A Content-Transfer-Encoding this parser does not know: the content is kept as it was. */
  | "unknown-transfer-encoding"
  /** base64 with characters outside the alphabet, or with missing padding. */
  | "invalid-base64"
  /** A charset iconv-lite does not know: the text is read as UTF-8. */
  | "unknown-charset"
  /** Parts nested deeper than `maxDepth`: the rest is kept as one opaque part. */
  | "too-deep"
  /** More parts than `maxParts`: the rest of the message was not parsed. */
  | "too-many-parts";

export interface Defect {
  code: DefectCode;
  /** The part it was found in: "1" is the message, "1.2" its second child. */
  part: string;
  /** What was wrong, for a person. */
  message: string;
}

/** One header field as it was written. */
export interface HeaderField {
  /** The name as written (case kept). */
  name: string;
  /** The value as written: unfolded (CRLF before white space removed), white space after the colon dropped, encoded-words kept. */
  raw: string;
  /** The value for a reader: unfolded, RFC 2047 encoded-words decoded. */
  value: string;
}

/** The header fields of a message or part, in order, with case-insensitive lookups. */
export interface Headers {
  readonly fields: readonly HeaderField[];
  /** The decoded value of the first field with that name. */
  get(name: string): string | undefined;
  /** The decoded values of every field with that name, in order. */
  getAll(name: string): string[];
  /** The raw (undecoded, unfolded) value of the first field with that name. */
  raw(name: string): string | undefined;
  has(name: string): boolean;
}

/** A node of the MIME tree. */
export interface MimeNode {
  /** "1" for the message itself, "1.1" for its first child, and so on. */
  path: string;
  headers: Headers;
  /** `type/subtype`, lower case; the default (RFC 2045 §5.2) when absent or invalid. */
  contentType: string;
  /** Content-Type parameters by lower-case name, RFC 2231 decoded. */
  params: Record<string, string>;
  /** `inline`, `attachment`, another token, or null without a Content-Disposition. */
  disposition: string | null;
  /** The filename (Content-Disposition `filename`, else Content-Type `name`), decoded; null if none. */
  filename: string | null;
  /** Content-ID without the angle brackets; null if none. */
  contentId: string | null;
  /** The charset parameter, lower case; null if none. */
  charset: string | null;
  /** Content-Transfer-Encoding, lower case; "7bit" when absent. */
  transferEncoding: string;
  /** Decoded size in bytes (also when the content was not kept). */
  size: number;
  /** Size of the body as it was on the wire, in bytes. */
  encodedSize: number;
  /** The decoded bytes, when they were kept (see `ParseOptions.content`). Leaves only. */
  content?: Buffer;
  /** For `text/*` leaves whose content was kept: the decoded text, line breaks as LF. */
  text?: string;
  /** For multiparts: the children. */
  children?: MimeNode[];
  /** For `message/rfc822` (and `message/global`): the enclosed message. */
  message?: ParsedMessage;
}

/** A leaf that is not a body (or an enclosed message), for download. */
export interface ParsedAttachment {
  /** The node's path in `tree`. */
  path: string;
  filename: string | null;
  contentType: string;
  disposition: string | null;
  contentId: string | null;
  /** How it was encoded on the wire (lower case). */
  transferEncoding: string;
  size: number;
  /** The decoded bytes, when kept; for an enclosed message, the message's bytes as they were. */
  content?: Buffer;
  /** For `message/rfc822`: the enclosed message, parsed. */
  message?: ParsedMessage;
}

export interface ParsedMessage {
  headers: Headers;
  /** Decoded Subject, or null when there is none. */
  subject: string | null;
  from: Mailbox[];
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  replyTo: Mailbox[];
  sender: Mailbox[];
  /** The Date header as a Date, or null when absent or unreadable. */
  date: Date | null;
  /** Message-ID with its angle brackets, as written; null if none. */
  messageId: string | null;
  /** The first text/plain body, line breaks as LF; null if none (or not kept). */
  text: string | null;
  /** The first text/html body, line breaks as LF; null if none (or not kept). */
  html: string | null;
  /** Every text/plain part that is not an attachment, in order (when kept). */
  textBodies: string[];
  /** Every text/html part that is not an attachment, in order (when kept). */
  htmlBodies: string[];
  /** Every other leaf, and enclosed messages (not descended into). */
  attachments: ParsedAttachment[];
  tree: MimeNode;
  /** Everything that was wrong, from this message and the parts inside it. */
  defects: Defect[];
  /** The message's size in bytes, as given. */
  size: number;
}

/** Which decoded contents to keep. Sizes and metadata are always there. */
export type ContentSelection = "all" | "bodies" | "none" | ((part: PartInfo) => boolean);

/** What a `content` predicate knows about a leaf when its body starts. */
export interface PartInfo {
  path: string;
  contentType: string;
  disposition: string | null;
  filename: string | null;
  contentId: string | null;
}

export interface ParseOptions {
  /**
   * Which decoded contents to keep: "all" (the default), "bodies" (the text/plain and
   * text/html bodies, not attachments: those get their size but not their bytes, so a
   * large attachment is never held), "none", or a predicate per leaf.
   */
  content?: ContentSelection;
  /** Deepest nesting of multiparts and enclosed messages. Default 32. */
  maxDepth?: number;
  /** Most parts in one message, all levels together. Default 2000. */
  maxParts?: number;
  /** Most header fields per header block. Default 1000. */
  maxHeaders?: number;
  /** Largest header block (and so largest header field) in bytes. Default 256 KiB. */
  maxHeaderBytes?: number;
}
