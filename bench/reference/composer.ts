/**
 * A minimal fixed-structure composer: the yardstick for missive's whole-message build. It
 * writes one shape only, decided in advance (no scanning, no choices):
 *
 *   multipart/mixed
 *     multipart/alternative
 *       text/plain (quoted-printable)
 *       text/html  (quoted-printable)
 *     application/octet-stream (base64) for each attachment
 *
 * Text is canonicalised to CRLF and encoded with the reference quoted-printable loop; the
 * subject and display names with the reference B-encoder; attachments with Node's base64,
 * cut into 76-character lines. Boundaries are random hex. The result is one Buffer.
 */
import { randomBytes } from "node:crypto";
import { bEncodeHeader } from "./b-encoder.js";
import { ReferenceQpEncoder } from "./qp.js";

export interface ComposerInput {
  from: { name: string; address: string };
  to: readonly { name: string; address: string }[];
  subject: string;
  text: string;
  html: string;
  attachments: readonly { filename: string; content: Buffer }[];
}

function qp(text: string): string {
  const encoder = new ReferenceQpEncoder();
  const bytes = Buffer.from(text.replace(/\r\n|\r|\n/g, "\r\n"), "utf8");
  return encoder.encode(bytes).toString("latin1") + encoder.flush().toString("latin1");
}

function base64Lines(bytes: Buffer): string {
  const text = bytes.toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 76) lines.push(text.slice(i, i + 76));
  return `${lines.join("\r\n")}\r\n`;
}

/** `Name <address>` with the name B-encoded (it may need it), for a header of its own line. */
function mailbox(m: { name: string; address: string }): string {
  if (m.name === "") return m.address;
  const encoded = bEncodeHeader("X", m.name).slice(3, -2);
  return `${encoded} <${m.address}>`;
}

export function composeReference(input: ComposerInput, date = new Date()): Buffer {
  const mixed = `=_${randomBytes(16).toString("hex")}`;
  const alternative = `=_${randomBytes(16).toString("hex")}`;
  const parts: string[] = [
    `From: ${mailbox(input.from)}\r\n`,
    `To: ${input.to.map(mailbox).join(",\r\n ")}\r\n`,
    bEncodeHeader("Subject", input.subject),
    `Date: ${date.toUTCString().replace("GMT", "+0000")}\r\n`,
    `Message-ID: <${randomBytes(18).toString("base64url")}@example.com>\r\n`,
    "MIME-Version: 1.0\r\n",
    `Content-Type: multipart/mixed; boundary="${mixed}"\r\n\r\n`,
    `--${mixed}\r\nContent-Type: multipart/alternative; boundary="${alternative}"\r\n\r\n`,
    `--${alternative}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n`,
    qp(input.text),
    `\r\n--${alternative}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n`,
    qp(input.html),
    `\r\n--${alternative}--\r\n`,
  ];
  for (const a of input.attachments) {
    parts.push(
      `\r\n--${mixed}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="${a.filename}"\r\n\r\n`,
      base64Lines(a.content),
    );
  }
  parts.push(`\r\n--${mixed}--\r\n`);
  return Buffer.from(parts.join(""), "latin1");
}
