/**
 * What "our parser and Python's email package agree" means, field by field: subject,
 * addresses, text and HTML bodies, attachment filenames, types and bytes, and the shape of
 * the MIME tree. Differences that are Python's and not ours are undone here, each with why.
 */
import { expect } from "vitest";
import { isBodyPart, type MimeNode, type ParsedMessage } from "../../src/parse/index.js";
import { attachmentBytes, type ParsedAddress, type ParsedMessage as PyMessage, type PartNode } from "../helpers/python-oracle.js";

/** Python reads header bytes as ASCII with surrogateescape: U+DC80..U+DCFF stand for the bytes 0x80..0xFF. */
export function fromSurrogates(text: string): string {
  if (!/[\udc80-\udcff]/.test(text)) return text;
  const bytes: number[] = [];
  for (const ch of text) {
    const c = ch.charCodeAt(0);
    if (c >= 0xdc80 && c <= 0xdcff) bytes.push(c - 0xdc00);
    else bytes.push(...Buffer.from(ch, "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}

/**
 * Display names without white space: Python's phrase parser keeps the space between
 * adjacent encoded-words that RFC 2047 §6.2 says to drop.
 */
const sameName = (name: string) => fromSurrogates(name).replace(new RegExp(`${PY_SPACE}+`, "gu"), "");
/** Python's `get_filename()` applies `str.strip()`. */
export const pyStrip = (s: string) => s.replace(new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, "gu"), "");
export const lf = (s: string) => s.replace(/\r\n|\r/g, "\n");

/** Python's `str.strip()` and `str.split()` white space (it includes U+001C..U+001F). */
const PY_SPACE = "[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

function addresses(list: readonly ParsedAddress[]) {
  return list.map((a) => ({ name: sameName(a.name), address: fromSurrogates(a.address) }));
}

function ours(list: readonly { name: string; address: string }[]) {
  return list.map((a) => ({ name: sameName(a.name), address: a.address }));
}

function shape(node: MimeNode): unknown {
  const base = { contentType: node.contentType, filename: node.filename === null ? null : pyStrip(node.filename) };
  return node.children === undefined ? base : { ...base, children: node.children.map(shape) };
}

function pyShape(node: PartNode): unknown {
  const base = { contentType: node.contentType, filename: node.filename };
  return node.children === undefined ? base : { ...base, children: node.children.map(pyShape) };
}

/**
 * Our text and HTML bodies as Python reads them: a part without a charset parameter is
 * US-ASCII to Python (RFC 2045 §5.2), each 8-bit byte a U+FFFD; we read such bytes as
 * UTF-8, which is what they almost always are.
 */
function asPythonReads(tree: MimeNode): [string[], string[]] {
  const text: string[] = [];
  const html: string[] = [];
  const walk = (node: MimeNode): void => {
    if (node.children) return node.children.forEach(walk);
    if (node.message || !isBodyPart(node) || node.text === undefined) return;
    let body = node.text;
    if (node.charset === null) body = Array.from(Buffer.from(body, "utf8"), (b) => (b < 0x80 ? String.fromCharCode(b) : "\ufffd")).join("");
    (node.contentType === "text/plain" ? text : html).push(body);
  };
  walk(tree);
  return [text, html];
}

/** Counts of what was compared, for the report. */
export interface Agreement {
  messages: number;
  attachments: number;
  bodies: number;
}

export function expectAgreement(mine: ParsedMessage, py: PyMessage, context: string, tally?: Agreement): void {
  expect(mine.subject, `${context}: subject`).toBe(py.subject === null ? null : fromSurrogates(py.subject));
  expect(ours(mine.from), `${context}: from`).toEqual(addresses(py.from));
  expect(ours(mine.to), `${context}: to`).toEqual(addresses(py.to));
  expect(ours(mine.cc), `${context}: cc`).toEqual(addresses(py.cc));
  expect(ours(mine.replyTo), `${context}: reply-to`).toEqual(addresses(py.replyTo));
  expect(mine.messageId, `${context}: message-id`).toBe(py.messageId);
  const [text, html] = asPythonReads(mine.tree);
  expect(text, `${context}: text bodies`).toEqual(py.textBodies.map(lf));
  expect(html, `${context}: html bodies`).toEqual(py.htmlBodies.map(lf));
  expect(shape(mine.tree), `${context}: MIME tree`).toEqual(pyShape(py.parts));
  expect(mine.attachments.length, `${context}: attachments`).toBe(py.attachments.length);
  mine.attachments.forEach((a, i) => {
    const p = py.attachments[i]!;
    const where = `${context}: attachment #${i} (${a.filename})`;
    expect(a.filename === null ? null : pyStrip(a.filename), where).toBe(p.filename);
    expect(a.contentType, where).toBe(p.contentType);
    expect(a.disposition, where).toBe(p.disposition);
    if (a.contentType === "message/rfc822") {
      // Python gives the enclosed message re-serialised, not its bytes: compare what it holds.
      expect(a.message, where).toBeDefined();
      expect(p.message, where).toBeTruthy();
      expectAgreement(a.message!, p.message!, `${where} (enclosed)`, tally);
      return;
    }
    const pyBytes = attachmentBytes(p);
    // Python's quoted-printable decoder (quopri) writes LF for every line break.
    const same = a.transferEncoding === "quoted-printable"
      ? lf(a.content!.toString("latin1")) === lf(pyBytes.toString("latin1"))
      : a.content!.equals(pyBytes);
    expect(same, `${where}: bytes (${a.content!.length} vs ${pyBytes.length})`).toBe(true);
    if (tally) tally.attachments++;
  });
  if (tally) {
    tally.messages++;
    tally.bodies += mine.textBodies.length + mine.htmlBodies.length;
  }
}
