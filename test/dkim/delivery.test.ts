/**
 * The path that works today for signed mail: build the bytes, sign them with signMessage,
 * send them with missive's SMTP client. dkimpy verifies what a real aiosmtpd stored (after
 * dot-stuffing on the way in and unstuffing at the server).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signMessage } from "../../src/dkim/sign-message.js";
import { EmailMultiAlternatives } from "../../src/mime/message.js";
import { policies } from "../../src/mime/policy.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { verifyWithDkimpy } from "../helpers/dkim-oracle.js";
import { edSigner, RECORDS, rsaSigner } from "./helpers.js";

let server: AiosmtpdServer;
beforeAll(async () => {
  server = await startAiosmtpd();
});
afterAll(async () => {
  await server?.stop();
});

function message(): EmailMultiAlternatives {
  const m = new EmailMultiAlternatives({
    subject: "Signed — über SMTP",
    body: "Hello Bob,\n.a line that starts with a dot\n..and one with two\n\nÜnïcødé in the body.\n",
    from: "Ann Müller <ann@example.com>",
    to: ["bob@example.org"],
    headers: { "List-Unsubscribe": "<https://example.com/u/1>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" },
  });
  m.attachAlternative("<p>Hello <b>Bob</b></p>", "text/html");
  m.attach("report.bin", Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31) & 0xff)), "application/octet-stream");
  return m;
}

describe("signMessage, then the SMTP client, then aiosmtpd", () => {
  it("dkimpy verifies both signatures on the bytes the server stored, 7-bit and 8BITMIME renders", async () => {
    const client = new SmtpClient({ host: server.host, port: server.port });
    await client.connect();
    const before = (await server.messages()).length;
    for (const [policy, eightBit] of [[policies.default, false], [policies.eightBit, true]] as const) {
      const bytes = await message().asBytes(policy);
      const signed = await signMessage(bytes, [rsaSigner(), edSigner({ canonicalization: "simple/simple" })]);
      await client.sendMail({ from: "ann@example.com", to: ["bob@example.org"], eightBit }, signed);
    }
    await client.quit();
    const stored = (await server.waitForMessages(before + 2)).slice(before);
    expect(stored[1]!.mailOptions).toContain("BODY=8BITMIME");
    expect(stored.map((s) => s.data.includes(Buffer.from("Ünïcødé")))).toEqual([false, true]);
    expect(stored[1]!.data.includes(Buffer.from("\r\n.a line that starts with a dot\r\n..and one"))).toBe(true);
    const verdicts = await verifyWithDkimpy(stored.map((s) => ({ message: s.data, records: RECORDS })));
    expect(verdicts.map((v) => v.map((s) => s.ok))).toEqual([
      [true, true],
      [true, true],
    ]);
  });
});
