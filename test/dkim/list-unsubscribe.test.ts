/**
 * RFC 8058 §4: one-click unsubscribe counts only when a DKIM signature covers both
 * List-Unsubscribe and List-Unsubscribe-Post. A message built with `listUnsubscribe`,
 * signed by signMessage with the default header list, carries both in h= and dkimpy
 * verifies it; changing either field afterwards breaks the signature.
 */
import { describe, expect, it } from "vitest";
import { signMessage } from "../../src/dkim/sign-message.js";
import { unfold } from "../../src/mime/headers.js";
import { EmailMessage } from "../../src/mime/message.js";
import { verifyWithDkimpy } from "../helpers/dkim-oracle.js";
import { FIXED_DATE, seededRandom } from "../mime/fixture-cases.js";
import { edSigner, RECORDS, rsaSigner, SIGNING_TIME } from "./helpers.js";

async function oks(messages: Buffer[]): Promise<boolean[][]> {
  return (await verifyWithDkimpy(messages.map((message) => ({ message, records: RECORDS })))).map((v) => v.map((s) => s.ok));
}

/** The h= tag of each DKIM-Signature field, as lower-case names. */
function signedHeaders(signed: Buffer): string[][] {
  const block = signed.toString("latin1").slice(0, signed.indexOf("\r\n\r\n"));
  return [...unfold(block).matchAll(/^DKIM-Signature:(.*)$/gim)].map((m) => m[1]!.match(/\bh=([^;]*)/)![1]!.replace(/\s+/g, "").toLowerCase().split(":"));
}

describe("one-click unsubscribe under DKIM", () => {
  it("both fields are in h= of every signature, and dkimpy verifies; a changed URL or a dropped Post field fails", async () => {
    const message = new EmailMessage({
      subject: "Weekly news", body: "This week.\n", from: "News <news@example.com>", to: ["reader@example.org"],
      listId: "Weekly news <weekly.example.com>",
      listUnsubscribe: { url: "https://example.com/unsubscribe?u=4b1d", mailto: "mailto:unsubscribe@example.com?subject=4b1d", oneClick: true },
      clock: () => FIXED_DATE, random: seededRandom("dkim-one-click"),
    });
    const signed = await signMessage(await message.asBytes(), [rsaSigner(), edSigner()], { now: SIGNING_TIME });
    for (const h of signedHeaders(signed)) expect(h).toEqual(expect.arrayContaining(["list-unsubscribe", "list-unsubscribe-post", "list-id", "from", "message-id"]));
    expect(signedHeaders(signed)).toHaveLength(2);

    const text = signed.toString("latin1");
    const otherUrl = Buffer.from(text.replace("u=4b1d>", "u=0000>"), "latin1");
    const noPost = Buffer.from(text.replace("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", ""), "latin1");
    expect(otherUrl.equals(signed) || noPost.equals(signed)).toBe(false);
    expect(await oks([signed, otherUrl, noPost])).toEqual([[true, true], [false, false], [false, false]]);
  });
});
