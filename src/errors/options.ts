/**
 * The checks every options object a user passes goes through: unknown keys are refused
 * (a JavaScript caller, or options read from a config file, get no type checker to catch
 * `prioritty: "high"`), and values are described in messages without echoing them whole
 * (a PEM certificate or a password passed in the wrong place must not end up in a log).
 */
import { InvalidArgumentError } from "../errors.js";

/**
 * Throws InvalidArgumentError for the first own key of `options` not in `known`, naming
 * the key, the closest known one when it looks like a typo, and every known key. `what`
 * names the object in the message ("EmailMessage option", "attachment key").
 */
export function refuseUnknownKeys(options: object, known: readonly string[], what: string): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const near = closest(key, known);
    throw new InvalidArgumentError(`Unknown ${what} ${showKey(key)}${near !== undefined ? ` (did you mean "${near}"?)` : ""}; known: ${known.join(", ")}`);
  }
}

/**
 * A value as an error message may show it: a short one-line string or a number as itself,
 * anything else by its kind and size only ("a string of 1190 characters", "an object").
 * An option that got the wrong value may hold a certificate, a key or a secret.
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    return value.length <= 40 && !/[\0-\x1f\x7f]/.test(value) && !value.includes("-----") ? JSON.stringify(value) : `a string of ${value.length} characters`;
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === "function") return "a function";
  return `an ${typeof value === "object" ? "object" : typeof value}`;
}

function showKey(key: string): string {
  return JSON.stringify(key.length > 64 ? `${key.slice(0, 61)}...` : key);
}

/** The known key within two edits of `key` (case ignored), if exactly one is nearest. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, giving up (returning `limit`) once every path is at least `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit || a.length > 64 || b.length > 64) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    if (Math.min(...row) >= limit) return limit;
    previous = row;
  }
  return Math.min(previous[b.length]!, limit);
}
