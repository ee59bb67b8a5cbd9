/**
 * missive: standards-correct email for Node.js.
 *
 * The Django-style API (sendMail, sendMassMail, mailAdmins, mailManagers, getConnection),
 * the message classes, settings and every error class. Backends are in "missive/backends",
 * test helpers in "missive/testing", the bare SMTP client in "missive/smtp" and the MIME
 * layer in "missive/mime".
 */
export { sendMail, sendMassMail, mailAdmins, mailManagers, getConnection, deliver, deliverMany } from "./api.js";
export type { ConnectionOptions, SendMailOptions, SendMassMailOptions, MassMailTuple, MailAdminsOptions, DeliverOptions, MessageFields } from "./api.js";
export { reportsOf } from "./backends/report.js";
export type { DeliveryReport, DeliveryAttempt, DeliveryStatus, RecipientOutcome, SendOptions, SendReport, StopReason } from "./backends/report.js";
export {
  FailoverBackend,
  RoutingBackend,
  RateLimitedBackend,
  TokenBucket,
  Circuit,
  DEFAULT_RETRY,
  DEFAULT_CIRCUIT,
  backoffDelay,
  retryDelay,
  noopObserver,
} from "./delivery/index.js";
export type {
  FailoverBackendOptions,
  FailoverRoute,
  FailoverSettings,
  RetryPolicy,
  ResolvedRetryPolicy,
  Jitter,
  CircuitSettings,
  CircuitState,
  RateLimit,
  AttemptContext,
  DeliveryObserver,
} from "./delivery/index.js";
export { configure, getSettings, resetSettings } from "./settings.js";
export type { Settings, SettingsInput, TlsMode, RouteFunction } from "./settings.js";
export { EmailMessage, EmailMultiAlternatives } from "./mime/message.js";
export type { Alternative, AddressField, Attachment, EmailMessageOptions, PreparedMessage } from "./mime/message.js";
export type { AutoSubmitted, ListOptions, ListUnsubscribe, ListUrls, MailtoFields, Priority } from "./mime/list-headers.js";
export { MimePart } from "./mime/part.js";
export { calendarInvite } from "./mime/calendar.js";
export { fileContent, isFileContent } from "./mime/file-content.js";
export type { FileContent } from "./mime/file-content.js";
export type { CalendarInvite } from "./mime/calendar.js";
export type { MimePartOptions, BodySource } from "./mime/part.js";
export { Policy, policies } from "./mime/policy.js";
export type { Mailbox } from "./mime/address.js";
export {
  ERROR_CODES,
  MissiveError,
  BadHeaderError,
  InvalidAddressError,
  EncodingError,
  InvalidArgumentError,
  ConfigurationError,
  BackendError,
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
  RateLimitedError,
  CircuitOpenError,
} from "./errors.js";
export type { ErrorCode, RejectedRecipient, TimeoutPhase } from "./errors.js";
export { MailCatcherTimeoutError } from "./errors.js";
export { CHANNEL_NAMES, EVENT_CHANNEL_NAMES } from "./observe/channels.js";
export type { ChannelName, EventChannelName, ChannelReply, SmtpCommandMessage, SmtpReplyMessage, MessageSentMessage } from "./observe/channels.js";
export { EVENTS } from "./observe/events.js";
export type {
  EventName,
  MissiveEvent,
  MissiveEvents,
  OutcomeStatus,
  ErrorFields,
  ConnectionFields,
  DeliveryFields,
  RefusedField,
  SmtpConnectEvent,
  SmtpTlsEvent,
  SmtpAuthEvent,
  SmtpCommandEvent,
  SmtpReplyEvent,
  SmtpCloseEvent,
  MessageOutcomeEvent,
  MessageAttemptEvent,
  MessageRetryEvent,
  MessageFailoverEvent,
  RouteSkipEvent,
  RouteCircuitEvent,
  RateLimitWaitEvent,
} from "./observe/events.js";
export type { DeliveryContext } from "./observe/delivery.js";
export { LOG_LEVELS } from "./observe/log.js";
export type { Logger, LogLevel, LogRecipients, RecipientsField } from "./observe/log.js";
export { systemClock } from "./observe/clock.js";
export type { Clock, TimerHandle } from "./observe/clock.js";
export { classify, classification, CLASSIFICATION_RULES } from "./errors/classify.js";
export type { Verdict, Classification } from "./errors/classify.js";
export { recordStage } from "./errors.js";
export type { SmtpStage } from "./errors.js";
export { freeze, render, withHeaders, renderedChunks, renderedBytes, renderedHeaderBytes } from "./mime/render.js";
export type { Frozen, Rendered, HeaderField } from "./mime/render.js";
