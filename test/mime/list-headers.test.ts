/**
 * The bulk-mail options (src/mime/list-headers.ts) on EmailMessage: what each writes and
 * where, what is refused and with which error, how they meet the same headers given
 * through `headers`, and what Python reads back (its `email` package for the fields,
 * `urllib.parse` for the mailto: URIs).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BadHeaderError, EncodingError, InvalidArgumentError } from "../../src/errors.js";
import { LIST_OPTION_HEADERS, MAX_URL_LENGTH } from "../../src/mime/list-headers.js";
import { EmailMessage, EmailMultiAlternatives, type EmailMessageOptions } from "../../src/mime/message.js";
import { policies } from "../../src/mime/policy.js";
import { errorOf } from "../helpers/errors.js";
import { parseWithPython } from "../helpers/python-oracle.js";
import { FIXED_DATE, seededRandom } from "./fixture-cases.js";

const fixturesDir = fileURLToPath(new URL("../../fixtures/", import.meta.url));
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

const base = (extra: EmailMessageOptions = {}): EmailMessageOptions => ({
  subject: "s", body: "b", from: "ann@example.com", to: ["bob@example.org"], clock: () => FIXED_DATE, random: seededRandom("list"), ...extra,
});
const headerBlock = (bytes: Buffer) => bytes.toString("latin1").slice(0, bytes.indexOf("\r\n\r\n") + 2);
const names = (bytes: Buffer) => headerBlock(bytes).split("\r\n").filter((l) => l !== "" && !/^[ \t]/.test(l)).map((l) => l.slice(0, l.indexOf(":")));

describe("what each option writes", () => {
  it("one-click unsubscribe: the https URL first, then the mailto, then List-Unsubscribe-Post", async () => {
    const msg = new EmailMessage(base({ listUnsubscribe: { mailto: "mailto:u@example.com", url: "https://example.com/u?t=1", oneClick: true } }));
    expect(headerBlock(await msg.asBytes())).toContain(
      "List-Unsubscribe: <https://example.com/u?t=1>, <mailto:u@example.com>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
    );
  });

  it("without oneClick there is no List-Unsubscribe-Post; an http: URL is allowed then, and a mailto alone", async () => {
    const http = await new EmailMessage(base({ listUnsubscribe: { url: "http://example.com/u" } })).asBytes();
    expect(headerBlock(http)).toContain("List-Unsubscribe: <http://example.com/u>\r\n");
    expect(names(http)).not.toContain("List-Unsubscribe-Post");
    const mailto = await new EmailMessage(base({ listUnsubscribe: { mailto: "mailto:u@example.com?subject=stop", oneClick: false } })).asBytes();
    expect(headerBlock(mailto)).toContain("List-Unsubscribe: <mailto:u@example.com?subject=stop>\r\n");
    expect(names(mailto)).not.toContain("List-Unsubscribe-Post");
  });

  it("the fields come after Message-ID and before the extra headers, in a fixed order", async () => {
    const msg = new EmailMessage(
      base({
        headers: { "X-Campaign": "c1" },
        priority: "high",
        autoSubmitted: "auto-generated",
        listArchive: "https://example.com/a",
        listHelp: "mailto:help@example.com",
        listUnsubscribe: { url: "https://example.com/u", oneClick: true },
        listId: "<l.example.com>",
      }),
    );
    expect(names(await msg.asBytes())).toEqual([
      "From", "To", "Subject", "Date", "Message-ID",
      "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Help", "List-Archive", "Auto-Submitted", "X-Priority", "X-MSMail-Priority", "Importance",
      "X-Campaign", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    ]);
  });

  it("priority normal writes nothing; high and low write the three fields consistently", async () => {
    const block = async (priority: "high" | "normal" | "low") => headerBlock(await new EmailMessage(base({ priority })).asBytes());
    const plain = headerBlock(await new EmailMessage(base()).asBytes());
    expect(await block("normal")).toBe(plain);
    expect(await block("high")).toContain("X-Priority: 1 (Highest)\r\nX-MSMail-Priority: High\r\nImportance: high\r\n");
    expect(await block("low")).toContain("X-Priority: 5 (Lowest)\r\nX-MSMail-Priority: Low\r\nImportance: low\r\n");
  });

  it("Auto-Submitted takes auto-generated or auto-replied (RFC 3834 §5)", async () => {
    expect(headerBlock(await new EmailMessage(base({ autoSubmitted: "auto-replied" })).asBytes())).toContain("Auto-Submitted: auto-replied\r\n");
  });

  it("List-Id: a bare <id>, a plain description, a quoted one with specials, a non-ASCII one as encoded-words", async () => {
    const listId = async (value: string) => headerBlock(await new EmailMessage(base({ listId: value })).asBytes()).match(/^List-Id:.*(?:\r\n[ \t].*)*/m)![0];
    expect(await listId("<news.example.com>")).toBe("List-Id: <news.example.com>");
    expect(await listId("  Weekly news   <news.example.com>  ")).toBe("List-Id: Weekly news <news.example.com>");
    expect(await listId('"News, weekly" <news.example.com>')).toBe('List-Id: "News, weekly" <news.example.com>');
    expect(await listId('"Say \\"hi\\"" <news.example.com>')).toBe('List-Id: "Say \\"hi\\"" <news.example.com>');
    expect(await listId("News: a <b> <news.example.com>")).toBe('List-Id: "News: a <b>" <news.example.com>');
    expect(await listId("Grüße <news.example.com>")).toBe("List-Id: =?utf-8?B?R3LDvMOfZQ==?= <news.example.com>");
    expect(await listId("<x.localhost>")).toBe("List-Id: <x.localhost>");
  });

  it("a List-Id description is encoded in the message's charset, and stays encoded under SMTPUTF8", async () => {
    const latin = new EmailMessage(base({ listId: "Café <cafe.example.com>", encoding: "iso-8859-1" }));
    expect(headerBlock(await latin.asBytes())).toContain("List-Id: =?iso-8859-1?Q?Caf=E9?= <cafe.example.com>\r\n");
    const utf8 = new EmailMessage(base({ listId: "Café <cafe.example.com>" }));
    expect(headerBlock(await utf8.asBytes(policies.smtputf8))).toContain("List-Id: =?utf-8?B?Q2Fmw6k=?= <cafe.example.com>\r\n");
  });

  it("List-Help and List-Archive take one URL or several, in the order given", async () => {
    const block = headerBlock(await new EmailMessage(base({ listHelp: ["mailto:h@example.com?subject=help", "https://example.com/help"], listArchive: "https://example.com/archive" })).asBytes());
    expect(block).toContain("List-Help: <mailto:h@example.com?subject=help>, <https://example.com/help>\r\n");
    expect(block).toContain("List-Archive: <https://example.com/archive>\r\n");
  });

  it("mailto given as parts: addresses (A-label domains), subject and body percent-encoded, body line breaks as %0D%0A", () => {
    const msg = new EmailMessage(base({ listUnsubscribe: { mailto: { address: ["a+b@bücher.example", "c@example.com"], subject: "stop = 100% & now?", body: "line 1\nline 2\r\nline 3\r" } } }));
    expect(msg.listUnsubscribe).toEqual({ mailto: "mailto:a+b@xn--bcher-kva.example,c@example.com?subject=stop%20%3D%20100%25%20%26%20now%3F&body=line%201%0D%0Aline%202%0D%0Aline%203%0D%0A" });
    expect(Object.isFrozen(msg.listUnsubscribe)).toBe(true);
  });

  it("a URL of MAX_URL_LENGTH characters renders within 998-octet lines; one more is refused when set", async () => {
    const url = (n: number) => `https://example.com/${"a".repeat(n - "https://example.com/".length)}`;
    const bytes = await new EmailMessage(base({ listUnsubscribe: { url: url(MAX_URL_LENGTH), mailto: `mailto:u@example.com?subject=${"b".repeat(900)}`, oneClick: true } })).asBytes();
    const lines = headerBlock(bytes).split("\r\n");
    expect(Math.max(...lines.map((l) => l.length))).toBe(998);
    expect(() => new EmailMessage(base({ listUnsubscribe: { url: url(MAX_URL_LENGTH + 1) } }))).toThrow(BadHeaderError);
  });
});

describe("read/write properties", () => {
  it("read back what was set (objects and lists frozen), and undefined clears an option", async () => {
    const msg = new EmailMultiAlternatives(base({ listId: "<a.example.com>", listHelp: ["https://example.com/h"], priority: "low" }));
    expect(msg.listId).toBe("<a.example.com>");
    expect(msg.listHelp).toEqual(["https://example.com/h"]);
    expect(Object.isFrozen(msg.listHelp)).toBe(true);
    expect(msg.priority).toBe("low");
    expect(msg.listUnsubscribe).toBeUndefined();
    msg.listUnsubscribe = { url: "https://example.com/u", oneClick: true };
    msg.autoSubmitted = "auto-generated";
    msg.listArchive = "https://example.com/a";
    msg.priority = undefined;
    msg.listId = undefined;
    const got = names(await msg.asBytes());
    expect(got).toEqual(expect.arrayContaining(["List-Help", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Archive", "Auto-Submitted"]));
    expect(got).not.toContain("List-Id");
    expect(got).not.toContain("X-Priority");
  });

  it("changing an option is a new message: it is frozen again (the cached rendering is not reused)", async () => {
    const msg = new EmailMessage(base({ listId: "<a.example.com>" }));
    const first = await msg.asBytes();
    expect(await msg.asBytes()).toEqual(first);
    msg.listId = "<b.example.com>";
    const second = headerBlock(await msg.asBytes());
    expect(second).toContain("List-Id: <b.example.com>\r\n");
    expect(second).not.toContain("a.example.com");
  });

  it("a failed assignment leaves the message as it was", () => {
    const msg = new EmailMessage(base({ listUnsubscribe: { url: "https://example.com/u" } }));
    expect(() => (msg.listUnsubscribe = { url: "http://example.com/u", oneClick: true })).toThrow(BadHeaderError);
    expect(msg.listUnsubscribe).toEqual({ url: "https://example.com/u" });
  });
});

describe("bad input is refused when set, with an error that says what is wrong", () => {
  const cases: [string, EmailMessageOptions, typeof BadHeaderError | typeof InvalidArgumentError | typeof EncodingError, RegExp][] = [
    ["oneClick with an http: URL", { listUnsubscribe: { url: "http://example.com/u", oneClick: true } }, BadHeaderError, /needs an https: URL.*"http:\/\/example.com\/u" is not https:/],
    ["oneClick with only a mailto", { listUnsubscribe: { mailto: "mailto:u@example.com", oneClick: true } }, BadHeaderError, /One-click unsubscribe \(RFC 8058\) needs an https: URL.*there is no url/],
    ["neither url nor mailto", { listUnsubscribe: {} }, InvalidArgumentError, /needs a url, a mailto, or both/],
    ["an unknown key", { listUnsubscribe: { url: "https://example.com/u", oneclick: true } as never }, InvalidArgumentError, /not "oneclick"/],
    ["oneClick that is not a boolean", { listUnsubscribe: { url: "https://example.com/u", oneClick: "yes" } as never }, InvalidArgumentError, /true or false/],
    ["not an object", { listUnsubscribe: "https://example.com/u" as never }, InvalidArgumentError, /must be an object/],
    ["a URL with a space", { listUnsubscribe: { url: "https://example.com/un subscribe" } }, BadHeaderError, /a space at offset 22.*percent-encode/],
    ["a URL with a tab", { listUnsubscribe: { url: "https://example.com/\tx" } }, BadHeaderError, /a tab at offset 20/],
    ["a URL with angle brackets", { listUnsubscribe: { url: "https://example.com/u>, <https://evil.example/" } }, BadHeaderError, /">" at offset 21; angle brackets enclose the URL/],
    ["a URL with CR LF", { listUnsubscribe: { url: "https://example.com/u\r\nBcc: x@evil.example" } }, BadHeaderError, /carriage return \(CR\) at offset 21.*header injection/],
    ["a URL with a lone LF", { listUnsubscribe: { url: "https://example.com/u\nX: y" } }, BadHeaderError, /line feed/],
    ["a URL with NUL", { listUnsubscribe: { url: "https://example.com/\0" } }, BadHeaderError, /NUL/],
    ["a URL with raw non-ASCII", { listUnsubscribe: { url: "https://example.com/ünsubscribe" } }, BadHeaderError, /"ü".*percent-encode it as UTF-8/],
    ["a URL with a quote", { listUnsubscribe: { url: 'https://example.com/"x"' } }, BadHeaderError, /'"'|"\\""/],
    ["a stray %", { listUnsubscribe: { url: "https://example.com/100%" } }, BadHeaderError, /does not start a percent-encoding/],
    ["a URL without a host", { listUnsubscribe: { url: "https:///path" } }, BadHeaderError, /not an http: or https: URL with a host/],
    ["a URL without //", { listUnsubscribe: { url: "https:example.com" } }, BadHeaderError, /not an http: or https: URL with a host/],
    ["a mailto: in url", { listUnsubscribe: { url: "mailto:u@example.com" } }, BadHeaderError, /must be an https: URL.*goes in listUnsubscribe.mailto/],
    ["an https: in mailto", { listUnsubscribe: { mailto: "https://example.com/u" } }, BadHeaderError, /must be a mailto: URI.*goes in listUnsubscribe.url/],
    ["another scheme", { listUnsubscribe: { url: "ftp://example.com/u" } }, BadHeaderError, /not an https:, http: or mailto: URL/],
    ["an empty URL", { listUnsubscribe: { url: "" } }, BadHeaderError, /the URL is empty/],
    ["a mailto with raw CR LF", { listUnsubscribe: { mailto: "mailto:u@example.com?subject=x\r\nBcc: e@evil.example" } }, BadHeaderError, /carriage return/],
    ["a mailto subject with an encoded CR LF", { listUnsubscribe: { mailto: "mailto:u@example.com?subject=x%0D%0ABcc:%20e@evil.example" } }, BadHeaderError, /subject field holds a CR, LF or NUL once decoded/],
    ["a mailto body with a lone encoded LF", { listUnsubscribe: { mailto: "mailto:u@example.com?body=a%0Ab" } }, BadHeaderError, /body field holds a CR or LF that is not part of a CRLF pair/],
    ["a mailto subject not percent-encoded", { listUnsubscribe: { mailto: "mailto:u@example.com?subject=a=b" } }, BadHeaderError, /"subject" field holds "=", which must be percent-encoded/],
    ["a mailto with #", { listUnsubscribe: { mailto: "mailto:u@example.com?subject=a#b" } }, BadHeaderError, /holds "#"/],
    ["a mailto without an address", { listUnsubscribe: { mailto: "mailto:?subject=x" } }, BadHeaderError, /no address after "mailto:"/],
    ["a mailto with a bad address", { listUnsubscribe: { mailto: "mailto:no-at-sign" } }, BadHeaderError, /"no-at-sign" is not a bare address/],
    ["a mailto with a bad domain", { listUnsubscribe: { mailto: "mailto:u@-bad-.example" } }, BadHeaderError, /starts or ends with a hyphen/],
    ["a mailto with a display name", { listUnsubscribe: { mailto: "mailto:Ann%20%3Cu@example.com%3E" } }, BadHeaderError, /is not a bare address/],
    ["a mailto with a bad cc", { listUnsubscribe: { mailto: "mailto:u@example.com?cc=nobody" } }, BadHeaderError, /"nobody" is not a bare address/],
    ["a mailto field without =", { listUnsubscribe: { mailto: "mailto:u@example.com?subject" } }, BadHeaderError, /must be name=value/],
    ["a mailto with bad UTF-8", { listUnsubscribe: { mailto: "mailto:u@example.com?subject=%C3" } }, BadHeaderError, /does not percent-decode to UTF-8/],
    ["mailto parts with CR in the subject", { listUnsubscribe: { mailto: { address: "u@example.com", subject: "a\r\nBcc: e@evil.example" } } }, BadHeaderError, /header injection/],
    ["mailto parts with a bad address", { listUnsubscribe: { mailto: { address: "nobody" } } }, BadHeaderError, /"nobody" is not an address/],
    ["mailto parts with an unknown key", { listUnsubscribe: { mailto: { address: "u@example.com", to: "x" } as never } }, InvalidArgumentError, /not "to"/],
    ["mailto parts without an address", { listUnsubscribe: { mailto: { address: [] } } }, InvalidArgumentError, /needs an address/],
    ["a List-Id without angle brackets", { listId: "news.example.com" }, BadHeaderError, /"Description <list.example.com>" or "<list.example.com>" \(RFC 2919\)/],
    ["a List-Id without a dot", { listId: "News <news>" }, BadHeaderError, /"news" is not a list identifier.*at least one dot/],
    ["a List-Id with an empty label", { listId: "<news..example.com>" }, BadHeaderError, /is not a list identifier/],
    ["a List-Id with an @", { listId: "<news@example.com>" }, BadHeaderError, /is not a list identifier/],
    ["a List-Id with non-ASCII in the id", { listId: "<nëws.example.com>" }, BadHeaderError, /ASCII dot-atom/],
    ["a List-Id with text after the id", { listId: "<news.example.com> more" }, BadHeaderError, /RFC 2919/],
    ["a List-Id over 255 octets", { listId: `<${"a".repeat(250)}.example.com>` }, BadHeaderError, /longer than 255 \(RFC 2919 §2\)/],
    ["a List-Id with CR LF", { listId: "News\r\nBcc: e@evil.example <news.example.com>" }, BadHeaderError, /header injection/],
    ["a List-Id with a lone surrogate", { listId: "N\ud800 <news.example.com>" }, EncodingError, /surrogate/],
    ["a List-Id that is not a string", { listId: 5 as never }, InvalidArgumentError, /must be a string/],
    ["an empty List-Help list", { listHelp: [] }, InvalidArgumentError, /at least one URL/],
    ["a List-Archive URL with a space", { listArchive: ["https://example.com/a b"] }, BadHeaderError, /^List-Archive: .*a space/],
    ["a priority that is not one", { priority: "urgent" as never }, InvalidArgumentError, /"high", "normal" or "low"/],
    ["an Auto-Submitted that is not one", { autoSubmitted: "yes" as never }, InvalidArgumentError, /"auto-generated" or "auto-replied" \(RFC 3834 §5\)/],
  ];
  for (const [what, options, cls, message] of cases) {
    it(what, () => {
      const err = errorOf(() => new EmailMessage(base(options)));
      expect(err).toBeInstanceOf(cls);
      expect((err as Error).message).toMatch(message);
    });
  }

  it("a BadHeaderError names the header it is about", () => {
    expect((errorOf(() => new EmailMessage(base({ listUnsubscribe: { url: "https://x.example/ y" } }))) as BadHeaderError).field).toBe("List-Unsubscribe");
    expect((errorOf(() => new EmailMessage(base({ listUnsubscribe: { url: "http://x.example/", oneClick: true } }))) as BadHeaderError).field).toBe("List-Unsubscribe-Post");
    expect((errorOf(() => new EmailMessage(base({ listId: "x" }))) as BadHeaderError).field).toBe("List-Id");
  });
});

describe("an option and the same header through `headers`", () => {
  it("each name an option owns, in any case, given through headers too, is a BadHeaderError, in either order", () => {
    const option: Record<keyof typeof LIST_OPTION_HEADERS, EmailMessageOptions> = {
      listId: { listId: "<a.example.com>" },
      listUnsubscribe: { listUnsubscribe: { url: "https://example.com/u" } },
      listHelp: { listHelp: "https://example.com/h" },
      listArchive: { listArchive: "https://example.com/a" },
      autoSubmitted: { autoSubmitted: "auto-generated" },
      priority: { priority: "normal" },
    };
    for (const [name, owned] of Object.entries(LIST_OPTION_HEADERS)) {
      for (const header of owned) {
        for (const spelling of [header, header.toLowerCase(), header.toUpperCase()]) {
          const both = errorOf(() => new EmailMessage(base({ headers: { [spelling]: "x" }, ...option[name as keyof typeof option] })));
          expect(both, `${name} + ${spelling}`).toBeInstanceOf(BadHeaderError);
          expect((both as Error).message).toContain(`${spelling} is written by the ${name} option, and headers has it too`);
          const msg = new EmailMessage(base(option[name as keyof typeof option]));
          expect(() => (msg.headers = { [spelling]: "x" }), `headers after ${name}`).toThrow(BadHeaderError);
        }
      }
    }
  });

  it("a header added to the headers object in place is caught when the message is rendered", async () => {
    const msg = new EmailMessage(base({ listId: "<a.example.com>" }));
    msg.headers["List-ID"] = "<b.example.com>";
    await expect(msg.asBytes()).rejects.toThrow(/List-ID is written by the listId option/);
  });

  it("without the option, the raw header is written as given (the escape hatch stays)", async () => {
    const msg = new EmailMessage(base({ headers: { "List-Unsubscribe": "<https://example.com/raw>" }, listId: "<a.example.com>" }));
    const block = headerBlock(await msg.asBytes());
    expect(block).toContain("List-Id: <a.example.com>\r\n");
    expect(block).toContain("List-Unsubscribe: <https://example.com/raw>\r\n");
  });
});

/** Python's urllib.parse on each mailto: URI: the addresses and the decoded fields. */
function pythonMailto(uris: string[]): Promise<{ to: string[]; fields: Record<string, string[]> }[]> {
  const script = [
    "import json, sys, urllib.parse, email.utils",
    "out = []",
    "for uri in json.load(sys.stdin):",
    "    parts = urllib.parse.urlsplit(uri)",
    "    to = [a for _, a in email.utils.getaddresses([urllib.parse.unquote(parts.path)])]",
    "    out.append({'to': to, 'fields': urllib.parse.parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)})",
    "print(json.dumps(out))",
  ].join("\n");
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, ["-c", script], { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout))));
    child.stdin!.end(JSON.stringify(uris));
  });
}

describe("Python reads the fields back", () => {
  it("its email package reads each fixture's fields with the values we meant", async () => {
    const fixtures = ["list-unsubscribe-one-click", "list-unsubscribe-mailto-parts", "list-id-description", "priority-high", "priority-low-auto-submitted"];
    const parsed = await parseWithPython(await Promise.all(fixtures.map((f) => readFile(`${fixturesDir}${f}.eml`))));
    const field = (i: number, name: string) => parsed[i]!.headers.filter(([n]) => n === name).map(([, v]) => v);
    for (const p of parsed) expect(p.defects).toEqual([]);
    expect(field(0, "List-Unsubscribe")).toEqual(["<https://news.example.com/unsubscribe?u=3f9a2c7e&l=weekly>, <mailto:unsubscribe@news.example.com?subject=unsubscribe%203f9a2c7e>"]);
    expect(field(0, "List-Unsubscribe-Post")).toEqual(["List-Unsubscribe=One-Click"]);
    expect(field(1, "List-Unsubscribe-Post")).toEqual([]);
    expect(field(2, "List-Id")).toEqual(["Wöchentliche Neuigkeiten von Bücher & Co <weekly.news.example.com>"]);
    expect(field(2, "List-Help")).toEqual(["<https://news.example.com/help>"]);
    expect(field(2, "List-Archive")).toEqual(["<https://news.example.com/archive>, <mailto:archive@news.example.com?subject=index>"]);
    expect([field(3, "X-Priority"), field(3, "X-MSMail-Priority"), field(3, "Importance")]).toEqual([["1 (Highest)"], ["High"], ["high"]]);
    expect([field(4, "X-Priority"), field(4, "X-MSMail-Priority"), field(4, "Importance")]).toEqual([["5 (Lowest)"], ["Low"], ["low"]]);
    expect(field(4, "Auto-Submitted")).toEqual(["auto-generated"]);
  });

  it("urllib.parse decodes our mailto: URIs to the addresses, subject and body we gave", async () => {
    const subject = "Désabonner = 100% & fini? ;:@!$'()*+,/ 🎉";
    const body = "Line one\nLine two";
    const msg = new EmailMessage(base({ listUnsubscribe: { mailto: { address: ["u+tag@bücher.example", "o'neil@example.com"], subject, body } } }));
    const [py] = await pythonMailto([msg.listUnsubscribe!.mailto as string]);
    expect(py!.to).toEqual(["u+tag@xn--bcher-kva.example", "o'neil@example.com"]);
    expect(py!.fields).toEqual({ subject: [subject], body: ["Line one\r\nLine two"] });
  });
});
