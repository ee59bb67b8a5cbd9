/**
 * RFC 5322 §3.6.4 message identifiers, checked before a Message-ID, In-Reply-To,
 * References or Resent-Message-ID header is written, since readers that meet anything else
 * (`<a b@x>`, `id@x` without brackets, `<justtext>`) thread the message wrongly or drop it.
 *
 *     msg-id   = "<" id-left "@" id-right ">"
 *     id-left  = dot-atom-text
 *     id-right = dot-atom-text / no-fold-literal      no-fold-literal = "[" *dtext "]"
 *
 * The obsolete forms (quoted strings, comments and folding inside the brackets) are
 * refused: RFC 5322 §4 says they must not be generated. Message-ID and Resent-Message-ID
 * hold exactly one msg-id, In-Reply-To and References one or more, separated by white
 * space. atext includes non-ASCII (RFC 6532 §3.2); whether the message may carry it is
 * decided when the header is rendered.
 */
import { BadHeaderError } from "../errors.js";

const SINGLE = new Set(["message-id", "resent-message-id"]);
const LIST = new Set(["in-reply-to", "references"]);

const ATEXT = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) ATEXT[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) ATEXT[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) ATEXT[c] = 1;
for (const ch of "!#$%&'*+-/=?^_`{|}~") ATEXT[ch.charCodeAt(0)] = 1;

function isAtext(code: number): boolean {
  return code >= 0x80 ? true : ATEXT[code] === 1;
}

function isWsp(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** dtext (RFC 5322 §3.4.1): printable ASCII except "[", "]" and "\" (and RFC 6532 UTF-8). */
function isDtext(code: number): boolean {
  return (code >= 33 && code <= 90) || (code >= 94 && code <= 126) || code >= 0x80;
}

function isDotAtomText(text: string): boolean {
  if (text.length === 0 || text.startsWith(".") || text.endsWith(".") || text.includes("..")) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x2e && !isAtext(c)) return false;
  }
  return true;
}

/** Whether a header holds msg-ids, so that `assertMsgIdHeader` applies to it. */
export function isMsgIdHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return SINGLE.has(lower) || LIST.has(lower);
}

/** The msg-ids in `value`, or a description of the first thing that is not one. */
export function parseMsgIds(value: string): { ids: string[]; problem?: undefined } | { ids?: undefined; problem: string } {
  const ids: string[] = [];
  let i = 0;
  for (;;) {
    while (i < value.length && isWsp(value.charCodeAt(i))) i++;
    if (i >= value.length) return { ids };
    if (value[i] !== "<") {
      return { problem: `expected "<" at offset ${i}${value[i] === "(" ? " (comments are not allowed here)" : ""}, found ${JSON.stringify(value.slice(i, i + 20))}` };
    }
    const close = value.indexOf(">", i + 1);
    if (close < 0) return { problem: `the "<" at offset ${i} has no closing ">"` };
    const inner = value.slice(i + 1, close);
    for (let j = 0; j < inner.length; j++) {
      const c = inner.charCodeAt(j);
      if (isWsp(c)) return { problem: `white space inside <${inner}> (at offset ${i + 1 + j})` };
      if (c === 0x3c) return { problem: `a "<" inside <${inner}>: the ">" closing the msg-id is missing` };
    }
    const at = inner.lastIndexOf("@");
    if (at < 0) return { problem: `<${inner}> has no "@" (a msg-id is <id-left@id-right>)` };
    const left = inner.slice(0, at);
    const right = inner.slice(at + 1);
    if (!isDotAtomText(left)) return { problem: `the part before "@" in <${inner}> is not a dot-atom (letters, digits, !#$%&'*+-/=?^_\`{|}~ and single dots inside)` };
    if (right.startsWith("[")) {
      if (!right.endsWith("]") || ![...right.slice(1, -1)].every((ch) => isDtext(ch.charCodeAt(0)))) {
        return { problem: `the domain literal in <${inner}> holds a character not allowed in a literal ("[", "]", "\\" or a control)` };
      }
    } else if (!isDotAtomText(right)) {
      return { problem: `the part after "@" in <${inner}> is not a dot-atom or a [literal]` };
    }
    ids.push(`<${inner}>`);
    i = close + 1;
  }
}

/**
 * Throws `BadHeaderError` naming the header unless `value` is what RFC 5322 §3.6.4 allows
 * there: one msg-id for Message-ID and Resent-Message-ID, one or more for In-Reply-To and
 * References. Other headers are not checked.
 */
export function assertMsgIdHeader(name: string, value: string): void {
  if (!isMsgIdHeader(name)) return;
  const single = SINGLE.has(name.toLowerCase());
  const { ids, problem: syntax } = parseMsgIds(value);
  let problem = syntax;
  if (ids !== undefined && single && ids.length !== 1) problem = `it must hold exactly one msg-id, found ${ids.length}`;
  if (ids !== undefined && !single && ids.length === 0) problem = "it must hold at least one msg-id (leave the header out instead)";
  if (problem !== undefined) {
    throw new BadHeaderError(name, `${name} must be ${single ? "a msg-id" : "msg-ids"} like <id@example.com> (RFC 5322 §3.6.4): ${problem}`);
  }
}
