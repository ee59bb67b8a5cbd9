/**
 * Property: whatever the server answers, try after try — any RCPT reply per recipient,
 * any fault of the message (4xx/5xx to MAIL or DATA or after the dot, a dropped
 * connection, no reply after the dot) — the merged report puts every envelope recipient
 * in exactly one of accepted, rejected and deferred, and the status agrees with the lists.
 * Real SMTP over loopback against the scripted server; waits on a virtual clock.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FailoverBackend } from "../../src/delivery/failover.js";
import { envelopeRecipients } from "../../src/backends/report.js";
import { EmailMessage } from "../../src/mime/message.js";
import { parsePath, type ScriptResult } from "../helpers/fake-smtp-server.js";
import { VirtualClock } from "../helpers/virtual-clock.js";
import { closeServers, fake, smtp } from "./helpers.js";

const RCPT_REPLIES = ["250 2.1.5 Ok", "451 4.3.0 Try later", "452 4.5.3 Too many recipients", "452 4.2.2 Mailbox full", "550 5.1.1 No such user", "553 5.1.3 Bad address"] as const;
type Fault = "none" | "mail-451" | "mail-550" | "data-451" | "data-554" | "dot-451" | "dot-554" | "dot-drop" | "rcpt-drop" | "dot-421";
const FAULTS: readonly Fault[] = ["none", "mail-451", "mail-550", "data-451", "data-554", "dot-451", "dot-554", "dot-drop", "rcpt-drop", "dot-421"];

interface TransactionPlan {
  readonly fault: Fault;
  /** The RCPT reply for each recipient index (by position in the transaction). */
  readonly rcpt: readonly (typeof RCPT_REPLIES)[number][];
}

const plans: { queue: TransactionPlan[] } = { queue: [] };
let current: TransactionPlan | undefined;
let rcptIndex = 0;

function onCommand(verb: string, arg: string): ScriptResult {
  switch (verb) {
    case "MAIL":
      current = plans.queue.shift() ?? { fault: "none", rcpt: [] };
      rcptIndex = 0;
      if (current.fault === "mail-451") return "451 4.3.0 Busy";
      if (current.fault === "mail-550") return "550 5.7.1 Sender refused";
      return undefined;
    case "RCPT": {
      const i = rcptIndex++;
      if (current?.fault === "rcpt-drop" && i === 1) return { reply: null, then: "destroy" };
      if (parsePath(arg, "TO:") === null) return undefined;
      return current?.rcpt[i % Math.max(1, current.rcpt.length)] ?? undefined;
    }
    case "DATA":
      if (current?.fault === "data-451") return "451 4.3.0 Not now";
      if (current?.fault === "data-554") return "554 5.7.1 No";
      return undefined;
    default:
      return undefined;
  }
}

function onMessage(): ScriptResult {
  switch (current?.fault) {
    case "dot-451":
      return "451 4.3.0 Queue full";
    case "dot-554":
      return "554 5.7.1 Spam";
    case "dot-421":
      return { reply: "421 4.3.2 Shutting down", then: "close" };
    case "dot-drop":
      return { reply: null, then: "destroy" };
    default:
      return undefined;
  }
}

let port = 0;
beforeAll(async () => {
  const server = await fake({ script: { onCommand: (cmd) => onCommand(cmd.verb, cmd.arg), onMessage: () => onMessage() } });
  port = server.port;
});
afterAll(closeServers);

const transaction = fc.record({ fault: fc.constantFrom(...FAULTS), rcpt: fc.array(fc.constantFrom(...RCPT_REPLIES), { minLength: 1, maxLength: 6 }) });

describe("a report accounts for every envelope recipient exactly once", () => {
  it("for any sequence of scripted replies over up to five tries", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 8 }),
        fc.array(transaction, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.boolean(),
        async (who, sequence, attempts, retryUnknown) => {
          plans.queue = [...sequence];
          // Duplicates in the input (who repeats) become one recipient each in the envelope.
          const message = new EmailMessage({ subject: "p", body: "x", from: "a@example.com", to: who.map((n) => `r${n}@example.org`) });
          const envelope = envelopeRecipients(message);
          const backend = new FailoverBackend({
            routes: [{ name: "relay", backend: smtp(port, { timeout: 3000 }) }],
            retry: { attempts, initialDelay: 10, jitter: "none", retryUnknown },
            circuit: false,
            clock: new VirtualClock({ auto: true }),
          });
          const r = (await backend.sendMessagesWithReport([message], { stopOnError: false })).reports[0]!;
          const listed = [...r.accepted, ...r.rejected.map((x) => x.address), ...r.deferred.map((x) => x.address)];
          expect(new Set(listed).size).toBe(listed.length);
          expect([...listed].sort()).toEqual([...envelope].sort());
          expect(r.attempts.length).toBeGreaterThanOrEqual(1);
          // Accepted once, never sent again: no later try is for an accepted recipient.
          r.attempts.forEach((a, i) => {
            for (const later of r.attempts.slice(i + 1)) for (const address of a.accepted) expect(later.recipients).not.toContain(address);
          });
          if (r.status === "sent") expect(r.accepted).toHaveLength(envelope.length);
          if (r.status === "failed") expect(r.accepted).toEqual([]);
          if (r.status === "partial") expect(r.accepted.length).toBeGreaterThan(0);
          if (r.status !== "sent") expect(r.error ?? r.deferred.length + r.rejected.length).toBeTruthy();
          if (!retryUnknown) expect(r.attempts.filter((a) => a.status === "unknown").length).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 80 },
    );
  });
});
