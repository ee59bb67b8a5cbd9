/**
 * The independent oracle: Python's standard `email` package (policy.default) parses what we
 * build, and must see what we put in. Generated messages are fed in one batch.
 */
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { attachmentBytes, parseWithPython, type ParsedAddress } from "../helpers/python-oracle.js";
import { asciiAddress, buildMessage, expectedBodyText, messageSpec, type MessageSpec } from "./arbitraries.js";
import { FIXTURE_CASES } from "./fixture-cases.js";

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
