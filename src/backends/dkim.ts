/**
 * DKIM in the backends: which signers apply to a message, and signing the render that is
 * about to be written or sent.
 *
 * The `dkim` option exists at three levels: the message (`message.dkim`), the backend (its
 * `dkim` option, or a named connection's), and the settings (`configure({ dkim })`,
 * EMAIL_DKIM_*). The first level that sets it decides, whole: a list is never merged with
 * the level below, and `false` means "unsigned" at that level. The settings' `dkim`
 * applies to named connections too, although they inherit no other top-level setting: a
 * signing key vouches for a domain, not for a server.
 *
 * Only backends that write bytes sign (smtp, file, console); memory and dummy write none.
 * They sign the Rendered made for the destination: after the 7bit/8bit/SMTPUTF8 choice
 * (the render's policy), before the bytes reach the SMTP data stream (dot-stuffing, BDAT
 * chunks), so that what is signed is exactly what the receiver reassembles. The signer
 * signs `rendered.headers` as they are; `withHeaders` puts the DKIM-Signature fields in
 * front and nothing is folded or added after that. A message rendered again for another
 * server (failover to a server without 8BITMIME) is signed again, on that render.
 */
import { dkimSetting, type DkimSetting, type DkimSigner } from "../dkim/options.js";
import { signRendered } from "../dkim/sign.js";
import { InvalidArgumentError } from "../errors.js";
import type { EmailMessage } from "../mime/message.js";
import { withHeaders, type Rendered } from "../mime/render.js";
import { isClock, systemClock, type Clock } from "../observe/clock.js";
import { getSettings } from "../settings.js";

/** The options of the backends that sign (smtp has its own `clock`, which it shares with its connections). */
export interface SigningOptions {
  /**
   * DKIM signers for this backend's messages (options, a DkimSigner or a list), or `false`
   * for none. Default: the `dkim` setting. A message's own `dkim` wins over it.
   */
  dkim?: DkimSetting | undefined;
  /** The time DKIM signatures carry (t=). Default: the system clock. */
  clock?: Clock | undefined;
}

/** A level's `dkim` once checked: ready signers, `false` (unsigned), or undefined (the level below decides). */
export type CheckedDkim = readonly DkimSigner[] | false | undefined;

/** What a backend signs with: its level of `dkim` (its own option, else the settings') and its clock. */
export interface Signing {
  readonly dkim: CheckedDkim;
  readonly clock: Clock;
}

/**
 * A backend's `dkim` level: its own option when given (an own property, checked now), else
 * the `dkim` setting as it is now.
 */
export function backendDkim(options: object): CheckedDkim {
  const own = Object.hasOwn(options, "dkim") ? (options as { dkim?: unknown }).dkim : undefined;
  return own === undefined ? getSettings().dkim : dkimSetting(own, "dkim");
}

/** `backendDkim` and the backend's `clock` option (checked: an object with now, setTimeout, clearTimeout). */
export function backendSigning(options: SigningOptions): Signing {
  const clock = Object.hasOwn(options, "clock") ? options.clock : undefined;
  if (clock !== undefined && !isClock(clock)) throw new InvalidArgumentError("clock must be a Clock: an object with now(), setTimeout() and clearTimeout()");
  return Object.freeze({ dkim: backendDkim(options), clock: clock ?? systemClock });
}

/** The signers that apply to `message` on a backend whose level is `backend`: none when the deciding level says `false` or no level sets any. */
export function signersFor(message: EmailMessage, backend: CheckedDkim): readonly DkimSigner[] {
  const decided = message.dkim ?? backend;
  return decided === undefined || decided === false ? [] : decided;
}

/**
 * `rendered` with the DKIM-Signature fields of every signer that applies in front (in the
 * signers' order), signed at the clock's time; `rendered` itself when none applies. The
 * size grows by the fields' bytes. Signing errors (a message without exactly one From)
 * are InvalidArgumentError: they are thrown before anything is written or sent, and
 * `failSilently` does not hide them.
 */
export async function signForDestination(rendered: Rendered, message: EmailMessage, backend: CheckedDkim, clock: Clock): Promise<Rendered> {
  const signers = signersFor(message, backend);
  if (signers.length === 0) return rendered;
  return withHeaders(rendered, await signRendered(rendered, signers, { now: clock.now() }));
}
