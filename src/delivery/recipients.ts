/**
 * What has become of each envelope recipient of one message over all its tries: the
 * engine's ledger, from which the merged report is made. A recipient is "pending" until a
 * try says otherwise; then "accepted" (never sent again), "rejected" (refused for good,
 * never sent again), "deferred" (refused for now: the next try is for it) or "uncertain"
 * (its transaction's final reply never came: resent only with retryUnknown).
 */
import { recipientVerdict } from "../errors/classify.js";
import type { DeliveryReport, RecipientOutcome } from "../backends/report.js";

type State = "pending" | "accepted" | "rejected" | "deferred" | "uncertain";

interface Entry {
  state: State;
  outcome: RecipientOutcome | undefined;
}

export class RecipientLedger {
  readonly envelope: readonly string[];
  readonly #entries = new Map<string, Entry>();

  constructor(envelope: readonly string[]) {
    this.envelope = [...new Set(envelope)];
    for (const address of this.envelope) this.#entries.set(address, { state: "pending", outcome: undefined });
  }

  /** The recipients the next try is for, in envelope order. */
  pending(includeUncertain: boolean): string[] {
    return this.envelope.filter((a) => {
      const state = this.#entries.get(a)!.state;
      return state === "pending" || state === "deferred" || (includeUncertain && state === "uncertain");
    });
  }

  get accepted(): string[] {
    return this.envelope.filter((a) => this.#entries.get(a)!.state === "accepted");
  }

  /** Some recipient's outcome is unknown (its final reply never came). */
  get uncertain(): boolean {
    return this.envelope.some((a) => this.#entries.get(a)!.state === "uncertain");
  }

  /**
   * Takes one try's report for the recipients it was for. Returns how many it accepted and
   * how many the server deferred only for being past its recipient limit (452 4.5.3): those
   * go in the next transaction at once.
   */
  record(report: DeliveryReport, tried: readonly string[]): { accepted: number; overLimit: number } {
    const mark = (address: string, state: State, outcome: RecipientOutcome | undefined) => {
      const entry = this.#entries.get(address);
      // Never un-accept: an address reported twice keeps the better news.
      if (entry === undefined || entry.state === "accepted") return;
      entry.state = state;
      entry.outcome = outcome;
    };
    for (const address of report.accepted) mark(address, "accepted", undefined);
    for (const r of report.rejected) mark(r.address, "rejected", r);
    let overLimit = 0;
    for (const r of report.deferred) {
      // No reply in a try whose outcome is unknown: the server may have the message for it.
      const uncertain = report.status === "unknown" && r.code === undefined;
      if (!uncertain && r.code !== undefined && recipientVerdict({ code: r.code, enhancedCode: r.enhancedCode }) === "over-limit") overLimit += 1;
      mark(r.address, uncertain ? "uncertain" : "deferred", r);
    }
    const mentioned = new Set([...report.accepted, ...report.rejected.map((r) => r.address), ...report.deferred.map((r) => r.address)]);
    for (const address of tried) {
      if (!mentioned.has(address)) mark(address, "deferred", { address, code: undefined, enhancedCode: undefined, text: "the backend reported nothing for this recipient" });
    }
    return { accepted: report.accepted.filter((a) => tried.includes(a)).length, overLimit };
  }

  /** The lists of the merged report: every envelope recipient in exactly one. */
  lists(why: string): { accepted: string[]; rejected: RecipientOutcome[]; deferred: RecipientOutcome[] } {
    const accepted: string[] = [];
    const rejected: RecipientOutcome[] = [];
    const deferred: RecipientOutcome[] = [];
    for (const address of this.envelope) {
      const { state, outcome } = this.#entries.get(address)!;
      if (state === "accepted") accepted.push(address);
      else if (state === "rejected") rejected.push(outcome!);
      else deferred.push(outcome ?? { address, code: undefined, enhancedCode: undefined, text: why });
    }
    return { accepted, rejected, deferred };
  }
}
