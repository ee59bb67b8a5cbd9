/**
 * fast-check arbitraries for whole messages: hostile text in every field, and what a
 * correct reader must see when it decodes the result.
 */
import { domainToASCII } from "node:url";
import fc from "fast-check";
import { EmailMessage, EmailMultiAlternatives } from "../../src/mime/message.js";
import { FIXED_DATE, seededRandom } from "./fixture-cases.js";

/** Pieces that have broken mail software before: specials, look-alikes, controls, astral. */
const nasty = fc.constantFrom(
  "=?utf-8?q?x?=", "=?", "?=", "=?utf-8?B?aGk=?=", '"', "\\", ",", ";", ":", "<", ">", "(", ")", "@", "[", "]",
  "\t", " ", "   ", "\u0001", "\u001f", "\u007f", "é", "ß", "日本語", "🎉", "𝄞", "\u00a0", "\u200b", "=", "_", "?", "%", "'",
  "Ω", "\u0301", "ﬀ", "\u2028",
);

/** Arbitrary Unicode (well-formed) mixed with the nasty pieces. */
export const anyText = fc
  .array(fc.oneof({ weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) }, { weight: 3, arbitrary: nasty }, { weight: 2, arbitrary: fc.string({ maxLength: 30 }) }), {
    maxLength: 10,
  })
  .map((parts) => parts.join(""))
  .filter((s) => s.isWellFormed());

/** What a header field can hold: anything but CR, LF and NUL (those are BadHeaderError). */
export const headerText = anyText.map((s) => s.replace(/[\r\n\0]/g, " "));

/** A display name: header text that survives a round trip through a name (trimmed, non-empty when meaningful). */
export const displayName = headerText;

const localPart = fc.array(fc.stringMatching(/^[a-z0-9+_-]{1,8}$/), { minLength: 1, maxLength: 3 }).map((atoms) => atoms.join("."));
const domain = fc.constantFrom("example.org", "example.com", "mail.example.net", "bücher.example", "例え.jp", "münchen.example", "xn--bcher-kva.example");
export const addressSpec = fc.tuple(localPart, domain).map(([l, d]) => `${l}@${d}`);
export const mailbox = fc.record({ name: displayName, address: addressSpec });

export interface AttachmentSpec {
  filename: string;
  bytes: Uint8Array;
  mimetype: string;
}

export interface MessageSpec {
  subject: string;
  body: string;
  html: string | undefined;
  from: { name: string; address: string };
  to: { name: string; address: string }[];
  cc: { name: string; address: string }[];
  attachments: AttachmentSpec[];
  headerValue: string;
}

const attachmentSpec = fc.record({
  filename: headerText.filter((s) => s.trim().length > 0),
  bytes: fc.uint8Array({ maxLength: 600 }),
  mimetype: fc.constantFrom("application/octet-stream", "image/png", "application/pdf"),
});

export const messageSpec: fc.Arbitrary<MessageSpec> = fc.record({
  subject: headerText,
  body: anyText,
  html: fc.option(anyText.map((s) => `<p>${s}</p>`), { nil: undefined }),
  from: mailbox,
  to: fc.array(mailbox, { minLength: 1, maxLength: 4 }),
  cc: fc.array(mailbox, { maxLength: 3 }),
  attachments: fc.array(attachmentSpec, { maxLength: 3 }),
  headerValue: headerText,
});

export function buildMessage(spec: MessageSpec, seed = "property"): EmailMessage {
  const message = new EmailMultiAlternatives({
    subject: spec.subject,
    body: spec.body,
    from: spec.from,
    to: spec.to,
    cc: spec.cc,
    headers: { "X-Anything": spec.headerValue },
    clock: () => FIXED_DATE,
    random: seededRandom(seed),
  });
  if (spec.html !== undefined) message.attachAlternative(spec.html, "text/html");
  for (const a of spec.attachments) message.attach(a.filename, a.bytes, a.mimetype);
  return message;
}

/** Text as a reader sees it after decoding: canonical line breaks, then a final one. */
export function expectedBodyText(text: string): string {
  if (text === "") return "";
  const lf = text.replace(/\r\n|\r/g, "\n");
  return lf.endsWith("\n") ? lf : `${lf}\n`;
}

/** The address as it is on the wire without SMTPUTF8: the domain in IDNA (by Node's WHATWG URL, not our code). */
export function asciiAddress(address: string): string {
  const at = address.lastIndexOf("@");
  return `${address.slice(0, at)}@${domainToASCII(address.slice(at + 1))}`;
}
