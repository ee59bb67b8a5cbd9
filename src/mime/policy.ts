import { InvalidArgumentError } from "../errors.js";

/**
 * How a message is serialised. Immutable; derive variants with `.with({...})`.
 * Modelled on Python's `email.policy`, minus its legacy defaults: CRLF is the only line
 * separator, and the default output is 7-bit so that any transport accepts it.
 */
export interface PolicyOptions {
  /** Raw UTF-8 in headers and addresses (RFC 6532); needs SMTPUTF8 from the server. */
  readonly utf8: boolean;
  /** Text parts may go out as `8bit` instead of quoted-printable/base64 (needs 8BITMIME). */
  readonly allow8bit: boolean;
  /** Preferred header line length; folding happens at white space before this column. */
  readonly maxLineLength: number;
}

const KEYS: readonly (keyof PolicyOptions)[] = ["utf8", "allow8bit", "maxLineLength"];

export class Policy implements PolicyOptions {
  readonly linesep = "\r\n";
  readonly utf8: boolean;
  readonly allow8bit: boolean;
  readonly maxLineLength: number;

  constructor(options: PolicyOptions) {
    for (const key of Object.keys(options)) {
      if (!(KEYS as readonly string[]).includes(key)) throw new InvalidArgumentError(`Unknown policy option "${key}" (known: ${KEYS.join(", ")})`);
    }
    if (typeof options.utf8 !== "boolean" || typeof options.allow8bit !== "boolean") {
      throw new InvalidArgumentError("Policy utf8 and allow8bit must be booleans");
    }
    if (!Number.isInteger(options.maxLineLength) || options.maxLineLength < 40 || options.maxLineLength > 998) {
      throw new InvalidArgumentError("Policy maxLineLength must be an integer from 40 to 998");
    }
    this.utf8 = options.utf8;
    this.allow8bit = options.allow8bit;
    this.maxLineLength = options.maxLineLength;
    Object.freeze(this);
  }

  /** A copy with `changes` applied; unknown keys and wrong types are refused. */
  with(changes: Partial<PolicyOptions>): Policy {
    return new Policy({ ...this.options(), ...changes });
  }

  options(): PolicyOptions {
    return { utf8: this.utf8, allow8bit: this.allow8bit, maxLineLength: this.maxLineLength };
  }
}

const base = new Policy({ utf8: false, allow8bit: false, maxLineLength: 78 });

export const policies = {
  /** 7-bit output: what `asBytes()` and `asStream()` produce, accepted by every transport. */
  default: base,
  /** For servers that announced 8BITMIME: text parts may be sent as 8bit. */
  eightBit: base.with({ allow8bit: true }),
  /** For servers that announced SMTPUTF8 (and 8BITMIME): UTF-8 headers and addresses. */
  smtputf8: base.with({ utf8: true, allow8bit: true }),
} as const;
