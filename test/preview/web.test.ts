/**
 * The web side over HTTP: the JSON API, the live list, downloads byte for byte, the
 * headers that keep message content from running, the Host check, and hostile messages
 * that must not break the server.
 */
import { request } from "node:http";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EmailMultiAlternatives } from "../../src/mime/message.js";
import { startMailCatcher, type MailCatcher } from "../../src/preview/catcher.js";
import { SmtpClient } from "../../src/smtp/client.js";

let catcher: MailCatcher | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await catcher?.close();
  catcher = undefined;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cfc000000301010018dd8db40000000049454e44ae426082", "hex");

async function send(c: MailCatcher, raw: Buffer | string, to = ["b@example.org"]): Promise<void> {
  const client = new SmtpClient({ host: "127.0.0.1", port: c.smtpPort, tls: "none" });
  await client.connect();
  await client.sendMail({ from: "a@example.org", to }, raw);
  await client.quit();
}

async function richMessage(): Promise<Buffer> {
  const m = new EmailMultiAlternatives({ subject: "Rich", body: "Plain text", from: { name: "Ann", address: "ann@example.org" }, to: ["bob@example.org"] });
  m.attachAlternative('<p>Hi <img src="cid:logo" alt="logo"> <img src="https://tracker.example/p.gif" alt=""></p><script>parent.hacked = 1</script>', "text/html");
  m.attach({ filename: "logo.png", content: PNG, mimetype: "image/png", contentId: "logo" } as never);
  m.attach("Résumé.pdf", Buffer.from("%PDF-1.4 binary \x00\x01\xff", "latin1"), "application/pdf");
  return m.asBytes();
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the catcher's web API", () => {
  it("lists messages, describes one, and gives its raw bytes and each part byte for byte", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: 0 });
    const raw = await richMessage();
    await send(catcher, raw, ["bob@example.org", "bcc@example.org"]);
    const caught = await catcher.waitFor();
    const list = (await (await fetch(`${catcher.url}/api/messages`)).json()) as { id: string; subject: string; recipients: string[]; attachments: number }[];
    expect(list).toMatchObject([{ id: caught.id, subject: "Rich", recipients: ["bob@example.org", "bcc@example.org"], attachments: 2 }]);

    const detail = (await (await fetch(`${catcher.url}/api/messages/${caught.id}`)).json()) as {
      text: string;
      html: string;
      remoteImages: number;
      checks: { id: string }[];
      attachmentList: { filename: string; url: string; size: number }[];
      tree: { contentType: string; children: unknown[] };
      headers: { name: string; value: string }[];
    };
    expect(detail.text).toBe("Plain text\n");
    expect(detail.remoteImages).toBe(1);
    expect(detail.checks.map((c) => c.id)).toEqual(["scripts", "remote-images"]);
    expect(detail.tree.contentType).toBe("multipart/mixed");
    expect(detail.headers.find((h) => h.name === "Subject")?.value).toBe("Rich");

    const rawResponse = await get(`${catcher.url}/api/messages/${caught.id}/raw?download=1`);
    expect(rawResponse.body.equals(raw)).toBe(true);
    expect(rawResponse.headers["content-disposition"]).toMatch(/^attachment; filename=/);

    const [logo, pdf] = detail.attachmentList;
    const pdfResponse = await get(`${catcher.url}${pdf!.url}`);
    expect(pdfResponse.body.equals(Buffer.from("%PDF-1.4 binary \x00\x01\xff", "latin1"))).toBe(true);
    expect(pdfResponse.headers["content-type"]).toBe("application/octet-stream");
    expect(pdfResponse.headers["content-disposition"]).toBe(`attachment; filename="R_sum_.pdf"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf`);
    expect(pdfResponse.headers["content-security-policy"]).toContain("sandbox");
    expect((await get(`${catcher.url}${logo!.url}`)).body.equals(PNG)).toBe(true);
    const byCid = await get(`${catcher.url}/api/messages/${caught.id}/cid/logo`);
    expect(byCid.status).toBe(302);
  });

  it("serves message HTML under a CSP with no script at all and no remote load, unless remote images are asked for", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: 0 });
    await send(catcher, await richMessage());
    const { id } = await catcher.waitFor();
    const blocked = await get(`${catcher.url}/api/messages/${id}/html`);
    const csp = String(blocked.headers["content-security-policy"]);
    expect(csp).toMatch(/^default-src 'none';/);
    expect(csp).not.toContain("script-src");
    expect(csp).not.toMatch(/https?:/);
    expect(csp).toContain("sandbox");
    expect(blocked.headers["x-content-type-options"]).toBe("nosniff");
    // The inline image points at the message's own part, not at cid: (which a browser cannot load).
    expect(blocked.body.toString()).toContain(`src="/api/messages/${encodeURIComponent(id)}/parts/1.1.2.2?inline=1"`);
    const allowed = await get(`${catcher.url}/api/messages/${id}/html?remote=1`);
    expect(String(allowed.headers["content-security-policy"])).toContain("img-src 'self' data: https: http:");
    expect(String(allowed.headers["content-security-policy"])).not.toContain("script-src");
    const page = await get(`${catcher.url}/`);
    expect(String(page.headers["content-security-policy"])).toContain("script-src 'self'");
  });

  it("streams new messages to the live list (server-sent events), and clears", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: 0 });
    const controller = new AbortController();
    const response = await fetch(`${catcher.url}/api/events`, { signal: controller.signal });
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = response.body!.getReader();
    let seen = "";
    const until = async (text: string) => {
      while (!seen.includes(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${text}`);
        seen += Buffer.from(value).toString("utf8");
      }
    };
    await until("retry:");
    await send(catcher, "Subject: live one\r\n\r\nx\r\n");
    await until("live one");
    expect(seen).toMatch(/event: message\ndata: \{.*"subject":"live one"/);
    expect((await fetch(`${catcher.url}/api/messages`, { method: "DELETE" })).status).toBe(204);
    await until("event: clear");
    expect(catcher.messages).toHaveLength(0);
    controller.abort();
  });

  it("refuses requests addressed to another host name (DNS rebinding), and unknown routes and methods", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: 0 });
    expect((await get(`${catcher.url}/api/messages`, { Host: "evil.example" })).status).toBe(403);
    expect((await get(`${catcher.url}/api/messages`, { Host: `localhost:1234` })).status).toBe(200);
    expect((await fetch(`${catcher.url}/api/messages/nope`)).status).toBe(404);
    expect((await fetch(`${catcher.url}/api/nothing`)).status).toBe(404);
    expect((await fetch(`${catcher.url}/api/messages`, { method: "POST" })).status).toBe(405);
  });

  it("survives hostile messages: huge headers, a MIME bomb, deep nesting, script-laden HTML, binary junk", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: 0 });
    const hostile = [
      `Subject: ${"A".repeat(2_000_000)}\r\nX-Many: 1\r\n${"X-H: v\r\n".repeat(50_000)}\r\nbody\r\n`,
      `Subject: bomb\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n${"--x\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>\r\n".repeat(20_000)}--x--\r\n`,
      `Subject: deep\r\n${"Content-Type: multipart/mixed; boundary=d\r\n\r\n--d\r\n".repeat(5_000)}\r\nx\r\n`,
      `Subject: <img src=x onerror=alert(1)>\r\nFrom: "<script>" <a@example.org>\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script><a href="javascript:alert(1)">x</a>\r\n`,
      Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7919) & 0xff)),
    ];
    for (const raw of hostile) await send(catcher, raw);
    expect(catcher.messages).toHaveLength(hostile.length);
    const list = (await (await fetch(`${catcher.url}/api/messages`)).json()) as { id: string }[];
    for (const { id } of list) {
      const detail = await fetch(`${catcher.url}/api/messages/${id}`);
      expect(detail.status).toBe(200);
      await detail.json();
      expect((await get(`${catcher.url}/api/messages/${id}/raw`)).status).toBe(200);
    }
    const xss = catcher.messages[3]!;
    const detail = (await (await fetch(`${catcher.url}/api/messages/${xss.id}`)).json()) as { subject: string; checks: { id: string }[] };
    expect(detail.subject).toBe("<img src=x onerror=alert(1)>");
    expect(detail.checks.map((c) => c.id)).toContain("scripts");
    const bomb = catcher.messages[1]!;
    expect(bomb.defects.map((d) => d.code)).toContain("too-many-parts");
    expect(catcher.messages[2]!.defects.map((d) => d.code)).toContain("too-deep");
  });

  it("with a directory: messages become .eml files (and an envelope beside each), shown again after a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "missive-catcher-"));
    dirs.push(dir);
    catcher = await startMailCatcher({ port: 0, webPort: 0, dir });
    const raw = await richMessage();
    await send(catcher, raw);
    const first = await catcher.waitFor();
    expect(first.file).toMatch(/\.eml$/);
    expect((await readdir(dir)).sort()).toEqual([`${first.id}.eml`, `${first.id}.json`]);
    // Attachments are read again from the file when asked for.
    const pdf = first.attachments[1]!;
    expect(pdf.content).toBeUndefined();
    expect((await get(`${catcher.url}/api/messages/${first.id}/parts/${pdf.path}`)).body.toString("latin1")).toBe("%PDF-1.4 binary \x00\x01\xff");
    await catcher.close();

    catcher = await startMailCatcher({ port: 0, webPort: 0, dir });
    expect(catcher.messages.map((m) => [m.id, m.subject, m.envelope?.to])).toEqual([[first.id, "Rich", ["b@example.org"]]]);
    await catcher.clear();
    expect(await readdir(dir)).toEqual([]);
  });

  it("waitFor: resolves with a message that comes later, rejects clearly after its timeout", async () => {
    catcher = await startMailCatcher({ port: 0, webPort: false });
    const later = catcher.waitFor((m) => m.subject === "later", { timeout: 10_000 });
    await send(catcher, "Subject: sooner\r\n\r\nx\r\n");
    await send(catcher, "Subject: later\r\n\r\nx\r\n");
    expect((await later).subject).toBe("later");
    await expect(catcher.waitFor((m) => m.subject === "never", { timeout: 50 })).rejects.toMatchObject({ code: "ECATCHER_TIMEOUT" });
    expect(catcher.url).toBeUndefined();
  });
});
