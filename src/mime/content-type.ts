/**
 * A MIME type as callers write it, with parameters: `"text/calendar; method=REQUEST"`.
 *
 * RFC 2045 §5.1: `type "/" subtype *(";" attribute "=" value)`, value a token or a quoted
 * string. Parsed strictly (white space around the pieces is allowed, comments are not), so
 * that what the caller meant is what goes out: the parameters are then written again by
 * the part's header renderer, which picks a token, a quoted string or the RFC 2231 form
 * (charset, percent-encoding, continuations) for each value. A value may therefore hold
 * any Unicode text, given in quotes (`name="Réunion.ics"`); the RFC 2231 forms themselves
 * (`name*=utf-8''...`) are not accepted here, because the renderer writes them.
 */
import { InvalidArgumentError } from "../errors.js";
import { normalizeCharset } from "./encoding/charset.js";
import { assertHeaderValue } from "./headers.js";

export interface ParsedMimeType {
  /** `type/subtype`, lower-case. */
  type: string;
  /** Parameters other than charset, by lower-case name, values as given. */
  params: Record<string, string>;
  /** The charset parameter, as given. */
  charset: string | undefined;
}

/** RFC 2045 §5.1 token characters: printable ASCII except tspecials and space. */
const TOKEN = new Uint8Array(128);
for (let c = 0x21; c < 0x7f; c++) TOKEN[c] = 1;
for (const ch of '()<>@,;:\\"/[]?=') TOKEN[ch.charCodeAt(0)] = 0;

function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80 || TOKEN[c] !== 1) return false;
  }
  return true;
}

function isWsp(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/**
 * Parses `type/subtype; name=value; ...`.
 *
 * @throws BadHeaderError for CR, LF or NUL (header injection).
 * @throws InvalidArgumentError for anything that is not a MIME type with parameters, a
 *   parameter given twice, `boundary` (missive chooses it) or an RFC 2231-encoded name.
 */
export function parseMimeType(input: string): ParsedMimeType {
  if (typeof input !== "string") throw new InvalidArgumentError(`A MIME type must be a string, got ${input === null ? "null" : typeof input}`);
  assertHeaderValue("Content-Type", input);
  const fail = (problem: string): never => {
    throw new InvalidArgumentError(`Invalid MIME type ${JSON.stringify(input)}: ${problem}`);
  };
  let i = 0;
  const skipWsp = () => {
    while (i < input.length && isWsp(input.charCodeAt(i))) i++;
  };
  skipWsp();
  const typeEnd = input.indexOf(";", i) === -1 ? input.length : input.indexOf(";", i);
  const [type, subtype, ...rest] = input.slice(i, typeEnd).trim().toLowerCase().split("/");
  if (type === undefined || subtype === undefined || rest.length > 0 || !isToken(type) || !isToken(subtype)) fail('expected "type/subtype"');
  i = typeEnd;

  const params: Record<string, string> = {};
  let charset: string | undefined;
  const seen = new Set<string>();
  while (i < input.length) {
    i++; // the ";"
    skipWsp();
    if (i >= input.length) break; // a trailing ";" is harmless
    const nameStart = i;
    while (i < input.length && input[i] !== "=" && input[i] !== ";" && !isWsp(input.charCodeAt(i))) i++;
    const name = input.slice(nameStart, i).toLowerCase();
    if (!isToken(name)) fail(`${JSON.stringify(name)} is not a parameter name (a token: letters, digits and !#$%&'*+-.^_\`|~)`);
    if (name.includes("*")) fail(`give ${name.split("*")[0]} as a plain value; missive writes the RFC 2231 form (${name}) itself when the value needs it`);
    skipWsp();
    if (input[i] !== "=") fail(`the parameter ${name} has no "=" and value`);
    i++;
    skipWsp();
    let value = "";
    if (input[i] === '"') {
      i++;
      for (;;) {
        if (i >= input.length) fail(`the quoted value of ${name} is unclosed`);
        const ch = input[i] as string;
        i++;
        if (ch === '"') break;
        if (ch === "\\" && i < input.length) value += input[i++];
        else value += ch;
      }
    } else {
      const start = i;
      while (i < input.length && input[i] !== ";" && !isWsp(input.charCodeAt(i))) i++;
      value = input.slice(start, i);
      if (value === "") fail(`the parameter ${name} has an empty value (write ${name}="" for an empty one)`);
      if (!isToken(value)) fail(`the value of ${name} is not a token; put it in quotes: ${name}="${value}"`);
    }
    skipWsp();
    if (i < input.length && input[i] !== ";") fail(`unexpected ${JSON.stringify(input.slice(i, i + 10))} after the value of ${name}`);
    if (seen.has(name)) fail(`the parameter ${name} is given twice`);
    seen.add(name);
    if (name === "boundary") fail("the boundary is chosen by missive; leave it out");
    if (name === "charset") charset = value;
    else params[name] = value;
  }
  return { type: `${type}/${subtype}`, params, charset };
}

/**
 * Joins parameters parsed from a MIME type with those given separately (MimePart `params`),
 * refusing a name given in both (compared without case).
 */
export function mergeParameters(fromType: Readonly<Record<string, string>>, given: Readonly<Record<string, string>> | undefined, where: string): Record<string, string> {
  const out: Record<string, string> = { ...fromType };
  for (const [name, value] of Object.entries(given ?? {})) {
    if (Object.keys(out).some((existing) => existing.toLowerCase() === name.toLowerCase())) {
      throw new InvalidArgumentError(`${where}: the parameter ${name} is given twice (in the MIME type and in params)`);
    }
    out[name] = value;
  }
  return out;
}

/**
 * The MimePart options for a MIME type given with parameters: the bare type, the
 * parameters, and the charset it names, else `fallbackCharset` (the message's, for text
 * given as a string).
 */
export function mimeTypeOptions(mimetype: string, fallbackCharset: string | undefined): { contentType: string; params: Record<string, string>; charset: string | undefined } {
  const { type, params, charset } = parseMimeType(mimetype);
  return { contentType: type, params, charset: charset ?? fallbackCharset };
}

/** A part's charset, named in its MIME type or given as an option (both: they must agree). */
export function partCharset(fromType: string | undefined, given: string | undefined): string | undefined {
  const named = fromType === undefined ? undefined : normalizeCharset(fromType);
  const option = given === undefined ? undefined : normalizeCharset(given);
  if (named !== undefined && option !== undefined && named !== option) {
    throw new InvalidArgumentError(`The MIME type says charset=${fromType} but the charset option is ${given}; give it once`);
  }
  return named ?? option;
}
