/**
 * The CPU of composing and rendering one bench message, without the network: the
 * constructor, `asBytes(policies.eightBit)` and `recipients()`, each timed on its own over
 * many messages (process.cpuUsage, so waiting for a core is not counted). `node
 * bench/bundle.mjs profile compose` runs it alone, for a CPU profile (bench/PROFILE.md).
 */
import { EmailMessage } from "../src/mime/message.js";
import { policies } from "../src/mime/policy.js";
import { composeMessage } from "./smtp.js";

function cpuMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

export async function composeSplit(count: number): Promise<{ construct: number; asBytes: number; recipients: number }> {
  let t = process.cpuUsage();
  const messages: EmailMessage[] = [];
  for (let i = 0; i < count; i++) messages.push(composeMessage(i));
  const construct = cpuMicros(t) / count;
  t = process.cpuUsage();
  let octets = 0;
  for (const m of messages) octets += (await m.asBytes(policies.eightBit)).length;
  const asBytes = cpuMicros(t) / count;
  t = process.cpuUsage();
  let n = 0;
  for (const m of messages) n += m.recipients().length;
  const recipients = cpuMicros(t) / count;
  if (octets === 0 || n !== count) throw new Error("bench/compose.ts: nothing rendered");
  return { construct, asBytes, recipients };
}
