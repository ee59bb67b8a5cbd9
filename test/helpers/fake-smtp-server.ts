// A scripted, fault-injecting SMTP server for what a real server will not do: drops,
// delays, trickled replies, odd codes at any step, TLS refusals. By default it behaves
// like a correct ESMTP server; a script overrides any step. It records a transcript of
// every byte in both directions (plaintext, after TLS) so tests can assert the client's
// exact bytes.
import { createHmac, randomBytes } from "node:crypto";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { createSecureContext, TLSSocket, type SecureContext } from "node:tls";
import {
  firstLine,
  isAction,
  multiline,
  parsePath,
  replyBytes,
  sleep,
  type AuthMechanism,
  type CommandHandler,
  type FakeSession,
  type MessageHandler,
  type ReceivedMessage,
  type RecipientRecord,
  type ReplyAction,
  type ReplyText,
  type Script,
  type ScriptResult,
  type SmtpCommand,
  type TranscriptEntry,
} from "./fake-smtp-script.js";

export * from "./fake-smtp-script.js";

export interface FakeServerOptions {
  /** Default "220 fake.missive.test ESMTP ready"; null = never send a greeting. */
  greeting?: ScriptResult | ((session: FakeSession) => ScriptResult | Promise<ScriptResult>);
  /** Name in the EHLO reply. */
  hostname?: string;
  /**
   * Capability lines after the host name line (without code), or a whole reply such as
   * "502 5.5.1 no EHLO here" (starts with 3 digits). Default: PIPELINING, 8BITMIME,
   * SIZE <sizeLimit>, ENHANCEDSTATUSCODES, AUTH <mechanisms>, plus STARTTLS when tls is
   * "starttls" and not yet upgraded.
   */
  ehlo?: readonly string[] | string;
  /** Capabilities after STARTTLS; default: the same as before, without STARTTLS. */
  ehloAfterTls?: readonly string[];
  /** Default ["PLAIN", "LOGIN"]; [] advertises no AUTH. */
  authMechanisms?: readonly AuthMechanism[];
  /** Valid credentials (XOAUTH2: user -> token). Undefined = any credentials pass. */
  users?: Record<string, string>;
  /** Advertised SIZE and enforced on MAIL FROM SIZE=. Default 10485760; 0 = no SIZE. */
  sizeLimit?: number;
  /** "starttls": offer and accept STARTTLS; "implicit": TLS from the first byte. Default "none". */
  tls?: "none" | "starttls" | "implicit";
  /** Server key and certificate (PEM), required when tls is not "none". */
  key?: string | Buffer;
  cert?: string | Buffer;
  /** Ask for a client certificate, verified against `ca` (not required). */
  requestCert?: boolean;
  ca?: string | Buffer;
  /** At the TLS upgrade (implicit or after STARTTLS's 220), answer the ClientHello with a TCP reset. */
  resetTlsHandshake?: boolean;
  /** Send "421 4.4.2 Idle timeout" and close after this long without client bytes. */
  idleTimeoutMs?: number;
  /** Answer all complete pipelined commands in one write (default true). */
  batchReplies?: boolean;
  script?: Script | readonly Script[];
  onCommand?: CommandHandler;
  onMessage?: MessageHandler;
  /** A command line longer than this (bytes) gets 500 and the connection is closed. Default 65536. */
  maxLineLength?: number;
}

export interface FakeSmtpServer {
  readonly host: "127.0.0.1";
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  readonly transcript: TranscriptEntry[];
  readonly received: ReceivedMessage[];
  /** Exceptions thrown by scripts (the connection was dropped); assert it is empty. */
  readonly errors: Error[];
  /** Everything the client sent (plaintext), optionally on one connection. */
  clientBytes(conn?: number): Buffer;
  /** Everything the server sent (plaintext). */
  serverBytes(conn?: number): Buffer;
  /** Command lines received (no DATA content), optionally on one connection. */
  commands(conn?: number): string[];
  /** The transcript as "C: ..." / "S: ..." lines, for failure messages. */
  dump(conn?: number): string;
  /** Resolves when `n` messages were received; throws after timeoutMs (default 5000). */
  waitForMessages(n: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** Resolves when `n` connections were closed; throws after timeoutMs (default 5000). */
  waitForClosed(n: number, timeoutMs?: number): Promise<void>;
  /** Destroys every socket and stops listening (bounded). Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const CRLF = Buffer.from("\r\n");
const DOT_END = Buffer.from("\r\n.\r\n");


function unstuff(raw: Buffer): Buffer {
  const out: Buffer[] = [];
  let start = 0;
  while (start < raw.length) {
    let end = raw.indexOf(CRLF, start);
    end = end < 0 ? raw.length : end + 2;
    const line = raw.subarray(start, end);
    out.push(line[0] === 0x2e ? line.subarray(1) : line);
    start = end;
  }
  return Buffer.concat(out);
}

type Mode = "command" | "data" | "bdat" | "auth";

class Session implements FakeSession {
  socket: Socket;
  tls = false;
  authUser: string | null = null;
  helo: string | null = null;
  esmtp = false;
  mailFrom: string | null = null;
  mailParams: string[] = [];
  rcptTo: string[] = [];
  recipients: RecipientRecord[] = [];
  bdatChunks: Buffer[] = [];
  mode: Mode = "command";
  bdatRemaining = 0;
  bdatLast = false;
  bdatReply: ScriptResult = undefined;
  authStep: ((line: string) => ScriptResult) | null = null;
  buffer: Buffer = Buffer.alloc(0);
  processing = false;
  hung = false;
  closed = false;
  counts = new Map<string, number>();
  idleTimer: NodeJS.Timeout | undefined;
  out: Buffer[] = [];

  constructor(
    readonly id: number,
    socket: Socket,
    readonly srv: FakeServerImpl,
  ) {
    this.socket = socket;
  }

  count(verb: string): number {
    return this.counts.get(verb.toUpperCase()) ?? 0;
  }

  send(reply: ReplyText): void {
    this.write(replyBytes(reply));
  }

  write(bytes: Buffer): void {
    if (this.closed || bytes.length === 0) return;
    this.srv.record(this, "s", "reply", bytes);
    this.socket.write(bytes);
  }

  close(): void {
    if (this.closed) return;
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  resetTransaction(): void {
    this.mailFrom = null;
    this.mailParams = [];
    this.rcptTo = [];
    this.recipients = [];
    this.bdatChunks = [];
  }
}

class FakeServerImpl implements FakeSmtpServer {
  readonly host = "127.0.0.1" as const;
  port = 0;
  connections = 0;
  closedConnections = 0;
  readonly transcript: TranscriptEntry[] = [];
  readonly received: ReceivedMessage[] = [];
  readonly errors: Error[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly net: Server;
  private readonly scripts: Script[];
  private readonly secureContext: SecureContext | undefined;
  private closing: Promise<void> | undefined;
  private queueId = 0;

  constructor(readonly opts: FakeServerOptions) {
    const scripts = opts.script === undefined ? [] : Array.isArray(opts.script) ? [...opts.script] : [opts.script as Script];
    if (opts.onCommand || opts.onMessage) {
      const s: Script = {};
      if (opts.onCommand) s.onCommand = opts.onCommand;
      if (opts.onMessage) s.onMessage = opts.onMessage;
      scripts.unshift(s);
    }
    this.scripts = scripts;
    if ((opts.tls ?? "none") !== "none") {
      if (opts.key === undefined || opts.cert === undefined) throw new Error("fake server: tls needs key and cert");
      this.secureContext = createSecureContext({
        key: opts.key,
        cert: opts.cert,
        minVersion: "TLSv1.2",
        ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      });
    }
    this.net = createServer((socket) => this.accept(socket));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.net.once("error", reject);
      this.net.listen(0, "127.0.0.1", () => {
        this.net.off("error", reject);
        this.port = (this.net.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  record(s: Session, dir: TranscriptEntry["dir"], kind: TranscriptEntry["kind"], bytes: Buffer): void {
    const text = bytes.toString("utf8");
    this.transcript.push({
      conn: s.id,
      dir,
      kind,
      text: kind === "line" ? text.replace(/\r?\n$/, "") : text,
      bytes: Buffer.from(bytes),
      tls: s.tls,
    });
  }

  private note(s: Session, text: string): void {
    this.transcript.push({ conn: s.id, dir: "event", kind: "event", text, bytes: Buffer.alloc(0), tls: s.tls });
  }

  private accept(raw: Socket): void {
    // No Nagle: a trickled reply must leave one byte per packet.
    raw.setNoDelay(true);
    this.connections += 1;
    const s = new Session(this.connections, raw, this);
    this.track(raw);
    this.note(s, "connect");
    if (this.opts.tls === "implicit") {
      s.socket = this.upgrade(s, raw);
      s.socket.once("secure", () => void this.greet(s));
    } else {
      this.attach(s, raw);
      void this.greet(s);
    }
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }

  private upgrade(s: Session, raw: Socket): Socket {
    if (this.opts.resetTlsHandshake) {
      raw.once("data", () => {
        this.note(s, "tls handshake reset");
        raw.resetAndDestroy();
      });
      return raw;
    }
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext: this.secureContext!,
      requestCert: this.opts.requestCert ?? false,
      rejectUnauthorized: false,
    });
    this.track(secure);
    secure.once("secure", () => {
      s.tls = true;
      const peer = secure.getPeerCertificate();
      const cn = peer && typeof peer.subject === "object" ? peer.subject.CN : undefined;
      this.note(s, `tls established ${secure.getProtocol() ?? ""}${cn ? ` client-cert CN=${cn}` : ""}`);
    });
    secure.on("error", (err) => {
      this.note(s, `tls error: ${err.message}`);
      secure.destroy();
    });
    this.attach(s, secure);
    return secure;
  }

  private attach(s: Session, socket: Socket): void {
    const onData = (chunk: Buffer): void => {
      s.buffer = Buffer.concat([s.buffer, chunk]);
      this.armIdle(s);
      void this.pump(s);
    };
    socket.on("data", onData);
    socket.on("error", () => undefined);
    socket.once("close", () => {
      if (s.socket !== socket) return;
      s.closed = true;
      clearTimeout(s.idleTimer);
      this.closedConnections += 1;
      this.note(s, "close");
    });
    (socket as Socket & { missiveOnData?: typeof onData }).missiveOnData = onData;
  }

  private armIdle(s: Session): void {
    const ms = this.opts.idleTimeoutMs;
    if (ms === undefined) return;
    clearTimeout(s.idleTimer);
    s.idleTimer = setTimeout(() => {
      if (s.closed) return;
      s.write(replyBytes("421 4.4.2 Idle timeout, closing connection"));
      s.close();
    }, ms);
  }

  private async greet(s: Session): Promise<void> {
    this.armIdle(s);
    try {
      const g = this.opts.greeting;
      const result = typeof g === "function" ? await g(s) : g;
      await this.perform(s, result, () => `220 ${this.hostname} ESMTP ready`);
    } catch (err) {
      this.fail(s, err);
    }
  }

  /** A script threw: record it (see `errors`) and drop the connection, never an unhandled rejection. */
  private fail(s: Session, err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.errors.push(e);
    this.note(s, `script error: ${e.message}`);
    s.destroy();
  }

  private get hostname(): string {
    return this.opts.hostname ?? "fake.missive.test";
  }

  /** Sends a script result or the default; returns false when the connection should stop processing. */
  private async perform(s: Session, result: ScriptResult, fallback: () => ScriptResult): Promise<boolean> {
    if (result === undefined) result = fallback();
    if (result === null || result === undefined) return true;
    const action: ReplyAction = isAction(result) ? result : { reply: result };
    let reply = action.reply;
    if (reply === undefined && action.raw === undefined) {
      const fb = fallback();
      reply = isAction(fb) ? fb.reply : fb;
    }
    const parts: Buffer[] = [];
    if (reply !== null && reply !== undefined) parts.push(replyBytes(reply));
    if (action.raw !== undefined) parts.push(Buffer.isBuffer(action.raw) ? action.raw : Buffer.from(action.raw, "utf8"));
    const bytes = Buffer.concat(parts);
    const special = action.delayMs !== undefined || action.trickleMs !== undefined || action.then !== undefined;
    if (!special && (this.opts.batchReplies ?? true) && s.processing) {
      s.out.push(bytes);
      return true;
    }
    this.flush(s);
    if (action.delayMs !== undefined) await sleep(action.delayMs);
    if (action.trickleMs !== undefined && bytes.length > 0) {
      this.record(s, "s", "reply", bytes);
      for (let i = 0; i < bytes.length && !s.closed; i++) {
        s.socket.write(bytes.subarray(i, i + 1));
        if (i < bytes.length - 1) await sleep(action.trickleMs);
      }
    } else {
      s.write(bytes);
    }
    switch (action.then) {
      case "close":
        s.close();
        return false;
      case "destroy":
        s.destroy();
        return false;
      case "reset":
        s.socket.resetAndDestroy();
        return false;
      case "hang":
        s.hung = true;
        return false;
      default:
        return true;
    }
  }

  private flush(s: Session): void {
    if (s.out.length === 0) return;
    const bytes = Buffer.concat(s.out);
    s.out = [];
    s.write(bytes);
  }

  /** Parses and handles every complete item in the buffer, one at a time. */
  private async pump(s: Session): Promise<void> {
    if (s.processing) return;
    s.processing = true;
    try {
      while (!s.closed && !s.hung) {
        const go = await this.step(s);
        if (go === "need-more") break;
        if (go === "stop") break;
      }
    } catch (err) {
      this.fail(s, err);
    } finally {
      this.flush(s);
      s.processing = false;
    }
  }

  private async step(s: Session): Promise<"continue" | "need-more" | "stop"> {
    switch (s.mode) {
      case "data": {
        let end: number;
        let raw: Buffer;
        if (s.buffer.subarray(0, 3).equals(Buffer.from(".\r\n"))) {
          end = 3;
          raw = Buffer.alloc(0);
        } else {
          const i = s.buffer.indexOf(DOT_END);
          if (i < 0) return "need-more";
          end = i + DOT_END.length;
          raw = s.buffer.subarray(0, i + 2);
        }
        this.record(s, "c", "data", s.buffer.subarray(0, end));
        s.buffer = s.buffer.subarray(end);
        s.mode = "command";
        return (await this.finishMessage(s, "DATA", Buffer.from(raw), unstuff(raw))) ? "continue" : "stop";
      }
      case "bdat": {
        if (s.buffer.length < s.bdatRemaining) return "need-more";
        const chunk = Buffer.from(s.buffer.subarray(0, s.bdatRemaining));
        s.buffer = s.buffer.subarray(s.bdatRemaining);
        this.record(s, "c", "bdat", chunk);
        s.mode = "command";
        s.bdatChunks.push(chunk);
        if (s.bdatReply !== undefined) {
          const reply = s.bdatReply;
          s.bdatReply = undefined;
          s.resetTransaction();
          return (await this.perform(s, reply, () => "503 5.5.1 BDAT not accepted")) ? "continue" : "stop";
        }
        if (s.bdatLast) {
          const all = Buffer.concat(s.bdatChunks);
          return (await this.finishMessage(s, "BDAT", all, all)) ? "continue" : "stop";
        }
        return (await this.perform(s, undefined, () => `250 2.0.0 ${chunk.length} octets received`)) ? "continue" : "stop";
      }
      default: {
        const nl = s.buffer.indexOf(0x0a);
        if (nl < 0) {
          if (s.buffer.length > (this.opts.maxLineLength ?? 65536)) {
            await this.perform(s, { reply: "500 5.5.6 Line too long", then: "close" }, () => undefined);
            return "stop";
          }
          return "need-more";
        }
        const rawLine = Buffer.from(s.buffer.subarray(0, nl + 1));
        s.buffer = s.buffer.subarray(nl + 1);
        this.record(s, "c", "line", rawLine);
        const line = rawLine.toString("utf8").replace(/\r?\n$/, "");
        if (s.mode === "auth" && s.authStep) {
          const stepFn = s.authStep;
          s.authStep = null;
          s.mode = "command";
          return (await this.perform(s, stepFn(line), () => undefined)) ? "continue" : "stop";
        }
        return (await this.command(s, line, rawLine)) ? "continue" : "stop";
      }
    }
  }

  private async runScripts<T>(
    pick: (sc: Script) => ((x: T, s: FakeSession) => ScriptResult | Promise<ScriptResult>) | undefined,
    x: T,
    s: Session,
  ): Promise<ScriptResult> {
    for (const sc of this.scripts) {
      const fn = pick(sc);
      if (!fn) continue;
      const r = await fn(x, s);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  private async command(s: Session, line: string, raw: Buffer): Promise<boolean> {
    const sp = line.indexOf(" ");
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? "" : line.slice(sp + 1);
    s.counts.set(verb, (s.counts.get(verb) ?? 0) + 1);
    const cmd: SmtpCommand = { line, verb, arg, raw };
    const scripted = await this.runScripts((sc) => sc.onCommand, cmd, s);
    if (verb === "STARTTLS" && scripted === undefined) return this.startTls(s, arg);
    if (verb === "BDAT") return this.bdat(s, cmd, scripted);
    const fallback = (): ScriptResult => this.defaultReply(s, cmd);
    // Side effects of the default (state changes) apply only when the script did not answer,
    // except that a scripted reply to DATA/RCPT/MAIL with a 2xx/3xx code still moves the state.
    if (scripted === undefined) return this.perform(s, undefined, fallback);
    this.applyScriptedState(s, cmd, scripted);
    return this.perform(s, scripted, fallback);
  }

  private applyScriptedState(s: Session, cmd: SmtpCommand, result: ScriptResult): void {
    // A delayed or trickled default reply: the default itself makes the state change.
    if (isAction(result) && result.reply === undefined && result.raw === undefined) return;
    const first = firstLine(result) ?? "";
    const code = first.slice(0, 3);
    switch (cmd.verb) {
      case "MAIL": {
        const p = parsePath(cmd.arg, "FROM:");
        if (code.startsWith("2") && p) {
          s.resetTransaction();
          s.mailFrom = p.address;
          s.mailParams = p.params;
        }
        break;
      }
      case "RCPT": {
        const p = parsePath(cmd.arg, "TO:");
        if (p) {
          const accepted = code.startsWith("2");
          s.recipients.push({ address: p.address, params: p.params, reply: first, accepted });
          if (accepted) s.rcptTo.push(p.address);
        }
        break;
      }
      case "DATA":
        if (code === "354") s.mode = "data";
        break;
      case "RSET":
        if (code.startsWith("2")) s.resetTransaction();
        break;
      case "EHLO":
      case "HELO":
        if (code.startsWith("2")) {
          s.helo = cmd.arg;
          s.esmtp = cmd.verb === "EHLO";
          s.resetTransaction();
        }
        break;
      default:
        break;
    }
  }

  private capabilities(s: Session): string[] {
    if (s.tls && this.opts.ehloAfterTls) return [...this.opts.ehloAfterTls];
    const mechs = this.opts.authMechanisms ?? ["PLAIN", "LOGIN"];
    const base =
      this.opts.ehlo !== undefined && typeof this.opts.ehlo !== "string"
        ? [...this.opts.ehlo]
        : [
            "PIPELINING",
            "8BITMIME",
            ...((this.opts.sizeLimit ?? 10485760) > 0 ? [`SIZE ${this.opts.sizeLimit ?? 10485760}`] : []),
            "ENHANCEDSTATUSCODES",
            ...(mechs.length > 0 ? [`AUTH ${mechs.join(" ")}`] : []),
            ...(this.opts.tls === "starttls" ? ["STARTTLS"] : []),
          ];
    return s.tls ? base.filter((c) => c.toUpperCase() !== "STARTTLS") : base;
  }

  private hasCapability(s: Session, name: string): boolean {
    return this.capabilities(s).some((c) => c.toUpperCase().split(" ")[0] === name);
  }

  /** The default reply for a command, applying its state change. */
  private defaultReply(s: Session, cmd: SmtpCommand): ScriptResult {
    switch (cmd.verb) {
      case "EHLO": {
        if (!cmd.arg) return "501 5.5.4 Syntax: EHLO hostname";
        if (typeof this.opts.ehlo === "string") return this.opts.ehlo;
        s.helo = cmd.arg;
        s.esmtp = true;
        s.resetTransaction();
        return multiline(250, [this.hostname, ...this.capabilities(s)]);
      }
      case "HELO":
        if (!cmd.arg) return "501 5.5.4 Syntax: HELO hostname";
        s.helo = cmd.arg;
        s.esmtp = false;
        s.resetTransaction();
        return `250 ${this.hostname}`;
      case "MAIL": {
        if (s.helo === null) return "503 5.5.1 Error: send HELO/EHLO first";
        if (s.mailFrom !== null) return "503 5.5.1 Error: nested MAIL command";
        const p = parsePath(cmd.arg, "FROM:");
        if (!p) return "501 5.5.4 Syntax: MAIL FROM:<address>";
        const size = p.params.find((x) => x.toUpperCase().startsWith("SIZE="));
        const limit = this.opts.sizeLimit ?? 10485760;
        if (size && limit > 0 && Number(size.slice(5)) > limit) {
          return "552 5.3.4 Message size exceeds fixed limit";
        }
        s.resetTransaction();
        s.mailFrom = p.address;
        s.mailParams = p.params;
        return "250 2.1.0 Ok";
      }
      case "RCPT": {
        if (s.mailFrom === null) return "503 5.5.1 Error: need MAIL command";
        const p = parsePath(cmd.arg, "TO:");
        if (!p) return "501 5.5.4 Syntax: RCPT TO:<address>";
        s.recipients.push({ address: p.address, params: p.params, reply: "250 2.1.5 Ok", accepted: true });
        s.rcptTo.push(p.address);
        return "250 2.1.5 Ok";
      }
      case "DATA":
        if (s.mailFrom === null) return "503 5.5.1 Error: need MAIL command";
        if (s.rcptTo.length === 0) return "554 5.5.1 Error: no valid recipients";
        s.mode = "data";
        return "354 End data with <CR><LF>.<CR><LF>";
      case "RSET":
        s.resetTransaction();
        return "250 2.0.0 Ok";
      case "NOOP":
        return "250 2.0.0 Ok";
      case "VRFY":
        return "252 2.0.0 Cannot VRFY user";
      case "QUIT":
        return { reply: "221 2.0.0 Bye", then: "close" };
      case "AUTH":
        return this.auth(s, cmd.arg);
      default:
        return "502 5.5.2 Error: command not recognized";
    }
  }

  private async startTls(s: Session, arg: string): Promise<boolean> {
    if (arg) return this.perform(s, "501 5.5.4 Syntax: STARTTLS", () => undefined);
    if (this.opts.tls !== "starttls" || !this.secureContext) {
      return this.perform(s, "502 5.5.1 STARTTLS not offered", () => undefined);
    }
    if (s.tls) return this.perform(s, "503 5.5.1 TLS already active", () => undefined);
    this.flush(s);
    s.write(replyBytes("220 2.0.0 Ready to start TLS"));
    // RFC 3207 section 4.2: forget everything from before TLS, including bytes the
    // client pipelined after STARTTLS (they stay in the transcript for tests to see).
    if (s.buffer.length > 0) this.note(s, `discarded ${s.buffer.length} plaintext byte(s) after STARTTLS`);
    s.buffer = Buffer.alloc(0);
    s.helo = null;
    s.esmtp = false;
    s.authUser = null;
    s.resetTransaction();
    const raw = s.socket;
    const onData = (raw as Socket & { missiveOnData?: (c: Buffer) => void }).missiveOnData;
    if (onData) raw.off("data", onData);
    const secure = this.upgrade(s, raw);
    s.socket = secure;
    return false;
  }

  private async bdat(s: Session, cmd: SmtpCommand, scripted: ScriptResult): Promise<boolean> {
    const m = /^(\d{1,10})(?: +(LAST))? *$/i.exec(cmd.arg);
    if (!m) return this.perform(s, scripted, () => "501 5.5.4 Syntax: BDAT size [LAST]");
    s.bdatRemaining = Number(m[1]);
    s.bdatLast = m[2] !== undefined;
    s.mode = "bdat";
    // The chunk is always consumed (even when refused), so that message bytes are never
    // read as commands; the reply goes out once the chunk has been read.
    if (scripted !== undefined) s.bdatReply = scripted;
    else if (!this.hasCapability(s, "CHUNKING")) s.bdatReply = "502 5.5.1 BDAT without CHUNKING";
    else if (s.mailFrom === null || s.rcptTo.length === 0) s.bdatReply = "503 5.5.1 Error: need RCPT command";
    else s.bdatReply = undefined;
    return true;
  }

  private async finishMessage(s: Session, via: "DATA" | "BDAT", raw: Buffer, data: Buffer): Promise<boolean> {
    this.queueId += 1;
    const msg: ReceivedMessage = {
      conn: s.id,
      mailFrom: s.mailFrom ?? "",
      mailParams: s.mailParams,
      rcptTo: [...s.rcptTo],
      recipients: [...s.recipients],
      data,
      raw,
      via,
      tls: s.tls,
      authUser: s.authUser,
      reply: null,
    };
    const id = this.queueId;
    const result = await this.runScripts((sc) => sc.onMessage, msg, s);
    const fallback = (): ScriptResult => `250 2.0.0 Ok: queued as FAKE${id}`;
    const final = result === undefined ? fallback() : result;
    msg.reply = firstLine(isAction(final) && final.reply === undefined && final.raw === undefined ? fallback() : final);
    this.received.push(msg);
    s.resetTransaction();
    return this.perform(s, final, fallback);
  }

  private auth(s: Session, arg: string): ScriptResult {
    if (!s.esmtp) return "503 5.5.1 Error: send EHLO first";
    if (s.authUser !== null) return "503 5.5.1 Error: already authenticated";
    const mechs = this.opts.authMechanisms ?? ["PLAIN", "LOGIN"];
    const [mechRaw = "", initial] = arg.split(" ");
    const mech = mechRaw.toUpperCase() as AuthMechanism;
    if (!mechs.includes(mech)) return "504 5.5.4 Unrecognized authentication type";
    const users = this.opts.users;
    const check = (user: string, pass: string): ScriptResult => {
      if (users === undefined || users[user] === pass) {
        s.authUser = user;
        return "235 2.7.0 Authentication successful";
      }
      return "535 5.7.8 Authentication credentials invalid";
    };
    const b64 = (x: string): string => Buffer.from(x, "base64").toString("utf8");
    const ask = (challenge: string, next: (line: string) => ScriptResult): ScriptResult => {
      s.mode = "auth";
      s.authStep = (line) => (line === "*" ? "501 5.7.0 Authentication aborted" : next(line));
      return `334 ${challenge}`;
    };
    switch (mech) {
      case "PLAIN": {
        const plain = (resp: string): ScriptResult => {
          const [, user = "", pass = ""] = b64(resp).split("\0");
          return check(user, pass);
        };
        return initial === undefined ? ask("", plain) : plain(initial);
      }
      case "LOGIN": {
        const pw = (user: string): ScriptResult => ask("UGFzc3dvcmQ6", (p) => check(user, b64(p)));
        return initial === undefined ? ask("VXNlcm5hbWU6", (u) => pw(b64(u))) : pw(b64(initial));
      }
      case "CRAM-MD5": {
        const challenge = `<${randomBytes(8).toString("hex")}@${this.hostname}>`;
        return ask(Buffer.from(challenge).toString("base64"), (line) => {
          const decoded = b64(line);
          const sp = decoded.lastIndexOf(" ");
          const user = decoded.slice(0, sp);
          const digest = decoded.slice(sp + 1);
          if (users === undefined) return check(user, "");
          const pass = users[user];
          if (pass === undefined) return "535 5.7.8 Authentication credentials invalid";
          const expected = createHmac("md5", pass).update(challenge).digest("hex");
          return expected === digest ? check(user, pass) : "535 5.7.8 Authentication credentials invalid";
        });
      }
      case "XOAUTH2": {
        const xo = (resp: string): ScriptResult => {
          const fields = b64(resp).split("\x01");
          const user = (fields.find((f) => f.startsWith("user=")) ?? "").slice(5);
          const token = (fields.find((f) => f.startsWith("auth=Bearer ")) ?? "").slice(12);
          if (users === undefined || users[user] === token) return check(user, users?.[user] ?? "");
          const err = Buffer.from(JSON.stringify({ status: "401", schemes: "bearer", scope: "https://mail.example/" })).toString("base64");
          return ask(err, () => "535 5.7.8 Username and Password not accepted");
        };
        return initial === undefined ? ask("", xo) : xo(initial);
      }
      default:
        return "504 5.5.4 Unrecognized authentication type";
    }
  }

  private entries(conn: number | undefined): TranscriptEntry[] {
    return conn === undefined ? this.transcript : this.transcript.filter((e) => e.conn === conn);
  }

  clientBytes(conn?: number): Buffer {
    return Buffer.concat(this.entries(conn).filter((e) => e.dir === "c").map((e) => e.bytes));
  }

  serverBytes(conn?: number): Buffer {
    return Buffer.concat(this.entries(conn).filter((e) => e.dir === "s").map((e) => e.bytes));
  }

  commands(conn?: number): string[] {
    return this.entries(conn).filter((e) => e.dir === "c" && e.kind === "line").map((e) => e.text);
  }

  dump(conn?: number): string {
    return this.entries(conn)
      .map((e) => {
        const who = e.dir === "c" ? "C" : e.dir === "s" ? "S" : "*";
        const body = e.kind === "data" || e.kind === "bdat" ? `<${e.kind} ${e.bytes.length} bytes>` : e.text.replace(/\r\n$/, "").replace(/\r\n/g, "\n   ");
        return `[${e.conn}] ${who}: ${body}`;
      })
      .join("\n");
  }

  async waitForMessages(n: number, timeoutMs = 5000): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < n) {
      if (Date.now() >= deadline) throw new Error(`fake server: ${this.received.length}/${n} messages after ${timeoutMs} ms\n${this.dump()}`);
      await sleep(10);
    }
    return this.received;
  }

  async waitForClosed(n: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.closedConnections < n) {
      if (Date.now() >= deadline) throw new Error(`fake server: ${this.closedConnections}/${n} connections closed after ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const socket of this.sockets) socket.destroy();
      await Promise.race([new Promise<void>((r) => this.net.close(() => r())), sleep(2000)]);
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

export async function startFakeServer(opts: FakeServerOptions = {}): Promise<FakeSmtpServer> {
  const server = new FakeServerImpl(opts);
  await server.listen();
  return server;
}

