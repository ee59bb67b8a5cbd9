/**
 * The envelope of one message (MAIL FROM and RCPT TO), checked and rendered for what a
 * server offers: never send what it did not advertise (SMTPUTF8, SIZE, 8BITMIME, DSN); a
 * message that needs one fails here, before MAIL FROM, with SmtpCapabilityError.
 */
import { InvalidArgumentError, SmtpCapabilityError } from "../errors.js";
import type { Capabilities } from "./capabilities.js";
import * as cmd from "./commands.js";
import type { DsnOptions } from "./options.js";

export interface Envelope {
  /** Reverse-path; "" for the null sender (bounces). */
  from: string;
  to: readonly string[];
  /** Message size in octets, for SIZE= (RFC 1870) and the check against the server's limit. */
  size?: number;
  /** The body has 8-bit bytes: needs 8BITMIME, sent as BODY=8BITMIME. */
  eightBit?: boolean;
  /** The message needs SMTPUTF8 (UTF-8 headers or addresses). */
  smtputf8?: boolean;
  dsn?: DsnOptions;
}

/** Checks the shape and every address (no CR, LF, NUL, `<`, `>`) before anything connects. */
export function validateEnvelope(envelope: Envelope): void {
  if (typeof envelope !== "object" || envelope === null) throw new InvalidArgumentError("sendMail needs an envelope { from, to }");
  cmd.assertPath(envelope.from, "from", true, true);
  if (!Array.isArray(envelope.to) || envelope.to.length === 0) throw new InvalidArgumentError("envelope.to must be a non-empty array of addresses");
  for (const to of envelope.to) {
    cmd.assertPath(to, "recipient", true, false);
  }
  if (envelope.size !== undefined && (!Number.isSafeInteger(envelope.size) || envelope.size < 0)) {
    throw new InvalidArgumentError("envelope.size must be a non-negative integer");
  }
}

/** The MAIL FROM line and one RCPT TO line per recipient (CRLF included), for a server offering `caps`. */
export function renderEnvelope(envelope: Envelope, caps: Capabilities, host: string): { mail: string; rcpts: string[] } {
  const addresses = [envelope.from, ...envelope.to];
  const nonAscii = addresses.some((a) => cmd.hasNonAscii(a));
  if ((nonAscii || envelope.smtputf8) && !(envelope.smtputf8 && caps.smtputf8)) {
    const why = !caps.smtputf8 ? `${host} does not offer SMTPUTF8` : "smtputf8 was not requested for this message";
    throw new SmtpCapabilityError(
      "SMTPUTF8",
      nonAscii ? `An envelope address has non-ASCII characters but ${why}; use an IDNA (punycode) domain and an ASCII local part` : `The message needs SMTPUTF8 but ${why}`,
    );
  }
  if (envelope.size !== undefined && caps.sizeLimit !== undefined && caps.sizeLimit > 0 && envelope.size > caps.sizeLimit) {
    throw new SmtpCapabilityError("SIZE", `The message is ${envelope.size} octets but ${host} accepts at most ${caps.sizeLimit} (SIZE)`);
  }
  if (envelope.eightBit && !caps.eightBitMime) {
    throw new SmtpCapabilityError("8BITMIME", `The message has 8-bit content but ${host} does not offer 8BITMIME. A message missive builds is 7-bit except where a message/rfc822 part holds 8-bit bytes, which may not be re-encoded (RFC 2046 §5.2.1): attach the inner message as an EmailMessage (parsed or rebuilt) so that its own parts are encoded 7-bit, or send through a server that offers 8BITMIME`);
  }
  const dsn = envelope.dsn;
  const useDsn = dsn !== undefined && caps.dsn;
  if (dsn && !caps.dsn && !dsn.optional) {
    throw new SmtpCapabilityError("DSN", `Delivery status notifications were requested but ${host} does not offer DSN; set dsn.optional to send without them`);
  }
  const smtputf8 = envelope.smtputf8 === true;
  const mail = cmd.mailFrom(envelope.from, {
    size: caps.sizeLimit !== undefined ? envelope.size : undefined,
    body: envelope.eightBit ? "8BITMIME" : undefined,
    smtputf8,
    ret: useDsn ? dsn.ret : undefined,
    envid: useDsn ? dsn.envid : undefined,
  });
  const rcpts = envelope.to.map((address) =>
    cmd.rcptTo(address, {
      smtputf8,
      notify: useDsn ? dsn.notify : undefined,
      orcpt: useDsn && dsn.orcpt ? address : undefined,
    }),
  );
  return { mail, rcpts };
}
