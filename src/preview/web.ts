/**
 * The catcher's web side on node:http: the UI page, the JSON API, the live list as
 * server-sent events, and each message's HTML served on its own route for a sandboxed
 * frame. Every response carries a Content-Security-Policy; message HTML gets one that
 * allows no script at all and no remote load unless the reader asked for remote images.
 * Requests whose Host is not the catcher's own are refused (a web page elsewhere cannot
 * read the mail by DNS rebinding).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { cidOf, rewriteForFrame, scanHtml } from "./html.js";
import type { MessageStore, StoreEvent } from "./store.js";
import { APP_CSS, APP_JS, PAGE_HTML } from "./ui-assets.js";
import { describe, partUrl, summarize } from "./views.js";
import type { MimeNode } from "../parse/types.js";

export interface WebOptions {
  store: MessageStore;
  port: number;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Shown in the page header ("mail catcher", "preview of ./out"). */
  title?: string;
  /** Extra facts for /api/info (the SMTP port, for instance). */
  info?: Record<string, unknown>;
  /** Most live-list connections at once. Default 50. */
  maxEventClients?: number;
}

const UI_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Message HTML: no script-src at all, so nothing runs; remote images, styles and fonts only when asked. */
export function frameCsp(remote: boolean): string {
  const net = remote ? " https: http:" : "";
  return `default-src 'none'; img-src 'self' data:${net}; style-src 'unsafe-inline'${net}; font-src data:${net}; media-src 'self'${net}; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox`;
}

/** Downloads and inline parts: nothing in them may run even if opened directly. */
const PART_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";

const COMMON_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cache-Control": "no-store",
};

function isLoopbackHost(host: string): boolean {
  return host === "127.0.0.1" || host === "::1" || host === "localhost" || host.startsWith("127.");
}

/** RFC 6266 filename for Content-Disposition: an ASCII fallback and the UTF-8 name (RFC 8187). */
function contentDisposition(kind: "attachment" | "inline", filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, "_");
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

export class WebServer {
  readonly #server: Server;
  readonly #store: MessageStore;
  readonly #options: WebOptions;
  readonly #sockets = new Set<Socket>();
  readonly #events = new Set<ServerResponse>();
  #port = 0;
  #unsubscribe: (() => void) | undefined;
  #keepAlive: NodeJS.Timeout | undefined;

  private constructor(options: WebOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) this.#send(res, 500, "text/plain; charset=utf-8", "Internal error");
        else res.destroy();
      });
    });
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
    });
    // Headers are small here; a client that sends more is not a browser.
    this.#server.maxHeadersCount = 100;
    this.#server.headersTimeout = 20_000;
    this.#server.requestTimeout = 60_000;
  }

  static async start(options: WebOptions): Promise<WebServer> {
    const web = new WebServer(options);
    await new Promise<void>((resolve, reject) => {
      web.#server.once("error", reject);
      web.#server.listen(options.port, options.host ?? "127.0.0.1", () => {
        web.#server.off("error", reject);
        resolve();
      });
    });
    const address = web.#server.address();
    web.#port = typeof address === "object" && address !== null ? address.port : options.port;
    web.#unsubscribe = options.store.subscribe((event) => web.#broadcast(event));
    web.#keepAlive = setInterval(() => {
      for (const res of web.#events) res.write(": keep-alive\n\n");
    }, 25_000);
    web.#keepAlive.unref();
    return web;
  }

  get port(): number {
    return this.#port;
  }

  /** The UI's address, e.g. http://127.0.0.1:8025 */
  get url(): string {
    const host = this.#options.host ?? "127.0.0.1";
    const shown = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
    return `http://${shown.includes(":") ? `[${shown}]` : shown}:${this.#port}`;
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    clearInterval(this.#keepAlive);
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const res of this.#events) res.end();
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #allowedHost(req: IncomingMessage): boolean {
    const listen = this.#options.host ?? "127.0.0.1";
    if (!isLoopbackHost(listen)) return true; // listening on a network on purpose (--listen)
    const host = (req.headers.host ?? "").toLowerCase();
    const name = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.split(":")[0]!;
    return isLoopbackHost(name);
  }

  #send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
    res.writeHead(status, { ...COMMON_HEADERS, "Content-Type": type, "Content-Length": String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  }

  #json(res: ServerResponse, status: number, value: unknown): void {
    this.#send(res, status, "application/json; charset=utf-8", JSON.stringify(value), { "Content-Security-Policy": "default-src 'none'" });
  }

  #notFound(res: ServerResponse, what = "Not found"): void {
    this.#json(res, 404, { error: what });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#allowedHost(req)) return this.#json(res, 403, { error: "This catcher only answers requests addressed to it (127.0.0.1 or localhost)" });
    const url = new URL(req.url ?? "/", "http://catcher");
    const method = req.method ?? "GET";
    const segments = url.pathname.split("/").filter(Boolean).map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
    const get = method === "GET" || method === "HEAD";

    if (url.pathname === "/" && get) return this.#send(res, 200, "text/html; charset=utf-8", PAGE_HTML(this.#options.title ?? "missive mail catcher"), { "Content-Security-Policy": UI_CSP });
    if (url.pathname === "/assets/app.js" && get) return this.#send(res, 200, "text/javascript; charset=utf-8", APP_JS, { "Content-Security-Policy": UI_CSP });
    if (url.pathname === "/assets/app.css" && get) return this.#send(res, 200, "text/css; charset=utf-8", APP_CSS, { "Content-Security-Policy": UI_CSP });
    if (segments[0] !== "api") return this.#notFound(res);

    if (segments[1] === "info" && segments.length === 2 && get) {
      return this.#json(res, 200, { title: this.#options.title ?? "missive mail catcher", readOnly: this.#store.readOnly, ...this.#options.info });
    }
    if (segments[1] === "events" && segments.length === 2 && get) return this.#openEvents(req, res);
    if (segments[1] !== "messages") return this.#notFound(res);

    if (segments.length === 2) {
      if (get) return this.#json(res, 200, [...this.#store.messages].reverse().map(summarize));
      if (method === "DELETE") return (await this.#store.clear()) ? this.#empty(res) : this.#readOnly(res);
      return this.#notAllowed(res, "GET, DELETE");
    }
    const message = this.#store.get(segments[2]!);
    if (message === undefined) return this.#notFound(res, "No such message");
    if (segments.length === 3) {
      if (get) return this.#json(res, 200, describe(message));
      if (method === "DELETE") return (await this.#store.delete(message.id)) ? this.#empty(res) : this.#readOnly(res);
      return this.#notAllowed(res, "GET, DELETE");
    }
    if (!get) return this.#notAllowed(res, "GET");
    switch (segments[3]) {
      case "raw": {
        if (segments.length !== 4) break;
        const raw = await this.#store.raw(message.id);
        if (raw === undefined) return this.#notFound(res, "The message file is gone");
        const download = url.searchParams.has("download");
        return this.#send(res, 200, download ? "message/rfc822" : "text/plain; charset=utf-8", raw, {
          "Content-Security-Policy": PART_CSP,
          "Content-Disposition": contentDisposition(download ? "attachment" : "inline", `${message.id}.eml`),
        });
      }
      case "html": {
        if (segments.length !== 4) break;
        if (message.html === null) return this.#notFound(res, "The message has no HTML body");
        const scan = scanHtml(message.html);
        const byCid = new Map<string, string>();
        const collect = (node: MimeNode) => {
          if (node.contentId !== null && !byCid.has(node.contentId)) byCid.set(node.contentId, node.path);
          node.children?.forEach(collect);
        };
        collect(message.tree);
        const html = rewriteForFrame(message.html, scan, (cid) => {
          const path = byCid.get(cid);
          return path === undefined ? undefined : partUrl(message.id, path, true);
        });
        return this.#send(res, 200, "text/html; charset=utf-8", html, { "Content-Security-Policy": frameCsp(url.searchParams.get("remote") === "1") });
      }
      case "parts": {
        if (segments.length !== 5) break;
        const part = await this.#store.content(message.id, segments[4]!);
        if (part === undefined || part.node.children !== undefined) return this.#notFound(res, "No such part");
        const inline = url.searchParams.get("inline") === "1";
        const name = part.node.filename ?? (part.node.contentId ? `${part.node.contentId}` : `part-${part.node.path}`);
        return this.#send(res, 200, inline ? part.node.contentType : "application/octet-stream", part.content, {
          "Content-Security-Policy": PART_CSP,
          "Content-Disposition": contentDisposition(inline ? "inline" : "attachment", name),
          // The sandboxed frame that shows inline images has an opaque origin: same-origin would refuse it.
          ...(inline ? { "Cross-Origin-Resource-Policy": "cross-origin" } : {}),
        });
      }
      case "cid": {
        // `cid:` URLs as the API's users write them: /api/messages/:id/cid/:contentId
        if (segments.length !== 5) break;
        const cid = cidOf(`cid:${segments[4]}`) ?? segments[4]!;
        const node = findCid(message.tree, cid);
        if (node === undefined) return this.#notFound(res, "No part has that Content-ID");
        res.writeHead(302, { ...COMMON_HEADERS, Location: partUrl(message.id, node.path, true) });
        res.end();
        return;
      }
    }
    return this.#notFound(res);
  }

  #empty(res: ServerResponse): void {
    res.writeHead(204, COMMON_HEADERS);
    res.end();
  }

  #readOnly(res: ServerResponse): void {
    this.#json(res, 405, { error: "This is a read-only preview of a directory: messages cannot be deleted here" });
  }

  #notAllowed(res: ServerResponse, allow: string): void {
    res.setHeader("Allow", allow);
    this.#json(res, 405, { error: `Method not allowed (${allow})` });
  }

  #openEvents(req: IncomingMessage, res: ServerResponse): void {
    if (this.#events.size >= (this.#options.maxEventClients ?? 50)) return this.#json(res, 503, { error: "Too many live connections" });
    res.writeHead(200, { ...COMMON_HEADERS, "Content-Type": "text/event-stream; charset=utf-8", Connection: "keep-alive", "Content-Security-Policy": "default-src 'none'" });
    res.write("retry: 2000\n\n");
    this.#events.add(res);
    req.socket.setTimeout(0);
    const done = () => this.#events.delete(res);
    res.once("close", done);
    req.once("close", done);
  }

  #broadcast(event: StoreEvent): void {
    const data =
      event.type === "message" ? `event: message\ndata: ${JSON.stringify(summarize(event.message))}\n\n`
      : event.type === "delete" ? `event: delete\ndata: ${JSON.stringify({ id: event.id })}\n\n`
      : "event: clear\ndata: {}\n\n";
    for (const res of this.#events) res.write(data);
  }
}

function findCid(node: MimeNode, cid: string): MimeNode | undefined {
  if (node.contentId === cid) return node;
  for (const child of node.children ?? []) {
    const hit = findCid(child, cid);
    if (hit) return hit;
  }
  return undefined;
}
