/**
 * The Django-style sending functions: `sendMail`, `sendMassMail`, `mailAdmins`,
 * `mailManagers` and `getConnection`. Each resolves to the number of messages sent.
 *
 * `failSilently` turns delivery failures (the SmtpError family, BackendError) into a
 * lower count. It never hides a programming or configuration error: BadHeaderError,
 * InvalidAddressError, EncodingError, InvalidArgumentError and ConfigurationError are
 * always thrown.
 */
import { ConfigurationError, InvalidArgumentError } from "./errors.js";
import { SETTINGS_FALLBACK, type BackendClass, type EmailBackend } from "./backends/base.js";
import "./backends/index.js";
import { MemoryBackend } from "./backends/memory.js";
import { isDeliveryError } from "./backends/output.js";
import { backendNames, lookupBackend } from "./backends/registry.js";
import { setMessageDefaults } from "./mime/defaults.js";
import { EmailMessage, EmailMultiAlternatives, type AddressField } from "./mime/message.js";
import { pickListOptions, type ListOptions } from "./mime/list-headers.js";
import { DEFAULT_SETTINGS, getSettings, type NamedBackendConfig } from "./settings.js";
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
    const named = settings.backends["default"];
    if (named !== undefined) return fromNamed("default", named, options);
    const configured = settings.backend;
    if (typeof configured === "function") return new (configured as BackendClass)(options);
    const cls = lookupBackend(configured);
    if (cls === undefined) {
      throw new ConfigurationError("backend", `Unknown backend "${configured}" (from configure({ backend }) or EMAIL_BACKEND); known: ${backendNames().join(", ")}`);
    }
    return new cls(options);
  }
  if (typeof backend !== "string" || backend === "") throw new InvalidArgumentError("getConnection(backend) takes a backend name or class");
  const named = settings.backends[backend];
  if (named !== undefined) {
    if (isMemoryRoutingActive()) return new MemoryBackend(options);
    return fromNamed(backend, named, options);
  }
  const cls = lookupBackend(backend);
  if (cls === undefined) {
    const known = [...backendNames(), ...Object.keys(settings.backends)];
    throw new InvalidArgumentError(`Unknown backend or connection "${backend}"; known: ${known.join(", ")}`);
  }
  return new cls(options);
}

function fromNamed(name: string, config: NamedBackendConfig, options: ConnectionOptions): EmailBackend {
  const { backend, ...rest } = config;
  // Settings keep a class given to configure() as it came (they do not import backends).
  const cls = typeof backend === "function" ? (backend as BackendClass) : lookupBackend(backend);
  if (cls === undefined) throw new ConfigurationError(`backends.${name}.backend`, `Unknown backend "${String(backend)}" for the connection "${name}"`);
  return new cls({ [SETTINGS_FALLBACK]: DEFAULT_SETTINGS, ...rest, ...options });
}

/** The bulk-mail options (listId, listUnsubscribe, listHelp, listArchive, autoSubmitted, priority) go to the message as they are. */
export interface SendMailOptions extends ListOptions {
  subject: string;
  message: string;
  /** Defaults to the `defaultFrom` setting (DEFAULT_FROM_EMAIL). */
  from?: string | undefined | null;
  to: AddressField;
  /** An HTML alternative to the text body. */
  html?: string | undefined | null;
  failSilently?: boolean | undefined;
  /** SMTP user name for this message (the backend's `username`). */
  authUser?: string | undefined;
  /** SMTP password for this message (the backend's `password`). */
  authPassword?: string | undefined;
  /** A backend to send with; else a new default connection. */
  connection?: EmailBackend | undefined;
}

/** Sends one message to `to`; resolves to 1, or 0 when it was not sent and `failSilently` is set. */
export async function sendMail(options: SendMailOptions): Promise<number> {
  if (typeof options !== "object" || options === null) throw new InvalidArgumentError("sendMail takes an options object: { subject, message, from, to }");
  const { subject, message, from, to, html, failSilently = false, authUser, authPassword } = options;
  const connection = options.connection ?? getConnection(undefined, credentials(failSilently, authUser, authPassword));
  const mail = new EmailMultiAlternatives({ subject, body: message, to, connection, ...(from != null ? { from } : {}) });
  if (html != null) mail.attachAlternative(html, "text/html");
  Object.assign(mail, pickListOptions(options));
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
export function mailAdmins(subject: string, message: string, options: MailAdminsOptions = {}): Promise<number> {
  return mailList(getSettings().admins, subject, message, options);
}

/** As `mailAdmins`, to the `managers` setting. */
export function mailManagers(subject: string, message: string, options: MailAdminsOptions = {}): Promise<number> {
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

// EmailMessage#send without a connection uses the default backend.
setMessageDefaults({ connectionFactory: ({ failSilently }) => getConnection(undefined, { failSilently }) });
