/**
 * The main job, end to end: build a rich message (non-ASCII subject and names, text + HTML
 * alternatives, an inline image, a PDF attachment) and send it through the default backend.
 *
 *   npm run demo            the configured backend (EMAIL_URL, EMAIL_HOST, EMAIL_BACKEND);
 *                           with none, the console backend, plus a copy in out/ (file backend)
 *   npm run demo -- --smtp  starts a local aiosmtpd (Debian's python3-aiosmtpd), sends over
 *                           SMTP through the smtp backend, and shows what the server stored
 */
import { fileURLToPath } from "node:url";
import { configure, EmailMultiAlternatives, getConnection, getSettings } from "../src/index.js";
import { SmtpBackend } from "../src/backends/index.js";
import type { FileBackend } from "../src/backends/file.js";

const assets = (name: string) => fileURLToPath(new URL(`./assets/${name}`, import.meta.url));

function buildMessage(): EmailMultiAlternatives {
  const message = new EmailMultiAlternatives({
    subject: "Résumé du trimestre — 第3四半期のご報告 ✓",
    body: "Bonjour Zoë,\n\nLe rapport du trimestre est en pièce jointe.\nFür Jürgen: die Zahlen sind gut.\n\n— Ann",
    from: "Ann Müller <ann@example.com>",
    to: ["Zoë Faßbender <zoe@example.org>", '"Doe, John" <john@bücher.example>'],
    cc: "山田太郎 <yamada@example.jp>",
    bcc: ["audit@example.com"],
    replyTo: ["reports@example.com"],
    headers: { "X-Mailer": "missive demo" },
  });
  message.attachAlternative(
    '<p>Bonjour <b>Zoë</b>,</p><p>Le rapport du trimestre est en pièce jointe.</p><p><img src="cid:logo" alt="logo"></p><p>— Ann</p>',
    "text/html",
  );
  message.attachFile(assets("logo.png"), "image/png", { disposition: "inline", contentId: "logo" });
  message.attachFile(assets("report.pdf"), undefined, { filename: "Rapport trimestriel – Q3.pdf" });
  return message;
}

async function sendOverSmtp(): Promise<void> {
  const { startAiosmtpd } = await import("../test/helpers/aiosmtpd.js");
  const server = await startAiosmtpd();
  try {
    configure({ backend: "smtp", host: server.host, port: server.port });
    console.log(`aiosmtpd listening on ${server.host}:${server.port}; sending through the smtp backend…`);
    await report(buildMessage());
    const [stored] = await server.waitForMessages(1);
    console.log(`\nThe server stored ${stored!.size} bytes for ${stored!.rcptTos.join(", ")} (MAIL FROM ${stored!.mailFrom}):\n`);
    process.stdout.write(stored!.data);
  } finally {
    await server.stop();
  }
}

/** Sends through the default backend and prints what happened to each recipient (SMTP). */
async function report(message: EmailMultiAlternatives): Promise<void> {
  const connection = getConnection();
  if (connection instanceof SmtpBackend) {
    const { sent, reports } = await connection.sendMessagesWithReport([message]);
    for (const r of reports) {
      console.log(`${r.status}: ${r.messageId} — ${r.reply?.code} ${r.reply?.text}`);
      for (const address of r.accepted) console.log(`  accepted ${address}`);
      for (const refused of r.rejected) console.log(`  refused  ${refused.address}: ${refused.code} ${refused.text}`);
    }
    console.log(`${sent} message sent.`);
  } else {
    const sent = await connection.sendMessages([message]);
    console.error(`${sent} message sent through the ${String(getSettings().backend)} backend.`);
  }
}

if (process.argv.includes("--smtp")) {
  await sendOverSmtp();
} else {
  const configured = ["EMAIL_URL", "EMAIL_HOST", "EMAIL_BACKEND"].some((name) => process.env[name]);
  if (!configured) configure({ backend: "console" });
  const message = buildMessage();
  await report(message);
  if (!configured) {
    const file = getConnection("file", { filePath: "out" }) as FileBackend;
    await file.sendMessages([message]);
    console.error(`A copy is in ${file.written[0]} (open it with any mail client).`);
  }
}
