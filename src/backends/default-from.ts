/**
 * Django's default sender, `webmaster@localhost`, is kept (DEFAULT_FROM_EMAIL's default),
 * but a real server usually refuses it: a domain of `localhost` is no mailbox anyone can
 * reply to. When the server refuses the sender and the sender is that default, left
 * unconfigured, the error says which setting to set, so the refusal does not read as a
 * problem with the recipients or the server.
 */
import { SmtpError } from "../errors.js";
import { DEFAULT_SETTINGS, isSettingExplicit } from "../settings.js";

/** True when `sender` is the default From and nobody configured one (configure() or DEFAULT_FROM_EMAIL). */
export function isUnconfiguredDefaultFrom(sender: string | undefined): boolean {
  return sender !== undefined && sender.toLowerCase() === DEFAULT_SETTINGS.defaultFrom && !isSettingExplicit("defaultFrom");
}

/**
 * `error` with the advice added when it is a refusal of MAIL FROM (a 5xx at the "mail"
 * stage) and the sender was the unconfigured default; otherwise `error` unchanged.
 */
export function withDefaultFromAdvice(error: unknown, sender: string | undefined): unknown {
  if (!(error instanceof SmtpError) || error.stage !== "mail" || error.replyCode === undefined || error.replyCode < 500) return error;
  if (!isUnconfiguredDefaultFrom(sender)) return error;
  error.message += `; the sender ${DEFAULT_SETTINGS.defaultFrom} is the default From (Django's), which servers usually refuse: set defaultFrom (configure({ defaultFrom: "app@example.com" })) or DEFAULT_FROM_EMAIL, or give the message a from`;
  return error;
}
