import { describe, expect, it } from "vitest";
import { attachmentBytes, isOracleError, parseOneWithPython, parseWithPython, parseWithPythonResults } from "../helpers/python-oracle.js";

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0x10, 0x80]);

const INNER = "From: inner@example.com\r\nSubject: inner\r\n\r\ninner body\r\n";

const MULTIPART = [
  "From: =?utf-8?q?Ann_M=C3=BCller?= <ann@example.com>",
  'To: bob@example.com, "Carol, C." <carol@xn--bcher-kva.example>',
  "Cc: dave@example.org",
  "Reply-To: replies@example.com",
  "Subject: =?utf-8?b?SGVsbG8gd8O2cmxk?=",
  "Date: Tue, 03 Mar 2026 10:00:00 +0000",
  "Message-ID: <abc.123@example.com>",
  "MIME-Version: 1.0",
  'Content-Type: multipart/mixed; boundary="outer"',
  "",
  "--outer",
  'Content-Type: multipart/alternative; boundary="alt"',
  "",
  "--alt",
  "Content-Type: text/plain; charset=utf-8",
  "Content-Transfer-Encoding: quoted-printable",
  "",
  "Gr=C3=BC=C3=9Fe",
  "--alt",
  'Content-Type: multipart/related; boundary="rel"',
  "",
  "--rel",
  "Content-Type: text/html; charset=utf-8",
  "Content-Transfer-Encoding: 7bit",
  "",
  '<p>Hi <img src="cid:logo"></p>',
  "--rel",
  "Content-Type: image/png",
  "Content-Transfer-Encoding: base64",
  "Content-Disposition: inline",
  "Content-ID: <logo>",
  "",
  PNG.toString("base64"),
  "--rel--",
  "--alt--",
  "--outer",
  "Content-Type: application/pdf",
  "Content-Transfer-Encoding: base64",
  "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf",
  "",
  Buffer.from("%PDF-1.4 fake").toString("base64"),
  "--outer",
  "Content-Type: message/rfc822",
  "Content-Disposition: attachment",
  "",
  INNER.replace(/\r\n$/, ""),
  "--outer--",
  "",
].join("\r\n");

describe("python oracle", () => {
  it("parses a hand-written multipart message", async () => {
    const m = await parseOneWithPython(Buffer.from(MULTIPART, "utf8"));
    expect(m.subject).toBe("Hello wörld");
    expect(m.from).toEqual([{ name: "Ann Müller", address: "ann@example.com" }]);
    expect(m.to).toEqual([
      { name: "", address: "bob@example.com" },
      { name: "Carol, C.", address: "carol@xn--bcher-kva.example" },
    ]);
    expect(m.cc).toEqual([{ name: "", address: "dave@example.org" }]);
    expect(m.replyTo).toEqual([{ name: "", address: "replies@example.com" }]);
    expect(m.bcc).toEqual([]);
    expect(m.messageId).toBe("<abc.123@example.com>");
    expect(m.dateIso).toBe("2026-03-03T10:00:00+00:00");
    expect(m.isMultipart).toBe(true);
    expect(m.headers.map(([n]) => n)).toEqual(["From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"]);
    expect(m.rawHeaders[4]).toEqual(["Subject", "=?utf-8?b?SGVsbG8gd8O2cmxk?="]);
    expect(m.defects).toEqual([]);
    // The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1).
    expect(m.textBodies).toEqual(["Grüße"]);
    expect(m.htmlBodies).toEqual(['<p>Hi <img src="cid:logo"></p>']);
    expect(m.attachments.map((a) => [a.contentType, a.disposition, a.filename, a.contentId])).toEqual([
      ["image/png", "inline", null, "<logo>"],
      ["application/pdf", "attachment", "résumé.pdf", null],
      ["message/rfc822", "attachment", null, null],
    ]);
    expect(attachmentBytes(m.attachments[0]!).equals(PNG)).toBe(true);
    expect(attachmentBytes(m.attachments[1]!).toString()).toBe("%PDF-1.4 fake");
    expect(attachmentBytes(m.attachments[2]!).toString()).toBe(INNER.replace(/\r\n$/, ""));
    expect(m.attachments[2]!.message?.subject).toBe("inner");
    expect(m.parts.contentType).toBe("multipart/mixed");
    expect(m.parts.children?.map((p) => p.contentType)).toEqual(["multipart/alternative", "application/pdf", "message/rfc822"]);
    expect(m.parts.children?.[0]?.children?.[1]?.children?.map((p) => p.contentType)).toEqual(["text/html", "image/png"]);
  });

  it("reports defects and keeps going in a batch; one process for many messages", async () => {
    const good = "Subject: ok\r\n\r\nbody\r\n";
    const noBoundary = 'Subject: broken\r\nContent-Type: multipart/mixed; boundary="nope"\r\n\r\nno parts here\r\n';
    const badHeader = "Subject: x\r\nTo: <<<@@@\r\n\r\nbody\r\n";
    const t0 = Date.now();
    const batch = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? good : i % 3 === 1 ? noBoundary : badHeader));
    const results = await parseWithPython(batch);
    const elapsed = Date.now() - t0;
    expect(results).toHaveLength(200);
    expect(results[0]!.defects).toEqual([]);
    expect(results[0]!.textBodies).toEqual(["body\n"]);
    expect(results[1]!.defects).toContain("StartBoundaryNotFoundDefect");
    expect(results[2]!.defects.some((d) => /Defect$/.test(d))).toBe(true);
    expect(results[2]!.defectDetails.some((d) => d.where.endsWith(": To"))).toBe(true);
    expect(elapsed).toBeLessThan(20_000);
  });

  it("never crashes on a message it cannot handle: an error in that slot", async () => {
    // Python 3.11's header parser raises on these (IndexError / AttributeError).
    const crashers = ["Message-ID: <\r\n\r\nx\r\n", "From: a@[\r\n\r\nx\r\n"];
    // An unknown charset cannot be decoded: reported as a defect, not an error.
    const weird = "Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nabc\r\n";
    const [c1, c2, w, empty] = await parseWithPythonResults([...crashers, weird, new Uint8Array(0)]);
    expect(c1).toMatchObject({ error: expect.stringMatching(/^IndexError/) });
    expect(c2).toMatchObject({ error: expect.stringMatching(/^AttributeError/) });
    if (w === undefined || isOracleError(w)) throw new Error("expected a parse");
    expect(w.defects).toContain("ContentDecodeError");
    expect(w.textBodies).toEqual(["abc\n"]);
    expect(empty && !isOracleError(empty) && empty.headers).toEqual([]);
    await expect(parseWithPython(crashers)).rejects.toThrow(/message #0: IndexError/);
    await expect(parseWithPython([])).resolves.toEqual([]);
  });
});
