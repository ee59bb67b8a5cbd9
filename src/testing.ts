/**
 * `missive/testing`: what tests need to check mail without a server, after Django's
 * `django.core.mail.outbox` and its test runner.
 *
 * ```ts
 * import { beforeEach, afterEach, expect, test } from "vitest";
 * import { sendMail } from "missive";
 * import { outbox, setupTestMail } from "missive/testing";
 *
 * let restore: () => void;
 * beforeEach(() => { restore = setupTestMail(); });   // route mail to memory, empty the outbox
 * afterEach(() => restore());
 *
 * test("welcome mail", async () => {
 *   await sendMail({ subject: "Hi", message: "Welcome", from: "a@example.com", to: ["b@example.com"] });
 *   expect(outbox).toHaveLength(1);
 *   expect(outbox[0]!.subject).toBe("Hi");
 * });
 * ```
 *
 * While memory routing is on, `getConnection()` (and so `sendMail`, `sendMassMail`,
 * `mailAdmins`, `mailManagers` and `EmailMessage#send`) and every named connection from
 * `configure({ backends })` give a `MemoryBackend`. A backend asked for explicitly by
 * name (`getConnection("smtp")`) or by class is still honoured, as in Django.
 *
 * For tests that go over SMTP for real, `startMailCatcher()` is a capture server with
 * fault injection, its messages parsed by `missive/parse` (see src/preview/catcher.ts).
 */
import type { EmailMessage } from "./mime/message.js";
import { processWide } from "./process-state.js";

export { startMailCatcher } from "./preview/catcher.js";
export type { MailCatcher, MailCatcherOptions, WaitForOptions } from "./preview/catcher.js";
export type { CaughtMessage } from "./preview/store.js";
export type { FaultPhase, FaultSpec } from "./preview/faults.js";
export type { Envelope, SessionInfo } from "./preview/smtp-session.js";
export { MailCatcherTimeoutError } from "./errors.js";

/**
 * The outbox and the routing depth are one per process, shared by the ESM and CJS builds
 * (see process-state.ts): `setupTestMail()` from an ESM test routes a `sendMail` made by
 * CJS code to the same outbox.
 */
const state = processWide("testing.v1", () => ({ outbox: [] as EmailMessage[], routingDepth: 0 }));

/**
 * Every message sent through the memory backend, in order: copies made when sent
 * (`message.snapshot()`), so changing a message afterwards does not change what a test reads.
 */
export const outbox: EmailMessage[] = state.outbox;

/** Empties `outbox` in place (references to the array stay valid). */
export function clearOutbox(): void {
  outbox.length = 0;
}

/** True while `useMemoryBackend()`/`setupTestMail()` is in effect. */
export function isMemoryRoutingActive(): boolean {
  return state.routingDepth > 0;
}

/**
 * Routes the default and named connections to the memory backend until the returned
 * function (or `restoreBackend()`) is called. Calls nest.
 */
export function useMemoryBackend(): () => void {
  state.routingDepth++;
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    state.routingDepth = Math.max(0, state.routingDepth - 1);
  };
}

/** Undoes every `useMemoryBackend()` still in effect. */
export function restoreBackend(): void {
  state.routingDepth = 0;
}

/** `useMemoryBackend()` plus `clearOutbox()`: the usual `beforeEach`. Returns the restore function. */
export function setupTestMail(): () => void {
  clearOutbox();
  return useMemoryBackend();
}
