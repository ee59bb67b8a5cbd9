/**
 * Our parser judged by Python's email package (policy.default): on every fixture, on
 * hand-written messages in the shapes real (and broken) mail takes, and on generated
 * messages, both must read the same subject, addresses, bodies, MIME tree, filenames and
 * attachment bytes.
 */
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { EmailMessage } from "../../src/mime/message.js";
import { parseMessageSync } from "../../src/parse/index.js";
import { parseWithPython } from "../helpers/python-oracle.js";
import { buildMessage, headerText, messageSpec } from "../mime/arbitraries.js";
import { FIXED_DATE, seededRandom } from "../mime/fixture-cases.js";
import { expectAgreement, type Agreement } from "./compare.js";
import { CORPUS } from "./corpus.js";

const fixturesDir = fileURLToPath(new URL("../../fixtures/", import.meta.url));
const tally: Record<string, Agreement> = {};
const count = (name: string): Agreement => (tally[name] ??= { messages: 0, attachments: 0, bodies: 0 });

afterAll(() => {
  // The comparison counts, for the record (they are also what the assertions above covered).
  for (const [name, t] of Object.entries(tally)) process.stdout.write(`parse vs Python, ${name}: ${t.messages} messages, ${t.bodies} bodies, ${t.attachments} attachments agree\n`);
});

async function judge(name: string, messages: readonly Buffer[], labels: readonly string[]): Promise<void> {
  const py = await parseWithPython(messages);
  messages.forEach((bytes, i) => expectAgreement(parseMessageSync(bytes), py[i]!, `${name}: ${labels[i]}`, count(name)));
}

describe("parseMessage agrees with Python's email package", () => {
  it("on every fixture", async () => {
    const names = (await readdir(fixturesDir)).filter((n) => n.endsWith(".eml")).sort();
    expect(names.length).toBeGreaterThan(30);
    const bytes = await Promise.all(names.map((n) => readFile(`${fixturesDir}${n}`)));
    await judge("fixtures", bytes, names);
    for (const [i, b] of bytes.entries()) expect(parseMessageSync(b).defects, names[i]).toEqual([]);
  });

  it("on hand-written messages, broken ones included", async () => {
    const labels = Object.keys(CORPUS);
    await judge("hand-written", labels.map((l) => Buffer.from(CORPUS[l]!, "utf8")), labels);
  });

  it("on 200 generated messages (hostile text in every field, attachments, alternatives)", async () => {
    const specs = fc.sample(messageSpec, { numRuns: 200, seed: 14 });
    const built = await Promise.all(specs.map((spec, i) => buildMessage(spec, `parse-oracle-${i}`).asBytes()));
    await judge("generated", built, specs.map((s, i) => `#${i} ${JSON.stringify(s).slice(0, 200)}`));
  });

  it("on 60 generated messages in legacy charsets, with text bytes and forwarded messages", async () => {
    const repertoires: Record<string, string> = {
      "iso-8859-1": "Crème brûlée à la façon de Zoë ÄÖÜ äöüß ¿¡ ",
      "koi8-r": "Привет мир съешь же ещё этих мягких булок ",
      shift_jis: "日本語のテキストです。カタカナとひらがな ",
      "iso-2022-jp": "会議の議事録をお送りします。よろしく ",
      gb2312: "中文邮件测试，你好世界 ",
      big5: "繁體中文郵件測試，你好 ",
    };
    const text = (charset: string) => fc.array(fc.constantFrom(...Array.from(repertoires[charset]!)), { minLength: 1, maxLength: 60 }).map((c) => c.join(""));
    const spec = fc.constantFrom(...Object.keys(repertoires)).chain((charset) =>
      fc.record({ charset: fc.constant(charset), subject: text(charset), body: text(charset), name: text(charset), bytes: fc.uint8Array({ maxLength: 300 }), inner: headerText }),
    );
    const specs = fc.sample(spec, { numRuns: 60, seed: 1414 });
    const built = await Promise.all(
      specs.map((s, i) => {
        const forwarded = new EmailMessage({ subject: s.inner, body: "inner", from: "x@example.org", to: ["y@example.org"], clock: () => FIXED_DATE, random: seededRandom(`pfwd-${i}`) });
        return new EmailMessage({
          subject: s.subject,
          body: s.body,
          encoding: s.charset,
          from: { name: s.name, address: "ann@example.com" },
          to: ["bob@example.org"],
          clock: () => FIXED_DATE,
          random: seededRandom(`pcharset-${i}`),
        })
          .attach("raw.txt", s.bytes, "text/plain")
          .attach(forwarded)
          .asBytes();
      }),
    );
    await judge("legacy charsets", built, specs.map((s, i) => `#${i} ${s.charset}`));
  });
});
