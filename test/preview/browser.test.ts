/**
 * The catcher as a person uses it, in headless Chromium (Debian's, driven by playwright-core):
 * a message sent over SMTP appears in the open page without a reload, opens, its HTML
 * renders with the inline image, a remote image stays blocked until asked for, the
 * message's scripts never run, and an attachment downloads byte for byte. Screenshots go to
 * test-artifacts/ (UPDATE_SCREENSHOT=1 also refreshes docs/catcher.png for the README).
 */
import { createServer, type Server } from "node:http";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync, crc32 } from "node:zlib";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EmailMultiAlternatives } from "../../src/mime/message.js";
import { startMailCatcher, type MailCatcher } from "../../src/preview/catcher.js";
import { SmtpClient } from "../../src/smtp/client.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const artifacts = join(root, "test-artifacts");

/** A real PNG: `size`×`size` pixels of one colour (RGB), built with zlib so the browser decodes it. */
function png(size: number, [r, g, b]: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: size }, () => [r, g, b]).flat())]);
  const pixels = Buffer.concat(Array.from({ length: size }, () => row));
  return Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), chunk("IHDR", header), chunk("IDAT", deflateSync(pixels)), chunk("IEND", Buffer.alloc(0))]);
}

let catcher: MailCatcher;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
/** A stand-in for the internet: counts every request a message makes to it. */
let remote: Server;
let remoteBase: string;
const remoteHits: string[] = [];

beforeAll(async () => {
  await mkdir(artifacts, { recursive: true });
  remote = createServer((req, res) => {
    remoteHits.push(req.url ?? "");
    res.writeHead(200, { "Content-Type": "image/png" });
    res.end(png(4, [0, 128, 255]));
  });
  await new Promise<void>((resolve) => remote.listen(0, "127.0.0.1", resolve));
  remoteBase = `http://127.0.0.1:${(remote.address() as { port: number }).port}`;
  catcher = await startMailCatcher({ port: 0, webPort: 0, hostname: "catcher.test" });
  userDataDir = await mkdtemp(join(tmpdir(), "missive-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
  });
  page = context.pages()[0] ?? (await context.newPage());
}, 120_000);

afterAll(async () => {
  await context?.close();
  await catcher?.close();
  await new Promise<void>((resolve) => (remote ? remote.close(() => resolve()) : resolve()));
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

const ATTACHMENT = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 131 + 7) & 0xff));

async function sendRich(): Promise<void> {
  const m = new EmailMultiAlternatives({
    subject: "Your order #1042 has shipped",
    body: "Hi Zoë,\n\nYour order is on its way.\n",
    from: { name: "Shop Example", address: "orders@shop.example" },
    to: [{ name: "Zoë Faßbender", address: "zoe@example.org" }],
  });
  m.attachAlternative(
    `<div style="font-family:sans-serif;max-width:560px">
       <h1 style="color:#2456d3">Your order has shipped</h1>
       <p><img src="cid:logo" alt="Shop logo" width="64" height="64" id="logo"></p>
       <p>Hi Zoë, your parcel is on its way.</p>
       <p><img src="${remoteBase}/pixel.png" alt="" id="tracker" width="8" height="8"></p>
       <script>new Image().src = "${remoteBase}/script-ran"; parent.document.title = "pwned";</script>
       <img src="x" onerror="fetch('${remoteBase}/onerror-ran')" alt="">
       <a href="javascript:alert(1)">track</a>
     </div>`,
    "text/html",
  );
  m.attach({ filename: "logo.png", content: png(64, [220, 40, 40]), mimetype: "image/png", contentId: "logo" } as never);
  m.attach("invoice-1042.bin", ATTACHMENT, "application/octet-stream");
  const client = new SmtpClient({ host: "127.0.0.1", port: catcher.smtpPort, tls: "none" });
  await client.connect();
  await client.sendMail({ from: "orders@shop.example", to: ["zoe@example.org"] }, await m.asBytes());
  await client.quit();
}

describe("the catcher in a browser", () => {
  it("shows a message sent over SMTP without a reload, renders it safely, and downloads its attachment byte for byte", async () => {
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(catcher.url!);
    await expect.poll(() => page.locator("#status").getAttribute("data-state"), { timeout: 10_000 }).toBe("live");
    expect(await page.locator("[data-testid=message-item]").count()).toBe(0);

    await sendRich();
    const item = page.locator("[data-testid=message-item]");
    await item.first().waitFor({ timeout: 10_000 });
    expect(await item.count()).toBe(1);
    expect(await item.first().textContent()).toContain("Your order #1042 has shipped");
    await page.screenshot({ path: join(artifacts, "catcher-list.png") });

    await item.first().click();
    await page.locator("[data-testid=subject]").waitFor();
    const frame = page.frameLocator("[data-testid=html-frame]");
    const logo = frame.locator("#logo");
    await logo.waitFor({ timeout: 10_000 });
    await expect.poll(() => logo.evaluate((img: { complete: boolean; naturalWidth: number }) => (img.complete ? img.naturalWidth : 0)), { timeout: 10_000 }).toBe(64);
    expect(await page.locator("[data-testid=remote-count]").textContent()).toBe("1 remote image blocked.");
    expect(await frame.locator("#tracker").evaluate((img: { naturalWidth: number }) => img.naturalWidth)).toBe(0);
    expect(remoteHits).toEqual([]);
    await page.screenshot({ path: join(artifacts, "catcher-html.png") });
    if (process.env.UPDATE_SCREENSHOT === "1") await page.screenshot({ path: join(root, "docs", "catcher.png"), type: "png" });

    await page.locator("[data-testid=load-remote]").click();
    await expect.poll(() => remoteHits.includes("/pixel.png"), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => frame.locator("#tracker").evaluate((img: { complete: boolean; naturalWidth: number }) => (img.complete ? img.naturalWidth : 0)), { timeout: 10_000 }).toBe(4);

    // The message's own scripts: none ran, before or after remote images were allowed.
    await page.locator("[data-tab=text]").click();
    expect(await page.locator("[data-testid=text-body]").textContent()).toBe("Hi Zoë,\n\nYour order is on its way.\n");
    expect(remoteHits.filter((h) => h !== "/pixel.png")).toEqual([]);
    expect(dialogs).toEqual([]);
    expect(await page.title()).toBe("missive mail catcher");

    await page.locator("[data-tab=checks]").click();
    const checks = await page.locator("[data-testid=check]").evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { check: string } }).dataset.check));
    expect(checks).toEqual(["scripts", "remote-images"]);
    await page.screenshot({ path: join(artifacts, "catcher-checks.png") });

    await page.locator("[data-tab=attachments]").click();
    const [download] = await Promise.all([page.waitForEvent("download"), page.locator("[data-testid=attachment-link]", { hasText: "invoice-1042.bin" }).click()]);
    expect(download.suggestedFilename()).toBe("invoice-1042.bin");
    expect((await readFile((await download.path())!)).equals(ATTACHMENT)).toBe(true);

    // Deleting from the page empties the list in every open page.
    await page.locator("#clear").click();
    await expect.poll(() => page.locator("[data-testid=message-item]").count(), { timeout: 10_000 }).toBe(0);
    expect(catcher.messages).toHaveLength(0);
  }, 120_000);

  it("shows a hostile message as text: nothing in its subject, names, filenames or HTML runs or loads", async () => {
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const before = remoteHits.length;
    const html = `</iframe><script>alert("body")</script><iframe srcdoc="<script>alert('srcdoc')</script>"></iframe>
      <meta http-equiv="refresh" content="0;url=${remoteBase}/refresh"><link rel="stylesheet" href="${remoteBase}/style.css">
      <object data="${remoteBase}/object"></object><form action="${remoteBase}/form"><button id="go">go</button></form>
      <base href="${remoteBase}/"><img src="relative.png" alt="rel"><svg onload="alert('svg')"></svg><p id="still-here">still here</p>`;
    const raw = [
      `From: "<script>alert('from')</script>" <evil@example.org>`,
      "To: zoe@example.org",
      `Subject: <img src=x onerror=alert('subject')>`,
      "Content-Type: multipart/mixed; boundary=z",
      "",
      "--z",
      "Content-Type: text/html; charset=utf-8",
      "",
      html,
      "--z",
      `Content-Type: text/plain; name="\\"><img src=x onerror=alert('file')>.txt"`,
      "Content-Disposition: attachment",
      "",
      "x",
      "--z--",
      "",
    ].join("\r\n");
    const client = new SmtpClient({ host: "127.0.0.1", port: catcher.smtpPort, tls: "none" });
    await client.connect();
    await client.sendMail({ from: "evil@example.org", to: ["zoe@example.org"] }, raw);
    await client.quit();

    await page.goto(catcher.url!);
    const item = page.locator("[data-testid=message-item]").first();
    await item.waitFor({ timeout: 10_000 });
    expect(await item.locator(".subject").textContent()).toBe("<img src=x onerror=alert('subject')>");
    await item.click();
    await page.frameLocator("[data-testid=html-frame]").locator("#still-here").waitFor({ timeout: 10_000 });
    for (const tab of ["headers", "mime", "attachments", "raw", "checks", "html"]) {
      await page.locator(`[data-tab=${tab}]`).click();
      await page.locator(`[data-panel=${tab}]`).waitFor();
    }
    expect(await page.locator("[data-testid=attachment-link]").count()).toBe(0); // the html tab is showing again
    await page.locator("[data-tab=attachments]").click();
    expect(await page.locator("[data-testid=attachment-link]").textContent()).toBe(`"><img src=x onerror=alert('file')>.txt`);
    await page.screenshot({ path: join(artifacts, "catcher-hostile.png") });
    expect(dialogs).toEqual([]);
    expect(remoteHits.slice(before)).toEqual([]);
    expect(await page.title()).toBe("missive mail catcher");
    await catcher.clear();
  }, 120_000);
});
