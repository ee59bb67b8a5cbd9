/** The `missive/smtp` entry: the SMTP client, its pool and the protocol pieces they are built from. */
export { SmtpClient, DEFAULT_TIMEOUTS, isLoopback, addressLiteral } from "./client.js";
export type { SmtpClientOptions, SmtpTimeouts, SmtpTlsOptions, SmtpState, TlsMode, Envelope, DsnOptions, SendResult, MessageBody } from "./client.js";
export { SmtpPool } from "./pool.js";
export type { SmtpPoolOptions } from "./pool.js";
export { Capabilities, parseEhlo } from "./capabilities.js";
export { ReplyParser, parseReply, MAX_LINE_LENGTH, MAX_REPLY_LENGTH } from "./reply.js";
export type { SmtpReply, ReplyParserOptions } from "./reply.js";
export * as commands from "./commands.js";
export { Credentials, chooseMechanism, createMechanism, AUTH_METHODS, MAX_CHALLENGES } from "./auth.js";
export type { AuthMethod, AuthOptions, SaslMechanism } from "./auth.js";
export { DataEncoder, dataTransform, encodeData, bdatChunks } from "./data-stream.js";
export type { BodySource, BdatChunk } from "./data-stream.js";
export type { TlsInfo } from "./connection.js";
export { commandChannel, replyChannel } from "./transcript.js";
export type { TranscriptEntry, TranscriptHook, CommandMessage, ReplyMessage } from "./transcript.js";
export {
  SmtpError,
  SmtpConnectError,
  SmtpTimeoutError,
  SmtpTlsError,
  SmtpAuthError,
  SmtpRecipientsRefusedError,
  SmtpDeliveryUnknownError,
  SmtpProtocolError,
  SmtpClosedError,
  SmtpCapabilityError,
  AbortError,
  InvalidArgumentError,
} from "../errors.js";
export { resolveSmtpConfig, isResolvedSmtpConfig, deriveSmtpConfig, DEFAULT_POOL } from "./config.js";
export type { ConfigSource, ResolvedSmtpConfig, ResolvedPoolOptions, ResolvedTlsOptions } from "./config.js";
export type { Lease } from "./pool.js";
export type { Submission } from "./pending.js";
export { RFC5321_TIMEOUTS } from "./options.js";
export type { SmtpTimeoutPreset } from "./options.js";
export { greetingTimeoutHint } from "./config.js";
