/**
 * The main job, end to end: build a rich message (non-ASCII subject and names, text + HTML
 * alternatives, an inline image, a PDF attachment) and write it out.
 *
 *   npm ci && npm run demo
 *
 * Writes out/demo.eml and prints the message.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { EmailMultiAlternatives } from "../src/mime/index.js";

const assets = (name: string) => fileURLToPath(new URL(`./assets/${name}`, import.meta.url));

const message = new EmailMultiAlternatives({
  subject: "Résumé du trimestre — 第3四半期のご報告 ✓",
  body: "Bonjour Zoë,\n\nLe rapport du trimestre est en pièce jointe.\nFür Jürgen: die Zahlen sind gut.\n\n— Ann",
  from: "Ann Müller <ann@example.com>",
  to: ["Zoë Faßbender <zoe@example.org>", '"Doe, John" <john@bücher.example>'],
  cc: "Team: 山田太郎 <yamada@example.jp>;",
  replyTo: ["reports@example.com"],
  headers: { "X-Mailer": "missive demo" },
});
message.attachAlternative(
  '<p>Bonjour <b>Zoë</b>,</p><p>Le rapport du trimestre est en pièce jointe.</p><p><img src="cid:logo" alt="logo"></p><p>— Ann</p>',
  "text/html",
);
message.attachFile(assets("logo.png"), "image/png", { disposition: "inline", contentId: "logo" });
message.attachFile(assets("report.pdf"), undefined, { filename: "Rapport trimestriel – Q3.pdf" });

const bytes = await message.asBytes();
await mkdir("out", { recursive: true });
await writeFile("out/demo.eml", bytes);
process.stdout.write(bytes);
process.stdout.write(`${"-".repeat(79)}\nWrote out/demo.eml (${bytes.length} bytes, ${message.recipients().length} recipients).\n`);
