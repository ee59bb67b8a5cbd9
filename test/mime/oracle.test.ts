/**
 * The independent oracle: Python's standard `email` package (policy.default) parses what we
 * build, and must see what we put in. Generated messages are fed in one batch.
 */
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { isUtf8 } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { attachmentBytes, parseWithPython, type ParsedAddress } from "../helpers/python-oracle.js";
import { EmailMessage } from "../../src/mime/message.js";
import { asciiAddress, buildMessage, expectedBodyText, headerText, messageSpec, type MessageSpec } from "./arbitraries.js";
import { FIXED_DATE, FIXTURE_CASES, seededRandom } from "./fixture-cases.js";

const fixturesDir = fileURLToPath(new URL("../../fixtures/", import.meta.url));

/**
 * Display names are compared without white space: Python's phrase parser puts a space
 * between adjacent encoded-words (RFC 2047 §6.2 says to drop it), so it cannot even read
 * back its own folding of a long name. Our own decoder is held to the exact text in
 * message.properties.test.ts; subjects and other unstructured headers are compared exactly.
 */
const sameName = (name: string) => name.replace(/\s+/g, "");
/** Python's `get_filename()` applies `str.strip()`, whose white space is this set. */
const PY_SPACE = "[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const pyStrip = (s: string) => s.replace(new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, "gu"), "");
const lf = (s: string) => s.replace(/\r\n|\r/g, "\n");

function expectAddresses(actual: ParsedAddress[], expected: { name: string; address: string }[]) {
  expect(actual.map((a) => ({ name: sameName(a.name), address: a.address }))).toEqual(
    expected.map((m) => ({ name: sameName(m.name), address: asciiAddress(m.address) })),
  );
}

describe("Python's email package reads what we build", () => {
  it("agrees on 220 generated messages: subject, addresses, names, bodies, attachments", async () => {
    const specs: MessageSpec[] = fc.sample(messageSpec, { numRuns: 220, seed: 20261121 });
    const built = await Promise.all(specs.map((spec, i) => buildMessage(spec, `oracle-${i}`).asBytes()));
    const parsed = await parseWithPython(built);
    parsed.forEach((py, i) => {
      const spec = specs[i]!;
      const context = `message #${i}: ${JSON.stringify(spec).slice(0, 400)}`;
      // Python flags control characters it decoded from an encoded-word (and still returns
      // them); any other defect is ours.
      const fields = [spec.subject, spec.headerValue, spec.from.name, ...spec.to.map((m) => m.name), ...spec.cc.map((m) => m.name)];
      const controls = fields.some((f) => /[\u0000-\u0008\u000b-\u001f\u007f]/.test(f));
      const defects = py.defectDetails.filter((d) => !(controls && d.defect === "NonPrintableDefect"));
      expect(defects, `${context}\n${JSON.stringify(py.rawHeaders)}`).toEqual([]);
      expect(py.subject, context).toBe(spec.subject);
      expectAddresses(py.from, [spec.from]);
      expectAddresses(py.to, spec.to);
      expectAddresses(py.cc, spec.cc);
      expect(py.headers.find(([n]) => n === "X-Anything")?.[1], context).toBe(spec.headerValue);
      // An empty body is left out, unless the message would otherwise have no part at all.
      const onlyEmptyBody = spec.body === "" && spec.html === undefined && spec.attachments.length === 0;
      expect(py.textBodies.map(lf), context).toEqual(spec.body !== "" || onlyEmptyBody ? [expectedBodyText(spec.body)] : []);
      expect(py.htmlBodies.map(lf), context).toEqual(spec.html === undefined ? [] : [expectedBodyText(spec.html)]);
      expect(py.attachments.map((a) => a.filename), context).toEqual(spec.attachments.map((a) => pyStrip(a.filename)));
      py.attachments.forEach((a, j) => expect(attachmentBytes(a).equals(Buffer.from(spec.attachments[j]!.bytes)), context).toBe(true));
    });
  });

  it("agrees on legacy charsets, text/* bytes (UTF-8 or not) and forwarded messages", async () => {
    // Each charset with characters from its own repertoire, so that encoding cannot fail.
    const repertoires: Record<string, string> = {
      "iso-8859-1": "Crème brûlée à la façon de Zoë ÄÖÜ äöüß ¿¡ ",
      "koi8-r": "Привет мир съешь же ещё этих мягких булок ",
      shift_jis: "日本語のテキストです。カタカナとひらがな ",
      "iso-2022-jp": "会議の議事録をお送りします。よろしく ",
      gb2312: "中文邮件测试，你好世界 ",
      big5: "繁體中文郵件測試，你好 ",
      "utf-8": "Ωmega 🎉 ünïcødé ",
    };
    const charsetText = (charset: string) =>
      fc.array(fc.constantFrom(...Array.from(repertoires[charset]!)), { minLength: 1, maxLength: 60 }).map((chars) => chars.join(""));
    const spec = fc.constantFrom(...Object.keys(repertoires)).chain((charset) =>
      fc.record({
        charset: fc.constant(charset),
        subject: charsetText(charset),
        body: charsetText(charset),
        name: charsetText(charset),
        textBytes: fc.uint8Array({ maxLength: 300 }),
        textUtf8: fc.string({ unit: "binary", maxLength: 80 }).filter((t) => t.isWellFormed()),
        forwardedSubject: headerText,
      }),
    );
    const specs = fc.sample(spec, { numRuns: 70, seed: 7 });
    const messages = specs.map((s, i) => {
      const forwarded = new EmailMessage({ subject: s.forwardedSubject, body: "inner", from: "x@example.org", to: ["y@example.org"], clock: () => FIXED_DATE, random: seededRandom(`fwd-${i}`) });
      return new EmailMessage({
        subject: s.subject,
        body: s.body,
        encoding: s.charset,
        from: { name: s.name, address: "ann@example.com" },
        to: ["bob@example.org"],
        clock: () => FIXED_DATE,
        random: seededRandom(`charset-${i}`),
      })
        .attach("raw.txt", s.textBytes, "text/plain")
        .attach("utf8.txt", Buffer.from(s.textUtf8, "utf-8"), "text/plain")
        .attach(forwarded);
    });
    const parsed = await parseWithPython(await Promise.all(messages.map((m) => m.asBytes())));
    parsed.forEach((py, i) => {
      const s = specs[i]!;
      const context = `charset message #${i} (${s.charset})`;
      expect(py.defectDetails, context).toEqual([]);
      expect(py.subject, context).toBe(s.subject);
      expect(py.textBodies.map(lf), context).toEqual([expectedBodyText(s.body)]);
      expect(sameName(py.from[0]!.name), context).toBe(sameName(s.name));
      const [raw, utf8, fwd] = py.attachments;
      // Bytes stay exactly as given; a reader may turn CRLF in a quoted-printable text part into LF.
      expect(lf(attachmentBytes(raw!).toString("latin1")), context).toBe(lf(Buffer.from(s.textBytes).toString("latin1")));
      expect(raw!.contentType, context).toBe(isUtf8(s.textBytes) ? "text/plain" : "application/octet-stream");
      expect(lf(attachmentBytes(utf8!).toString("utf8")), context).toBe(lf(s.textUtf8));
      expect(fwd!.message?.subject, context).toBe(s.forwardedSubject);
    });
  });

  it("reads display names back exactly: only the words that need it are encoded (RFC 2047 §5(3))", async () => {
    // Python 3.11's phrase parser puts a space between adjacent encoded-words (gh-128110), so
    // a name sent as several adjacent encoded-words came back with spaces inside words.
    // Now only a run of words that need encoding and is too long for one encoded-word gives
    // adjacent encoded-words; every other name must come back exactly.
    const word = fc.oneof(
      { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9'-]{1,12}$/) },
      { weight: 2, arbitrary: fc.constantFrom("Dr.", "Jr.", "O'Neil", '"Bob"', "a,b", "(x)", "back\\slash", "a;b", "x@y", "<z>", "[1]") },
      { weight: 3, arbitrary: fc.constantFrom("Zoë", "Groß", "Müller-Lüdenscheidt", "日本", "😀", "Ærø", "Ñandú", "Łódź", "=?utf-8?q?x?=", "Ω") },
    );
    const space = fc.constantFrom(" ", " ", " ", "  ", "   ");
    const name = fc
      .tuple(fc.constantFrom("", "", " "), fc.array(fc.tuple(word, space), { minLength: 1, maxLength: 14 }), fc.constantFrom("", "", " "))
      .map(([lead, words, trail]) => lead + words.map(([w, s]) => w + s).join("").trimEnd() + trail);
    const names = fc.sample(name, { numRuns: 300, seed: 2047 });
    const messages = names.map((n, i) => new EmailMessage({ subject: "s", body: "b", from: "a@example.org", to: [{ name: n, address: "to@example.org" }], clock: () => FIXED_DATE, random: seededRandom(`name-${i}`) }));
    const built = await Promise.all(messages.map((m) => m.asBytes()));
    const parsed = await parseWithPython(built);
    let exact = 0;
    parsed.forEach((py, i) => {
      const n = names[i]!;
      const raw = py.rawHeaders.find(([h]) => h === "To")![1].replace(/\r\n/g, "");
      expect(py.defectDetails.filter((d) => d.where.endsWith(": To")), raw).toEqual([]);
      if (/\?=[ \t]+=\?/.test(raw)) {
        expect(sameName(py.to[0]!.name), raw).toBe(sameName(n));
      } else {
        expect(py.to[0]!.name, raw).toBe(n);
        exact++;
      }
    });
    expect(exact).toBeGreaterThan(names.length * 0.85);
  });

  it("parses every fixture without defects", async () => {
    const names = (await readdir(fixturesDir)).filter((n) => n.endsWith(".eml")).sort();
    expect(names.length).toBeGreaterThanOrEqual(FIXTURE_CASES.length);
    const parsed = await parseWithPython(await Promise.all(names.map((n) => readFile(`${fixturesDir}${n}`))));
    parsed.forEach((py, i) => {
      // Python's BytesParser reads headers as ASCII: it has no RFC 6532 (UTF-8 header) input
      // mode, so it flags the raw UTF-8 that the SMTPUTF8 policy is meant to produce.
      const utf8 = FIXTURE_CASES.find((c) => `${c.name}.eml` === names[i])?.policy?.utf8 ?? false;
      const allowed = utf8 ? ["UndecodableBytesDefect", "NonASCIILocalPartDefect"] : [];
      expect(py.defects.filter((d) => !allowed.includes(d)), names[i]).toEqual([]);
      const rule = py.headers.find(([n]) => n === "X-Fixture-Rule")?.[1];
      expect(FIXTURE_CASES.find((c) => `${c.name}.eml` === names[i])?.rule, names[i]).toBe(rule);
    });
  });
});
