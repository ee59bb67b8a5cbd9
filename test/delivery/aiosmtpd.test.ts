/**
 * The delivery engine against a real peer (Debian's aiosmtpd): configured as a newcomer
 * would from the README — two routes, a retry policy, `backend: "failover"` — with a dead
 * primary, a route whose AUTH fails, and a refused recipient.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliver, deliverMany, getConnection } from "../../src/api.js";
import { EmailMessage } from "../../src/mime/message.js";
import { configure, resetSettings } from "../../src/settings.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { deadPort, messageIdOf, recorder } from "./helpers.js";

let plain: AiosmtpdServer;
let secure: AiosmtpdServer;
let certs: TestCerts;
beforeAll(async () => {
  certs = await makeTestCerts();
  [plain, secure] = await Promise.all([
    startAiosmtpd({ rejectRecipients: ["gone@example.org"] }),
    startAiosmtpd({ tls: "starttls", auth: { users: { app: "s3cret" } } }),
  ]);
});
afterAll(async () => {
  resetSettings();
  await Promise.all([plain?.stop(), secure?.stop()]);
});

describe("failover over aiosmtpd", () => {
  it("a dead primary, aiosmtpd as the secondary: delivered once, the report says how", async () => {
    configure({
      backends: {
        primary: { backend: "smtp", host: "127.0.0.1", port: await deadPort(), localName: "app.test" },
        secondary: `smtp://127.0.0.1:${plain.port}?local_name=app.test`,
      },
      backend: "failover",
      failover: { routes: ["primary", "secondary"], retry: { attempts: 3, initialDelay: 10 } },
    });
    const before = (await plain.messages()).length;
    const m = new EmailMessage({ subject: "Welcome", body: "Hello Zoë", from: "app@example.com", to: ["zoe@example.org", "gone@example.org"] });
    const observer = recorder();
    const r = await deliver(m, { observer });
    expect(r.status).toBe("partial");
    expect(r.route).toBe("secondary");
    expect(r.accepted).toEqual(["zoe@example.org"]);
    expect(r.rejected).toEqual([expect.objectContaining({ address: "gone@example.org", code: 550 })]);
    expect(r.attempts.map((a) => [a.route, a.status, a.error?.code])).toEqual([
      ["primary", "failed", "ECONNECT"],
      ["secondary", "partial", undefined],
    ]);
    expect(observer.lines).toContain("failover primary→secondary ECONNECT");
    const stored = await plain.waitForMessages(before + 1);
    expect(stored).toHaveLength(before + 1);
    expect(stored.at(-1)!.rcptTos).toEqual(["zoe@example.org"]);
    expect(messageIdOf(stored.at(-1)!.data)).toBe(r.messageId);
  });

  it("AUTH refused on the STARTTLS route: the plain route delivers; the password never shows", async () => {
    configure({
      backends: {
        primary: { backend: "smtp", host: "localhost", port: secure.port, useTls: true, tlsOptions: { ca: certs.ca }, username: "app", password: "wrong-pw", localName: "app.test" },
        secondary: { backend: "smtp", host: "127.0.0.1", port: plain.port, localName: "app.test" },
      },
      backend: "failover",
      failover: { routes: ["primary", "secondary"], retry: { attempts: 2, initialDelay: 10 } },
    });
    const reports = await deliverMany([new EmailMessage({ subject: "A", body: "a", from: "app@example.com", to: ["a@example.org"] })]);
    expect(reports[0]!.attempts.map((a) => [a.route, a.error?.code, (a.error as { replyCode?: number } | undefined)?.replyCode])).toEqual([
      ["primary", "EAUTH", 535],
      ["secondary", undefined, undefined],
    ]);
    expect(JSON.stringify(reports[0]!.attempts[0]!.error)).not.toContain("wrong-pw");
    expect(reports[0]!.status).toBe("sent");
    // The same settings with the right password: the primary delivers, over TLS.
    configure({
      backends: {
        primary: { backend: "smtp", host: "localhost", port: secure.port, useTls: true, tlsOptions: { ca: certs.ca }, username: "app", password: "s3cret", localName: "app.test" },
        secondary: { backend: "smtp", host: "127.0.0.1", port: plain.port, localName: "app.test" },
      },
    });
    const conn = getConnection();
    const { reports: again } = await conn.sendMessagesWithReport!([new EmailMessage({ subject: "B", body: "b", from: "app@example.com", to: ["b@example.org"] })]);
    expect(again[0]!.route).toBe("primary");
    const stored = await secure.waitForMessages(1);
    expect(stored.at(-1)!).toMatchObject({ tls: true, authUser: "app", rcptTos: ["b@example.org"] });
  });
});
