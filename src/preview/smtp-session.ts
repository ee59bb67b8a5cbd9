/**
 * One connection to the capture server: the server side of RFC 5321 with PIPELINING
 * (RFC 2920), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), SIZE (RFC 1870), CHUNKING/BDAT
 * (RFC 3030), ENHANCEDSTATUSCODES (RFC 2034), DSN (RFC 3461, parameters accepted and kept),
 * STARTTLS (RFC 3207) and AUTH PLAIN/LOGIN (RFC 4954). It accepts every message (that is
 * its job) and stays bounded: command lines, message size, recipients and errors have
 * limits, and a fault queue can replace any reply.
 *
 * Input is processed in order from one buffer, so pipelined commands are answered in
 * order; a message's end is only CRLF "." CRLF (RFC 5321 §4.1.1.4), never a bare LF,
 * so a body cannot smuggle a second message in.
 */
import type { Socket } from "node:net";
import { TLSSocket, type SecureContext } from "node:tls";
import type { Fault, FaultPhase, FaultQueue } from "./faults.js";

/** RFC 5321 §4.5.3.1.4 asks for at least 512 octets; extensions and SMTPUTF8 need more. */
export const MAX_COMMAND_LINE = 4096;
/** Bad commands in a row before the server gives up on the client. */
const MAX_ERRORS = 20;
/** RFC 5321 §4.5.3.2.7: a server waits at least 5 minutes for the next command. */
export const IDLE_TIMEOUT_MS = 5 * 60_000;

const EMPTY = Buffer.alloc(0);
const CRLF_DOT = Buffer.from("\r\n.");

export interface Envelope {
  /** MAIL FROM address ("" for the null reverse-path). */
  from: string;
  /** RCPT TO addresses, in order. */
  to: string[];
  /** MAIL FROM parameters (BODY, SMTPUTF8, SIZE, RET, ENVID), upper-case keys. */
  mailParams: Record<string, string>;
}

export interface SessionInfo {
  /** The EHLO/HELO name the client gave. */
  helo: string;
  remoteAddress: string;
  /** Whether the message came over TLS (after STARTTLS). */
  tls: boolean;
  /** The user name that authenticated, if any (never the password). */
  authUser: string | undefined;
  /** Whether it came by BDAT rather than DATA. */
  chunked: boolean;
}

export interface SessionHost {
  hostname: string;
  maxMessageSize: number;
  maxRecipients: number;
  /** STARTTLS is offered when there is a context. */
  tls: SecureContext | undefined;
  /** AUTH PLAIN and LOGIN are offered when set; `check` says whether a user and password are good. */
  auth: { required: boolean; check(user: string, password: string): boolean } | undefined;
  faults: FaultQueue;
  /** Keeps a received message; resolves with its id. A rejection makes the reply 451. */
  deliver(raw: Buffer, envelope: Envelope, info: SessionInfo): Promise<string>;
  idleTimeoutMs: number;
}

type Mode = "command" | "data" | "bdat" | "auth-plain" | "auth-login-user" | "auth-login-password" | "tls-handshake" | "waiting" | "closed";

interface Transaction {
  envelope: Envelope;
  chunks: Buffer[];
  size: number;
  tooBig: boolean;
  chunked: boolean;
}

function reply(code: number, text: string | readonly string[]): string {
  const lines = typeof text === "string" ? [text] : text;
  return lines.map((line, i) => `${code}${i === lines.length - 1 ? " " : "-"}${line}\r\n`).join("");
}

/** `<address>` and ESMTP parameters after `FROM:` or `TO:` (RFC 5321 §4.1.2, tolerant of a space after the colon). */
function parsePath(rest: string): { address: string; params: Record<string, string> } | undefined {
  const text = rest.trimStart();
  if (!text.startsWith("<")) return undefined;
  const close = text.indexOf(">");
  if (close === -1) return undefined;
  let address = text.slice(1, close);
  // An obsolete source route (`@a,@b:user@c`) is dropped, as RFC 5321 §4.1.2 allows.
  const colon = address.startsWith("@") ? address.indexOf(":") : -1;
  if (colon !== -1) address = address.slice(colon + 1);
  const params: Record<string, string> = {};
  for (const word of text.slice(close + 1).trim().split(/ +/)) {
    if (word === "") continue;
    const eq = word.indexOf("=");
    params[(eq === -1 ? word : word.slice(0, eq)).toUpperCase()] = eq === -1 ? "" : word.slice(eq + 1);
  }
  return { address, params };
}

export class SmtpSession {
  readonly #host: SessionHost;
  #socket: Socket;
  #mode: Mode = "command";
  #buffer: Buffer = EMPTY;
  #helo: string | undefined;
  #secure = false;
  #authUser: string | undefined;
  #loginUser = "";
  #transaction: Transaction | undefined;
  /** In DATA: the next byte starts a line (so a leading "." is special). */
  #atLineStart = true;
  /** A command line longer than the limit is being skipped up to its LF. */
  #skippingLine = false;
  #bdat = { remaining: 0, last: false, refusal: undefined as string | undefined };
  #errors = 0;
  readonly #onData = (chunk: Buffer) => this.#receive(chunk);

  constructor(socket: Socket, host: SessionHost) {
    this.#host = host;
    this.#socket = socket;
    this.#attach(socket);
    const fault = host.faults.take("connect");
    if (fault) {
      this.#applyFault(fault);
      if (!fault.drop && fault.code >= 400) this.#close();
      return;
    }
    this.#send(reply(220, `${host.hostname} ESMTP missive mail catcher`));
  }

  #attach(socket: Socket): void {
    socket.on("data", this.#onData);
    socket.on("error", () => this.#close());
    socket.on("close", () => {
      this.#mode = "closed";
    });
    socket.setTimeout(this.#host.idleTimeoutMs, () => {
      this.#send(reply(421, "4.4.2 Idle too long, closing"));
      this.#close();
    });
  }

  #send(text: string): void {
    if (this.#mode !== "closed" && !this.#socket.destroyed) this.#socket.write(text);
  }

  #close(): void {
    this.#mode = "closed";
    this.#buffer = EMPTY;
    const socket = this.#socket;
    socket.end(() => socket.destroy());
  }

  #drop(): void {
    this.#mode = "closed";
    this.#buffer = EMPTY;
    this.#socket.destroy();
  }

  /** Sends the fault's reply (or drops the connection); a 421 also ends the session. */
  #applyFault(fault: Fault): void {
    if (fault.drop) return this.#drop();
    this.#send(reply(fault.code, fault.lines));
    if (fault.code === 421) this.#close();
  }

  #fault(phase: FaultPhase): boolean {
    const fault = this.#host.faults.take(phase);
    if (fault === undefined) return false;
    this.#applyFault(fault);
    return true;
  }

  #receive(chunk: Buffer): void {
    if (this.#mode === "closed" || this.#mode === "tls-handshake") return;
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#process();
  }

  #process(): void {
    // Replies to pipelined commands leave in one write (RFC 2920 §3.2 lets the server batch them).
    this.#socket.cork();
    try {
      while (this.#buffer.length > 0 && this.#step()) {
        // Each step consumed input; loop until the buffer is empty or a step must wait.
      }
    } finally {
      this.#socket.uncork();
    }
  }

  /** Handles what the buffer holds for the current mode; false when it must wait for more input. */
  #step(): boolean {
    switch (this.#mode) {
      case "data":
        return this.#dataStep();
      case "bdat":
        return this.#bdatStep();
      case "command":
      case "auth-plain":
      case "auth-login-user":
      case "auth-login-password":
        return this.#lineStep();
      default:
        return false;
    }
  }

  #lineStep(): boolean {
    const lf = this.#buffer.indexOf(0x0a);
    if (lf === -1) {
      if (this.#buffer.length > MAX_COMMAND_LINE) {
        if (!this.#skippingLine) this.#error(500, "5.5.2 Line too long");
        this.#skippingLine = true;
        this.#buffer = EMPTY;
      }
      return false;
    }
    const end = lf > 0 && this.#buffer[lf - 1] === 0x0d ? lf - 1 : lf;
    const line = this.#buffer.toString("utf8", 0, end);
    const tooLong = lf > MAX_COMMAND_LINE;
    this.#buffer = this.#buffer.subarray(lf + 1);
    if (this.#skippingLine || tooLong) {
      if (!this.#skippingLine) this.#error(500, "5.5.2 Line too long");
      this.#skippingLine = false;
      return true;
    }
    if (this.#mode === "command") this.#command(line);
    else this.#authLine(line);
    return true;
  }

  #error(code: number, text: string): void {
    this.#send(reply(code, text));
    if (++this.#errors >= MAX_ERRORS) {
      this.#send(reply(421, "4.7.0 Too many errors, closing"));
      this.#close();
    }
  }

  #ok(code: number, text: string | readonly string[]): void {
    this.#errors = 0;
    this.#send(reply(code, text));
  }

  #command(line: string): void {
    const space = line.indexOf(" ");
    const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
    const arg = space === -1 ? "" : line.slice(space + 1).trim();
    switch (verb) {
      case "EHLO":
      case "HELO":
        return this.#hello(verb, arg);
      case "STARTTLS":
        return this.#startTls();
      case "AUTH":
        return this.#auth(arg);
      case "MAIL":
        return this.#mail(arg);
      case "RCPT":
        return this.#rcpt(arg);
      case "DATA":
        return this.#data();
      case "BDAT":
        return this.#bdatCommand(arg);
      case "RSET":
        this.#transaction = undefined;
        return this.#ok(250, "2.0.0 Reset");
      case "NOOP":
        return this.#ok(250, "2.0.0 OK");
      case "VRFY":
        return this.#ok(252, "2.5.0 Cannot verify, but will accept the message");
      case "HELP":
        return this.#ok(214, "2.0.0 This is the missive mail catcher: it accepts every message");
      case "QUIT":
        this.#send(reply(221, "2.0.0 Bye"));
        return this.#close();
      default:
        return this.#error(500, `5.5.2 Command not recognized`);
    }
  }

  #hello(verb: "EHLO" | "HELO", name: string): void {
    if (name === "") return this.#error(501, `5.5.4 ${verb} needs a domain or address literal`);
    if (this.#fault("ehlo")) return;
    this.#helo = name;
    this.#transaction = undefined;
    if (verb === "HELO") return this.#ok(250, `${this.#host.hostname}`);
    const lines = [`${this.#host.hostname} greets ${name}`, "PIPELINING", "8BITMIME", "SMTPUTF8", `SIZE ${this.#host.maxMessageSize}`, "CHUNKING", "ENHANCEDSTATUSCODES", "DSN"];
    if (this.#host.tls !== undefined && !this.#secure) lines.push("STARTTLS");
    if (this.#host.auth !== undefined) lines.push("AUTH PLAIN LOGIN");
    lines.push("HELP");
    this.#ok(250, lines);
  }

  #startTls(): void {
    if (this.#host.tls === undefined) return this.#error(502, "5.5.1 STARTTLS is not offered");
    if (this.#secure) return this.#error(503, "5.5.1 TLS is already active");
    if (this.#fault("starttls")) return;
    // Anything pipelined after STARTTLS arrived in plaintext and must not be acted on after
    // the handshake (the STARTTLS command injection of CVE-2011-0411).
    this.#buffer = EMPTY;
    this.#mode = "tls-handshake";
    const plain = this.#socket;
    plain.removeListener("data", this.#onData);
    plain.setTimeout(0); // the TLS socket gets its own idle timer
    plain.pause();
    plain.uncork();
    plain.write(reply(220, "2.0.0 Ready to start TLS"), () => {
      if (plain.destroyed) return;
      // The TLS socket reads what the plain one has already buffered (the ClientHello).
      const secure = new TLSSocket(plain, { isServer: true, secureContext: this.#host.tls, requestCert: false });
      secure.once("secure", () => {
        // RFC 3207 §4.2: everything learnt before TLS is forgotten; the client says EHLO again.
        this.#socket = secure;
        this.#secure = true;
        this.#helo = undefined;
        this.#authUser = undefined;
        this.#transaction = undefined;
        this.#mode = "command";
        this.#attach(secure);
      });
      secure.on("error", () => {
        this.#mode = "closed";
        secure.destroy();
        plain.destroy();
      });
    });
  }

  #auth(arg: string): void {
    if (this.#host.auth === undefined) return this.#error(502, "5.5.1 AUTH is not offered");
    if (this.#helo === undefined) return this.#error(503, "5.5.1 Say EHLO first");
    if (this.#authUser !== undefined) return this.#error(503, "5.5.1 Already authenticated");
    if (this.#transaction !== undefined) return this.#error(503, "5.5.1 AUTH is not allowed during a mail transaction");
    const [mechanism = "", initial] = arg.split(/ +/);
    switch (mechanism.toUpperCase()) {
      case "PLAIN":
        if (initial === undefined) {
          this.#mode = "auth-plain";
          return this.#send(reply(334, ""));
        }
        return this.#plain(initial);
      case "LOGIN":
        if (initial !== undefined) return this.#login(this.#decode(initial));
        this.#mode = "auth-login-user";
        return this.#send(reply(334, "VXNlcm5hbWU6")); // "Username:"
      default:
        return this.#error(504, "5.5.4 Unrecognized authentication type (PLAIN and LOGIN are offered)");
    }
  }

  #decode(b64: string): string {
    return Buffer.from(b64, "base64").toString("utf8");
  }

  #authLine(line: string): void {
    const mode = this.#mode;
    this.#mode = "command";
    // RFC 4954 §4: "*" cancels the exchange.
    if (line === "*") return this.#error(501, "5.0.0 Authentication cancelled");
    if (mode === "auth-plain") return this.#plain(line);
    if (mode === "auth-login-user") return this.#login(this.#decode(line));
    return this.#finishAuth(this.#loginUser, this.#decode(line));
  }

  #plain(b64: string): void {
    // RFC 4616: authzid NUL authcid NUL passwd.
    const parts = this.#decode(b64).split("\0");
    if (parts.length !== 3) return this.#error(501, "5.5.2 Malformed PLAIN response");
    this.#finishAuth(parts[1]!, parts[2]!);
  }

  #login(user: string): void {
    this.#loginUser = user;
    this.#mode = "auth-login-password";
    this.#send(reply(334, "UGFzc3dvcmQ6")); // "Password:"
  }

  #finishAuth(user: string, password: string): void {
    if (this.#fault("auth")) return;
    if (!this.#host.auth!.check(user, password)) return this.#error(535, "5.7.8 Authentication credentials invalid");
    this.#authUser = user;
    this.#ok(235, "2.7.0 Authentication successful");
  }

  #mail(arg: string): void {
    if (this.#helo === undefined) return this.#error(503, "5.5.1 Say EHLO first");
    if (this.#host.auth?.required && this.#authUser === undefined) return this.#error(530, "5.7.0 Authentication required");
    if (this.#transaction !== undefined) return this.#error(503, "5.5.1 A transaction is already open (RSET first)");
    if (!/^from:/i.test(arg)) return this.#error(501, "5.5.4 Syntax: MAIL FROM:<address>");
    const path = parsePath(arg.slice(5));
    if (path === undefined) return this.#error(501, "5.1.7 Syntax: MAIL FROM:<address>");
    const size = path.params["SIZE"];
    if (size !== undefined && !(Number(size) <= this.#host.maxMessageSize)) {
      return this.#error(552, `5.3.4 Message too big (at most ${this.#host.maxMessageSize} octets)`);
    }
    if (this.#fault("mail")) return;
    this.#transaction = { envelope: { from: path.address, to: [], mailParams: path.params }, chunks: [], size: 0, tooBig: false, chunked: false };
    this.#ok(250, "2.1.0 Sender OK");
  }

  #rcpt(arg: string): void {
    const t = this.#transaction;
    if (t === undefined) return this.#error(503, "5.5.1 MAIL FROM first");
    if (!/^to:/i.test(arg)) return this.#error(501, "5.5.4 Syntax: RCPT TO:<address>");
    const path = parsePath(arg.slice(3));
    if (path === undefined || path.address === "") return this.#error(501, "5.1.3 Syntax: RCPT TO:<address>");
    if (t.envelope.to.length >= this.#host.maxRecipients) return this.#error(452, "4.5.3 Too many recipients");
    if (this.#fault("rcpt")) return;
    t.envelope.to.push(path.address);
    this.#ok(250, "2.1.5 Recipient OK");
  }

  #data(): void {
    const t = this.#transaction;
    if (t === undefined) return this.#error(503, "5.5.1 MAIL FROM first");
    if (t.envelope.to.length === 0) return this.#error(554, "5.5.1 No valid recipients");
    if (this.#fault("data")) return;
    this.#mode = "data";
    this.#atLineStart = true;
    this.#send(reply(354, "End data with <CR><LF>.<CR><LF>"));
  }

  #append(bytes: Buffer): void {
    const t = this.#transaction!;
    if (bytes.length === 0) return;
    t.size += bytes.length;
    if (t.size > this.#host.maxMessageSize) {
      // Keep reading to the end (the client is still sending), but keep nothing more.
      t.tooBig = true;
      t.chunks = [];
      return;
    }
    if (!t.tooBig) t.chunks.push(Buffer.from(bytes));
  }

  /** DATA: everything up to CRLF "." CRLF, with the leading dot of other lines removed (RFC 5321 §4.5.2). */
  #dataStep(): boolean {
    const buf = this.#buffer;
    if (this.#atLineStart && buf[0] === 0x2e) {
      if (buf.length < 3) return false;
      if (buf[1] === 0x0d && buf[2] === 0x0a) {
        this.#buffer = buf.subarray(3);
        this.#mode = "waiting";
        this.#finishMessage();
        return true;
      }
      this.#buffer = buf.subarray(1);
      this.#atLineStart = false;
      return true;
    }
    const at = buf.indexOf(CRLF_DOT);
    if (at === -1) {
      // Keep back a CR or CRLF that may begin CRLF ".".
      const keep = buf[buf.length - 1] === 0x0d ? 1 : buf.length >= 2 && buf[buf.length - 2] === 0x0d && buf[buf.length - 1] === 0x0a ? 2 : 0;
      this.#append(buf.subarray(0, buf.length - keep));
      this.#buffer = buf.subarray(buf.length - keep);
      this.#atLineStart = false;
      return false;
    }
    this.#append(buf.subarray(0, at + 2));
    this.#buffer = buf.subarray(at + 2);
    this.#atLineStart = true;
    return true;
  }

  #bdatCommand(arg: string): void {
    const [sizeText = "", lastWord, extra] = arg.split(/ +/);
    if (!/^\d{1,15}$/.test(sizeText) || (lastWord !== undefined && lastWord.toUpperCase() !== "LAST") || extra !== undefined) {
      // Without a size the chunk cannot be skipped: the session cannot go on.
      this.#send(reply(501, "5.5.4 Syntax: BDAT <size> [LAST]"));
      return this.#close();
    }
    const t = this.#transaction;
    const refusal = t === undefined ? "503 5.5.1 MAIL FROM first" : t.envelope.to.length === 0 ? "554 5.5.1 No valid recipients" : undefined;
    this.#bdat = { remaining: Number(sizeText), last: lastWord !== undefined, refusal };
    if (t !== undefined) t.chunked = true;
    this.#mode = "bdat";
    if (this.#bdat.remaining === 0) this.#endChunk();
  }

  /** BDAT: exactly the announced octets, taken as they are (RFC 3030 §2: no dot-stuffing). */
  #bdatStep(): boolean {
    const take = Math.min(this.#bdat.remaining, this.#buffer.length);
    if (this.#bdat.refusal === undefined) this.#append(this.#buffer.subarray(0, take));
    this.#buffer = this.#buffer.subarray(take);
    this.#bdat.remaining -= take;
    if (this.#bdat.remaining > 0) return false;
    this.#endChunk();
    return true;
  }

  #endChunk(): void {
    const { last, refusal } = this.#bdat;
    if (refusal !== undefined) {
      // RFC 3030 §2: the chunk is read even when it is refused; the transaction is over.
      this.#mode = "command";
      this.#transaction = undefined;
      return this.#error(Number(refusal.slice(0, 3)), refusal.slice(4));
    }
    if (!last) {
      this.#mode = "command";
      if (this.#fault("data")) {
        this.#transaction = undefined;
        return;
      }
      return this.#ok(250, `2.0.0 ${this.#transaction!.size} octets received`);
    }
    this.#mode = "waiting";
    this.#finishMessage();
  }

  /** The final dot or BDAT LAST: keep the message (unless it was too big or a fault says otherwise), then reply. */
  #finishMessage(): void {
    const t = this.#transaction!;
    this.#transaction = undefined;
    // Read nothing more until the message is stored and answered (backpressure on the client).
    const socket = this.#socket;
    socket.pause();
    const resume = () => {
      if (this.#mode === "closed") return;
      this.#mode = "command";
      socket.resume();
      this.#process();
    };
    if (t.tooBig) {
      this.#error(552, `5.3.4 Message too big (at most ${this.#host.maxMessageSize} octets)`);
      return resume();
    }
    const fault = this.#host.faults.take("dot");
    if (fault !== undefined && !fault.drop) {
      this.#applyFault(fault);
      return resume();
    }
    const info: SessionInfo = { helo: this.#helo ?? "", remoteAddress: this.#socket.remoteAddress ?? "", tls: this.#secure, authUser: this.#authUser, chunked: t.chunked };
    this.#host.deliver(Buffer.concat(t.chunks), t.envelope, info).then(
      (id) => {
        if (fault?.drop) return this.#drop();
        this.#ok(250, `2.0.0 Ok: queued as ${id}`);
        resume();
      },
      () => {
        this.#error(451, "4.3.0 Could not store the message");
        resume();
      },
    );
  }
}
