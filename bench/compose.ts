/**
 * The CPU of composing and rendering one bench message, without the network: the
 * constructor, `asBytes(policies.eightBit)` and `recipients()`, each timed on its own over
 * many messages (process.cpuUsage, so waiting for a core is not counted). `node
 * bench/bundle.mjs profile compose` runs it alone, for a CPU profile (bench/PROFILE.md).
 *
 * `sendPath` times what the SMTP backend does for each message before its bytes reach the
 * client, all of it in one loop: the constructor, the batch's recipients, the SMTPUTF8
 * check, `render(freeze(message))` for an 8BITMIME server, the envelope, and reading the
 * rendered chunks (`node bench/bundle.mjs profile prepare`).
 */
import { envelopeRecipients } from "../src/backends/report.js";
import { EmailMessage } from "../src/mime/message.js";
import { policies } from "../src/mime/policy.js";
import { freeze, render, renderedChunks } from "../src/mime/render.js";
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

/** CPU µs per message of the SMTP backend's preparation of `count` bench messages (see above). */
export async function sendPath(count: number): Promise<number> {
  const t = process.cpuUsage();
  let octets = 0;
  for (let i = 0; i < count; i++) {
    const message = composeMessage(i);
    const to = envelopeRecipients(message);
    const smtputf8 = message.needsSmtpUtf8();
    const rendered = await render(await freeze(message), smtputf8 ? policies.smtputf8 : policies.eightBit);
    if (rendered.envelope.to.length !== to.length) throw new Error("bench/compose.ts: the envelope lost a recipient");
    for await (const chunk of renderedChunks(rendered)) octets += chunk.length;
  }
  const used = cpuMicros(t) / count;
  if (octets === 0) throw new Error("bench/compose.ts: nothing rendered");
  return used;
}
