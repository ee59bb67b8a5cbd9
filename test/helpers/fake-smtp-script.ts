// The scripting vocabulary of the fake SMTP server (fake-smtp-server.ts): reply
// values, the session a script sees, and ready-made fault behaviours that compose.
import { createHash } from "node:crypto";
import type { Socket } from "node:net";

/** Lines of one or more replies, each without CRLF ("250-a", "250 b"); a string may hold several lines. */
export type ReplyText = string | readonly string[];

export interface ReplyAction {
  /**
   * What to send; undefined = the default reply for this step (unless `raw` is given);
   * null = send nothing.
   */
  reply?: ReplyText | null;
  /** Bytes sent verbatim (after `reply`, if both), e.g. malformed or several replies in one packet. */
  raw?: string | Buffer;
  /** Wait this long before sending. */
  delayMs?: number;
  /** Send the bytes one at a time, this many ms apart. */
  trickleMs?: number;
  /**
   * After sending: "close" ends the socket (FIN), "destroy" drops it, "reset" sends RST,
   * "hang" reads on but never answers again on this connection.
   */
  then?: "close" | "destroy" | "reset" | "hang";
}

/** undefined: default behaviour; null: no reply at all (the server just keeps reading). */
export type ScriptResult = ReplyText | ReplyAction | null | undefined;

export interface SmtpCommand {
  /** The command line as received, without CRLF (decoded as UTF-8). */
  line: string;
  /** Upper-cased first word ("MAIL", "RCPT", "EHLO", ...). */
  verb: string;
  /** Everything after the verb and one space. */
  arg: string;
  /** The exact bytes, including the line ending. */
  raw: Buffer;
}

export interface RecipientRecord {
  address: string;
  params: string[];
  /** First line of the reply the server gave. */
  reply: string;
  accepted: boolean;
}

export interface ReceivedMessage {
  /** 1-based connection number. */
  conn: number;
  mailFrom: string;
  mailParams: string[];
  /** Accepted recipients. */
  rcptTo: string[];
  /** Every RCPT of the transaction with its reply. */
  recipients: RecipientRecord[];
  /** Message bytes, dot-unstuffed (DATA) or concatenated chunks (BDAT); final dot excluded. */
  data: Buffer;
  /** Bytes exactly as sent by the client, excluding only the terminating ".\r\n" (DATA). */
  raw: Buffer;
  via: "DATA" | "BDAT";
  tls: boolean;
  authUser: string | null;
  /** What the server answered after the message (first line), or null if nothing. */
  reply: string | null;
}

export interface TranscriptEntry {
  conn: number;
  /** "c" = client to server, "s" = server to client, "event" = connect/TLS/close notes. */
  dir: "c" | "s" | "event";
  kind: "line" | "data" | "bdat" | "reply" | "event";
  /** Text (UTF-8 decoded, CRLF stripped for lines). */
  text: string;
  bytes: Buffer;
  tls: boolean;
}

export interface FakeSession {
  /** 1-based connection number. */
  readonly id: number;
  readonly tls: boolean;
  readonly authUser: string | null;
  readonly helo: string | null;
  readonly esmtp: boolean;
  readonly mailFrom: string | null;
  readonly rcptTo: readonly string[];
  /** How many times `verb` arrived on this connection, including the current one. */
  count(verb: string): number;
  /** Send lines now (unsolicited). */
  send(reply: ReplyText): void;
  close(): void;
  destroy(): void;
  readonly socket: Socket;
}

export type CommandHandler = (cmd: SmtpCommand, session: FakeSession) => ScriptResult | Promise<ScriptResult>;
export type MessageHandler = (msg: ReceivedMessage, session: FakeSession) => ScriptResult | Promise<ScriptResult>;

/** A piece of behaviour; several compose, the first that returns non-undefined wins. */
export interface Script {
  onCommand?: CommandHandler;
  onMessage?: MessageHandler;
}

export type AuthMechanism = "PLAIN" | "LOGIN" | "CRAM-MD5" | "XOAUTH2";

/** ["250-a", "250-b", "250 c"] from a code and the lines' texts. */
export function multiline(code: number | string, lines: readonly string[]): string[] {
  return lines.map((l, i) => `${code}${i === lines.length - 1 ? " " : "-"}${l}`);
}

export function replyBytes(reply: ReplyText): Buffer {
  const lines = typeof reply === "string" ? reply.split(/\r?\n/) : [...reply];
  if (typeof reply === "string" && lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  return Buffer.from(lines.map((l) => `${l}\r\n`).join(""), "utf8");
}

export function isAction(r: ScriptResult): r is ReplyAction {
  return r !== null && r !== undefined && typeof r === "object" && !Array.isArray(r);
}

/** First line of a reply, or null when nothing is sent. */
export function firstLine(r: ScriptResult): string | null {
  const reply = isAction(r) ? r.reply : r;
  if (reply === null || reply === undefined) return null;
  const lines = typeof reply === "string" ? reply.split(/\r?\n/) : reply;
  return lines[0] ?? null;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `<addr> PARAM PARAM` -> address (without brackets) and params. */
export function parsePath(arg: string, keyword: string): { address: string; params: string[] } | null {
  if (arg.slice(0, keyword.length).toUpperCase() !== keyword) return null;
  const rest = arg.slice(keyword.length).trimStart();
  if (rest.startsWith("<")) {
    const end = rest.indexOf(">");
    if (end < 0) return null;
    return { address: rest.slice(1, end), params: rest.slice(end + 1).split(" ").filter(Boolean) };
  }
  const [address = "", ...params] = rest.split(" ").filter(Boolean);
  return address ? { address, params } : null;
}

// ---- ready-made behaviours (compose them via `script: [...]`) ----

interface NthOptions {
  /** Which occurrence on a connection triggers (1-based). Default 1. */
  nth?: number;
  /** Only on this connection (1-based). Default every connection. */
  conn?: number;
}

function matches(cmd: SmtpCommand, s: FakeSession, verb: string, o: NthOptions): boolean {
  return cmd.verb === verb.toUpperCase() && s.count(verb) === (o.nth ?? 1) && (o.conn === undefined || o.conn === s.id);
}

/** On the nth `verb`, send `reply` (if given) and drop the connection. */
export function dropOn(verb: string, o: NthOptions & { reply?: ReplyText } = {}): Script {
  return { onCommand: (cmd, s) => (matches(cmd, s, verb, o) ? { reply: o.reply ?? null, then: "destroy" } : undefined) };
}

/** On the nth `verb`, answer with `reply` (a string/lines or a full ReplyAction). */
export function replyOn(verb: string, reply: ReplyText | ReplyAction, o: NthOptions = {}): Script {
  return { onCommand: (cmd, s) => (matches(cmd, s, verb, o) ? reply : undefined) };
}

/** On the nth `verb`, "421 <text>" and close (a server shutting down). */
export function shutdownOn(verb: string, o: NthOptions & { text?: string } = {}): Script {
  return replyOn(verb, { reply: `421 ${o.text ?? "4.3.2 Service shutting down"}`, then: "close" }, o);
}

/** RCPT replies per address (case-insensitive); others get the default. */
export function recipientReplies(map: Record<string, ReplyText>): Script {
  const lower = new Map(Object.entries(map).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    onCommand: (cmd) => {
      if (cmd.verb !== "RCPT") return undefined;
      const p = parsePath(cmd.arg, "TO:");
      return p ? lower.get(p.address.toLowerCase()) : undefined;
    },
  };
}

/** The reply after the final dot (or BDAT LAST), e.g. "552 5.3.4 Message too big". */
export function messageReply(reply: ReplyText | ReplyAction): Script {
  return { onMessage: () => reply };
}

/** Never answer the final dot; the connection stays open (delivery outcome unknown). */
export function noReplyToDot(): Script {
  return { onMessage: () => ({ reply: null, then: "hang" }) };
}

/** Drop the connection right after the final dot, without a reply. */
export function dropAfterDot(): Script {
  return { onMessage: () => ({ reply: null, then: "destroy" }) };
}

/** Answer the nth `verb` with its default reply (or `reply`), one byte every `msPerByte`. */
export function trickle(verb: string, msPerByte: number, o: NthOptions & { reply?: ReplyText } = {}): Script {
  return {
    onCommand: (cmd, s) =>
      matches(cmd, s, verb, o) ? (o.reply !== undefined ? { reply: o.reply, trickleMs: msPerByte } : { trickleMs: msPerByte }) : undefined,
  };
}

/** Answer the nth `verb` after `ms`. */
export function delay(verb: string, ms: number, o: NthOptions = {}): Script {
  return { onCommand: (cmd, s) => (matches(cmd, s, verb, o) ? { delayMs: ms } : undefined) };
}

/** Offer STARTTLS (tls: "starttls") but refuse it. */
export function refuseStartTls(reply: ReplyText = "454 4.7.0 TLS not available due to temporary reason"): Script {
  return replyOn("STARTTLS", reply, { nth: 1 });
}

/** Stop answering at the nth `verb`; keep the connection open. */
export function hangOn(verb: string, o: NthOptions = {}): Script {
  return { onCommand: (cmd, s) => (matches(cmd, s, verb, o) ? { reply: null, then: "hang" } : undefined) };
}

/** SHA-256 of bytes, hex, for compact assertions. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
