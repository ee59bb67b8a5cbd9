/**
 * Which domains an address may have: what DNS and SMTP can carry, checked on the A-label
 * form that goes on the wire (for a Unicode domain too, whose labels are mapped with
 * UTS #46 as browsers do) and, for each `xn--` label, on the U-label it stands for.
 *
 * - RFC 5321 §4.1.2 (and RFC 1035 §2.3.1, as relaxed by RFC 1123 §2.1): a label is letters,
 *   digits and hyphens, and does not start or end with a hyphen.
 * - RFC 1035 §2.3.4 / RFC 5890 §2.3.2.1: a label is 1–63 octets; RFC 5321 §4.5.3.1.2: a
 *   domain at most 255, less the path's framing: 253 octets written as text.
 * - RFC 5890 §2.3.2.1, RFC 5891 §4.2.3.1 and §5.4: an `xn--` label must be Punycode that
 *   decodes to a U-label (some non-ASCII, no hyphen at either end, no `--` in the third and
 *   fourth places) whose own A-label is the label again (so it is in normal form).
 * Other labels with `--` in the third and fourth places (`ab--cd`) are valid host names,
 * and are let through.
 */
import { domainToASCII } from "node:url";
import { decodePunycode } from "./encoding/punycode.js";

/** RFC 1035 §2.3.4. */
export const MAX_LABEL_OCTETS = 63;
/** RFC 5321 §4.5.3.1.2 (255) less the length octet and the root label DNS adds. */
export const MAX_DOMAIN_OCTETS = 253;

function isAsciiText(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function isLetterDigitHyphen(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || code === 0x2d;
}

function show(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 37)}...` : text);
}

/** The hyphen rules a U-label must keep (RFC 5891 §4.2.3.1). */
function uLabelProblem(label: string, alabel: string): string | undefined {
  if (label.startsWith("-") || label.endsWith("-")) return `the label ${show(label)} (${alabel}) starts or ends with a hyphen (RFC 5891 §4.2.3.1)`;
  if (label.slice(2, 4) === "--") return `the label ${show(label)} (${alabel}) has hyphens in the third and fourth places (RFC 5891 §4.2.3.1)`;
  return undefined;
}

function labelProblem(label: string): string | undefined {
  if (label.length === 0) return "it has an empty label (a Unicode label that UTS #46 maps to nothing, such as a soft hyphen)";
  if (label.length > MAX_LABEL_OCTETS) return `the label ${show(label)} is ${label.length} octets, longer than ${MAX_LABEL_OCTETS} octets (RFC 1035 §2.3.4)`;
  for (let i = 0; i < label.length; i++) {
    if (!isLetterDigitHyphen(label.charCodeAt(i))) {
      return `the label ${show(label)} has ${show(label[i] as string)}; a domain label holds only letters, digits and hyphens (RFC 5321 §4.1.2)`;
    }
  }
  if (label.startsWith("-") || label.endsWith("-")) return `the label ${show(label)} starts or ends with a hyphen (RFC 5321 §4.1.2)`;
  if (label.slice(0, 4).toLowerCase() !== "xn--") return undefined;
  const ulabel = decodePunycode(label.slice(4));
  // RFC 5891 §5.4: the U-label's own A-label must be this label, which also refuses
  // Punycode of plain ASCII and of text that UTS #46 would have mapped (upper case, not NFC).
  if (ulabel === undefined || isAsciiText(ulabel) || domainToASCII(ulabel) !== label.toLowerCase()) {
    return `the label ${show(label)} is not a valid A-label (its Punycode does not decode to a U-label, RFC 5890 §2.3.2.1)`;
  }
  return uLabelProblem(ulabel, label);
}

/**
 * The domain's A-label form (lower-cased only where UTS #46 maps a Unicode domain), or a
 * problem saying why it cannot be used. Domain literals (`[192.0.2.1]`) are not checked here.
 */
export function checkDomain(domain: string): { ascii: string; problem?: undefined } | { ascii?: undefined; problem: string } {
  let ascii = domain;
  if (!isAsciiText(domain)) {
    ascii = domainToASCII(domain);
    if (ascii === "") return { problem: `the domain ${show(domain)} is not a valid internationalized domain name (IDNA, RFC 5890)` };
  }
  if (ascii.length > MAX_DOMAIN_OCTETS) {
    return { problem: `the domain ${show(domain)} is ${ascii.length} octets${ascii === domain ? "" : " as A-labels"}, longer than ${MAX_DOMAIN_OCTETS} octets (RFC 5321 §4.5.3.1.2)` };
  }
  for (const label of ascii.split(".")) {
    const problem = labelProblem(label);
    if (problem !== undefined) return { problem: ascii === domain ? problem : `${problem}, in the domain ${show(domain)}` };
  }
  return { ascii };
}
