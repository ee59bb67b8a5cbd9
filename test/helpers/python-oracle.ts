// Python's standard `email` package (policy=default) as an independent judge of the
// bytes missive builds. One Python process per batch: JSON lines in, JSON lines out.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { askPython } from "./python-lines.js";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "oracle", "parse_message.py");

export interface ParsedAddress {
  /** Display name as decoded by Python ("" when none). */
  name: string;
  /** addr_spec: local@domain as given (domain not IDNA-decoded). */
  address: string;
}

export interface ParsedAttachment {
  filename: string | null;
  contentType: string;
  disposition: "attachment" | "inline" | null;
  /** Content-ID header as written, e.g. "<logo>". */
  contentId: string | null;
  /** base64 of get_payload(decode=True); for message/rfc822 the inner message's as_bytes (CRLF). */
  data: string;
  /** For message/rfc822: the inner message, parsed the same way. */
  message?: ParsedMessage | null;
}

export interface PartNode {
  contentType: string;
  disposition: string | null;
  filename: string | null;
  charset: string | null;
  cte: string | null;
  /** Content-Type parameters by lower-case name, RFC 2231 decoded (`get_params()`). */
  params: Record<string, string>;
  children?: PartNode[];
}

export interface DefectDetail {
  /** Part path ("1", "1.2") and, for header defects, ": Header-Name". */
  where: string;
  defect: string;
  detail: string;
}

export interface ParsedMessage {
  subject: string | null;
  from: ParsedAddress[];
  to: ParsedAddress[];
  cc: ParsedAddress[];
  replyTo: ParsedAddress[];
  bcc: ParsedAddress[];
  sender: ParsedAddress[];
  messageId: string | null;
  date: string | null;
  /** The Date header as ISO 8601 (Python's datetime), when it parsed. */
  dateIso: string | null;
  /** Header names as written, in order, with values decoded by Python (RFC 2047 undone). */
  headers: [string, string][];
  /** Header names and raw (folded, undecoded) values, in order. */
  rawHeaders: [string, string][];
  /** Class names of every defect, in the message, its parts and their headers. */
  defects: string[];
  defectDetails: DefectDetail[];
  /**
   * text/plain parts that are not attachments (no filename, not disposition attachment),
   * decoded, with CRLF and lone CR normalised to LF.
   */
  textBodies: string[];
  htmlBodies: string[];
  /** Every other leaf part, plus message/rfc822 parts (not descended into). */
  attachments: ParsedAttachment[];
  parts: PartNode;
  isMultipart: boolean;
  contentType: string;
}

export type OracleResult = ParsedMessage | { error: string; traceback?: string };

export function isOracleError(r: OracleResult): r is { error: string; traceback?: string } {
  return "error" in r;
}

export interface OracleOptions {
  /** Bound on the whole batch. Default 60000 ms. */
  timeoutMs?: number;
}

/**
 * Parses every message with Python in one process. Results are in input order; a message
 * Python cannot parse yields `{ error }` in its slot (use `isOracleError`).
 */
export async function parseWithPythonResults(
  messages: readonly (Uint8Array | string)[],
  opts: OracleOptions = {},
): Promise<OracleResult[]> {
  const requests = messages.map((m) => ({ data: (typeof m === "string" ? Buffer.from(m, "utf8") : Buffer.from(m.buffer, m.byteOffset, m.byteLength)).toString("base64") }));
  const answers = await askPython(SCRIPT, requests, opts.timeoutMs ?? 60_000, "python oracle");
  const results: OracleResult[] = answers.map(({ id: _id, ...rest }) => rest as unknown as OracleResult);
  return results;
}

/** Like parseWithPythonResults, but throws if Python could not parse any message. */
export async function parseWithPython(
  messages: readonly (Uint8Array | string)[],
  opts: OracleOptions = {},
): Promise<ParsedMessage[]> {
  const results = await parseWithPythonResults(messages, opts);
  return results.map((r, i) => {
    if (isOracleError(r)) throw new Error(`python could not parse message #${i}: ${r.error}\n${r.traceback ?? ""}`);
    return r;
  });
}

/** One message. */
export async function parseOneWithPython(message: Uint8Array | string, opts: OracleOptions = {}): Promise<ParsedMessage> {
  const [r] = await parseWithPython([message], opts);
  return r!;
}

/** Decodes an attachment's `data` field. */
export function attachmentBytes(a: ParsedAttachment): Buffer {
  return Buffer.from(a.data, "base64");
}
