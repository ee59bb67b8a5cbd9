/**
 * Properties of whole messages for hostile input in every field: the shape of the output
 * (CRLF lines, at most 998 octets, 7-bit headers, no header added or changed through a
 * value) and that our own decoders get the fields back. Python's reading is in oracle.test.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BadHeaderError, EncodingError } from "../../src/errors.js";
import { decodeWords } from "../../src/mime/encoding/encoded-word.js";
import { parseAddressList } from "../../src/mime/address.js";
import { policies } from "../../src/mime/policy.js";
import { EmailMessage } from "../../src/mime/message.js";
import { buildMessage, headerText, messageSpec } from "./arbitraries.js";

/** Top-level header lines of a message, unfolded, as [name, value]. */
function topHeaders(bytes: Buffer): [string, string][] {
  const text = bytes.toString("latin1");
  const block = text.slice(0, text.indexOf("\r\n\r\n") + 2);
  const headers: [string, string][] = [];
  for (const line of block.split("\r\n").slice(0, -1)) {
    if (line.startsWith(" ") || line.startsWith("\t")) headers[headers.length - 1]![1] += line;
    else {
      const colon = line.indexOf(":");
      headers.push([line.slice(0, colon), line.slice(colon + 1).replace(/^ /, "")]);
    }
  }
  return headers;
}

function assertLines(bytes: Buffer) {
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      expect(bytes[i - 1], `bare LF at ${i}`).toBe(0x0d);
      expect(i - 1 - start, "line longer than 998 octets").toBeLessThanOrEqual(998);
      start = i + 1;
    } else if (bytes[i] === 0x0d) {
      expect(bytes[i + 1], `bare CR at ${i}`).toBe(0x0a);
    }
  }
  expect(start, "the last line ends in CRLF").toBe(bytes.length);
}

describe("message properties", () => {
  it("every line ends in CRLF, none exceeds 998 octets, headers are 7-bit and exactly the expected ones", async () => {
    await fc.assert(
      fc.asyncProperty(messageSpec, async (spec) => {
        const bytes = await buildMessage(spec).asBytes();
        assertLines(bytes);
        const headerEnd = bytes.indexOf("\r\n\r\n");
        expect(bytes.subarray(0, headerEnd).every((b) => b < 0x80)).toBe(true);
        // RFC 2047 §2: a line holding an encoded-word is at most 76 characters.
        for (const line of bytes.subarray(0, headerEnd).toString("latin1").split("\r\n")) {
          if (/=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=/.test(line)) expect(line.length, line).toBeLessThanOrEqual(76);
        }
        const names = topHeaders(bytes).map(([n]) => n);
        const expected = ["From", "To", ...(spec.cc.length ? ["Cc"] : []), "Subject", "Date", "Message-ID", "X-Anything", "MIME-Version", "Content-Type"];
        expect(names.filter((n) => n !== "Content-Transfer-Encoding")).toEqual(expected);
      }),
      { numRuns: 150 },
    );
  });

  it("our decoders give back subject, header value and display names", async () => {
    await fc.assert(
      fc.asyncProperty(messageSpec, async (spec) => {
        const headers = new Map(topHeaders(await buildMessage(spec).asBytes()));
        expect(decodeWords(headers.get("Subject")!)).toBe(spec.subject);
        expect(decodeWords(headers.get("X-Anything")!)).toBe(spec.headerValue);
        const to = parseAddressList(headers.get("To")!);
        expect(to.map((m) => ("name" in m ? m.name.replace(/\s+/g, " ").trim() : ""))).toEqual(spec.to.map((m) => m.name.replace(/\s+/g, " ").trim()));
      }),
      { numRuns: 150 },
    );
  });

  it("with the SMTPUTF8 policy, headers may be UTF-8 but lines still end in CRLF within 998 octets", async () => {
    await fc.assert(
      fc.asyncProperty(messageSpec, async (spec) => {
        assertLines(await buildMessage(spec).asBytes(policies.smtputf8));
      }),
      { numRuns: 60 },
    );
  });

  it("a CR or LF in any header field is a BadHeaderError, before anything is rendered", () => {
    const crlf = fc.tuple(headerText, fc.constantFrom("\r", "\n", "\r\n", "\n Bcc: x@evil.example"), headerText).map(([a, b, c]) => a + b + c);
    fc.assert(
      fc.property(crlf, fc.constantFrom("subject", "to", "from", "cc", "replyTo", "header", "headerName", "filename"), (value, field) => {
        const make = () => {
          const m = new EmailMessage({ subject: "s", body: "b", from: "a@example.org", to: ["b@example.org"] });
          if (field === "subject") m.subject = value;
          else if (field === "header") m.headers = { "X-Test": value };
          else if (field === "headerName") m.headers = { [value]: "v" };
          else if (field === "filename") m.attach(value, "content", "text/plain");
          else if (field === "from") m.from = `${value} <a@example.org>`;
          else (m as unknown as Record<string, unknown>)[field] = [`${value} <x@example.org>`];
        };
        expect(make).toThrow(BadHeaderError);
      }),
      { numRuns: 200 },
    );
  });

  it("a lone surrogate in a header field is an EncodingError, never silently replaced", async () => {
    for (const lone of ["\ud800", "\udfff", "a\udc00b"]) {
      await expect(async () => new EmailMessage({ subject: `x${lone}`, body: "b", from: "a@example.org", to: ["b@example.org"] }).asBytes()).rejects.toThrow(EncodingError);
      await expect(async () => new EmailMessage({ subject: "s", body: `x${lone}`, from: "a@example.org", to: ["b@example.org"] }).asBytes()).rejects.toThrow(EncodingError);
    }
  });
});
