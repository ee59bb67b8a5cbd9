/**
 * The mail catcher's checks panel and bulk mail: a message sent with `listUnsubscribe`
 * and `oneClick` is not reported as bulk mail without (one-click) unsubscribe; the same
 * message without oneClick, or without listUnsubscribe, is. Sent over SMTP to the catcher
 * and read from its JSON API, as the panel shows it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { EmailMessage, type EmailMessageOptions } from "../../src/mime/message.js";
import { startMailCatcher, type MailCatcher } from "../../src/preview/catcher.js";

let catcher: MailCatcher;
beforeAll(async () => {
  catcher = await startMailCatcher({ port: 0, webPort: 0, hostname: "catcher.test" });
});
afterAll(async () => {
  await catcher?.close();
});

const bulk = (subject: string, extra: EmailMessageOptions) =>
  new EmailMessage({ subject, body: "This week's news.", from: "News <news@example.com>", to: ["reader@example.org"], listId: "Weekly news <weekly.example.com>", ...extra });

async function checkIds(subject: string): Promise<string[]> {
  const caught = await catcher.waitFor((m) => m.subject === subject);
  const view = (await (await fetch(`${catcher.url}/api/messages/${caught.id}`)).json()) as { checks: { id: string }[] };
  return view.checks.map((c) => c.id);
}

describe("the checks panel on bulk mail", () => {
  it("one-click unsubscribe satisfies it; without oneClick or without listUnsubscribe it says so", async () => {
    const backend = new SmtpBackend({ host: "127.0.0.1", port: catcher.smtpPort, useTls: false });
    const sent = await backend.sendMessages([
      bulk("one-click", { listUnsubscribe: { url: "https://example.com/unsubscribe?u=7f", mailto: "mailto:unsubscribe@example.com?subject=7f", oneClick: true } }),
      bulk("no one-click", { listUnsubscribe: { url: "https://example.com/unsubscribe?u=7f" } }),
      bulk("no unsubscribe", {}),
    ]);
    expect(sent).toBe(3);
    const oneClick = await checkIds("one-click");
    expect(oneClick).not.toContain("missing-list-unsubscribe");
    expect(oneClick).not.toContain("missing-one-click");
    expect(await checkIds("no one-click")).toContain("missing-one-click");
    expect(await checkIds("no unsubscribe")).toContain("missing-list-unsubscribe");
  });
});
