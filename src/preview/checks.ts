/**
 * The checks panel: what will go wrong for this message in real mail clients and at the
 * big providers, found from the parsed message alone. Each check is a small function;
 * `runChecks` lists what they found, most serious first.
 */
import type { MimeNode, ParsedMessage } from "../parse/types.js";
import { htmlFacts, scanHtml, type HtmlFacts } from "./html.js";

export type CheckLevel = "error" | "warning" | "info";

export interface CheckResult {
  /** A stable name, e.g. "no-text-alternative". */
  id: string;
  level: CheckLevel;
  /** What is wrong, in one line. */
  title: string;
  /** Why it matters and what to do. */
  detail: string;
}

/** Gmail clips a message whose HTML is over 102 KB ("[Message clipped]"); warn a little before. */
export const HTML_SIZE_LIMIT = 100 * 1024;

/** How many envelope recipients make a message look like bulk mail. */
const BULK_RECIPIENTS = 10;

interface Context {
  message: ParsedMessage;
  facts: HtmlFacts | undefined;
  /** The sender used SMTPUTF8, so raw UTF-8 headers are allowed (RFC 6532). */
  smtputf8: boolean;
  recipients: number;
}

type Check = (c: Context) => CheckResult[];

function leaves(node: MimeNode): MimeNode[] {
  return node.children ? node.children.flatMap(leaves) : [node];
}

const checks: Check[] = [
  function malformed({ message }) {
    if (message.defects.length === 0) return [];
    const codes = [...new Set(message.defects.map((d) => d.code))];
    return [
      {
        id: "malformed",
        level: "error",
        title: `The message is malformed (${codes.join(", ")})`,
        detail: `${message.defects.slice(0, 5).map((d) => `part ${d.part}: ${d.message}`).join("; ")}. Clients repair such mail differently, or not at all.`,
      },
    ];
  },

  function noTextAlternative({ message }) {
    if (message.htmlBodies.length === 0 || message.textBodies.length > 0) return [];
    return [
      {
        id: "no-text-alternative",
        level: "warning",
        title: "HTML without a plain-text alternative",
        detail: "Spam filters score HTML-only mail higher, and text-only clients and screen readers get nothing readable. Add a text/plain alternative.",
      },
    ];
  },

  function imagesWithoutAlt({ facts }) {
    const missing = facts?.images.filter((i) => i.alt === undefined) ?? [];
    if (missing.length === 0) return [];
    return [
      {
        id: "image-without-alt",
        level: "warning",
        title: `${missing.length} image${missing.length === 1 ? "" : "s"} without alt text`,
        detail: `Most clients block images until asked, and show the alt text meanwhile; screen readers read it. First: ${JSON.stringify(missing[0]!.src.slice(0, 80))}.`,
      },
    ];
  },

  function brokenCid({ message, facts }) {
    if (facts === undefined) return [];
    const ids = new Set(leaves(message.tree).flatMap((n) => (n.contentId === null ? [] : [n.contentId])));
    const broken = [...new Set(facts.cids.filter((cid) => !ids.has(cid)))];
    const used = new Set(facts.cids);
    const unused = leaves(message.tree).filter((n) => n.contentId !== null && n.contentType.startsWith("image/") && !used.has(n.contentId));
    const out: CheckResult[] = [];
    if (broken.length > 0) {
      out.push({
        id: "broken-cid",
        level: "error",
        title: `${broken.length} cid: reference${broken.length === 1 ? "" : "s"} with no matching part`,
        detail: `No part has Content-ID ${broken.map((c) => `<${c}>`).join(", ")}: the image shows as broken. Attach it inline with that content id.`,
      });
    }
    if (unused.length > 0) {
      out.push({
        id: "unused-inline-image",
        level: "info",
        title: `${unused.length} inline image${unused.length === 1 ? " is" : "s are"} never referenced`,
        detail: `${unused.map((n) => `<${n.contentId}>`).join(", ")} ${unused.length === 1 ? "is" : "are"} not used by the HTML; many clients then list ${unused.length === 1 ? "it" : "them"} as attachments.`,
      });
    }
    return out;
  },

  function htmlSize({ message }) {
    const size = Math.max(0, ...message.htmlBodies.map((h) => Buffer.byteLength(h, "utf8")));
    if (size <= HTML_SIZE_LIMIT) return [];
    return [
      {
        id: "html-too-large",
        level: "warning",
        title: `The HTML is ${(size / 1024).toFixed(1)} KB`,
        detail: "Gmail clips messages whose HTML is over 102 KB and hides the rest behind \"[Message clipped]\" (often the unsubscribe link). Trim inline CSS and markup.",
      },
    ];
  },

  function bulkWithoutUnsubscribe({ message, recipients }) {
    const h = message.headers;
    const precedence = (h.get("precedence") ?? "").trim().toLowerCase();
    const bulk = precedence === "bulk" || precedence === "list" || precedence === "junk" || h.has("list-id") || recipients > BULK_RECIPIENTS;
    if (!bulk) return [];
    const unsubscribe = h.get("list-unsubscribe");
    if (unsubscribe === undefined) {
      return [
        {
          id: "missing-list-unsubscribe",
          level: "warning",
          title: "Bulk mail without List-Unsubscribe",
          detail: `It looks like bulk mail (${h.has("list-id") ? "List-Id" : precedence ? `Precedence: ${precedence}` : `${recipients} recipients`}). Since 2024 Gmail and Yahoo require bulk senders to offer one-click unsubscribe (RFC 8058): List-Unsubscribe with an https URL and List-Unsubscribe-Post.`,
        },
      ];
    }
    if (/<https:/i.test(unsubscribe) && !h.has("list-unsubscribe-post")) {
      return [
        {
          id: "missing-one-click",
          level: "info",
          title: "List-Unsubscribe without one-click (List-Unsubscribe-Post)",
          detail: "RFC 8058 one-click unsubscribe needs \"List-Unsubscribe-Post: List-Unsubscribe=One-Click\" as well; the big providers ask bulk senders for it.",
        },
      ];
    }
    return [];
  },

  function rawNonAscii({ message, smtputf8 }) {
    const raw = message.headers.fields.filter((f) => /[^\x00-\x7f]/.test(f.raw)).map((f) => f.name);
    if (raw.length === 0) return [];
    if (smtputf8) {
      return [
        {
          id: "utf8-headers",
          level: "info",
          title: `Raw UTF-8 in ${raw.join(", ")} (sent with SMTPUTF8)`,
          detail: "Allowed with SMTPUTF8 (RFC 6532); a server on the way without SMTPUTF8 must refuse or downgrade it.",
        },
      ];
    }
    return [
      {
        id: "non-ascii-header",
        level: "warning",
        title: `Non-ASCII text not encoded in ${raw.join(", ")}`,
        detail: "Header fields must be ASCII unless SMTPUTF8 is used: encode text with RFC 2047 encoded-words (and domains with IDNA), or receivers show mojibake or reject the message.",
      },
    ];
  },

  function scripts({ facts }) {
    if (facts === undefined || facts.scripts === 0) return [];
    return [
      {
        id: "scripts",
        level: "warning",
        title: `${facts.scripts} script${facts.scripts === 1 ? "" : "s"} in the HTML (script elements, on* handlers or javascript: links)`,
        detail: "No mail client runs them (this preview does not either), and spam filters count them against the message. Remove them.",
      },
    ];
  },

  function missingFields({ message }) {
    const h = message.headers;
    const missing = ["From", "Date", "Message-ID"].filter((n) => !h.has(n));
    if (missing.length === 0) return [];
    return [
      {
        id: "missing-headers",
        level: "warning",
        title: `No ${missing.join(", ")} header${missing.length === 1 ? "" : "s"}`,
        detail: "RFC 5322 requires From and Date; providers expect a Message-ID and may add one of their own or score the message as spam.",
      },
    ];
  },

  function remoteImages({ facts }) {
    if (facts === undefined || facts.remoteImages === 0) return [];
    return [
      {
        id: "remote-images",
        level: "info",
        title: `${facts.remoteImages} remote image${facts.remoteImages === 1 ? "" : "s"}`,
        detail: "Most clients block remote images until the reader allows them (this preview too): the message should read well without them.",
      },
    ];
  },
];

const ORDER: Record<CheckLevel, number> = { error: 0, warning: 1, info: 2 };

export function runChecks(message: ParsedMessage, envelope?: { to: readonly string[]; mailParams?: Record<string, string> } | null): CheckResult[] {
  const html = message.htmlBodies.join("\n");
  const context: Context = {
    message,
    facts: message.htmlBodies.length === 0 ? undefined : htmlFacts(scanHtml(html)),
    smtputf8: envelope?.mailParams !== undefined && "SMTPUTF8" in envelope.mailParams,
    recipients: envelope?.to.length ?? message.to.length + message.cc.length + message.bcc.length,
  };
  return checks.flatMap((check) => check(context)).sort((a, b) => ORDER[a.level] - ORDER[b.level]);
}
