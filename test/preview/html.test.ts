/**
 * The HTML pass and the checks panel: what each check catches (and does not), and that
 * the pass reads hostile markup without being fooled or slowed.
 */
import { describe, expect, it } from "vitest";
import { parseMessageSync } from "../../src/parse/index.js";
import { runChecks } from "../../src/preview/checks.js";
import { htmlFacts, htmlText, rewriteForFrame, scanHtml } from "../../src/preview/html.js";

const facts = (html: string) => htmlFacts(scanHtml(html));

function message(parts: { html?: string; text?: string; headers?: string[]; inline?: { cid: string }[] }): string {
  const b = "b";
  const lines = ["From: a@example.org", "To: b@example.org", "Subject: t", "Date: Sat, 21 Nov 2026 09:30:00 +0000", "Message-ID: <1@example.org>", ...(parts.headers ?? []), `Content-Type: multipart/related; boundary=${b}`, ""];
  if (parts.text !== undefined) lines.push(`--${b}`, "Content-Type: text/plain; charset=utf-8", "", parts.text);
  if (parts.html !== undefined) lines.push(`--${b}`, "Content-Type: text/html; charset=utf-8", "", parts.html);
  for (const i of parts.inline ?? []) lines.push(`--${b}`, "Content-Type: image/png", `Content-ID: <${i.cid}>`, "Content-Transfer-Encoding: base64", "", "iVBORw0KGgo=");
  lines.push(`--${b}--`, "");
  return lines.join("\r\n");
}

const ids = (raw: string, envelope?: Parameters<typeof runChecks>[1]) => runChecks(parseMessageSync(raw), envelope).map((c) => c.id);

describe("the HTML pass", () => {
  it("finds images, alt text, cid references (src, background, CSS) and remote images", () => {
    const f = facts(`<style>body { background: url("cid:bg") } .x { background-image: url(https://t.example/a.png) }</style>
      <img src="cid:logo" alt="Logo"><IMG SRC='https://t.example/p.gif'><img src=//cdn.example/x.png alt="">
      <td background="cid:cell"><div style="background:url( 'http://t.example/s.png' )"></div>
      <img srcset="https://a.example/1x.png 1x, cid:two 2x">`);
    expect(f.images).toEqual([
      { src: "cid:logo", alt: "Logo" },
      { src: "https://t.example/p.gif", alt: undefined },
      { src: "//cdn.example/x.png", alt: "" },
      { src: "", alt: undefined },
    ]);
    expect(f.cids.sort()).toEqual(["bg", "cell", "logo", "two"]);
    expect(f.remoteImages).toBe(5);
  });

  it("counts scripts however they are spelled: elements, handlers, javascript: URLs behind entities", () => {
    const f = facts(`<script>alert(1)</script><SCRIPT src=x></SCRIPT><img src=x onerror=alert(1)><a href="java&#115;cript&colon;alert(1)">x</a><a href="  JAVASCRIPT:void(0)">y</a>`);
    expect(f.scripts).toBe(5);
    // Inside comments and raw text nothing is a tag.
    expect(facts(`<!-- <img src=cid:no> --><textarea><img src=cid:no></textarea><script>"<img src=cid:no>"</script>`).cids).toEqual([]);
  });

  it("points cid: references at the message's parts and disarms a meta refresh, leaving the rest byte for byte", () => {
    const html = `<meta http-equiv="Refresh" content="0;url=https://evil.example"><img src="cid:logo" alt=x><p style="background:url(cid:bg)">é</p><img src="cid:missing">`;
    const out = rewriteForFrame(html, scanHtml(html), (cid) => (cid === "missing" ? undefined : `/parts/${cid}`));
    expect(out).toBe(`<meta http-equiv="x-refresh-disabled" content="0;url=https://evil.example"><img src="/parts/logo" alt=x><p style="background:url(/parts/bg)">é</p><img src="cid:missing">`);
  });

  it("gives the visible text for the list's snippet, without script or style contents", () => {
    expect(htmlText("<style>p{color:red}</style><p>Hello&nbsp;<b>Zo&euml;</b> &amp; co</p><script>alert(1)</script>after").replace(/\s+/g, " ").trim()).toBe(
      "Hello&nbsp; Zo&euml; & co after",
    );
    expect(htmlText("<script>".repeat(100_000))).toBe("");
  });

  it("reads pathological markup in linear time: 200,000 unclosed tags, quotes and comments", () => {
    for (const html of ["<a ".repeat(200_000), `<img src="${"x".repeat(1_000_000)}`, "<!--".repeat(200_000), "<".repeat(500_000), `<style>${"url(".repeat(200_000)}`]) {
      const scan = scanHtml(html);
      expect(scan.tags.length).toBeLessThanOrEqual(200_000);
      expect(typeof rewriteForFrame(html, scan, () => undefined)).toBe("string");
    }
  });
});

describe("the checks panel", () => {
  it("is quiet for a good message", () => {
    expect(ids(message({ text: "hi", html: '<p>hi <img src="cid:logo" alt="logo"></p>', inline: [{ cid: "logo" }] }))).toEqual([]);
  });

  it("no text alternative", () => {
    expect(ids(message({ html: "<p>hi</p>" }))).toEqual(["no-text-alternative"]);
  });

  it("images without alt text", () => {
    expect(ids(message({ text: "t", html: '<img src="cid:logo">', inline: [{ cid: "logo" }] }))).toEqual(["image-without-alt"]);
  });

  it("broken cid: references, and inline images nothing uses", () => {
    expect(ids(message({ text: "t", html: '<img src="cid:nope" alt="">', inline: [{ cid: "logo" }] }))).toEqual(["broken-cid", "unused-inline-image"]);
  });

  it("HTML over 100 KB (Gmail clips at 102 KB)", () => {
    expect(ids(message({ text: "t", html: `<p>${"x".repeat(100 * 1024)}</p>` }))).toEqual(["html-too-large"]);
    expect(ids(message({ text: "t", html: `<p>${"x".repeat(100 * 1024 - 7)}</p>` }))).toEqual([]);
  });

  it("bulk mail without List-Unsubscribe, or without one-click", () => {
    expect(ids(message({ text: "t", headers: ["Precedence: bulk"] }))).toEqual(["missing-list-unsubscribe"]);
    expect(ids(message({ text: "t", headers: ["List-Id: <news.example.org>", "List-Unsubscribe: <https://example.org/u>"] }))).toEqual(["missing-one-click"]);
    expect(ids(message({ text: "t" }), { to: Array.from({ length: 11 }, (_, i) => `r${i}@example.org`) })).toEqual(["missing-list-unsubscribe"]);
    expect(ids(message({ text: "t", headers: ["Precedence: list", "List-Unsubscribe: <https://example.org/u>", "List-Unsubscribe-Post: List-Unsubscribe=One-Click"] }))).toEqual([]);
  });

  it("non-ASCII header text that is not encoded (but not when SMTPUTF8 was used)", () => {
    const raw = message({ text: "t", headers: ["X-Note: Grüße"] });
    expect(ids(raw)).toEqual(["non-ascii-header"]);
    expect(ids(raw, { to: ["b@example.org"], mailParams: { SMTPUTF8: "" } })).toEqual(["utf8-headers"]);
  });

  it("scripts, remote images, missing required headers, malformed structure", () => {
    expect(ids(message({ text: "t", html: '<img src="https://t.example/p.gif" alt=""><script>x()</script>' }))).toEqual(["scripts", "remote-images"]);
    expect(ids("Subject: bare\r\n\r\nhi\r\n")).toEqual(["missing-headers"]);
    expect(ids(message({ text: "t" }).replace("--b--", "--c--"))).toEqual(["malformed"]);
  });
});
