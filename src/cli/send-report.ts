/**
 * `missive send`'s report: what happened to the message, recipient by recipient, and, when
 * it went through routes or was tried more than once, every attempt (route, time, wait,
 * outcome) — the DeliveryReport the library returns, in lines.
 */
import type { DeliveryReport } from "../backends/report.js";
import type { MissiveError } from "../errors.js";

export type Say = (line: string) => void;

/** Prints the report; `advise` says what to do about a failure (classify's verdict), in one line or a few. */
export function printReport(r: DeliveryReport, say: Say, warn: Say, advise: (e: MissiveError) => string | readonly string[]): void {
  if (r.messageId !== undefined) say(`Message-ID: ${r.messageId}`);
  for (const address of r.accepted) say(`accepted ${address}`);
  for (const x of r.rejected) say(`refused  ${x.address}: ${describe(x)}`);
  for (const x of r.deferred) say(`deferred ${x.address}: ${describe(x)}`);
  if (r.reply) say(`server: ${r.reply.code}${r.reply.enhancedCode ? ` ${r.reply.enhancedCode}` : ""} ${r.reply.text}`);
  // Once: most servers' final reply already says "queued as <id>".
  if (r.queueId && !(r.reply?.text ?? "").includes(r.queueId)) say(`queue id: ${r.queueId}`);
  if (r.route !== undefined || r.attempts.length > 1) {
    const why = r.stopped !== undefined && r.stopped !== "delivered" ? `, stopped: ${r.stopped}` : "";
    say(`status: ${r.status}${r.route !== undefined ? ` via ${r.route}` : ""} (${r.attempts.length} attempt${r.attempts.length === 1 ? "" : "s"}${why})`);
    r.attempts.forEach((a, i) => {
      const wait = a.delayMs > 0 ? ` after waiting ${a.delayMs} ms` : "";
      const what = a.error !== undefined ? `${a.status}: ${a.error.name}: ${a.error.message}` : a.status;
      say(`  attempt ${i + 1}${a.route !== undefined ? ` via ${a.route}` : ""} at ${new Date(a.at).toISOString()}${wait}: ${what}`);
    });
  }
  if (r.status !== "sent" && r.error) {
    warn(`missive: ${r.error.name}: ${r.error.message}`);
    for (const line of [advise(r.error)].flat()) warn(`missive: ${line}`);
  }
}

function describe(x: { code: number | undefined; enhancedCode: string | undefined; text: string }): string {
  return x.code === undefined ? x.text : `${x.code}${x.enhancedCode ? ` ${x.enhancedCode}` : ""} ${x.text}`;
}
