/**
 * The final-dot point of each backend: the last moment at which a message certainly has
 * not been delivered, where `SendOptions.beforeFinalDot` is awaited.
 *
 * - smtp: after the last body byte, before the final dot (DATA) or BDAT LAST. The client
 *   writes the terminator only once the body iterable has ended (RFC 5321 §4.1.1.4: the
 *   message is committed by "<CRLF>.<CRLF>"; RFC 3030 §2: by the LAST chunk), so the body
 *   is handed over as `endingAfter(chunks, hook)`: it ends only after the hook resolved,
 *   and if the hook fails the body fails, the connection is dropped and nothing is committed.
 *   (With BDAT the chunks still buffered go out after the hook, none of them marked LAST.)
 * - file: after the temporary file is complete (and fsynced), before the rename that makes
 *   it appear.
 * - console: before the first byte, because a stream has no commit point: whatever was
 *   written has been read.
 * - memory: before the message is appended to the outbox array; dummy: after rendering.
 * - a custom backend that only implements `sendMessages`: before that call
 *   (BaseEmailBackend), because nothing says when inside it the message leaves. A custom
 *   backend with its own `sendMessagesWithReport` awaits the hook itself.
 */
import type { EmailMessage } from "../mime/message.js";
import type { SendOptions } from "./report.js";

/** Yields every chunk of `chunks`, then awaits `hook` before ending. */
export async function* endingAfter<T>(chunks: AsyncIterable<T>, hook: (() => Promise<void>) | undefined): AsyncGenerator<T> {
  yield* chunks;
  if (hook !== undefined) await hook();
}

/** The hook for one message, or undefined when the caller gave none. */
export function finalDotHook(options: SendOptions, message: EmailMessage): (() => Promise<void>) | undefined {
  const hook = options.beforeFinalDot;
  return hook === undefined ? undefined : () => hook(message);
}
