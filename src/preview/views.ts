/**
 * The JSON the web UI and the API give out: a short summary per message for the list, and
 * the whole of one message (headers, bodies, MIME tree, attachments, checks) for its page.
 */
import type { Mailbox } from "../mime/address.js";
import type { MimeNode, ParsedMessage } from "../parse/types.js";
import { runChecks, type CheckResult } from "./checks.js";
import { htmlFacts, htmlText, scanHtml } from "./html.js";
import type { CaughtMessage } from "./store.js";

export interface MessageSummary {
  id: string;
  receivedAt: string;
  from: Mailbox[];
  to: Mailbox[];
  subject: string | null;
  size: number;
  attachments: number;
  hasHtml: boolean;
  hasText: boolean;
  /** The envelope recipients (RCPT TO), which include Bcc. */
  recipients: string[];
  /** The subdirectory of a previewed folder ("" at the top). */
  folder: string;
  defects: number;
  /** The start of the text, for the list. */
  snippet: string;
}

export interface NodeView {
  path: string;
  contentType: string;
  disposition: string | null;
  filename: string | null;
  contentId: string | null;
  charset: string | null;
  transferEncoding: string;
  size: number;
  children?: NodeView[];
  /** For an enclosed message: its subject and sender. */
  message?: { subject: string | null; from: Mailbox[]; tree: NodeView };
}

export interface AttachmentView {
  path: string;
  filename: string | null;
  contentType: string;
  disposition: string | null;
  contentId: string | null;
  size: number;
  /** Where to download its decoded bytes. */
  url: string;
}

export interface MessageView extends MessageSummary {
  envelope: CaughtMessage["envelope"];
  session: CaughtMessage["session"];
  cc: Mailbox[];
  bcc: Mailbox[];
  replyTo: Mailbox[];
  date: string | null;
  messageId: string | null;
  headers: { name: string; value: string; raw: string }[];
  text: string | null;
  html: string | null;
  tree: NodeView;
  attachmentList: AttachmentView[];
  checks: CheckResult[];
  defectList: ParsedMessage["defects"];
  remoteImages: number;
  urls: { raw: string; html: string; htmlWithRemote: string };
}

export function messageUrl(id: string): string {
  return `/api/messages/${encodeURIComponent(id)}`;
}

function snippet(message: ParsedMessage): string {
  const source = message.text ?? htmlText(message.html ?? "");
  return source.replace(/\s+/g, " ").trim().slice(0, 160);
}

export function summarize(message: CaughtMessage): MessageSummary {
  return {
    id: message.id,
    receivedAt: message.receivedAt.toISOString(),
    from: message.from,
    to: message.to,
    subject: message.subject,
    size: message.size,
    attachments: message.attachments.length,
    hasHtml: message.htmlBodies.length > 0,
    hasText: message.textBodies.length > 0,
    recipients: message.envelope?.to ?? [],
    folder: message.folder,
    defects: message.defects.length,
    snippet: snippet(message),
  };
}

function nodeView(node: MimeNode): NodeView {
  const view: NodeView = {
    path: node.path,
    contentType: node.contentType,
    disposition: node.disposition,
    filename: node.filename,
    contentId: node.contentId,
    charset: node.charset,
    transferEncoding: node.transferEncoding,
    size: node.size,
  };
  if (node.children) view.children = node.children.map(nodeView);
  if (node.message) view.message = { subject: node.message.subject, from: node.message.from, tree: nodeView(node.message.tree) };
  return view;
}

export function partUrl(id: string, path: string, inline = false): string {
  return `${messageUrl(id)}/parts/${encodeURIComponent(path)}${inline ? "?inline=1" : ""}`;
}

export function describe(message: CaughtMessage): MessageView {
  const url = messageUrl(message.id);
  const html = message.html;
  return {
    ...summarize(message),
    envelope: message.envelope,
    session: message.session,
    cc: message.cc,
    bcc: message.bcc,
    replyTo: message.replyTo,
    date: message.date?.toISOString() ?? null,
    messageId: message.messageId,
    headers: message.headers.fields.map((f) => ({ name: f.name, value: f.value, raw: f.raw })),
    text: message.text,
    html,
    tree: nodeView(message.tree),
    attachmentList: message.attachments.map((a) => ({
      path: a.path,
      filename: a.filename,
      contentType: a.contentType,
      disposition: a.disposition,
      contentId: a.contentId,
      size: a.size,
      url: partUrl(message.id, a.path),
    })),
    checks: runChecks(message, message.envelope),
    defectList: message.defects,
    remoteImages: html === null ? 0 : htmlFacts(scanHtml(html)).remoteImages,
    urls: { raw: `${url}/raw`, html: `${url}/html`, htmlWithRemote: `${url}/html?remote=1` },
  };
}
