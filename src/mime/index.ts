/** `missive/mime`: the message model and the encoders, usable without any transport. */
export { EmailMessage, EmailMultiAlternatives, formatDate } from "./message.js";
export type { Alternative, AddressField, Attachment, EmailMessageOptions, PreparedMessage } from "./message.js";
export type { AutoSubmitted, ListOptions, ListUnsubscribe, ListUrls, MailtoFields, Priority } from "./list-headers.js";
export { MimePart } from "./part.js";
export { calendarInvite } from "./calendar.js";
export { fileContent, isFileContent } from "./file-content.js";
export type { FileContent } from "./file-content.js";
export type { CalendarInvite } from "./calendar.js";
export type { BodySource, MimePartOptions } from "./part.js";
export { Policy, policies } from "./policy.js";
export type { PolicyOptions } from "./policy.js";
export { getMessageDefaults, setMessageDefaults, resetMessageDefaults } from "./defaults.js";
export type { MessageDefaults, MessageSender } from "./defaults.js";
export { parseAddressList, parseMailbox, formatAddress, envelopeAddress, needsSmtpUtf8 } from "./address.js";
export type { Mailbox, Group } from "./address.js";
export * as encoding from "./encoding/index.js";
export { freeze, render, withHeaders, renderedChunks, renderedBytes, renderedHeaderBytes } from "./render.js";
export type { Frozen, Rendered, HeaderField } from "./render.js";
