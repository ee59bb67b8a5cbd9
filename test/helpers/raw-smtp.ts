// A deliberately dumb SMTP dialogue client on node:net / node:tls, independent of src/,
// for tests of the test servers themselves and for hand-written byte-exact dialogues.
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";

export interface RawReply {
  code: number;
  lines: string[];
  /** The reply as received, CRLFs included. */
  raw: string;
}

export interface RawSmtpOptions {
  port: number;
  host?: string;
  /** Implicit TLS with these options (servername defaults to "localhost"). */
  tls?: ConnectionOptions;
  /** Bound on connect and on every reply. Default 5000 ms. */
  timeoutMs?: number;
}

export class RawSmtp {
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private ended = false;
  private error: Error | undefined;

  private constructor(
    public socket: Socket | TLSSocket,
    private readonly timeoutMs: number,
  ) {
    this.listen(socket);
  }

  static async connect(opts: RawSmtpOptions): Promise<RawSmtp> {
    const host = opts.host ?? "127.0.0.1";
    const timeoutMs = opts.timeoutMs ?? 5000;
    const socket = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const s = opts.tls
        ? tlsConnect({ servername: "localhost", ...opts.tls, host, port: opts.port })
        : netConnect({ host, port: opts.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      s.once(opts.tls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        s.off("error", onError);
        resolve(s);
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      s.once("error", onError);
    });
    return new RawSmtp(socket, timeoutMs);
  }

  private listen(socket: Socket | TLSSocket): void {
    socket.on("data", (c: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, c]);
      this.wake();
    });
    socket.on("end", () => {
      this.ended = true;
      this.wake();
    });
    socket.on("close", () => {
      this.ended = true;
      this.wake();
    });
    socket.on("error", (err) => {
      this.error = err;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** True once the server closed the connection (and every received byte was read). */
  get closed(): boolean {
    return this.ended && this.buffer.length === 0;
  }

  private tryParse(): RawReply | undefined {
    let offset = 0;
    const lines: string[] = [];
    for (;;) {
      const nl = this.buffer.indexOf("\r\n", offset);
      if (nl < 0) return undefined;
      const line = this.buffer.subarray(offset, nl).toString("utf8");
      lines.push(line);
      offset = nl + 2;
      if (line.length < 4 || line[3] === " ") {
        const raw = this.buffer.subarray(0, offset).toString("utf8");
        this.buffer = this.buffer.subarray(offset);
        return { code: Number(line.slice(0, 3)), lines, raw };
      }
    }
  }

  /** The next whole reply (multi-line aware). */
  async reply(timeoutMs = this.timeoutMs): Promise<RawReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.tryParse();
      if (r) return r;
      if (this.error) throw this.error;
      if (this.ended) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.buffer.toString("utf8"))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; have ${JSON.stringify(this.buffer.toString("utf8"))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves when the server closes the connection; throws after timeoutMs. */
  async waitClosed(timeoutMs = this.timeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Bytes received and not yet parsed as a reply. */
  pending(): Buffer {
    return this.buffer;
  }

  write(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** Sends `line` + CRLF and reads one reply. */
  async command(line: string): Promise<RawReply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** After a 220 to STARTTLS: handshake on the same socket. */
  async upgrade(opts: ConnectionOptions): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("end");
    plain.removeAllListeners("close");
    plain.removeAllListeners("error");
    this.buffer = Buffer.alloc(0);
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ servername: "localhost", ...opts, socket: plain });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error("TLS handshake timed out"));
      }, this.timeoutMs);
      s.once("secureConnect", () => {
        clearTimeout(timer);
        s.off("error", onError);
        resolve(s);
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      s.once("error", onError);
    });
    this.socket = secure;
    this.listen(secure);
  }

  close(): void {
    this.socket.destroy();
  }
}
