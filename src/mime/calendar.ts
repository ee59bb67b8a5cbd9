/**
 * Calendar invitations (iMIP, RFC 6047): an iCalendar object sent as `text/calendar` whose
 * Content-Type `method` parameter must be the object's METHOD (RFC 6047 §2.4, RFC 5545
 * §3.7.2), or clients show the invitation as a plain attachment, or act on the wrong method.
 */
import { InvalidArgumentError } from "../errors.js";

export interface CalendarInvite {
  content: string | Uint8Array;
  /** `text/calendar; method=<METHOD>`. */
  mimetype: string;
}

/** RFC 5545 §3.1: a line break followed by one space or tab continues the line. */
function unfoldedLines(ics: string): string[] {
  return ics.replace(/\r?\n[ \t]/g, "").split(/\r?\n/);
}

/** The name of a content line and its value (after the ":" that ends its parameters). */
function contentLine(line: string): { name: string; value: string } | undefined {
  let i = 0;
  while (i < line.length && line[i] !== ";" && line[i] !== ":") i++;
  const name = line.slice(0, i).toUpperCase();
  let quoted = false;
  for (; i < line.length; i++) {
    const ch = line[i];
    if (ch === '"') quoted = !quoted;
    else if (ch === ":" && !quoted) return { name, value: line.slice(i + 1) };
  }
  return undefined;
}

/**
 * The METHOD of the iCalendar object (RFC 5545 §3.7.2), read at the VCALENDAR level only,
 * or `undefined` when it has none.
 *
 * @throws InvalidArgumentError when the text is not an iCalendar object, has more than one
 *   METHOD, or a METHOD that is not a token (RFC 5545 iana-token or x-name).
 */
export function calendarMethod(ics: string | Uint8Array): string | undefined {
  const text = typeof ics === "string" ? ics : Buffer.from(ics.buffer, ics.byteOffset, ics.byteLength).toString("utf8");
  let depth = 0;
  let sawCalendar = false;
  let method: string | undefined;
  for (const line of unfoldedLines(text)) {
    const parsed = contentLine(line);
    if (parsed === undefined) continue;
    const { name, value } = parsed;
    if (name === "BEGIN") {
      if (depth === 0 && value.trim().toUpperCase() === "VCALENDAR") sawCalendar = true;
      depth++;
    } else if (name === "END") {
      depth--;
    } else if (name === "METHOD" && depth === 1 && sawCalendar) {
      if (method !== undefined) throw new InvalidArgumentError("The calendar has more than one METHOD (RFC 5545 §3.7.2 allows one)");
      if (!/^[A-Za-z0-9-]+$/.test(value)) throw new InvalidArgumentError(`The calendar's METHOD ${JSON.stringify(value)} is not a token (RFC 5545 §3.7.2)`);
      method = value;
    }
  }
  if (!sawCalendar) throw new InvalidArgumentError("This is not an iCalendar object: it has no BEGIN:VCALENDAR line (RFC 5545 §3.4)");
  return method;
}

/**
 * An invitation for `attachAlternative()` (or `attach()`, with a filename): the calendar
 * as given and `text/calendar; method=<its METHOD>`.
 *
 * @throws InvalidArgumentError when the calendar has no METHOD (iMIP needs one: REQUEST,
 *   CANCEL, REPLY, ... RFC 5546 §1.4) or is not an iCalendar object.
 */
export function calendarInvite(ics: string | Uint8Array): CalendarInvite {
  const method = calendarMethod(ics);
  if (method === undefined) throw new InvalidArgumentError("The calendar has no METHOD line (an invitation needs one, e.g. METHOD:REQUEST; RFC 6047 §2.4)");
  return { content: ics, mimetype: `text/calendar; method=${method}` };
}

/**
 * RFC 6047 §2.4: a `text/calendar` body given with a `method` parameter must have that
 * METHOD (compared without case). Bodies not held in memory are not read here.
 */
export function assertCalendarMethodMatches(type: string, params: Readonly<Record<string, string>>, body: unknown): void {
  if (type !== "text/calendar" || !(typeof body === "string" || body instanceof Uint8Array)) return;
  const given = Object.entries(params).find(([name]) => name.toLowerCase() === "method")?.[1];
  if (given === undefined) return;
  const method = calendarMethod(body);
  if (method === undefined) throw new InvalidArgumentError(`The text/calendar part says method=${given} but the calendar has no METHOD line (RFC 6047 §2.4)`);
  if (method.toUpperCase() !== given.toUpperCase()) {
    throw new InvalidArgumentError(`The text/calendar part says method=${given} but the calendar has METHOD:${method}; they must be the same (RFC 6047 §2.4)`);
  }
}
