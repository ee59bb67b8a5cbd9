/**
 * A minimal RFC 2047 B-encoder-and-fold: the yardstick for missive's header path. The whole
 * value becomes UTF-8 B encoded-words (never splitting a character), each on its own line,
 * no line over 76 octets (RFC 2047 §2): the simplest correct way to put non-ASCII text in
 * an unstructured header. No Q, no other charsets, no plain words left readable.
 */

/** RFC 2047 §2: a line holding an encoded-word is at most 76 octets. */
const MAX_LINE = 76;
/** `=?utf-8?B?` and `?=`. */
const OVERHEAD = 12;

/** `Name: =?utf-8?B?...?=\r\n =?utf-8?B?...?=\r\n` for any text. */
export function bEncodeHeader(name: string, text: string): string {
  const bytes = Buffer.from(text, "utf8");
  let out = `${name}:`;
  let room = MAX_LINE - out.length - 1;
  let start = 0;
  while (start < bytes.length) {
    const fit = Math.floor((room - OVERHEAD) / 4) * 3;
    let end = Math.min(bytes.length, start + fit);
    // Back up to a character boundary: never end before a UTF-8 continuation byte.
    while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80) end--;
    out += `${start === 0 ? " " : "\r\n "}=?utf-8?B?${bytes.toString("base64", start, end)}?=`;
    start = end;
    room = MAX_LINE - 1;
  }
  return `${out}\r\n`;
}
