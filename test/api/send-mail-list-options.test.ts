/**
 * sendMail passes the bulk-mail options to the message: what aiosmtpd stores carries the
 * fields (read back by Python's email package), and a bad option is refused before any
 * connection is made, with or without failSilently.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sendMail } from "../../src/api.js";
import { BadHeaderError, InvalidArgumentError } from "../../src/errors.js";
import { configure, resetSettings } from "../../src/settings.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";
import { startFakeServer } from "../helpers/fake-smtp-server.js";
import { parseOneWithPython } from "../helpers/python-oracle.js";

isolateEmailEnvironment();
let server: AiosmtpdServer;
beforeAll(async () => {
  server = await startAiosmtpd();
});
afterAll(async () => {
  await server?.stop();
});
beforeEach(() => {
  resetSettings();
  configure({ host: server.host, port: server.port, timeout: 10_000 });
});

describe("sendMail with the bulk-mail options", () => {
  it("delivers them as the message's fields", async () => {
    const before = (await server.messages()).length;
    const n = await sendMail({
      subject: "Weekly", message: "News", from: "News <news@example.com>", to: ["reader@example.org"],
      listUnsubscribe: { url: "https://example.com/unsubscribe/abc", mailto: { address: "unsubscribe@example.com", subject: "unsubscribe abc" }, oneClick: true },
      listId: "Weekly news <weekly.example.com>", listHelp: "https://example.com/help", listArchive: "https://example.com/archive",
      priority: "low", autoSubmitted: "auto-generated",
    });
    expect(n).toBe(1);
    const [stored] = (await server.waitForMessages(before + 1)).slice(before);
    const py = await parseOneWithPython(stored!.data);
    const field = (name: string) => py.headers.find(([n]) => n === name)?.[1];
    expect(field("List-Unsubscribe")).toBe("<https://example.com/unsubscribe/abc>, <mailto:unsubscribe@example.com?subject=unsubscribe%20abc>");
    expect(field("List-Unsubscribe-Post")).toBe("List-Unsubscribe=One-Click");
    expect(field("List-Id")).toBe("Weekly news <weekly.example.com>");
    expect(field("List-Help")).toBe("<https://example.com/help>");
    expect(field("List-Archive")).toBe("<https://example.com/archive>");
    expect(field("Auto-Submitted")).toBe("auto-generated");
    expect([field("X-Priority"), field("X-MSMail-Priority"), field("Importance")]).toEqual(["5 (Lowest)", "Low", "low"]);
  });

  it("a bad option is thrown before anything is sent, failSilently or not", async () => {
    const fake = await startFakeServer();
    try {
      configure({ host: fake.host, port: fake.port });
      const mail = { subject: "s", message: "m", from: "a@example.com", to: ["b@example.com"] };
      await expect(sendMail({ ...mail, listUnsubscribe: { url: "http://example.com/u", oneClick: true } })).rejects.toThrow(BadHeaderError);
      await expect(sendMail({ ...mail, failSilently: true, listId: "no brackets.example.com" })).rejects.toThrow(BadHeaderError);
      await expect(sendMail({ ...mail, failSilently: true, priority: "urgent" as never })).rejects.toThrow(InvalidArgumentError);
      expect(fake.connections).toBe(0);
    } finally {
      await fake.close();
    }
  });
});
