/**
 * A minimal raw SMTP client: the yardstick for missive's SMTP throughput. It sends one
 * prebuilt message `count` times over one connection and checks every reply code, and
 * nothing else: no TLS, no AUTH, no timeouts, no error recovery (any unexpected reply
 * ends the run with an error).
 *
 * How many round trips a message costs:
 * - "one": RFC 2920 §3.1 at its fullest. DATA must wait for its 354, but the message bytes,
 *   the final dot and the next message's MAIL, RCPT and DATA may go in one write; so after
 *   the first MAIL/RCPT/DATA each message is one write and one wait (for 250, 250, 250, 354).
 * - "two": MAIL, RCPT and DATA in one write, then the message and the dot: two waits.
 * - "lockstep": no pipelining, every command waits for its reply: 3 + number of RCPTs.
 */
import net from "node:net";

export type RoundTrips = "one" | "two" | "lockstep";

export interface RawSendOptions {
  host: string;
  port: number;
  from: string;
  to: readonly string[];
  /** The message (header block, blank line, body), CRLF line breaks, not dot-stuffed. */
  message: Buffer;
  count: number;
  mode: RoundTrips;
}

/** The DATA bytes of a CRLF message: a leading dot on any line doubled, then `.CRLF` (RFC 5321 §4.5.2). */
export function dataBytes(message: Buffer): Buffer {
  let text = message.toString("latin1").replaceAll("\r\n.", "\r\n..");
  if (text.startsWith(".")) text = `.${text}`;
  if (!text.endsWith("\r\n")) text += "\r\n";
  return Buffer.from(`${text}.\r\n`, "latin1");
}

class Replies {
  readonly #socket: net.Socket;
  #carry = "";
  #lines: string[] = [];
  #expected: number[] = [];
  #waiting: { left: number; resolve: () => void; reject: (e: Error) => void } | undefined;
  #failure: Error | undefined;
  /** The lines of the last reply that completed (for EHLO's extensions). */
  last: string[] = [];

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#read(chunk));
    socket.on("error", (e) => this.#fail(e));
    socket.on("close", () => this.#fail(new Error("connection closed")));
  }

  /** Resolves when replies with these codes, in this order, have come. Call before writing the commands. */
  expect(codes: readonly number[]): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    this.#expected.push(...codes);
    return new Promise((resolve, reject) => {
      this.#waiting = { left: codes.length, resolve, reject };
    });
  }

  #read(chunk: Buffer): void {
    const lines = (this.#carry + chunk.toString("latin1")).split("\r\n");
    this.#carry = lines.pop()!;
    for (const line of lines) {
      this.#lines.push(line);
      if (line.length > 3 && line[3] === "-") continue;
      const code = Number(line.slice(0, 3));
      this.last = this.#lines;
      this.#lines = [];
      const want = this.#expected.shift();
      if (code !== want) {
        this.#fail(new Error(`expected ${want ?? "no reply"} but got: ${line}`));
        return;
      }
      const w = this.#waiting!;
      if (--w.left === 0) {
        this.#waiting = undefined;
        w.resolve();
      }
    }
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#socket.destroy();
    this.#waiting?.reject(error);
  }
}

/** Sends `count` copies of the message; resolves after QUIT's reply. */
export async function rawSend(o: RawSendOptions): Promise<void> {
  const socket = net.connect({ host: o.host, port: o.port, noDelay: true });
  const replies = new Replies(socket);
  await replies.expect([220]);
  const ehlo = replies.expect([250]);
  socket.write("EHLO bench.example\r\n");
  await ehlo;
  if (o.mode !== "lockstep" && !replies.last.some((l) => /^250[ -]PIPELINING$/i.test(l))) throw new Error("the server does not offer PIPELINING");

  const data = dataBytes(o.message);
  const mail = `MAIL FROM:<${o.from}>\r\n`;
  const rcpts = o.to.map((a) => `RCPT TO:<${a}>\r\n`);
  const envelope = Buffer.from(mail + rcpts.join("") + "DATA\r\n", "latin1");
  const envelopeCodes = [250, ...rcpts.map(() => 250), 354];
  const quit = Buffer.from("QUIT\r\n", "latin1");

  const exchange = async (bytes: Buffer, codes: readonly number[]) => {
    const done = replies.expect(codes);
    socket.write(bytes);
    await done;
  };

  if (o.mode === "one") {
    await exchange(envelope, envelopeCodes);
    for (let i = 0; i < o.count; i++) {
      const last = i === o.count - 1;
      await exchange(Buffer.concat([data, last ? quit : envelope]), [250, ...(last ? [221] : envelopeCodes)]);
    }
  } else {
    for (let i = 0; i < o.count; i++) {
      if (o.mode === "two") {
        await exchange(envelope, envelopeCodes);
      } else {
        await exchange(Buffer.from(mail, "latin1"), [250]);
        for (const rcpt of rcpts) await exchange(Buffer.from(rcpt, "latin1"), [250]);
        await exchange(Buffer.from("DATA\r\n", "latin1"), [354]);
      }
      await exchange(data, [250]);
    }
    await exchange(quit, [221]);
  }
  socket.destroy();
}

/** `count` messages over `connections` connections at once (the messages in flight). */
export async function rawSendParallel(o: RawSendOptions, connections: number): Promise<void> {
  const shares = Array.from({ length: connections }, (_, i) => Math.floor(o.count / connections) + (i < o.count % connections ? 1 : 0));
  await Promise.all(shares.filter((n) => n > 0).map((count) => rawSend({ ...o, count })));
}
