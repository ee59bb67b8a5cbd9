/**
 * Fault injection for the capture server: "the next RCPT gets 550", "drop the connection
 * after the final dot". A fault names the phase of the SMTP dialogue it replaces the reply
 * of, and is used up by the first session that reaches that phase.
 */
import { InvalidArgumentError } from "../errors.js";

/**
 * Where a fault strikes: the greeting (`connect`), the reply to EHLO/HELO, STARTTLS, AUTH,
 * MAIL FROM, each RCPT TO, DATA (the 354, or a BDAT chunk that is not the last), and the
 * reply after the final dot or the last BDAT chunk (`dot`).
 */
export type FaultPhase = "connect" | "ehlo" | "starttls" | "auth" | "mail" | "rcpt" | "data" | "dot";

export const FAULT_PHASES: readonly FaultPhase[] = ["connect", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "dot"];

export interface FaultSpec {
  phase: FaultPhase;
  /**
   * The reply to send instead, e.g. `"451 4.3.0 Try again later"` (a 421 also closes the
   * connection, RFC 5321 §3.8), or `"drop"` to close the connection without a reply. A
   * message dropped at `dot` has been received whole and is kept: the sender cannot know
   * whether it was delivered, which is what such a test is about.
   */
  reply: string;
  /** How many times it strikes (default 1). */
  times?: number;
}

export interface Fault {
  phase: FaultPhase;
  drop: boolean;
  code: number;
  lines: string[];
}

interface Pending extends Fault {
  left: number;
}

function parseFault(spec: FaultSpec): Pending {
  if (spec === null || typeof spec !== "object") throw new InvalidArgumentError("failNext takes { phase, reply }");
  if (!FAULT_PHASES.includes(spec.phase)) throw new InvalidArgumentError(`failNext: phase must be one of ${FAULT_PHASES.join(", ")}, got ${JSON.stringify(spec.phase)}`);
  const times = spec.times ?? 1;
  if (!Number.isSafeInteger(times) || times < 1) throw new InvalidArgumentError(`failNext: times must be a positive integer, got ${String(spec.times)}`);
  if (spec.reply === "drop") return { phase: spec.phase, drop: true, code: 0, lines: [], left: times };
  const reply = typeof spec.reply === "string" ? spec.reply : "";
  const match = /^([2-5][0-9][0-9])(?:[ -](.*))?$/s.exec(reply);
  if (!match || /[\r\n\0]/.test(reply)) {
    throw new InvalidArgumentError(`failNext: reply must be "drop" or an SMTP reply such as "451 4.3.0 Try again later" (one line), got ${JSON.stringify(spec.reply)}`);
  }
  return { phase: spec.phase, drop: false, code: Number(match[1]), lines: [match[2] ?? ""], left: times };
}

/** The queue of faults still to strike, in the order they were asked for. */
export class FaultQueue {
  #pending: Pending[] = [];

  add(spec: FaultSpec): void {
    this.#pending.push(parseFault(spec));
  }

  /** The first fault for `phase`, used up; undefined when there is none. */
  take(phase: FaultPhase): Fault | undefined {
    const index = this.#pending.findIndex((f) => f.phase === phase);
    if (index === -1) return undefined;
    const fault = this.#pending[index]!;
    if (--fault.left === 0) this.#pending.splice(index, 1);
    return { phase: fault.phase, drop: fault.drop, code: fault.code, lines: fault.lines };
  }

  clear(): void {
    this.#pending = [];
  }

  get size(): number {
    return this.#pending.length;
  }
}
