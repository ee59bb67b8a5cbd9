/**
 * EmailMessage and EmailMultiAlternatives: the message model users build, with Django's
 * field names and semantics, turned into a MimePart tree and serialised by part.ts.
 */
import { basename } from "node:path";
import type { Readable } from "node:stream";
import mimeTypes from "mime-types";
import { BadHeaderError, InvalidArgumentError } from "../errors.js";
import { dkimSetting, type DkimSetting, type DkimSigner } from "../dkim/options.js";
import { normalizeCharset } from "./encoding/charset.js";
import { canonicalEntries, envelopeAddress, mailboxEnvelopeAddress, mailboxKeyOf, mailboxNeedsSmtpUtf8, normalizeAddresses, type Group, type Mailbox } from "./address.js";
import { assertDistinctHeaderNames, assertHeaderName, assertHeaderValue, headerKind } from "./headers.js";
import { getMessageDefaults, type MessageSender } from "./defaults.js";
import { assertCalendarMethodMatches } from "./calendar.js";
import { mimeTypeOptions } from "./content-type.js";
import { assertMsgIdHeader } from "./msg-id.js";
import { assertListHeadersFree, checkListOption, LIST_OPTION_NAMES, listHeaderFields, type AutoSubmitted, type ListOptionName, type ListOptions, type ListUnsubscribe, type ListUrls, type Priority } from "./list-headers.js";
import { fileContent, isFileContent, type FileContent } from "./file-content.js";
import { describeValue, refuseUnknownKeys } from "../errors/options.js";
import { policies, type Policy } from "./policy.js";
import { MimePart, toReadable, type BodySource, type PreparedOutput } from "./part.js";
import { assertBodySource } from "./body.js";
import { createFrozen, formatDate, FREEZE, frozenLike, hasUtf8Headers, renderedChunks, renderedOccurs, renderWithin, type FieldSpec, type FreezeInput, type Frozen } from "./render.js";

export { formatDate } from "./render.js";

export type AddressField = string | Mailbox | readonly (string | Mailbox)[];

/** An attachment as the `attachments` list holds it (Django's `(filename, content, mimetype)`). */
export interface Attachment {
  filename?: string | undefined;
  content: string | Uint8Array | Readable | AsyncIterable<Uint8Array> | (() => Readable | AsyncIterable<Uint8Array>) | EmailMessage | FileContent;
  /**
   * Guessed from the filename when absent; application/octet-stream when that fails. May
   * carry parameters (`"text/calendar; method=REQUEST"`); a charset there is the text's.
   */
  mimetype?: string | undefined;
  /** "inline" with a `contentId` puts the part in multipart/related beside the HTML body. */
  disposition?: "inline" | "attachment" | undefined;
  contentId?: string | undefined;
}

export interface Alternative {
  content: string | Uint8Array;
  mimetype: string;
}

/**
 * The bulk-mail options (`listId`, `listUnsubscribe`, `listHelp`, `listArchive`,
 * `autoSubmitted`, `priority`) are in `ListOptions` (list-headers.ts).
 */
export interface EmailMessageOptions extends ListOptions {
  /** null or undefined: empty (Django's None). */
  subject?: string | null | undefined;
  /** null or undefined: empty (Django's None). */
  body?: string | null | undefined;
  from?: string | Mailbox;
  to?: AddressField;
  cc?: AddressField;
  bcc?: AddressField;
  replyTo?: AddressField;
  /**
   * Extra headers; they override the defaults (Message-ID, Date, To, From, Cc, Reply-To). A
   * header an option in use writes (List-Id with `listId`, ...) cannot be given here too.
   * A `Date` value is written as an RFC 5322 date in UTC (`Tue, 1 Dec 2026 18:24:00 +0000`),
   * like the Date header missive adds.
   */
  headers?: Record<string, string | Date>;
  attachments?: readonly (Attachment | MimePart)[];
  connection?: MessageSender;
  /** Charset of the body and headers (an iconv-lite name); default utf-8. */
  encoding?: string;
  alternatives?: readonly Alternative[];
  /** Clock for the Date header; for reproducible output in tests. */
  clock?: () => Date;
  /** Random bytes for Message-ID and boundaries; a CSPRNG unless injected (tests). */
  random?: (size: number) => Buffer;
  /**
   * DKIM for this message: signers (options, a DkimSigner, or a list), or `false` to send it
   * unsigned. Replaces the backend's and the settings' `dkim`; undefined leaves it to them.
   */
  dkim?: DkimSetting | undefined;
}

/** The result of the prepare pass: every header decided, the body ready to stream. */
export interface PreparedMessage extends PreparedOutput {
  readonly messageId: string;
  /** The output holds 8-bit data (BODY=8BITMIME over SMTP). */
  readonly eightBit: boolean;
  /** The output holds UTF-8 headers or addresses (SMTPUTF8 over SMTP). */
  readonly smtputf8: boolean;
  /** Exact size in octets when all attachment sizes are known (files, bytes, strings). */
  readonly size: number | undefined;
  stream(): Readable;
  chunks(): AsyncGenerator<Buffer>;
}

/** The last From domain a Message-ID domain was worked out for (a bulk send has one From), and that domain. */
let lastIdDomain: { readonly domain: string; readonly idDomain: string } | undefined;

/** Headers users may set through `headers` that replace what the message would generate. */
const OVERRIDABLE = ["from", "to", "cc", "reply-to", "subject", "date", "message-id"] as const;
/** The keys an EmailMessage's options take; any other is refused (a typo must not pass silently). */
export const MESSAGE_OPTION_KEYS: readonly string[] = Object.freeze([
  "subject", "body", "from", "to", "cc", "bcc", "replyTo", "headers", "attachments", "connection", "encoding",
  "alternatives", "clock", "random", "dkim", ...LIST_OPTION_NAMES,
]);
const ATTACHMENT_KEYS = ["filename", "content", "mimetype", "disposition", "contentId"];
const ALTERNATIVE_KEYS = ["content", "mimetype"];

/** Headers the serializer owns: setting them through `headers` would produce a broken message. */
const RESERVED = new Set(["mime-version", "content-type", "content-transfer-encoding", "bcc"]);

export class EmailMessage {
  /** Main body subtype: "plain" (default) or e.g. "html". */
  contentSubtype = "plain";
  /** Subtype of the container when there are attachments. */
  mixedSubtype = "mixed";
  connection: MessageSender | undefined;
  clock: (() => Date) | undefined;
  random: ((size: number) => Buffer) | undefined;

  #subject = "";
  #body = "";
  #from: string | Mailbox | undefined;
  #to: (string | Mailbox)[] = [];
  #cc: (string | Mailbox)[] = [];
  #bcc: (string | Mailbox)[] = [];
  #replyTo: (string | Mailbox)[] = [];
  #headers: Record<string, string> = {};
  #attachments: (Attachment | MimePart)[] = [];
  #encoding: string | undefined;
  #list: ListOptions = {};
  #dkim: readonly DkimSigner[] | false | undefined;
  #frozen: { readonly key: readonly unknown[]; readonly frozen: Frozen } | undefined;
  /**
   * Each address field as last parsed, kept while the field holds the same values: one
   * message reads its addresses several times (checked when set, then for the envelope, the
   * de-duplication of recipients, the SMTPUTF8 check and the headers), and a bulk send
   * builds its messages long before it sends them.
   */
  #parsed = new Map<string, { readonly key: readonly unknown[]; readonly entries: readonly (Mailbox | Group)[] }>();
  /** The recipients' mailboxes for the to, cc and bcc lists they were worked out from. */
  #recipients: { readonly key: readonly (readonly unknown[])[]; readonly mailboxes: readonly Mailbox[] } | undefined;
  /**
   * needsSmtpUtf8()'s answer for the parses and address header overrides it was worked out
   * from: a send asks three times (the batch's recipients, the connection's check, the freeze).
   */
  #smtpUtf8: { readonly key: readonly unknown[]; readonly needs: boolean } | undefined;
  /** The last envelope worked out, for the parses it came from: a send asks for it twice (the batch's recipients, the render's). */
  #envelope: { readonly from: Mailbox; readonly to: readonly Mailbox[]; readonly smtputf8: boolean; readonly addresses: { readonly from: string; readonly to: readonly string[] } } | undefined;

  constructor(options: EmailMessageOptions = {}) {
    if (typeof options !== "object" || options === null || Array.isArray(options)) {
      throw new InvalidArgumentError(`EmailMessage takes an options object ({ subject, body, from, to, ... }), got ${describeValue(options)}`);
    }
    refuseUnknownKeys(options, MESSAGE_OPTION_KEYS, "EmailMessage option");
    if (options.alternatives !== undefined && !(this instanceof EmailMultiAlternatives)) {
      throw new InvalidArgumentError("alternatives needs an EmailMultiAlternatives (an EmailMessage has one body)");
    }
    if (options.subject !== undefined) this.subject = options.subject;
    if (options.body !== undefined) this.body = options.body;
    if (options.from !== undefined) this.from = options.from;
    if (options.to !== undefined) this.to = options.to;
    if (options.cc !== undefined) this.cc = options.cc;
    if (options.bcc !== undefined) this.bcc = options.bcc;
    if (options.replyTo !== undefined) this.replyTo = options.replyTo;
    if (options.headers !== undefined) this.headers = options.headers;
    if (options.encoding !== undefined) this.encoding = options.encoding;
    if (options.listId !== undefined) this.listId = options.listId;
    if (options.listUnsubscribe !== undefined) this.listUnsubscribe = options.listUnsubscribe;
    if (options.listHelp !== undefined) this.listHelp = options.listHelp;
    if (options.listArchive !== undefined) this.listArchive = options.listArchive;
    if (options.autoSubmitted !== undefined) this.autoSubmitted = options.autoSubmitted;
    if (options.priority !== undefined) this.priority = options.priority;
    if (options.dkim !== undefined) this.dkim = options.dkim;
    this.connection = options.connection;
    this.clock = options.clock;
    this.random = options.random;
    for (const attachment of options.attachments ?? []) this.attach(attachment);
  }

  get subject(): string {
    return this.#subject;
  }
  /** null or undefined set it empty, as Django's None. */
  set subject(value: string | null | undefined) {
    const subject = value ?? "";
    assertHeaderValue("subject", requireString(subject, "subject"));
    this.#subject = subject;
  }

  get body(): string {
    return this.#body;
  }
  /** null or undefined set it empty, as Django's None. */
  set body(value: string | null | undefined) {
    this.#body = requireString(value ?? "", "body");
  }

  /** The From address; `undefined` means the configured default (Django's DEFAULT_FROM_EMAIL). */
  get from(): string | Mailbox {
    return this.#from ?? getMessageDefaults().from;
  }
  set from(value: string | Mailbox | undefined) {
    if (value !== undefined && flatten(this.#entries("from", "from", value)).length !== 1) {
      throw new BadHeaderError("from", "from must be exactly one address");
    }
    this.#from = value;
  }

  /** The lists are the arrays themselves: `msg.to.push("x@example.org")` works as in Django. */
  get to(): (string | Mailbox)[] {
    return this.#to;
  }
  set to(value: AddressField) {
    this.#to = this.#checkedList("to", value);
  }
  get cc(): (string | Mailbox)[] {
    return this.#cc;
  }
  set cc(value: AddressField) {
    this.#cc = this.#checkedList("cc", value);
  }
  get bcc(): (string | Mailbox)[] {
    return this.#bcc;
  }
  set bcc(value: AddressField) {
    this.#bcc = this.#checkedList("bcc", value);
  }
  get replyTo(): (string | Mailbox)[] {
    return this.#replyTo;
  }
  set replyTo(value: AddressField) {
    this.#replyTo = this.#checkedList("replyTo", value);
  }

  get headers(): Record<string, string> {
    return this.#headers;
  }
  /** A `Date` value is stored as its RFC 5322 form (UTC), the string the header will hold. */
  set headers(value: Record<string, string | Date>) {
    const headers = withDates(value);
    validateExtraHeaders(headers);
    assertListHeadersFree(this.#list, Object.keys(headers));
    this.#headers = headers;
  }

  /**
   * List-Id (RFC 2919): `"Description <list.example.com>"` or `"<list.example.com>"`. The
   * bulk-mail fields are written after Message-ID, before the extra headers, in this order:
   * List-Id, List-Unsubscribe, List-Unsubscribe-Post, List-Help, List-Archive,
   * Auto-Submitted, X-Priority, X-MSMail-Priority, Importance. Each is checked when set.
   */
  get listId(): string | undefined {
    return this.#list.listId;
  }
  set listId(value: string | undefined) {
    this.#setList("listId", value);
  }

  /** List-Unsubscribe `<url>, <mailto>` and, with `oneClick`, List-Unsubscribe-Post (RFC 8058). Reads back frozen, mailto as a URI. */
  get listUnsubscribe(): Readonly<ListUnsubscribe> | undefined {
    return this.#list.listUnsubscribe;
  }
  set listUnsubscribe(value: ListUnsubscribe | undefined) {
    this.#setList("listUnsubscribe", value);
  }

  /** List-Help (RFC 2369 §3.1): one URL or several (https:, http:, mailto:). */
  get listHelp(): ListUrls | undefined {
    return this.#list.listHelp;
  }
  set listHelp(value: ListUrls | undefined) {
    this.#setList("listHelp", value);
  }

  /** List-Archive (RFC 2369 §3.6): one URL or several (https:, http:, mailto:). */
  get listArchive(): ListUrls | undefined {
    return this.#list.listArchive;
  }
  set listArchive(value: ListUrls | undefined) {
    this.#setList("listArchive", value);
  }

  /** Auto-Submitted (RFC 3834 §5) for mail no person sent, so that auto-responders leave it alone. */
  get autoSubmitted(): AutoSubmitted | undefined {
    return this.#list.autoSubmitted;
  }
  set autoSubmitted(value: AutoSubmitted | undefined) {
    this.#setList("autoSubmitted", value);
  }

  /** "high" or "low": X-Priority, X-MSMail-Priority and Importance, consistently; "normal" writes none. */
  get priority(): Priority | undefined {
    return this.#list.priority;
  }
  set priority(value: Priority | undefined) {
    this.#setList("priority", value);
  }

  #setList<K extends ListOptionName>(name: K, value: ListOptions[K]): void {
    const list: ListOptions = { ...this.#list, [name]: checkListOption(name, value) };
    assertListHeadersFree(list, Object.keys(this.#headers));
    this.#list = list;
  }

  /**
   * This message's DKIM signers (checked and made ready when set: a bad key is a
   * ConfigurationError here), `false` for "send unsigned", or undefined to leave it to the
   * backend's `dkim` and then the settings'. Each level replaces the one below; lists are
   * not merged. Signing happens in the backends that write bytes (smtp, file, console), on
   * the bytes rendered for where the message goes; it is not part of the message's content,
   * so changing it keeps the Message-ID and Date. A message attached to another
   * (message/rfc822) is part of that one's body and is not signed on its own.
   */
  get dkim(): readonly DkimSigner[] | false | undefined {
    return this.#dkim;
  }
  set dkim(value: DkimSetting | undefined) {
    this.#dkim = value === undefined ? undefined : dkimSetting(value, "dkim");
  }

  get attachments(): (Attachment | MimePart)[] {
    return this.#attachments;
  }
  set attachments(value: readonly (Attachment | MimePart)[]) {
    for (const attachment of value) attachmentPart(attachment);
    this.#attachments = [...value];
  }

  /** The charset for the body and headers; `undefined` means the configured default. */
  get encoding(): string | undefined {
    return this.#encoding;
  }
  set encoding(value: string | undefined) {
    this.#encoding = value === undefined ? undefined : normalizeCharset(value);
  }

  /**
   * Adds an attachment: `attach(filename, content, mimetype?)`, `attach(emailMessage)`
   * (as message/rfc822), `attach(mimePart)` (inserted as-is) or `attach({ ... })`.
   */
  attach(filename: string | undefined, content: Attachment["content"], mimetype?: string): this;
  attach(attachment: Attachment | MimePart | EmailMessage): this;
  attach(first: string | undefined | Attachment | MimePart | EmailMessage, content?: Attachment["content"], mimetype?: string): this {
    let attachment: Attachment | MimePart;
    if (first === this) throw new InvalidArgumentError("A message cannot be attached to itself");
    if (first instanceof MimePart) attachment = first;
    else if (first instanceof EmailMessage) attachment = { content: first, mimetype: "message/rfc822" };
    else if (typeof first === "object" && first !== null) attachment = { ...first };
    else {
      if (content === undefined) throw new InvalidArgumentError("attach(filename, content, mimetype) needs content");
      attachment = { filename: first, content, mimetype };
    }
    attachmentPart(attachment);
    this.#attachments.push(attachment);
    return this;
  }

  /** Attaches a file by path; its type is guessed from the name and it is read only when sent. */
  attachFile(path: string, mimetype?: string, options: { disposition?: "inline" | "attachment"; contentId?: string; filename?: string } = {}): this {
    if (typeof options !== "object" || options === null) throw new InvalidArgumentError("attachFile options must be an object: { disposition, contentId, filename }");
    refuseUnknownKeys(options, ["disposition", "contentId", "filename"], "attachFile option");
    return this.attach({ filename: options.filename ?? basename(path), content: fileContent(path), mimetype, disposition: options.disposition, contentId: options.contentId });
  }

  /**
   * Bare addresses of to, cc and bcc, in that order, without duplicates (the domain compared
   * case-insensitively, the first spelling kept): the SMTP envelope.
   */
  recipients(): string[] {
    return this.#recipientMailboxes().map((m) => m.address);
  }

  /** The mailboxes behind recipients(), worked out once while to, cc and bcc hold the same values. */
  #recipientMailboxes(): readonly Mailbox[] {
    const cached = this.#recipients;
    if (cached !== undefined && hasAddressKey(this.#to, cached.key[0]!) && hasAddressKey(this.#cc, cached.key[1]!) && hasAddressKey(this.#bcc, cached.key[2]!)) return cached.mailboxes;
    const key = [addressKey(this.#to), addressKey(this.#cc), addressKey(this.#bcc)];
    const seen = new Map<string, Mailbox>();
    for (const field of ["to", "cc", "bcc"] as const) {
      for (const mailbox of flatten(this.#entries(field, field, this[field]))) {
        const id = mailboxKeyOf(mailbox);
        if (!seen.has(id)) seen.set(id, mailbox);
      }
    }
    const mailboxes = [...seen.values()];
    this.#recipients = { key, mailboxes };
    return mailboxes;
  }

  /** Checks a value given to an address field and returns the list the field keeps, its parse kept with it. */
  #checkedList(slot: string, value: AddressField): (string | Mailbox)[] {
    const entries = this.#entries(slot, slot, value);
    const list = addressList(value);
    // The list parses as the value did (a string becomes a list of that string, a list its
    // copy), except null, which the field keeps as a list holding null.
    if (value !== null && value !== undefined) this.#parsed.set(slot, { key: addressKey(list), entries });
    return list;
  }

  /**
   * The entries of an address field (`slot`: from, to, cc, bcc, replyTo), parsed once while
   * the field holds the same values; `field` names it in an error. Frozen: they are shared.
   */
  #entries(slot: string, field: string, value: AddressField | undefined): readonly (Mailbox | Group)[] {
    const cached = this.#parsed.get(slot);
    if (cached !== undefined && hasAddressKey(value, cached.key)) return cached.entries;
    const entries = canonicalEntries(value, field);
    this.#parsed.set(slot, { key: addressKey(value), entries });
    return entries;
  }

  /** Whether any address (envelope or header) has a non-ASCII local part, which needs SMTPUTF8. */
  needsSmtpUtf8(): boolean {
    // The parses are kept objects (the same while their fields hold the same values), so they
    // key the answer by identity; header overrides by name and value, in the headers' order.
    const from = this.#entries("from", "from", this.from);
    const recipients = this.#recipientMailboxes();
    const replyTo = this.#entries("replyTo", "replyTo", this.#replyTo);
    const key: unknown[] = [from, recipients, replyTo];
    for (const name of Object.keys(this.#headers)) {
      const lower = name.toLowerCase();
      if (lower === "from" || lower === "to" || lower === "cc" || lower === "reply-to") key.push(lower, this.#headers[name]);
    }
    const kept = this.#smtpUtf8;
    if (kept !== undefined && sameValues(kept.key, key)) return kept.needs;
    const mailboxes = [...flatten(from), ...recipients, ...flatten(replyTo)];
    for (const name of OVERRIDABLE.slice(0, 4)) {
      const override = this.headerOverride(name);
      if (override !== undefined) mailboxes.push(...normalizeAddresses(override, name));
    }
    const needs = mailboxes.some((m) => mailboxNeedsSmtpUtf8(m));
    this.#smtpUtf8 = { key, needs };
    return needs;
  }

  /** MAIL FROM and RCPT TO addresses: domains in IDNA unless SMTPUTF8 is in use. */
  envelope(options: { smtputf8?: boolean } = {}): { from: string; to: string[] } {
    return this.#envelopeOf(this.envelopeFrom(), this.#recipientMailboxes(), options.smtputf8 ?? false);
  }

  /** The envelope of these (kept, frozen) mailboxes, worked out once for them; each caller gets its own lists. */
  #envelopeOf(from: Mailbox, to: readonly Mailbox[], smtputf8: boolean): { from: string; to: string[] } {
    let kept = this.#envelope;
    if (kept === undefined || kept.from !== from || kept.to !== to || kept.smtputf8 !== smtputf8) {
      const addresses = { from: mailboxEnvelopeAddress(from, { smtputf8 }), to: to.map((m) => mailboxEnvelopeAddress(m, { smtputf8 })) };
      kept = { from, to, smtputf8, addresses };
      this.#envelope = kept;
    }
    return { from: kept.addresses.from, to: [...kept.addresses.to] };
  }

  /** The MIME tree of the body and attachments (no I/O). Message headers are added by `prepare`. */
  message(): MimePart {
    const charset = this.charset();
    const bodies: MimePart[] = [];
    if (this.#body !== "") bodies.push(new MimePart({ contentType: `text/${this.contentSubtype}`, body: this.#body, charset }));
    for (const alternative of this.alternativeParts(charset)) bodies.push(alternative);

    const inline: MimePart[] = [];
    const attached: MimePart[] = [];
    for (const attachment of this.#attachments) {
      const part = attachmentPart(attachment, charset);
      (part.disposition === "inline" && part.contentId !== undefined && bodies.length > 0 ? inline : attached).push(part);
    }
    if (inline.length > 0) {
      // Inline images sit in multipart/related beside the HTML body they are referenced from,
      // inside the alternative, so that clients showing the plain text do not list them.
      let index = bodies.findLastIndex((p) => p.contentType === "text/html");
      if (index === -1) index = bodies.length - 1;
      bodies[index] = new MimePart({ contentType: "multipart/related", children: [bodies[index]!, ...inline] });
    }
    let main: MimePart | undefined;
    if (bodies.length === 1) main = bodies[0];
    else if (bodies.length > 1) main = new MimePart({ contentType: `multipart/${this.alternativeSubtypeName()}`, children: bodies });
    if (attached.length === 0) return main ?? new MimePart({ contentType: `text/${this.contentSubtype}`, body: "", charset });
    return new MimePart({ contentType: `multipart/${this.mixedSubtype}`, children: main ? [main, ...attached] : attached });
  }

  /**
   * Decides every header and checks every field; nothing is written yet. Built on
   * `render(freeze(this), policy)` (render.ts): the message is frozen once and keeps its
   * Message-ID, Date and boundaries across prepares, renders and resends until its content
   * changes. `within` is for message/rfc822 nesting: the messages this one is attached
   * inside (a cycle is refused).
   */
  async prepare(policy: Policy = policies.default, within: ReadonlySet<object> = new Set()): Promise<PreparedMessage> {
    const rendered = await renderWithin(await this[FREEZE](), policy, within);
    const utf8Headers = hasUtf8Headers(rendered);
    const prepared: PreparedMessage = {
      messageId: rendered.messageId,
      eightBit: rendered.eightBit,
      utf8Headers,
      smtputf8: policy.utf8 && utf8Headers,
      size: rendered.size,
      chunks: () => renderedChunks(rendered),
      occurs: (text) => renderedOccurs(rendered, text),
      stream: () => toReadable(prepared),
    };
    return prepared;
  }

  /**
   * Freezes the message (render.ts): once, and again only when its content changed since
   * (any field, address, header, attachment or alternative, compared by value or, for
   * objects and bytes, by identity; bytes changed in place are not noticed).
   */
  async [FREEZE](): Promise<Frozen> {
    const key = this.contentKey();
    const cached = this.#frozen;
    if (cached !== undefined && cached.key.length === key.length && cached.key.every((v, i) => Object.is(v, key[i]))) return cached.frozen;
    const frozen = createFrozen(this.#freezeInput());
    this.#frozen = { key, frozen };
    return frozen;
  }

  /**
   * A copy as it is now, for the memory backend's outbox (Django deep-copies what it keeps):
   * the same class, every field and list copied (addresses, headers, attachments,
   * alternatives, bytes), so that changing the message after sending does not change the copy.
   * Streams, files and ready MimeParts are shared, since they cannot be copied without being
   * read; an attached EmailMessage is copied the same way. The copy keeps the Message-ID and
   * Date of the message's current render (the ones it was sent with), until it is itself changed.
   */
  snapshot(): this {
    const copy: EmailMessage = this instanceof EmailMultiAlternatives ? new EmailMultiAlternatives() : new EmailMessage();
    Object.setPrototypeOf(copy, Object.getPrototypeOf(this));
    // Public own fields (contentSubtype, mixedSubtype, connection, clock, random, a subclass's own).
    Object.assign(copy, this);
    copy.#subject = this.#subject;
    copy.#body = this.#body;
    copy.#from = copyAddress(this.#from);
    copy.#to = this.#to.map(copyAddress) as (string | Mailbox)[];
    copy.#cc = this.#cc.map(copyAddress) as (string | Mailbox)[];
    copy.#bcc = this.#bcc.map(copyAddress) as (string | Mailbox)[];
    copy.#replyTo = this.#replyTo.map(copyAddress) as (string | Mailbox)[];
    copy.#headers = { ...this.#headers };
    copy.#attachments = this.#attachments.map(copyAttachment);
    copy.#encoding = this.#encoding;
    // Option values are frozen when set; DKIM signers are ready, immutable objects.
    copy.#list = { ...this.#list };
    copy.#dkim = this.#dkim;
    if (copy instanceof EmailMultiAlternatives) {
      copy.alternatives = (this as unknown as EmailMultiAlternatives).alternatives.map((a) => ({ content: copyContent(a.content), mimetype: a.mimetype }));
    }
    // The render already made stays the copy's: same Message-ID and Date as what was sent.
    if (this.#frozen !== undefined) copy.#frozen = { key: copy.contentKey(), frozen: frozenLike(this.#frozen.frozen, copy.#freezeInput()) };
    return copy as this;
  }

  /** Everything rendering reads, fixed now: header values and addresses, the MIME tree, the envelope. */
  #freezeInput(): FreezeInput {
    const defaults = getMessageDefaults();
    const charset = this.charset();
    validateExtraHeaders(this.#headers);
    assertListHeadersFree(this.#list, Object.keys(this.#headers));
    if (this.#subject !== "") assertHeaderValue("subject", this.#subject);
    const from = flatten(this.#entries("from", "from", this.from));
    const before: FieldSpec[] = [];
    // To, Cc and Reply-To are address-lists (RFC 5322 §3.6.2, §3.6.3) and keep their groups:
    // `Team: a@x.org;`, `undisclosed-recipients:;`. From is a mailbox-list, so a group is flattened.
    const addressHeader = (name: string, key: (typeof OVERRIDABLE)[number], slot: string, value: AddressField | readonly Mailbox[]) => {
      const override = this.headerOverride(key);
      // An override is a header value of its own (kept apart from the field's parse).
      const parsed = override === undefined ? (key === "from" ? value as readonly Mailbox[] : this.#entries(slot, key, value as AddressField)) : this.#entries(`${key} header`, key, override);
      const entries = key === "from" ? flatten(parsed) : parsed;
      if (entries.length > 0) before.push({ name, kind: "address", entries });
    };
    addressHeader("From", "from", "from", from);
    addressHeader("To", "to", "to", this.#to);
    addressHeader("Cc", "cc", "cc", this.#cc);
    addressHeader("Reply-To", "reply-to", "replyTo", this.#replyTo);
    before.push({ name: "Subject", kind: "unstructured", value: this.headerOverride("subject") ?? this.#subject });
    const after: FieldSpec[] = listHeaderFields(this.#list, charset).map(([name, value]) => ({ name, kind: "raw", value }));
    for (const [name, value] of Object.entries(this.#headers)) {
      if ((OVERRIDABLE as readonly string[]).includes(name.toLowerCase())) continue;
      const kind = headerKind(name);
      if (kind !== "address") {
        after.push({ name, kind, value });
        continue;
      }
      // An address header with nobody in it (Sender: "") would be an empty, invalid header.
      const entries = canonicalEntries(value, name);
      if (entries.length > 0) after.push({ name, kind, entries });
    }
    const envelopeFrom = from[0];
    const recipients = this.#recipientMailboxes();
    return {
      owner: this,
      charset,
      random: this.random ?? defaults.random,
      clock: this.clock ?? defaults.clock,
      messageId: this.headerOverride("message-id"),
      messageIdDomain: this.messageIdDomain(from[0]),
      date: this.headerOverride("date"),
      before,
      after,
      tree: this.message(),
      needsSmtpUtf8: this.needsSmtpUtf8(),
      envelope: (smtputf8) => {
        if (envelopeFrom === undefined) throw new InvalidArgumentError("The message has no From address");
        return this.#envelopeOf(envelopeFrom, recipients, smtputf8);
      },
    };
  }

  /**
   * What rendering depends on, as a flat list compared value by value (objects and bytes by
   * identity): when it changes, the next freeze starts afresh (a new Message-ID and Date).
   */
  protected contentKey(): unknown[] {
    const d = getMessageDefaults();
    const key: unknown[] = [this.#subject, this.#body, this.#encoding, this.contentSubtype, this.mixedSubtype, this.clock, this.random, d.from, d.charset, d.messageIdDomain, d.clock, d.random];
    const address = (a: string | Mailbox) => (typeof a === "string" ? key.push(a) : key.push(a, a.name, a.address));
    if (this.#from === undefined) key.push(undefined);
    else address(this.#from);
    for (const list of [this.#to, this.#cc, this.#bcc, this.#replyTo]) {
      key.push(list.length);
      for (const a of list) address(a);
    }
    const headers = Object.entries(this.#headers);
    key.push(headers.length);
    for (const [name, value] of headers) key.push(name, value);
    // Option values are strings, or frozen copies made when set (compared by identity).
    for (const [name, value] of Object.entries(this.#list)) key.push(name, value);
    key.push(this.#attachments.length);
    for (const a of this.#attachments) {
      if (a instanceof MimePart) key.push(a);
      else key.push(a, a.filename, a.content, a.mimetype, a.disposition, a.contentId);
    }
    return key;
  }

  /** The whole message as a Readable; attachments are pulled as the consumer reads. */
  asStream(policy: Policy = policies.default): Readable {
    const prepared = this.prepare(policy);
    // The failure reaches the consumer through the stream; until it reads, nobody awaits this.
    prepared.catch(() => undefined);
    return toReadable({
      eightBit: false,
      utf8Headers: false,
      size: undefined,
      chunks: async function* () {
        yield* (await prepared).chunks();
      },
    });
  }

  async asBytes(policy: Policy = policies.default): Promise<Buffer> {
    const prepared = await this.prepare(policy);
    const chunks: Buffer[] = [];
    for await (const chunk of prepared.chunks()) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /** Sends through `connection`, or the default backend. Resolves to 1 if sent, 0 otherwise. */
  async send(options: { failSilently?: boolean } = {}): Promise<number> {
    if (typeof options !== "object" || options === null) throw new InvalidArgumentError("send options must be an object: { failSilently }");
    refuseUnknownKeys(options, ["failSilently"], "send option");
    if (this.recipients().length === 0) return 0;
    const failSilently = options.failSilently ?? false;
    const connection = this.connection ?? getMessageDefaults().connectionFactory?.({ failSilently });
    if (!connection) {
      throw new InvalidArgumentError('No connection to send with: import "missive" (which sets up the configured backend) or set message.connection');
    }
    return connection.sendMessages([this]);
  }

  protected alternativeParts(_charset: string): MimePart[] {
    return [];
  }

  protected alternativeSubtypeName(): string {
    return "alternative";
  }

  private charset(): string {
    return this.#encoding ?? normalizeCharset(getMessageDefaults().charset);
  }

  private envelopeFrom(): Mailbox {
    const [mailbox] = flatten(this.#entries("from", "from", this.from));
    if (!mailbox) throw new InvalidArgumentError("The message has no From address");
    return mailbox;
  }

  private headerOverride(lowerName: string): string | undefined {
    for (const [name, value] of Object.entries(this.#headers)) if (name.toLowerCase() === lowerName) return value;
    return undefined;
  }

  private messageIdDomain(from: Mailbox | undefined): string {
    const configured = getMessageDefaults().messageIdDomain;
    if (configured) {
      assertMsgIdHeader("Message-ID", `<id@${configured}>`);
      return configured;
    }
    const domain = from?.address.slice(from.address.lastIndexOf("@") + 1);
    if (!domain || domain.startsWith("[")) return "localhost";
    if (lastIdDomain !== undefined && lastIdDomain.domain === domain) return lastIdDomain.idDomain;
    let idDomain: string;
    try {
      idDomain = envelopeAddress(`x@${domain}`, { smtputf8: false }).slice(2);
    } catch {
      idDomain = "localhost";
    }
    lastIdDomain = { domain, idDomain };
    return idDomain;
  }
}

export class EmailMultiAlternatives extends EmailMessage {
  /** Subtype of the container of the body and its alternatives. */
  alternativeSubtype = "alternative";
  alternatives: Alternative[];

  constructor(options: EmailMessageOptions = {}) {
    super(options);
    this.alternatives = [];
    for (const alternative of options.alternatives ?? []) this.attachAlternative(alternative);
  }

  /**
   * Adds an alternative body: `attachAlternative("<p>Hi</p>", "text/html")`, a MIME type with
   * parameters (`"text/calendar; method=REQUEST"`), or `{ content, mimetype }` such as
   * `calendarInvite(ics)` gives.
   */
  attachAlternative(content: string | Uint8Array, mimetype: string): this;
  attachAlternative(alternative: Alternative): this;
  attachAlternative(first: string | Uint8Array | Alternative, second?: string): this {
    const object = typeof first === "object" && first !== null && !(first instanceof Uint8Array);
    if (object) refuseUnknownKeys(first, ALTERNATIVE_KEYS, "alternative key");
    const { content, mimetype } = object ? first : { content: first, mimetype: second as string };
    const call = object ? "attachAlternative({ content, mimetype })" : "attachAlternative(content, mimetype)";
    if (typeof content !== "string" && !(content instanceof Uint8Array)) {
      throw new InvalidArgumentError(`${call} needs the content as a string or bytes, got ${describeValue(content)}`);
    }
    if (typeof mimetype !== "string" || mimetype === "") {
      throw new InvalidArgumentError(`${call} needs a MIME type such as "text/html", got ${describeValue(mimetype)}`);
    }
    const typed = mimeTypeOptions(mimetype, undefined);
    new MimePart({ ...typed, body: content });
    assertCalendarMethodMatches(typed.contentType, typed.params, content);
    this.alternatives.push({ content, mimetype });
    return this;
  }

  protected override alternativeParts(charset: string): MimePart[] {
    return this.alternatives.map((a) => new MimePart({ ...mimeTypeOptions(a.mimetype, typeof a.content === "string" ? charset : undefined), body: a.content }));
  }

  protected override alternativeSubtypeName(): string {
    return this.alternativeSubtype;
  }

  protected override contentKey(): unknown[] {
    const key = super.contentKey();
    key.push(this.alternativeSubtype, this.alternatives.length);
    for (const a of this.alternatives) key.push(a, a.content, a.mimetype);
    return key;
  }
}

function copyAddress<T extends string | Mailbox | undefined>(address: T): T {
  return (typeof address === "object" && address !== null ? { ...address } : address) as T;
}

function copyContent<T>(content: T): T {
  if (content instanceof Uint8Array) return Buffer.from(content) as T;
  if (content instanceof EmailMessage) return content.snapshot() as T;
  return content;
}

function copyAttachment(attachment: Attachment | MimePart): Attachment | MimePart {
  if (attachment instanceof MimePart) return attachment;
  return { ...attachment, content: copyContent(attachment.content) };
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== "string") throw new InvalidArgumentError(`${field} must be a string`);
  return value;
}

/** An address field's values as a flat list compared value by value (a mailbox object by identity and its two fields). */
function addressKey(value: AddressField | undefined): unknown[] {
  // A list and a lone value are told apart: [x] and x parse alike, but [null] and null do not.
  const key: unknown[] = [Array.isArray(value)];
  const items: readonly unknown[] = Array.isArray(value) ? value : [value];
  for (const a of items as readonly (string | Mailbox | undefined)[]) {
    if (typeof a === "object" && a !== null) key.push(a, a.name, a.address);
    else key.push(a);
  }
  return key;
}

/** Whether `addressKey(value)` would equal `key`, told without building it (asked several times per message). */
function hasAddressKey(value: AddressField | undefined, key: readonly unknown[]): boolean {
  if (key[0] !== Array.isArray(value)) return false;
  const items: readonly unknown[] = Array.isArray(value) ? value : [value];
  let at = 1;
  for (const a of items as readonly (string | Mailbox | undefined)[]) {
    if (typeof a === "object" && a !== null) {
      if (!(Object.is(key[at], a) && Object.is(key[at + 1], a.name) && Object.is(key[at + 2], a.address))) return false;
      at += 3;
    } else {
      if (at >= key.length || !Object.is(key[at], a)) return false;
      at += 1;
    }
  }
  return at === key.length;
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

/** The mailboxes of address entries, a group's members in its place (an empty group gives none). */
function flatten(entries: readonly (Mailbox | Group)[]): readonly Mailbox[] {
  if (!entries.some((e) => "group" in e)) return entries as readonly Mailbox[];
  return entries.flatMap((e) => ("group" in e ? e.members : [e]));
}

/** The list a field setter keeps (the value was checked first). */
function addressList(value: AddressField): (string | Mailbox)[] {
  if (typeof value === "string") return value.trim() === "" ? [] : [value];
  if (Array.isArray(value)) return [...(value as readonly (string | Mailbox)[])];
  return [value as Mailbox];
}

/** `headers` with each Date value written as an RFC 5322 date (UTC, as the generated Date header). */
function withDates(headers: Record<string, string | Date>): Record<string, string> {
  if (typeof headers !== "object" || headers === null) throw new InvalidArgumentError("headers must be an object of name: value");
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value instanceof Date) {
      if (Number.isNaN(value.getTime())) throw new InvalidArgumentError(`The value of header ${name} is an invalid Date`);
      out[name] = formatDate(value);
    } else {
      out[name] = value;
    }
  }
  return out;
}

function validateExtraHeaders(headers: Record<string, string>): void {
  if (typeof headers !== "object" || headers === null) throw new InvalidArgumentError("headers must be an object of name: value");
  assertDistinctHeaderNames(Object.keys(headers), "headers");
  for (const [name, value] of Object.entries(headers)) {
    assertHeaderName(name);
    if (typeof value !== "string") throw new InvalidArgumentError(`The value of header ${name} must be a string`);
    assertHeaderValue(name, value);
    assertMsgIdHeader(name, value);
    if (RESERVED.has(name.toLowerCase())) {
      throw new BadHeaderError(name, name.toLowerCase() === "bcc" ? "Bcc never goes in the headers; use the bcc field" : `${name} is set by the serializer and cannot be given as an extra header`);
    }
  }
}

function attachmentPart(attachment: Attachment | MimePart, charset?: string): MimePart {
  if (attachment instanceof MimePart) return attachment;
  if (typeof attachment !== "object" || attachment === null || attachment.content === undefined) {
    throw new InvalidArgumentError("An attachment needs content: attach(filename, content, mimetype)");
  }
  refuseUnknownKeys(attachment, ATTACHMENT_KEYS, "attachment key");
  const { filename, content, contentId } = attachment;
  if (filename !== undefined) assertHeaderValue("attachment filename", requireString(filename, "attachment filename"));
  const typed = mimeTypeOptions(attachment.mimetype ?? (filename ? mimeTypes.lookup(filename) || undefined : undefined) ?? "application/octet-stream", typeof content === "string" ? charset : undefined);
  const mimetype = typed.contentType;
  const disposition = attachment.disposition ?? (contentId !== undefined ? "inline" : "attachment");
  if (disposition !== "inline" && disposition !== "attachment") throw new BadHeaderError("disposition", `disposition must be "inline" or "attachment", not ${JSON.stringify(disposition)}`);
  if (mimetype === "message/rfc822") {
    const message = content instanceof EmailMessage || typeof content === "string" || content instanceof Uint8Array ? { message: content } : isFileContent(content) ? content : undefined;
    if (message === undefined) throw new InvalidArgumentError("A message/rfc822 attachment takes an EmailMessage, a serialized message (string or bytes) or fileContent(path)");
    return new MimePart({ contentType: mimetype, params: typed.params, body: message, filename, disposition, contentId });
  }
  if (content instanceof EmailMessage) throw new InvalidArgumentError(`An EmailMessage can only be attached as message/rfc822, not ${mimetype}`);
  assertBodySource(content, `The content of attachment ${filename === undefined ? "(no filename)" : JSON.stringify(filename)}`);
  assertCalendarMethodMatches(mimetype, typed.params, content);
  return new MimePart({ ...typed, body: content as BodySource, filename, disposition, contentId });
}
