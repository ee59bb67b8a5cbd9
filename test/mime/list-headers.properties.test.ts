/**
 * Hostile input in the bulk-mail options' URL and mailto fields: any string is either
 * refused with a MissiveError when set, or yields a message whose lines end in CRLF and
 * hold at most 998 octets, with exactly the expected header fields (nothing added through
 * a value) and the URLs inside them unchanged.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BadHeaderError, EncodingError, InvalidArgumentError } from "../../src/errors.js";
import { EmailMessage, type EmailMessageOptions } from "../../src/mime/message.js";
import { anyText } from "./arbitraries.js";
import { FIXED_DATE, seededRandom } from "./fixture-cases.js";

const base = (extra: EmailMessageOptions): EmailMessageOptions => ({
  subject: "s", body: "b", from: "ann@example.com", to: ["bob@example.org"], clock: () => FIXED_DATE, random: seededRandom("list-property"), ...extra,
});

/** Pieces that break naive header and URL handling: line breaks (raw and encoded), brackets, separators, long runs. */
const trouble = fc.constantFrom(
  "\r\n", "\r", "\n", "\r\nBcc: eve@evil.example", "%0D%0ABcc:%20eve@evil.example", "%0A", "%0d%0a", "%00", "\0", " ", "\t", "<", ">", ">, <https://evil.example/", ",",
  "?", "&", "=", "#", "%", "%2", "%zz", "%C3", "%C3%A9", "\"", "\\", "é", "🎉", "\u2028", "+", "@", "mailto:", "https://", "//", "a".repeat(300), "%20".repeat(120),
);
const urlChars = fc.string({ unit: fc.constantFrom(..."abcxyz0189-._~:/?#[]@!$&'()*+,;=%"), maxLength: 40 });
const piece = fc.oneof({ weight: 3, arbitrary: urlChars }, { weight: 3, arbitrary: trouble }, { weight: 1, arbitrary: anyText });
const tail = fc.array(piece, { maxLength: 8 }).map((parts) => parts.join(""));

/** Text a URL may hold as it is: the valid side of the property must be reached too. */
const clean = fc.array(fc.oneof(fc.string({ unit: fc.constantFrom(..."abcxyz0189-._~!$'()*+,;:@"), maxLength: 20 }), fc.constantFrom("%20", "%C3%A9", "%0D%0A", "%25")), { maxLength: 6 }).map((p) => p.join(""));

const urlField = fc.oneof(
  tail,
  tail.map((t) => `https://news.example.com/${t}`),
  tail.map((t) => `http://news.example.com/${t}`),
  fc.tuple(tail, tail).map(([a, b]) => `https://${a}/${b}`),
  { weight: 4, arbitrary: fc.tuple(clean, clean).map(([a, b]) => `https://news.example.com/${a}?u=${b}`) },
);
const mailtoField = fc.oneof(
  { weight: 4, arbitrary: clean.map((t) => `mailto:unsubscribe@news.example.com?subject=${t}`) },
  tail.map((t) => `mailto:${t}`),
  tail.map((t) => `mailto:unsubscribe@news.example.com?subject=${t}`),
  fc.tuple(tail, tail).map(([a, b]) => `mailto:unsubscribe@news.example.com?subject=${a}&body=${b}`),
  fc.tuple(tail, tail).map(([a, b]) => `mailto:${a}@news.example.com?${b}`),
  tail,
);

function assertLines(bytes: Buffer): void {
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

/** Top-level fields, unfolded, as [name, value]. */
function fields(bytes: Buffer): [string, string][] {
  const text = bytes.toString("latin1");
  const out: [string, string][] = [];
  for (const line of text.slice(0, text.indexOf("\r\n\r\n")).split("\r\n")) {
    if (line.startsWith(" ") || line.startsWith("\t")) out[out.length - 1]![1] += line;
    else out.push([line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1).replace(/^ /, "")]);
  }
  return out;
}

let refusal: Error | undefined;

/** Builds the message, or keeps the error it was refused with in `refusal` (which must be one of ours). */
function attempt(options: EmailMessageOptions): EmailMessage | undefined {
  refusal = undefined;
  try {
    return new EmailMessage(base(options));
  } catch (err) {
    expect(err instanceof BadHeaderError || err instanceof InvalidArgumentError || err instanceof EncodingError, String(err)).toBe(true);
    refusal = err as Error;
    return undefined;
  }
}

/**
 * How an RFC 2369 §2 client reads a List-* field: angle-bracketed URLs, each ending at the
 * first ">", separated by commas. What we wrote must read back as exactly the URLs given.
 */
function readListUrls(value: string): string[] {
  const urls: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (value[i] === " " || value[i] === "\t" || value[i] === ",") i++;
    if (i >= value.length) break;
    expect(value[i], value).toBe("<");
    const end = value.indexOf(">", i);
    expect(end, value).toBeGreaterThan(i);
    urls.push(value.slice(i + 1, end));
    i = end + 1;
  }
  return urls;
}

/** RFC 3986 §2 characters: what an accepted URL holds, nothing else (no white space, no angle bracket). */
const URI_TEXT = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/;

const EXPECTED_TAIL = ["MIME-Version", "Content-Type", "Content-Transfer-Encoding"];
const EXPECTED_HEAD = ["From", "To", "Subject", "Date", "Message-ID"];

describe("hostile URL and mailto fields", () => {
  it("listUnsubscribe: refused, or CRLF lines within 998 octets, the expected fields only and the URLs unchanged", async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.option(urlField, { nil: undefined }), fc.option(mailtoField, { nil: undefined }), fc.boolean(), async (url, mailto, oneClick) => {
        const msg = attempt({ listUnsubscribe: { url, mailto, oneClick } });
        if (msg === undefined) return;
        accepted++;
        const bytes = await msg.asBytes();
        assertLines(bytes);
        expect(bytes.subarray(0, bytes.indexOf("\r\n\r\n")).every((b) => b < 0x80)).toBe(true);
        const got = fields(bytes);
        expect(got.map(([n]) => n)).toEqual([...EXPECTED_HEAD, "List-Unsubscribe", ...(oneClick ? ["List-Unsubscribe-Post"] : []), ...EXPECTED_TAIL]);
        const urls = [url, mailto].filter((u) => u !== undefined);
        for (const u of urls) expect(u).toMatch(URI_TEXT);
        expect(readListUrls(got.find(([n]) => n === "List-Unsubscribe")![1])).toEqual(urls);
      }),
      { numRuns: 400, seed: 816 },
    );
    // The generators must reach both sides of the property, not only the refusals.
    expect(accepted).toBeGreaterThan(40);
  });

  it("listHelp and listArchive lists: the same, every URL in its own angle brackets", async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(urlField, mailtoField), { minLength: 1, maxLength: 3 }), async (urls) => {
        const msg = attempt({ listHelp: urls, listArchive: urls[0] });
        if (msg === undefined) return;
        accepted++;
        const bytes = await msg.asBytes();
        assertLines(bytes);
        const got = fields(bytes);
        expect(got.map(([n]) => n)).toEqual([...EXPECTED_HEAD, "List-Help", "List-Archive", ...EXPECTED_TAIL]);
        for (const u of urls) expect(u).toMatch(URI_TEXT);
        expect(readListUrls(got.find(([n]) => n === "List-Help")![1])).toEqual(urls);
      }),
      { numRuns: 300, seed: 2369 },
    );
    expect(accepted).toBeGreaterThan(30);
  });

  it("mailto given as parts: any subject and body is refused or percent-encoded so that it decodes back", async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyText, tail), fc.oneof(anyText, tail), async (subject, body) => {
        const msg = attempt({ listUnsubscribe: { mailto: { address: "unsubscribe@news.example.com", subject, body } } });
        if (msg === undefined) {
          // Only what cannot be a header (CR, LF, NUL, a lone surrogate) is refused, or a URI too long for a line; the body may have line breaks.
          const tooLong = /fit on one header line/.test(refusal!.message);
          expect(tooLong || /[\r\n\0]/.test(subject) || body.includes("\0") || !subject.isWellFormed() || !body.isWellFormed(), refusal!.message).toBe(true);
          return;
        }
        accepted++;
        const bytes = await msg.asBytes();
        assertLines(bytes);
        const value = fields(bytes).find(([n]) => n === "List-Unsubscribe")![1];
        const match = /^<mailto:unsubscribe@news\.example\.com\?subject=([^&>]*)&body=([^&>]*)>$/.exec(value);
        expect(match, value).not.toBeNull();
        expect(decodeURIComponent(match![1]!)).toBe(subject);
        expect(decodeURIComponent(match![2]!)).toBe(body.replace(/\r\n|\r|\n/g, "\r\n"));
      }),
      { numRuns: 300, seed: 6068 },
    );
    expect(accepted).toBeGreaterThan(100);
  });

  it("listId with any description: refused, or one List-Id field ending in the id, CRLF lines within 998 octets", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyText, tail), async (phrase) => {
        const msg = attempt({ listId: `${phrase} <news.example.com>` });
        if (msg === undefined) return;
        const bytes = await msg.asBytes();
        assertLines(bytes);
        const got = fields(bytes);
        expect(got.map(([n]) => n)).toEqual([...EXPECTED_HEAD, "List-Id", ...EXPECTED_TAIL]);
        expect(got.find(([n]) => n === "List-Id")![1]).toMatch(/(^| )<news\.example\.com>$/);
      }),
      { numRuns: 300, seed: 2919 },
    );
  });
});
