/** `missive/backends`: the built-in backends, the base class and the registry. */
import { registerBuiltinBackendClass } from "../backend-registry.js";
import { ConsoleBackend } from "./console.js";
import { DummyBackend } from "./dummy.js";
import { FileBackend } from "./file.js";
import { MemoryBackend } from "./memory.js";
import { SmtpBackend } from "./smtp.js";

registerBuiltinBackendClass("smtp", SmtpBackend);
registerBuiltinBackendClass("console", ConsoleBackend);
registerBuiltinBackendClass("file", FileBackend);
registerBuiltinBackendClass("memory", MemoryBackend);
registerBuiltinBackendClass("dummy", DummyBackend);

export { BaseEmailBackend, messageSentChannel, sendWithReport } from "./base.js";
export { reportsOf } from "./report.js";
export type { DeliveryReport, DeliveryAttempt, DeliveryStatus, RecipientOutcome, SendOptions, SendReport, StopReason } from "./report.js";
export type { BackendClass, BackendOptions, EmailBackend, MessageSentEvent } from "./base.js";
export { ConsoleBackend, CONSOLE_SEPARATOR } from "./console.js";
export type { ConsoleBackendOptions } from "./console.js";
export { DummyBackend } from "./dummy.js";
export { FileBackend } from "./file.js";
export type { FileBackendOptions } from "./file.js";
export { MemoryBackend } from "./memory.js";
export { SmtpBackend } from "./smtp.js";
export type { RefusedRecipient, SmtpBackendOptions, SmtpMessageReport, SmtpSendReport } from "./smtp.js";
export { registerBackend, unregisterBackend, lookupBackend, backendNames, BUILTIN_BACKENDS } from "./registry.js";
export { backendDkim, signersFor, signForDestination } from "./dkim.js";
export type { CheckedDkim, SigningOptions } from "./dkim.js";
