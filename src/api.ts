/**
 * The Django-style sending functions: `sendMail`, `sendMassMail`, `mailAdmins`,
 * `mailManagers` and `getConnection`. Each resolves to the number of messages sent.
 * `deliver` and `deliverMany` resolve to what happened to each message (a DeliveryReport)
 * and throw only for programming errors.
 *
 * `failSilently` turns delivery failures (the SmtpError family, BackendError) into a
 * lower count. It never hides a programming or configuration error: BadHeaderError,
 * InvalidAddressError, EncodingError, InvalidArgumentError and ConfigurationError are
 * always thrown.
 */
import { AbortError, ConfigurationError, InvalidArgumentError, type MissiveError } from "./errors.js";
import { sendWithReport, type BackendClass, type EmailBackend } from "./backends/base.js";
import "./backends/index.js";
import { MemoryBackend } from "./backends/memory.js";
import { isDeliveryError } from "./backends/output.js";
import { envelopeRecipients, failedReport, reportsOf, type DeliveryReport } from "./backends/report.js";
import { backendNames, lookupBackend } from "./backends/registry.js";
import "./delivery/index.js";
import "./outbox/backend.js";
import { FailoverBackend, type FailoverSendOptions } from "./delivery/failover.js";
import { isNamedConnection, namedConnection } from "./delivery/named.js";
import { ObserverSet, observerProblem, type DeliveryObserver } from "./delivery/observer.js";
import type { RetryPolicy } from "./delivery/retry.js";
import { RoutingBackend } from "./delivery/routing.js";
import { setMessageDefaults } from "./mime/defaults.js";
import { EmailMessage, EmailMultiAlternatives, type AddressField, type Alternative, type Attachment } from "./mime/message.js";
import type { MimePart } from "./mime/part.js";
import { getSettings } from "./settings.js";
import { LIST_OPTION_NAMES, pickListOptions, type ListOptions } from "./mime/list-headers.js";
import { describeValue, refuseUnknownKeys } from "./errors/options.js";
import { isMemoryRoutingActive } from "./testing.js";

export interface ConnectionOptions {
  failSilently?: boolean | undefined;
  /** Any other option goes to the backend's constructor (host, port, username, filePath, stream, ...). */
  [option: string]: unknown;
}

/**
 * A new backend instance. No name: the default backend (`configure({ backend })`, or the
 * `default` named connection), a new instance on every call as in Django. A name: a named
 * connection from `configure({ backends })`, a built-in backend ("smtp", "console",
 * "file", "memory", "dummy") or a registered one. Options override the settings.
 */
export function getConnection(options?: ConnectionOptions): EmailBackend;
export function getConnection(backend?: string | BackendClass, options?: ConnectionOptions): EmailBackend;
export function getConnection(backendOrOptions?: string | BackendClass | ConnectionOptions, maybeOptions: ConnectionOptions = {}): EmailBackend {
  let backend: string | BackendClass | undefined;
  let options: ConnectionOptions;
  if (typeof backendOrOptions === "object" && backendOrOptions !== null) {
    backend = undefined;
    options = backendOrOptions;
  } else {
    backend = backendOrOptions;
    options = maybeOptions ?? {};
  }
  if (typeof options !== "object" || options === null) throw new InvalidArgumentError("getConnection options must be an object");

  if (typeof backend === "function") return new backend(options);
  const settings = getSettings();
  if (backend === undefined || backend === null) {
    if (isMemoryRoutingActive()) return new MemoryBackend(options);
    const route = settings.route;
    if (route !== undefined) {
      // The default connection routes each message (configure({ route })): a named connection, or the default backend.
      return new RoutingBackend({
        route,
        connect: (name) => (name === undefined ? defaultBackend(options) : namedConnection(name, options)),
        exists: isNamedConnection,
        failSilently: options.failSilently,
      });
    }
    return defaultBackend(options);
  }
  if (typeof backend !== "string" || backend === "") throw new InvalidArgumentError("getConnection(backend) takes a backend name or class");
  if (Object.hasOwn(settings.backends, backend)) {
    if (isMemoryRoutingActive()) return new MemoryBackend(options);
    return namedConnection(backend, options);
  }
  const cls = lookupBackend(backend);
  if (cls === undefined) {
    const known = [...backendNames(), ...Object.keys(settings.backends)];
    throw new InvalidArgumentError(`Unknown backend or connection "${backend}"; known: ${known.join(", ")}`);
  }
  return new cls(options);
}

/** The default backend without routing: `backends.default`, else `configure({ backend })`. */
function defaultBackend(options: ConnectionOptions): EmailBackend {
  const settings = getSettings();
  if (Object.hasOwn(settings.backends, "default")) return namedConnection("default", options);
  const configured = settings.backend;
  if (typeof configured === "function") return new (configured as BackendClass)(options);
  const cls = lookupBackend(configured);
  if (cls === undefined) {
    throw new ConfigurationError("backend", `Unknown backend "${configured}" (from configure({ backend }) or EMAIL_BACKEND); known: ${backendNames().join(", ")}`);
  }
  return new cls(options);
}

/**
 * The message fields `sendMail` and `deliver` take (Django's send_mail, plus the EmailMessage fields it drops);
 * the bulk-mail options (listId, listUnsubscribe, listHelp, listArchive, autoSubmitted, priority) go to the message as they are.
 */
export interface MessageFields extends ListOptions {
  /** null: empty (Django's None). */
  subject: string | null;
  /** The text body; null: empty (Django's None). */
  message: string | null;
  /** Defaults to the `defaultFrom` setting (DEFAULT_FROM_EMAIL). */
  from?: string | undefined | null;
  to?: AddressField | undefined;
  cc?: AddressField | undefined;
  bcc?: AddressField | undefined;
  replyTo?: AddressField | undefined;
  /** Extra headers (they override the generated ones, such as Message-ID). */
  headers?: Record<string, string> | undefined;
  attachments?: readonly (Attachment | MimePart)[] | undefined;
  /** Alternative bodies, e.g. `[{ content: "<p>Hi</p>", mimetype: "text/html" }]`. */
  alternatives?: readonly Alternative[] | undefined;
  /** An HTML alternative to the text body. */
  html?: string | undefined | null;
}

export interface SendMailOptions extends MessageFields {
  failSilently?: boolean | undefined;
  /** SMTP user name for this message (the backend's `username`). */
  authUser?: string | undefined;
  /** SMTP password for this message (the backend's `password`). */
  authPassword?: string | undefined;
  /** A backend to send with; else a new default connection. */
  connection?: EmailBackend | undefined;
}

/** The keys of MessageFields (`deliver`'s fields); `sendMail` takes these and SEND_MAIL_KEYS. */
const MESSAGE_FIELD_KEYS = ["subject", "message", "from", "to", "cc", "bcc", "replyTo", "headers", "attachments", "alternatives", "html", ...LIST_OPTION_NAMES];
const SEND_MAIL_KEYS = [...MESSAGE_FIELD_KEYS, "failSilently", "authUser", "authPassword", "connection"];
const SEND_MASS_MAIL_KEYS = ["failSilently", "authUser", "authPassword", "connection"];
const MAIL_ADMINS_KEYS = ["html", "failSilently", "connection"];

/** Refuses what is not an options object, and any key not in `known`. */
function checkOptions(options: unknown, known: readonly string[], call: string): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`${call} options must be an object, got ${describeValue(options)}`);
  }
  refuseUnknownKeys(options, known, `${call} option`);
}

/** The message `sendMail` and `deliver` build from their fields. */
function buildMessage(fields: MessageFields, connection: EmailBackend | undefined): EmailMultiAlternatives {
  const { subject, message, from, to, cc, bcc, replyTo, headers, attachments, alternatives, html } = fields;
  const mail = new EmailMultiAlternatives({
    subject,
    body: message,
    ...(to !== undefined ? { to } : {}),
    ...(cc !== undefined ? { cc } : {}),
    ...(bcc !== undefined ? { bcc } : {}),
    ...(replyTo !== undefined ? { replyTo } : {}),
    ...(headers !== undefined ? { headers } : {}),
    ...(attachments !== undefined ? { attachments } : {}),
    ...(alternatives !== undefined ? { alternatives } : {}),
    ...(from != null ? { from } : {}),
    ...(connection !== undefined ? { connection } : {}),
  });
  if (html != null) mail.attachAlternative(html, "text/html");
  Object.assign(mail, pickListOptions(fields));
  return mail;
}

/**
 * Sends one message; resolves to 1, or 0 when it was not sent and `failSilently` is set,
 * and 0 when it has no recipient at all (Django).
 */
export async function sendMail(options: SendMailOptions): Promise<number> {
  if (typeof options !== "object" || options === null) throw new InvalidArgumentError("sendMail takes an options object: { subject, message, from, to }");
  checkOptions(options, SEND_MAIL_KEYS, "sendMail");
  const { failSilently = false, authUser, authPassword } = options;
  const connection = options.connection ?? getConnection(undefined, credentials(failSilently, authUser, authPassword));
  const mail = buildMessage(options, connection);
  return guarded(failSilently, () => mail.send({ failSilently }));
}

/** One entry of `sendMassMail`: `[subject, message, from, to]` (from null for the default). */
export type MassMailTuple = readonly [subject: string, message: string, from: string | null | undefined, to: AddressField];

export interface SendMassMailOptions {
  failSilently?: boolean | undefined;
  authUser?: string | undefined;
  authPassword?: string | undefined;
  connection?: EmailBackend | undefined;
}

/**
 * Sends each tuple as its own message over one connection (opened once, closed at the
 * end unless it was already open). Resolves to the number sent.
 */
export async function sendMassMail(datatuples: Iterable<MassMailTuple>, options: SendMassMailOptions = {}): Promise<number> {
  if (datatuples == null || typeof (datatuples as Iterable<unknown>)[Symbol.iterator] !== "function") {
    throw new InvalidArgumentError("sendMassMail takes a list of [subject, message, from, to] tuples");
  }
  checkOptions(options, SEND_MASS_MAIL_KEYS, "sendMassMail");
  const { failSilently = false, authUser, authPassword } = options;
  const connection = options.connection ?? getConnection(undefined, credentials(failSilently, authUser, authPassword));
  const messages: EmailMessage[] = [];
  for (const tuple of datatuples) {
    if (!Array.isArray(tuple) || tuple.length !== 4) throw new InvalidArgumentError("Each sendMassMail entry is [subject, message, from, to]");
    const [subject, body, from, to] = tuple as unknown as MassMailTuple;
    messages.push(new EmailMessage({ subject, body, to, connection, ...(from != null ? { from } : {}) }));
  }
  if (messages.length === 0) return 0;
  return guarded(failSilently, () => connection.sendMessages(messages));
}

export interface MailAdminsOptions {
  html?: string | undefined | null;
  failSilently?: boolean | undefined;
  connection?: EmailBackend | undefined;
}

/** Mails the `admins` setting, From `serverEmail`, subject prefixed with `subjectPrefix`. 0 when there are no admins. */
export async function mailAdmins(subject: string, message: string, options: MailAdminsOptions = {}): Promise<number> {
  checkOptions(options, MAIL_ADMINS_KEYS, "mailAdmins");
  return mailList(getSettings().admins, subject, message, options);
}

/** As `mailAdmins`, to the `managers` setting. */
export async function mailManagers(subject: string, message: string, options: MailAdminsOptions = {}): Promise<number> {
  checkOptions(options, MAIL_ADMINS_KEYS, "mailManagers");
  return mailList(getSettings().managers, subject, message, options);
}

async function mailList(list: readonly string[], subject: string, message: string, options: MailAdminsOptions): Promise<number> {
  if (list.length === 0) return 0;
  const settings = getSettings();
  const { failSilently = false, html } = options;
  const connection = options.connection ?? getConnection(undefined, { failSilently });
  const mail = new EmailMultiAlternatives({
    subject: `${settings.subjectPrefix}${subject}`,
    body: message,
    from: settings.serverEmail,
    to: [...list],
    connection,
  });
  if (html != null) mail.attachAlternative(html, "text/html");
  return guarded(failSilently, () => mail.send({ failSilently }));
}

function credentials(failSilently: boolean, username: string | undefined, password: string | undefined): ConnectionOptions {
  const out: ConnectionOptions = { failSilently };
  if (username !== undefined) out["username"] = username;
  if (password !== undefined) out["password"] = password;
  return out;
}

/**
 * A connection passed in by the caller keeps its own `failSilently`; the call's flag is
 * honoured on top, for delivery errors only.
 */
async function guarded(failSilently: boolean, send: () => Promise<number>): Promise<number> {
  try {
    return await send();
  } catch (err) {
    if (failSilently && isDeliveryError(err)) return 0;
    throw err;
  }
}

export interface DeliverOptions {
  /** The backend to send with; else the message's own `connection`, else a new default connection (routed, failover, …). */
  connection?: EmailBackend | undefined;
  /** Cancels waits and the message in flight: the report then says "aborted" (or "unknown" after the final dot). */
  signal?: AbortSignal | undefined;
  /**
   * Retries over a connection that has no policy of its own (a plain backend), as one
   * route named "default". A FailoverBackend (or `backend: "failover"`) has its own.
   */
  retry?: RetryPolicy | undefined;
  /** Sees every decision of the delivery engine, and each message's outcome. */
  observer?: DeliveryObserver | undefined;
}

/**
 * Delivers one message and resolves to its report: status, accepted, rejected and deferred
 * recipients, the route, every attempt. Takes an EmailMessage, or the fields of `sendMail`.
 * Throws only for programming errors — a bad header or address, a bad option, no recipient
 * at all (InvalidArgumentError); every delivery failure is in the report.
 */
export async function deliver(messageOrFields: EmailMessage | MessageFields, options: DeliverOptions = {}): Promise<DeliveryReport> {
  const message = messageOrFields instanceof EmailMessage ? messageOrFields : fieldsMessage(messageOrFields);
  const [report] = await deliverMany([message], options);
  return report!;
}

/**
 * Delivers each message and resolves to their reports, in order. Never stops at a failed
 * message; throws only for programming errors, before anything is sent when it can.
 */
export async function deliverMany(messages: readonly EmailMessage[], options: DeliverOptions = {}): Promise<DeliveryReport[]> {
  if (!Array.isArray(messages)) throw new InvalidArgumentError("deliverMany takes a list of EmailMessage");
  if (typeof options !== "object" || options === null) throw new InvalidArgumentError("deliver options must be an object: { connection, signal, retry, observer }");
  refuseUnknownKeys(options, ["connection", "signal", "retry", "observer"], "deliver option");
  const { connection, signal, retry, observer } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError("deliver options.signal must be an AbortSignal");
  if (observer !== undefined && observerProblem(observer) !== undefined) throw new InvalidArgumentError(`deliver options.observer ${observerProblem(observer)}`);
  messages.forEach((message, i) => {
    if (!(message instanceof EmailMessage)) throw new InvalidArgumentError(`deliverMany: item ${i} is not an EmailMessage`);
    // Checked before anything is sent: an address that cannot be an envelope throws here.
    if (envelopeRecipients(message).length === 0) throw new InvalidArgumentError(`deliver: the message "${message.subject}" has no recipient (to, cc or bcc)`);
  });
  // Each message goes with the connection it names, else the one given, else the default.
  const groups = new Map<EmailBackend | undefined, number[]>();
  messages.forEach((message, i) => {
    const key = connection ?? message.connection ?? undefined;
    groups.set(key as EmailBackend | undefined, [...(groups.get(key as EmailBackend | undefined) ?? []), i]);
  });
  const reports: DeliveryReport[] = new Array(messages.length);
  const observers = new ObserverSet([observer]);
  for (const [given, indexes] of groups) {
    let backend: EmailBackend = given ?? getConnection();
    if (retry !== undefined) {
      if (backend instanceof FailoverBackend) throw new InvalidArgumentError("deliver options.retry: this connection is a FailoverBackend, which has its own retry policy");
      backend = new FailoverBackend({ routes: [{ name: "default", backend }], retry, circuit: false });
    }
    const group = indexes.map((i) => messages[i]!);
    let got: readonly DeliveryReport[];
    try {
      const sendOptions: FailoverSendOptions = { signal, stopOnError: false, observer };
      got = (await sendWithReport(backend, group, sendOptions)).reports;
    } catch (error) {
      // A backend that throws a delivery failure anyway: each message not reported failed with it.
      if (!(isDeliveryError(error) || error instanceof AbortError)) throw error;
      const known = reportsOf(error) ?? [];
      got = group.map((m, k) => known[k] ?? failedReport(m, undefined, error as MissiveError, envelopeRecipients(m), Date.now()));
    }
    indexes.forEach((i, k) => {
      const report = got[k]!;
      reports[i] = report;
      // The engine tells observers itself; a plain backend's outcome is told here.
      if (report.stopped === undefined) observers.emit("outcome", report);
    });
  }
  return reports;
}

function fieldsMessage(fields: MessageFields): EmailMessage {
  if (typeof fields !== "object" || fields === null) throw new InvalidArgumentError("deliver takes an EmailMessage or { subject, message, from, to, ... }");
  refuseUnknownKeys(fields, MESSAGE_FIELD_KEYS, "deliver field");
  return buildMessage(fields, undefined);
}

// EmailMessage#send without a connection uses the default backend.
setMessageDefaults({ connectionFactory: ({ failSilently }) => getConnection(undefined, { failSilently }) });
