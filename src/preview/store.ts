/**
 * The caught messages: parsed once when they arrive, kept in memory or as `.eml` files in a
 * directory (the same names the file backend writes, with a `.json` beside each for the
 * envelope), and announced to subscribers (the web UI's live list, `waitFor` in tests).
 * The newest `maxMessages` are kept; older ones are forgotten (and their files left alone).
 */
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, readdir, rename, stat, unlink } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { parseMessage, parseMessageSync } from "../parse/message.js";
import type { ContentSelection, MimeNode, ParsedMessage } from "../parse/types.js";
import type { Envelope, SessionInfo } from "./smtp-session.js";

export interface CaughtMessage extends ParsedMessage {
  id: string;
  receivedAt: Date;
  /** MAIL FROM and RCPT TO; null for a message read from a file without one. */
  envelope: Envelope | null;
  /** How it arrived (EHLO name, TLS, AUTH user); null for a message read from a file. */
  session: SessionInfo | null;
  /** The bytes as received, for messages kept in memory. */
  raw?: Buffer;
  /** The file holding the bytes, for messages kept in (or read from) a directory. */
  file?: string;
  /** The subdirectory a file was found in (an outbox spool's state, for instance); "" at the top. */
  folder: string;
}

export type StoreEvent = { type: "message"; message: CaughtMessage } | { type: "delete"; id: string } | { type: "clear" };

export interface StoreOptions {
  /** Keep messages as files here instead of in memory. */
  dir?: string;
  /** How many messages to keep (the oldest go first). Default 1000. */
  maxMessages?: number;
  /** What the parse keeps of each message in memory (attachments are read again when asked for). Default "all" in memory, "bodies" with a directory. */
  content?: ContentSelection;
  /** A read-only store (a directory shown by `missive preview`): clear() and delete() refuse. */
  readOnly?: boolean;
}

interface Sidecar {
  receivedAt: string;
  envelope: Envelope | null;
  session: SessionInfo | null;
}

function timestamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(".", "");
}

/** The node with that path in a message, looking inside enclosed messages too. */
export function findNode(message: ParsedMessage, path: string): MimeNode | undefined {
  const walk = (node: MimeNode): MimeNode | undefined => {
    if (node.path === path) return node;
    if (!path.startsWith(`${node.path}.`)) return undefined;
    for (const child of node.children ?? []) {
      const hit = walk(child);
      if (hit) return hit;
    }
    return node.message ? walk(node.message.tree) : undefined;
  };
  return walk(message.tree);
}

export class MessageStore {
  readonly dir: string | undefined;
  readonly readOnly: boolean;
  /** Oldest first: `messages[0]` is the first one caught. */
  readonly messages: CaughtMessage[] = [];
  readonly #byId = new Map<string, CaughtMessage>();
  readonly #byFile = new Map<string, CaughtMessage>();
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  readonly #max: number;
  readonly #content: ContentSelection;

  constructor(options: StoreOptions = {}) {
    this.dir = options.dir === undefined ? undefined : resolve(options.dir);
    this.readOnly = options.readOnly ?? false;
    this.#max = options.maxMessages ?? 1000;
    this.#content = options.content ?? (this.dir === undefined ? "all" : "bodies");
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: StoreEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // One broken listener must not stop the others or the SMTP reply.
      }
    }
  }

  get(id: string): CaughtMessage | undefined {
    return this.#byId.get(id);
  }

  #keep(message: CaughtMessage): void {
    this.messages.push(message);
    this.#byId.set(message.id, message);
    if (message.file !== undefined) this.#byFile.set(message.file, message);
    while (this.messages.length > this.#max) this.#forget(this.messages[0]!);
    this.#emit({ type: "message", message });
  }

  #forget(message: CaughtMessage): void {
    const index = this.messages.indexOf(message);
    if (index !== -1) this.messages.splice(index, 1);
    this.#byId.delete(message.id);
    if (message.file !== undefined) this.#byFile.delete(message.file);
  }

  /** A message that came over SMTP: parsed, written to the directory if there is one, announced. */
  async add(raw: Buffer, envelope: Envelope | null, session: SessionInfo | null, receivedAt = new Date()): Promise<CaughtMessage> {
    const id = `${timestamp(receivedAt)}-${randomBytes(8).toString("hex")}`;
    const parsed = parseMessageSync(raw, { content: this.#content });
    let file: string | undefined;
    if (this.dir !== undefined) {
      file = join(this.dir, `${id}.eml`);
      await mkdir(this.dir, { recursive: true });
      const sidecar: Sidecar = { receivedAt: receivedAt.toISOString(), envelope, session };
      await writeAtomically(join(this.dir, `${id}.json`), Buffer.from(JSON.stringify(sidecar, null, 2)));
      await writeAtomically(file, raw);
    }
    const message: CaughtMessage = { ...parsed, id, receivedAt, envelope, session, folder: "", ...(file === undefined ? { raw } : { file }) };
    this.#keep(message);
    return message;
  }

  /**
   * Reads the directory's `.eml` files (down to three folders deep, skipping hidden ones)
   * that are not known yet. Returns how many were added.
   */
  async scan(): Promise<number> {
    if (this.dir === undefined) return 0;
    const found: string[] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        if (entry.name.startsWith(".")) continue;
        const path = join(dir, entry.name);
        if (entry.isDirectory() && depth < 3) await walk(path, depth + 1);
        else if (entry.isFile() && entry.name.toLowerCase().endsWith(".eml") && !this.#byFile.has(path)) found.push(path);
      }
    };
    await walk(this.dir, 0);
    const added: CaughtMessage[] = [];
    for (const file of found) {
      const message = await this.#read(file).catch(() => undefined);
      if (message) added.push(message);
    }
    added.sort((a, b) => a.receivedAt.getTime() - b.receivedAt.getTime());
    for (const message of added.slice(-this.#max)) this.#keep(message);
    return added.length;
  }

  async #read(file: string): Promise<CaughtMessage> {
    const parsed = await parseMessage(createReadStream(file), { content: this.#content });
    const base = file.slice(0, -4);
    const sidecar = await readFile(`${base}.json`, "utf8")
      .then((text) => JSON.parse(text) as Sidecar)
      .catch(() => undefined);
    const receivedAt = sidecar?.receivedAt ? new Date(sidecar.receivedAt) : (await stat(file)).mtime;
    const rel = relative(this.dir!, file);
    const folder = rel.includes(sep) ? rel.slice(0, rel.lastIndexOf(sep)).split(sep).join("/") : "";
    const id = rel.slice(0, -4).split(sep).join("~");
    return { ...parsed, id, receivedAt, envelope: sidecar?.envelope ?? null, session: sidecar?.session ?? null, file, folder };
  }

  /** The bytes of a message as they were received. */
  async raw(id: string): Promise<Buffer | undefined> {
    const message = this.#byId.get(id);
    if (message === undefined) return undefined;
    if (message.raw !== undefined) return message.raw;
    return readFile(message.file!).catch(() => undefined);
  }

  /** A part's decoded bytes (an attachment to download, an inline image), read again from the source if they were not kept. */
  async content(id: string, path: string): Promise<{ node: MimeNode; content: Buffer } | undefined> {
    const message = this.#byId.get(id);
    if (message === undefined) return undefined;
    const node = findNode(message, path);
    if (node === undefined) return undefined;
    if (node.content !== undefined) return { node, content: node.content };
    const pick = { content: (p: { path: string }) => p.path === path };
    const again =
      message.raw !== undefined ? parseMessageSync(message.raw, pick) : await parseMessage(createReadStream(message.file!), pick).catch(() => undefined);
    const fresh = again && findNode(again, path);
    return fresh?.content === undefined ? undefined : { node, content: fresh.content };
  }

  async delete(id: string): Promise<boolean> {
    if (this.readOnly) return false;
    const message = this.#byId.get(id);
    if (message === undefined) return false;
    this.#forget(message);
    if (message.file !== undefined) await removeFiles(message.file);
    this.#emit({ type: "delete", id });
    return true;
  }

  async clear(): Promise<boolean> {
    if (this.readOnly) return false;
    const all = [...this.messages];
    for (const message of all) this.#forget(message);
    for (const message of all) if (message.file !== undefined) await removeFiles(message.file);
    this.#emit({ type: "clear" });
    return true;
  }
}

async function removeFiles(file: string): Promise<void> {
  await unlink(file).catch(() => undefined);
  await unlink(`${file.slice(0, -4)}.json`).catch(() => undefined);
}

/** Temp file, then rename: a reader (`missive preview`) never sees half a message. */
async function writeAtomically(path: string, bytes: Buffer): Promise<void> {
  const temp = join(path, "..", `.${path.slice(path.lastIndexOf(sep) + 1)}.${randomBytes(4).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", 0o644);
  try {
    await handle.writeFile(bytes);
  } finally {
    await handle.close();
  }
  await rename(temp, path);
}
