/**
 * The byte-exact fixture cases. Each builds one message with an injected clock and random
 * source; `fixtures/<name>.eml` holds the expected bytes, and its X-Fixture-Rule header says
 * in one line which rule the case pins. Regenerate after a deliberate change with
 * `UPDATE_FIXTURES=1 npx vitest run test/mime/fixtures.test.ts`, then review the diff.
 */
import { createHash } from "node:crypto";
import { EmailMessage, EmailMultiAlternatives, type EmailMessageOptions } from "../../src/mime/message.js";
import { MimePart } from "../../src/mime/part.js";
import { policies, type Policy } from "../../src/mime/policy.js";

export const FIXED_DATE = new Date(Date.UTC(2026, 10, 21, 9, 30, 0));

/** A deterministic byte source: sha256(seed, counter) blocks. */
export function seededRandom(seed: string): (size: number) => Buffer {
  let counter = 0;
  return (size: number) => {
    const out = Buffer.alloc(size);
    for (let offset = 0; offset < size; offset += 32) {
      createHash("sha256").update(`${seed}:${counter++}`).digest().copy(out, offset);
    }
    return out;
  };
}

export interface FixtureCase {
  name: string;
  rule: string;
  policy?: Policy;
  build(base: EmailMessageOptions): EmailMessage;
}

const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d4948445200000001000000010806000000" + "1f15c4890000000d49444154789c6360f8cfc000000301010018dd8db40000000049454e44ae426082",
  "hex",
);
const PDF = Buffer.from("%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n", "latin1");

const simple = (extra: EmailMessageOptions = {}) => (base: EmailMessageOptions) =>
  new EmailMessage({ subject: "Hello", body: "Hello, world.\n", from: "ann@example.com", to: ["bob@example.org"], ...base, ...extra });

export const FIXTURE_CASES: FixtureCase[] = [
  { name: "plain-ascii", rule: "Short-lined ASCII text goes out as 7bit text/plain with a charset", build: simple() },
  {
    name: "subject-latin-q",
    rule: "A mostly-ASCII non-ASCII subject becomes Q encoded-words, only where needed",
    build: simple({ subject: "Café au lait, s'il vous plaît" }),
  },
  {
    name: "subject-japanese-b",
    rule: "A CJK subject becomes B encoded-words of at most 75 chars, never splitting a character",
    build: simple({ subject: "第3四半期の売上報告書について、ご確認をお願いいたします。よろしくお願いします。" }),
  },
  {
    name: "subject-long-folding",
    rule: "A long ASCII subject folds at white space before column 78",
    build: simple({
      subject: "This is a rather long subject line that certainly needs folding because it goes well past seventy-eight columns of text",
    }),
  },
  {
    name: "subject-encoded-word-lookalike",
    rule: "An =?...?= look-alike in a subject is itself encoded so that it reads back literally",
    build: simple({ subject: "Literal =?utf-8?q?not_encoded?= here" }),
  },
  {
    name: "subject-astral",
    rule: "Astral characters (emoji) stay whole inside one encoded-word",
    build: simple({ subject: "Party 🎉🎊 tonight 🥳 with 𝄞 music" }),
  },
  {
    name: "display-name-specials",
    rule: "Display names with commas, quotes and backslashes are quoted and escaped",
    build: simple({ to: ['"Doe, John" <john@example.org>', { name: 'Ann "the boss" O\\Neil', address: "ann@example.org" }] }),
  },
  {
    name: "display-name-non-ascii",
    rule: "Non-ASCII display names become encoded-words in phrase context",
    build: simple({ from: "Zoë Faßbender <zoe@example.com>", to: ["Jürgen Groß <jurgen@example.org>"] }),
  },
  {
    name: "display-name-mixed-words",
    rule: "Only the words of a display name that need it become encoded-words (RFC 2047 5(3))",
    build: simple({ from: "Zoë Smith <zoe@example.com>", to: [{ name: "Dr. Jürgen Groß, Köln office", address: "jurgen@example.org" }] }),
  },
  {
    name: "idna-domain",
    rule: "A Unicode domain goes out as IDNA punycode in headers",
    build: simple({ to: ["Jose <jose@bücher.example>", "info@münchen.example"] }),
  },
  {
    name: "group-address",
    rule: "A group in cc keeps its syntax (Team: ...;) in the header",
    build: simple({ cc: "Team: a@example.org, B <b@example.org>;" }),
  },
  {
    name: "many-recipients-folding",
    rule: "A long address list folds after commas, each line at most 78 columns",
    build: simple({ to: Array.from({ length: 9 }, (_, i) => `Recipient Number${i} <recipient.number${i}@example.org>`) }),
  },
  {
    name: "reply-to-cc-bcc",
    rule: "Reply-To and Cc are headers; Bcc is envelope only and never a header",
    build: simple({ cc: ["carol@example.org"], bcc: ["secret@example.org"], replyTo: ["replies@example.com"] }),
  },
  {
    name: "extra-headers-override",
    rule: "Extra headers override the generated Message-ID, Date and To (envelope unchanged)",
    build: simple({
      headers: { "Message-ID": "<fixed-id@example.com>", Date: "Fri, 20 Nov 2026 08:00:00 +0000", To: "List <list@example.org>", "X-Priority": "1" },
    }),
  },
  {
    name: "extra-header-non-ascii",
    rule: "A non-ASCII value in an unstructured extra header becomes encoded-words",
    build: simple({ headers: { "X-Comment": "naïve café résumé" } }),
  },
  {
    name: "body-quoted-printable",
    rule: "Mostly-ASCII non-ASCII text is quoted-printable",
    build: simple({ body: "Bonjour Zoë,\nvoici le résumé du trimestre.\nÀ bientôt.\n" }),
  },
  {
    name: "body-base64-cjk",
    rule: "Mostly non-ASCII text is base64 (smaller than quoted-printable)",
    build: simple({ body: "こんにちは。第3四半期の売上報告書を添付いたします。ご確認ください。\n" }),
  },
  {
    name: "body-long-line",
    rule: "ASCII text with a line over 998 octets is quoted-printable with soft breaks",
    build: simple({ body: `${"word ".repeat(260)}\nshort line\n` }),
  },
  {
    name: "body-dots-and-from",
    rule: "In quoted-printable, a line starting with a dot or 'From ' is escaped",
    build: simple({ body: "Café\n.\n.hidden\nFrom here on\nend\n" }),
  },
  {
    name: "body-trailing-whitespace",
    rule: "Quoted-printable encodes white space at the end of a line",
    build: simple({ body: "Zoë   \nline with tab\t\nend\n" }),
  },
  {
    name: "body-line-endings",
    rule: "LF and CR line breaks in text become CRLF; a final line break is added",
    build: simple({ body: "one\ntwo\rthree\r\nfour" }),
  },
  {
    name: "content-subtype-html",
    rule: "contentSubtype 'html' makes the main body text/html",
    build: (base) => {
      const msg = simple({ body: "<p>Hello <b>world</b></p>" })(base);
      msg.contentSubtype = "html";
      return msg;
    },
  },
  {
    name: "alternatives-text-html",
    rule: "Text plus an HTML alternative is multipart/alternative, plain first",
    build: (base) =>
      new EmailMultiAlternatives({ subject: "Alt", body: "Hello", from: "ann@example.com", to: ["bob@example.org"], ...base }).attachAlternative(
        "<p>Hello</p>",
        "text/html",
      ),
  },
  {
    name: "alternatives-html-only",
    rule: "An empty body with only an HTML alternative has no empty text/plain part",
    build: (base) =>
      new EmailMultiAlternatives({ subject: "HTML only", from: "ann@example.com", to: ["bob@example.org"], ...base }).attachAlternative("<p>Only HTML</p>", "text/html"),
  },
  {
    name: "inline-image-related",
    rule: "An inline image with a contentId sits in multipart/related beside the HTML, Content-ID <logo>",
    build: (base) => {
      const msg = new EmailMultiAlternatives({ subject: "Logo", body: "See the logo.", from: "ann@example.com", to: ["bob@example.org"], ...base });
      msg.attachAlternative('<p><img src="cid:logo"></p>', "text/html");
      msg.attach({ filename: "logo.png", content: PNG, mimetype: "image/png", disposition: "inline", contentId: "logo" });
      return msg;
    },
  },
  {
    name: "attachment-pdf",
    rule: "A binary attachment is base64 in 76-column lines inside multipart/mixed",
    build: (base) => simple()(base).attach("report.pdf", PDF, "application/pdf"),
  },
  {
    name: "attachment-type-guessed",
    rule: "Without a mimetype, the type is guessed from the filename",
    build: (base) => simple()(base).attach("data.csv", "a,b\n1,2\n"),
  },
  {
    name: "attachment-text-bytes-utf8",
    rule: "text/* bytes that are valid UTF-8 stay text, with their bytes unchanged",
    build: (base) => simple()(base).attach("notes.txt", Buffer.from("Crème brûlée\r\nrecipe\r\n"), "text/plain"),
  },
  {
    name: "attachment-text-bytes-invalid",
    rule: "text/* bytes that are not UTF-8 become application/octet-stream, unchanged",
    build: (base) => simple()(base).attach("latin1.txt", Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0d, 0x0a]), "text/plain"),
  },
  {
    name: "attachment-filename-non-ascii",
    rule: "A non-ASCII filename uses an RFC 2231 parameter",
    build: (base) => simple()(base).attach("Résumé.pdf", PDF, "application/pdf"),
  },
  {
    name: "attachment-filename-long",
    rule: "A long non-ASCII filename uses RFC 2231 continuations so the header folds",
    build: (base) => simple()(base).attach("Rapport trimestriel détaillé des ventes — région Île-de-France, 2026.pdf", PDF, "application/pdf"),
  },
  {
    name: "attachment-rfc822-message",
    rule: "An attached EmailMessage is message/rfc822, 7bit, never base64",
    build: (base) => {
      const inner = new EmailMessage({ subject: "Inner", body: "Inner body", from: "carol@example.org", to: ["dave@example.org"], ...base });
      return simple()(base).attach(inner);
    },
  },
  {
    name: "attachment-rfc822-bytes-8bit",
    rule: "A serialized message with 8-bit bytes is attached as message/rfc822 with 8bit",
    build: (base) => simple()(base).attach("fwd.eml", Buffer.from("Subject: Fwd\r\nFrom: x@example.org\r\n\r\nCafé crème\r\n"), "message/rfc822"),
  },
  {
    name: "charset-iso-8859-1",
    rule: "encoding iso-8859-1 encodes the body and the subject's words in that charset",
    build: simple({ encoding: "iso-8859-1", subject: "Café", body: "Crème brûlée pour Zoë.\n" }),
  },
  {
    name: "charset-iso-2022-jp",
    rule: "encoding iso-2022-jp: each encoded-word decodes on its own (escape sequences reset)",
    build: simple({ encoding: "iso-2022-jp", subject: "会議の議事録をお送りします", body: "お世話になっております。\n議事録を送ります。\n" }),
  },
  {
    name: "charset-koi8-r",
    rule: "encoding koi8-r round-trips Cyrillic in subject and body",
    build: simple({ encoding: "koi8-r", subject: "Привет, мир", body: "Добрый день!\n" }),
  },
  {
    name: "mixed-subtype",
    rule: "mixedSubtype changes the container of body and attachments",
    build: (base) => {
      const msg = simple()(base).attach("a.pdf", PDF, "application/pdf");
      msg.mixedSubtype = "related";
      return msg;
    },
  },
  {
    name: "mimepart-as-is",
    rule: "A ready MimePart is inserted as-is, with its parameters",
    build: (base) =>
      simple()(base).attach(
        new MimePart({ contentType: "text/calendar", params: { method: "REQUEST" }, body: "BEGIN:VCALENDAR\nEND:VCALENDAR\n", filename: "invite.ics" }),
      ),
  },
  {
    name: "empty-body",
    rule: "An empty body without attachments is an empty text/plain part",
    build: simple({ body: "" }),
  },
  {
    name: "attachment-only",
    rule: "An empty body with an attachment has no empty text/plain part",
    build: (base) => simple({ body: "" })(base).attach("report.pdf", PDF, "application/pdf"),
  },
  {
    name: "policy-8bit",
    rule: "With the 8bit policy, short-lined non-ASCII text goes out as 8bit",
    policy: policies.eightBit,
    build: simple({ body: "Grüße aus Köln.\n" }),
  },
  {
    name: "list-unsubscribe-one-click",
    rule: "listUnsubscribe writes List-Unsubscribe <https>, <mailto> and, with oneClick, List-Unsubscribe-Post (RFC 8058), after Message-ID",
    build: simple({
      listUnsubscribe: { url: "https://news.example.com/unsubscribe?u=3f9a2c7e&l=weekly", mailto: "mailto:unsubscribe@news.example.com?subject=unsubscribe%203f9a2c7e", oneClick: true },
    }),
  },
  {
    name: "list-unsubscribe-mailto-parts",
    rule: "A mailto given as parts is percent-encoded (RFC 6068): IDNA domain, subject, body line breaks as %0D%0A",
    build: simple({ listUnsubscribe: { mailto: { address: "désabonner@bücher.example", subject: "Désabonner: weekly & more", body: "Please remove me.\nThanks" } } }),
  },
  {
    name: "list-id-description",
    rule: "listId keeps its dot-atom id and writes a non-ASCII description as encoded-words; List-Help and List-Archive list their URLs",
    build: simple({
      listId: "Wöchentliche Neuigkeiten von Bücher & Co <weekly.news.example.com>",
      listHelp: "https://news.example.com/help",
      listArchive: ["https://news.example.com/archive", "mailto:archive@news.example.com?subject=index"],
    }),
  },
  {
    name: "priority-high",
    rule: "priority high writes X-Priority 1, X-MSMail-Priority High and Importance high together",
    build: simple({ priority: "high" }),
  },
  {
    name: "priority-low-auto-submitted",
    rule: "priority low writes the three priority fields as low; autoSubmitted writes Auto-Submitted (RFC 3834) before them",
    build: simple({ priority: "low", autoSubmitted: "auto-generated" }),
  },
  {
    name: "policy-smtputf8",
    rule: "With the SMTPUTF8 policy, UTF-8 addresses and subjects go out raw (RFC 6532)",
    policy: policies.smtputf8,
    build: simple({ from: "Zoë <zoë@exämple.com>", to: ["用户@例子.广告"], subject: "Grüße" }),
  },
];
