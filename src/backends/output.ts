import { Readable, type Writable } from "node:stream";
import { BackendError, CircuitOpenError, RateLimitedError, SmtpError } from "../errors.js";
import { CHUNK_SIZE } from "../mime/body.js";
import type { EmailMessage } from "../mime/message.js";
import { policies } from "../mime/policy.js";
import { freeze, render, renderedChunks } from "../mime/render.js";
import { signForDestination, type Signing } from "./dkim.js";

/** A message ready to be written: its Message-ID and its bytes. */
export interface OutputMessage {
  readonly messageId: string;
  /** The whole message (header block, CRLF, body); each call reads it afresh. */
  stream(): Readable;
}

/**
 * Helpers shared by the backends that write messages out (console, file): the bytes
 * are those SMTP would send to a server with no extensions, except that a message whose
 * addresses need SMTPUTF8 is written with UTF-8 headers (there is no 7-bit form of it).
 * With DKIM (the message's, else the backend's, else the settings'), those bytes are
 * signed and the DKIM-Signature fields come first, as a receiver would get them.
 */
export async function prepareForOutput(message: EmailMessage, signing: Signing): Promise<OutputMessage> {
  const policy = message.needsSmtpUtf8() ? policies.default.with({ utf8: true }) : policies.default;
  const rendered = await signForDestination(await render(await freeze(message), policy), message, signing.dkim, signing.clock);
  return {
    messageId: rendered.messageId,
    stream: () => Readable.from(renderedChunks(rendered), { objectMode: false, highWaterMark: CHUNK_SIZE }),
  };
}

/** Errors that `failSilently` may hide: delivery failures, never programming errors. */
export function isDeliveryError(err: unknown): boolean {
  return err instanceof SmtpError || err instanceof BackendError || err instanceof RateLimitedError || err instanceof CircuitOpenError;
}

/**
 * Copies `source` into `target` without ending it, honouring backpressure. Errors of the
 * target become `BackendError`; errors of the source (a missing attachment file, a bad
 * header found while streaming) are rethrown as they are.
 */
export async function copyInto(source: Readable, target: Writable, what: string): Promise<{ endsWithCrlf: boolean }> {
  try {
    assertWritable(target, what);
  } catch (err) {
    source.destroy();
    throw err;
  }
  let tail = Buffer.alloc(0);
  let targetError: Error | undefined;
  const onError = (err: Error) => {
    targetError ??= err;
    source.destroy();
  };
  target.on("error", onError);
  try {
    try {
      for await (const chunk of source) {
        if (targetError) break;
        const bytes = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
        if (bytes.length > 0) tail = Buffer.concat([tail, bytes.subarray(Math.max(0, bytes.length - 2))]).subarray(-2);
        assertWritable(target, what);
        if (!target.write(bytes)) await waitForDrain(target, what);
      }
    } catch (err) {
      if (!targetError) throw err;
    }
    if (targetError) throw targetError;
    return { endsWithCrlf: tail.length === 2 && tail[0] === 0x0d && tail[1] === 0x0a };
  } catch (err) {
    if (err instanceof BackendError) {
      source.destroy();
      throw err;
    }
    if (err === targetError) throw new BackendError(`Could not write to ${what}: ${(err as Error).message}`, { cause: err });
    throw err;
  } finally {
    target.off("error", onError);
  }
}

/** Writes `chunk` and waits until the target has taken it (its write callback). */
export function writeAndWait(target: Writable, chunk: string | Uint8Array, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      assertWritable(target, what);
    } catch (err) {
      reject(err);
      return;
    }
    let settled = false;
    const onError = (err: Error) => done(err);
    const done = (err?: Error | null) => {
      if (settled) return;
      settled = true;
      target.off("error", onError);
      if (err) reject(new BackendError(`Could not write to ${what}: ${err.message}`, { cause: err }));
      else resolve();
    };
    target.on("error", onError);
    target.write(chunk, (err) => done(err));
  });
}

/** A destroyed or ended target would never take the bytes (nor emit 'drain'): fail now. */
function assertWritable(target: Writable, what: string): void {
  if (target.destroyed || target.writableEnded) {
    throw new BackendError(`Could not write to ${what}: the stream is ${target.destroyed ? "destroyed" : "ended"}`);
  }
}

/**
 * Waits for 'drain' after a write returned false. 'close' (or 'error') before 'drain'
 * means the bytes will never be taken: a BackendError. Every listener it adds is removed
 * when it settles, so a long run of messages to a slow stream leaves none behind.
 */
export function waitForDrain(target: Writable, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      target.off("drain", onDrain);
      target.off("close", onClose);
      target.off("error", onError);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => settle();
    const onClose = () => settle(new BackendError(`Could not write to ${what}: the stream closed before it took the message`));
    const onError = (err: Error) => settle(new BackendError(`Could not write to ${what}: ${err.message}`, { cause: err }));
    target.on("drain", onDrain);
    target.on("close", onClose);
    target.on("error", onError);
    // It may have been destroyed between the write and now; 'close' may already be past.
    if (target.destroyed) onClose();
  });
}

/** Runs `task` after every earlier task queued for the same key (e.g. one stream). */
const queues = new WeakMap<object, Promise<unknown>>();
export function serialize<T>(key: object, task: () => Promise<T>): Promise<T> {
  const previous = queues.get(key) ?? Promise.resolve();
  const run = previous.then(task, task);
  queues.set(key, run.catch(() => undefined));
  return run;
}
