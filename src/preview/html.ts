/**
 * What the preview needs to know about a message's HTML, read by one linear pass over the
 * text (no regular expressions over it, no DOM): the start tags and their attributes with
 * positions, so that `cid:` references can be pointed at the message's parts, remote
 * images counted and a `<meta http-equiv=refresh>` disarmed. This is not a sanitizer: the
 * HTML is shown in a sandboxed frame whose Content-Security-Policy allows no script and
 * no remote load; this pass only makes inline images work inside those rules.
 */

export interface HtmlAttribute {
  name: string;
  value: string;
  /** Where the value is in the source (for rewriting); equal when the attribute has no value. */
  start: number;
  end: number;
}

export interface HtmlTag {
  name: string;
  attributes: HtmlAttribute[];
}

/** CSS `url(...)` inside a style attribute or a <style> element, with its position in the source. */
export interface CssUrl {
  url: string;
  start: number;
  end: number;
}

export interface HtmlScan {
  tags: HtmlTag[];
  cssUrls: CssUrl[];
  /** Text inside <script> elements was skipped; this counts the elements. */
  scripts: number;
}

/** Tags past this many are not collected (the pass still ends in linear time). */
const MAX_TAGS = 100_000;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

function isNameChar(c: number): boolean {
  return !isSpace(c) && c !== 0x2f && c !== 0x3e && c !== 0x3d && c !== 0x3c && !Number.isNaN(c);
}

/** Finds `needle` (lower case ASCII) in `text` from `from`, ignoring ASCII case. */
function indexOfIgnoreCase(text: string, needle: string, from: number): number {
  const first = needle.charCodeAt(0);
  for (let i = from; i <= text.length - needle.length; i++) {
    if ((text.charCodeAt(i) | 0x20) !== first) continue;
    let j = 1;
    while (j < needle.length && (text.charCodeAt(i + j) | 0x20) === needle.charCodeAt(j)) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/** `url(...)` references in CSS text, offsets relative to `base`. */
export function cssUrls(css: string, base = 0): CssUrl[] {
  const out: CssUrl[] = [];
  let at = 0;
  for (;;) {
    const open = indexOfIgnoreCase(css, "url(", at);
    if (open === -1) return out;
    let i = open + 4;
    while (i < css.length && isSpace(css.charCodeAt(i))) i++;
    const quote = css[i] === '"' || css[i] === "'" ? css[i] : undefined;
    if (quote) i++;
    const start = i;
    while (i < css.length && (quote ? css[i] !== quote : css[i] !== ")" && !isSpace(css.charCodeAt(i)))) i++;
    out.push({ url: css.slice(start, i), start: base + start, end: base + i });
    at = i + 1;
  }
}

/** One pass over the HTML: start tags with attributes, CSS urls, script elements. */
export function scanHtml(html: string): HtmlScan {
  const tags: HtmlTag[] = [];
  const css: CssUrl[] = [];
  let scripts = 0;
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf("<", i);
    if (lt === -1) break;
    if (html.startsWith("<!--", lt)) {
      const close = html.indexOf("-->", lt + 4);
      i = close === -1 ? html.length : close + 3;
      continue;
    }
    let j = lt + 1;
    if (html[j] === "/" || html[j] === "!" || html[j] === "?") {
      const gt = html.indexOf(">", j);
      i = gt === -1 ? html.length : gt + 1;
      continue;
    }
    const nameStart = j;
    while (j < html.length && isNameChar(html.charCodeAt(j))) j++;
    if (j === nameStart) {
      i = lt + 1;
      continue;
    }
    const name = html.slice(nameStart, j).toLowerCase();
    const attributes: HtmlAttribute[] = [];
    // Attributes, up to ">" (outside quotes).
    while (j < html.length && html[j] !== ">") {
      const c = html.charCodeAt(j);
      if (isSpace(c) || c === 0x2f) {
        j++;
        continue;
      }
      const attrStart = j;
      while (j < html.length && isNameChar(html.charCodeAt(j))) j++;
      if (j === attrStart) {
        j++; // a stray "=" or "<": skip it
        continue;
      }
      const attrName = html.slice(attrStart, j).toLowerCase();
      let k = j;
      while (k < html.length && isSpace(html.charCodeAt(k))) k++;
      if (html[k] !== "=") {
        attributes.push({ name: attrName, value: "", start: j, end: j });
        continue;
      }
      k++;
      while (k < html.length && isSpace(html.charCodeAt(k))) k++;
      const quote = html[k] === '"' || html[k] === "'" ? html[k] : undefined;
      let start = k;
      let end: number;
      if (quote !== undefined) {
        start = k + 1;
        end = html.indexOf(quote, start);
        if (end === -1) end = html.length;
        j = Math.min(end + 1, html.length);
      } else {
        end = start;
        while (end < html.length && !isSpace(html.charCodeAt(end)) && html[end] !== ">") end++;
        j = end;
      }
      const value = decodeEntities(html.slice(start, end));
      attributes.push({ name: attrName, value, start, end });
      if (attrName === "style") css.push(...cssUrls(html.slice(start, end), start));
    }
    i = j + 1;
    if (tags.length < MAX_TAGS) tags.push({ name, attributes });
    if (name === "script" || name === "style" || name === "textarea" || name === "title") {
      // Raw text: nothing inside is a tag; only <style> text is read (for its url()s).
      const close = indexOfIgnoreCase(html, `</${name}`, i);
      const textEnd = close === -1 ? html.length : close;
      if (name === "script") scripts++;
      if (name === "style") css.push(...cssUrls(html.slice(i, textEnd), i));
      i = textEnd;
    }
  }
  return { tags, cssUrls: css, scripts };
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", colon: ":", sol: "/", tab: "\t", newline: "\n" };

/** The character references attribute values use in practice (`&amp;`, `&#58;`, `&#x3a;`, `&colon;`). */
function decodeEntities(text: string): string {
  if (!text.includes("&")) return text;
  let out = "";
  let i = 0;
  while (i < text.length) {
    const amp = text.indexOf("&", i);
    if (amp === -1) break;
    out += text.slice(i, amp);
    let j = amp + 1;
    while (j < text.length && j - amp < 12 && /[#0-9a-zA-Z]/.test(text[j]!)) j++;
    const body = text.slice(amp + 1, j);
    let decoded: string | undefined;
    if (body.startsWith("#x") || body.startsWith("#X")) decoded = codePoint(parseInt(body.slice(2), 16));
    else if (body.startsWith("#")) decoded = codePoint(parseInt(body.slice(1), 10));
    else decoded = ENTITIES[body.toLowerCase()];
    if (decoded === undefined) {
      out += "&";
      i = amp + 1;
      continue;
    }
    out += decoded;
    i = text[j] === ";" ? j + 1 : j;
  }
  return out + text.slice(i);
}

function codePoint(n: number): string | undefined {
  return Number.isInteger(n) && n > 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff) ? String.fromCodePoint(n) : undefined;
}

/** The content id a `cid:` URL names (RFC 2392: percent-encoded), or undefined for another URL. */
export function cidOf(url: string): string | undefined {
  const trimmed = url.trim();
  if (trimmed.length < 4 || trimmed.slice(0, 4).toLowerCase() !== "cid:") return undefined;
  try {
    return decodeURIComponent(trimmed.slice(4));
  } catch {
    return trimmed.slice(4);
  }
}

/** Whether a URL would load from the network (http, https, or protocol-relative). */
export function isRemote(url: string): boolean {
  const u = url.trim().toLowerCase();
  return u.startsWith("http:") || u.startsWith("https:") || u.startsWith("//");
}

/** Image URLs in a tag: src of images and inputs, srcset entries, background, poster. */
function imageUrls(tag: HtmlTag): HtmlAttribute[] {
  const out: HtmlAttribute[] = [];
  for (const a of tag.attributes) {
    if (a.name === "background" || a.name === "poster") out.push(a);
    else if (a.name === "src" && (tag.name === "img" || tag.name === "input" || tag.name === "image")) out.push(a);
    else if (a.name === "srcset") {
      for (const candidate of a.value.split(",")) {
        const url = candidate.trim().split(/\s+/)[0] ?? "";
        if (url !== "") out.push({ name: "srcset", value: url, start: a.start, end: a.start });
      }
    }
  }
  return out;
}

export interface HtmlFacts {
  images: { src: string; alt: string | undefined }[];
  /** Content ids referenced with `cid:` (images, backgrounds, CSS). */
  cids: string[];
  remoteImages: number;
  /** Script elements, `on*` handler attributes and `javascript:` URLs. */
  scripts: number;
}

export function htmlFacts(scan: HtmlScan): HtmlFacts {
  const images: HtmlFacts["images"] = [];
  const cids: string[] = [];
  let remoteImages = 0;
  let scripts = scan.scripts;
  for (const tag of scan.tags) {
    if (tag.name === "img") {
      const src = tag.attributes.find((a) => a.name === "src")?.value ?? "";
      images.push({ src, alt: tag.attributes.find((a) => a.name === "alt")?.value });
    }
    for (const url of imageUrls(tag)) {
      const cid = cidOf(url.value);
      if (cid !== undefined) cids.push(cid);
      else if (isRemote(url.value)) remoteImages++;
    }
    for (const a of tag.attributes) {
      if (a.name.startsWith("on")) scripts++;
      else if ((a.name === "href" || a.name === "src" || a.name === "action" || a.name === "formaction") && a.value.trim().toLowerCase().startsWith("javascript:")) scripts++;
    }
  }
  for (const u of scan.cssUrls) {
    const cid = cidOf(u.url);
    if (cid !== undefined) cids.push(cid);
    else if (isRemote(u.url)) remoteImages++;
  }
  return { images, cids, remoteImages, scripts };
}

/**
 * The HTML as the preview frame serves it: every `cid:` reference that `partUrl` knows
 * replaced by that URL, and `<meta http-equiv="refresh">` disarmed (a sandboxed frame may
 * still navigate itself; a refresh would load a remote page without being asked).
 */
export function rewriteForFrame(html: string, scan: HtmlScan, partUrl: (cid: string) => string | undefined): string {
  const edits: { start: number; end: number; text: string }[] = [];
  const cidEdit = (value: string, start: number, end: number) => {
    const cid = cidOf(value);
    const url = cid === undefined ? undefined : partUrl(cid);
    if (url !== undefined && end > start) edits.push({ start, end, text: url });
  };
  for (const tag of scan.tags) {
    for (const a of tag.attributes) {
      if (a.name === "src" || a.name === "background" || a.name === "poster" || a.name === "href") cidEdit(a.value, a.start, a.end);
      if (tag.name === "meta" && a.name === "http-equiv" && a.value.trim().toLowerCase() === "refresh" && a.end > a.start) {
        edits.push({ start: a.start, end: a.end, text: "x-refresh-disabled" });
      }
    }
  }
  for (const u of scan.cssUrls) cidEdit(u.url, u.start, u.end);
  edits.sort((a, b) => a.start - b.start);
  let out = "";
  let at = 0;
  for (const e of edits) {
    if (e.start < at) continue;
    out += html.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + html.slice(at);
}

/** The visible text of some HTML, roughly (tags dropped, script and style contents skipped), for a one-line snippet. */
export function htmlText(html: string, max = 400): string {
  let out = "";
  let i = 0;
  while (i < html.length && out.length < max) {
    const lt = html.indexOf("<", i);
    out += html.slice(i, lt === -1 ? html.length : lt);
    if (lt === -1) break;
    const gt = html.indexOf(">", lt);
    if (gt === -1) break;
    const tag = html.slice(lt + 1, Math.min(gt, lt + 8)).toLowerCase();
    const raw = tag.startsWith("script") ? "script" : tag.startsWith("style") ? "style" : undefined;
    if (raw !== undefined) {
      const close = indexOfIgnoreCase(html, `</${raw}`, gt);
      i = close === -1 ? html.length : close;
      continue;
    }
    out += " ";
    i = gt + 1;
  }
  return decodeEntities(out);
}

