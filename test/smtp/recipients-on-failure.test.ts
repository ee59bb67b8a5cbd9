/**
 * A failure after the RCPT replies (DATA refused, the body cut, no reply to the final dot)
 * carries which recipients the server had accepted and refused, so that a report can say
 * what became of each one.
 */
import { afterEach, describe, expect, it } from "vitest";
import { SmtpDeliveryUnknownError, SmtpError, type SmtpRecipientsRefusedError } from "../../src/errors.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { rejection } from "../helpers/errors.js";
import { dropAfterDot, recipientReplies, replyOn, startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";

const servers: FakeSmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function attempt(...script: Parameters<typeof startFakeServer>[0][]): Promise<unknown> {
  const server = await startFakeServer(Object.assign({}, ...script));
  servers.push(server);
  const client = new SmtpClient({ host: "127.0.0.1", port: server.port, localName: "client.test", timeout: 2000 });
  try {
    return await rejection(client.sendMail({ from: "a@example.org", to: ["ok@example.org", "later@example.org", "never@example.org"] }, "Subject: x\r\n\r\nx\r\n"));
  } finally {
    client.destroy();
  }
}

const refusals = recipientReplies({ "later@example.org": "452 4.2.2 Mailbox full", "never@example.org": "550 5.1.1 No such user" });

describe("errors after RCPT record the transaction's recipients", () => {
  it("DATA refused with 554", async () => {
    const error = (await attempt({ script: [refusals, replyOn("DATA", "554 5.7.1 Not today")] })) as SmtpError;
    expect(error).toBeInstanceOf(SmtpError);
    expect(error.stage).toBe("data");
    expect(error.recipients?.accepted).toEqual(["ok@example.org"]);
    expect(error.recipients?.rejected.map((r) => [r.address, r.reply.code])).toEqual([
      ["later@example.org", 452],
      ["never@example.org", 550],
    ]);
    expect(JSON.stringify(error)).not.toContain("recipients");
  });

  it("no reply after the final dot (unknown)", async () => {
    const error = (await attempt({ script: [refusals, dropAfterDot()] })) as SmtpDeliveryUnknownError;
    expect(error).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect(error.recipients?.accepted).toEqual(["ok@example.org"]);
  });

  it("every recipient refused: no transaction record (the error's `rejected` says it all)", async () => {
    const error = (await attempt({ script: recipientReplies({ "ok@example.org": "550 no", "later@example.org": "550 no", "never@example.org": "550 no" }) })) as SmtpRecipientsRefusedError;
    expect(error.rejected).toHaveLength(3);
    expect(error.recipients).toBeUndefined();
  });
});
