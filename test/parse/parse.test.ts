/**
 * The parser on its own: it gives back what the builder put in (a property over hostile
 * input in every field), reads the same whatever the chunking, never throws or hangs on
 * random or damaged bytes, stays within its bounds on hostile structure, and streams a
 * large attachment without holding it.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { EmailMessage } from "../../src/mime/message.js";
import { MessageParser, parseMessage, parseMessageSync, type MimeNode, type ParsedMessage } from "../../src/parse/index.js";
import { asciiAddress, buildMessage, expectedBodyText, messageSpec } from "../mime/arbitraries.js";

const fixturesDir = fileURLToPath(new URL("../../fixtures/", import.meta.url));
const fixtures = readdirSync(fixturesDir)
  .filter((n) => n.endsWith(".eml"))
  .sort()
  .map((n) => readFileSync(`${fixturesDir}${n}`));

/** Everything a parse tells, as plain data (content as hex), for comparing two parses. */
function snapshot(m: ParsedMessage): unknown {
  const node = (n: MimeNode): unknown => ({
    path: n.path,
    headers: n.headers.fields,
    type: n.contentType,
    params: { ...n.params },
    filename: n.filename,
    size: n.size,
    encodedSize: n.encodedSize,
    content: n.content?.toString("hex"),
    text: n.text,
    children: n.children?.map(node),
    message: n.message === undefined ? undefined : snapshot(n.message),
  });
  return { subject: m.subject, from: m.from, to: m.to, date: m.date?.toISOString(), tree: node(m.tree), defects: m.defects, size: m.size };
}

function parseInChunks(bytes: Uint8Array, cuts: number[]): ParsedMessage {
  const parser = new MessageParser();
  let at = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    parser.write(bytes.subarray(at, cut));
    at = cut;
  }
  parser.write(bytes.subarray(at));
  return parser.end();
}

function nodes(tree: MimeNode): MimeNode[] {
  return [tree, ...(tree.children ?? []).flatMap(nodes)];
}

describe("parseMessage", () => {
  it("gives back what was built: subject, names, addresses, header, bodies, filenames and bytes", async () => {
    await fc.assert(
      fc.asyncProperty(messageSpec, async (spec) => {
        const m = parseMessageSync(await buildMessage(spec).asBytes());
        expect(m.defects).toEqual([]);
        expect(m.subject).toBe(spec.subject);
        expect(m.headers.get("X-Anything")).toBe(spec.headerValue);
        const mailboxes = (list: { name: string; address: string }[]) => list.map((x) => ({ name: x.name.trim(), address: asciiAddress(x.address) }));
        expect(m.from.map((x) => ({ ...x, name: x.name.trim() }))).toEqual(mailboxes([spec.from]));
        expect(m.to.map((x) => ({ ...x, name: x.name.trim() }))).toEqual(mailboxes(spec.to));
        expect(m.cc.map((x) => ({ ...x, name: x.name.trim() }))).toEqual(mailboxes(spec.cc));
        const onlyEmptyBody = spec.body === "" && spec.html === undefined && spec.attachments.length === 0;
        expect(m.textBodies).toEqual(spec.body !== "" || onlyEmptyBody ? [expectedBodyText(spec.body)] : []);
        expect(m.htmlBodies).toEqual(spec.html === undefined ? [] : [expectedBodyText(spec.html)]);
        expect(m.attachments.map((a) => a.filename)).toEqual(spec.attachments.map((a) => a.filename));
        m.attachments.forEach((a, i) => expect(a.content!.equals(Buffer.from(spec.attachments[i]!.bytes))).toBe(true));
      }),
      { numRuns: 120 },
    );
  });

  it("reads the same whatever the chunks: fixtures split anywhere, and one byte at a time", () => {
    fc.assert(
      fc.property(fc.constantFrom(...fixtures), fc.array(fc.nat(), { maxLength: 12 }), (bytes, cuts) => {
        expect(snapshot(parseInChunks(bytes, cuts))).toEqual(snapshot(parseMessageSync(bytes)));
      }),
      { numRuns: 300 },
    );
    for (const bytes of fixtures.slice(0, 8)) {
      expect(snapshot(parseInChunks(bytes, Array.from({ length: bytes.length }, (_, i) => i)))).toEqual(snapshot(parseMessageSync(bytes)));
    }
  });

  it("never throws on random bytes, and accounts for every byte", () => {
    const alphabet = fc.constantFrom(..."\r\n-: =?;\"<>@abcB".split("").map((c) => c.charCodeAt(0)), 0x00, 0x80, 0xff);
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 2000 }), fc.array(alphabet, { maxLength: 2000 }).map((a) => Uint8Array.from(a)));
    fc.assert(
      fc.property(bytes, (input) => {
        const m = parseMessageSync(input);
        expect(m.size).toBe(input.length);
        const paths = nodes(m.tree).map((n) => n.path);
        expect(new Set(paths).size).toBe(paths.length);
      }),
      { numRuns: 400 },
    );
  });

  it("never throws on damaged fixtures (bytes dropped, repeated, changed, lines cut) and reports what it could not read", () => {
    const damage = fc.record({
      fixture: fc.constantFrom(...fixtures),
      edits: fc.array(fc.record({ at: fc.nat(), kind: fc.constantFrom("drop", "repeat", "flip", "cut-line", "insert-boundary"), length: fc.integer({ min: 1, max: 40 }) }), {
        minLength: 1,
        maxLength: 6,
      }),
    });
    let withDefects = 0;
    fc.assert(
      fc.property(damage, ({ fixture, edits }) => {
        let bytes = Buffer.from(fixture);
        for (const e of edits) {
          const at = e.at % (bytes.length + 1);
          const piece = bytes.subarray(at, at + e.length);
          if (e.kind === "drop") bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + e.length)]);
          else if (e.kind === "repeat") bytes = Buffer.concat([bytes.subarray(0, at), piece, piece, bytes.subarray(at)]);
          else if (e.kind === "flip") bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(piece.map((b) => b ^ 0x5a)), bytes.subarray(at + e.length)]);
          else if (e.kind === "cut-line") bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from("\r\n"), bytes.subarray(at)]);
          else bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from("\r\n--=_x\r\n"), bytes.subarray(at)]);
        }
        const m = parseMessageSync(bytes);
        expect(m.size).toBe(bytes.length);
        if (m.defects.length > 0) withDefects++;
        for (const d of m.defects) expect(d.message.length).toBeGreaterThan(0);
      }),
      { numRuns: 400 },
    );
    expect(withDefects).toBeGreaterThan(20);
  });

  it("bounds nesting: 20,000 nested multiparts are cut at maxDepth with a defect", () => {
    const depth = 20_000;
    let open = "";
    let close = "";
    for (let i = 0; i < depth; i++) {
      open += `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n`;
      close = `--b${i}--\r\n${close}`;
    }
    const m = parseMessageSync(`Subject: deep\r\n${open}Content-Type: text/plain\r\n\r\nbottom\r\n${close}`);
    expect(m.defects.filter((d) => d.code === "too-deep")).toHaveLength(1);
    let deepest = 0;
    for (let n: MimeNode | undefined = m.tree; n; n = n.children?.[0]) deepest++;
    expect(deepest).toBe(33);
  });

  it("bounds nested messages: message/rfc822 inside message/rfc822, 2,000 deep, each level's bytes a slice of the outermost", () => {
    const input = Buffer.from(`${"Subject: s\r\nContent-Type: message/rfc822\r\n\r\n".repeat(2_000)}Subject: bottom\r\n\r\nhi\r\n`);
    const m = parseMessageSync(input);
    expect(m.defects.map((d) => d.code)).toEqual(["too-deep"]);
    let level = m.attachments[0]!;
    const outer = level.content!;
    for (let depth = 1; level.message?.attachments[0]; depth++) {
      level = level.message.attachments[0];
      expect(input.toString("latin1").endsWith(level.content!.toString("latin1"))).toBe(true);
      // No copy per level: a MIME bomb of nested messages costs the message once, not 32 times.
      if (level.message) expect(level.content!.buffer === outer.buffer, `level ${depth}`).toBe(true);
    }
  });

  it("gives an enclosed message its bytes exactly as they were, at every level", async () => {
    const c = new EmailMessage({ subject: "C", body: "innermost\n", from: "c@example.org", to: ["x@example.org"] });
    const b = new EmailMessage({ subject: "B", body: "middle\n", from: "b@example.org", to: ["x@example.org"] }).attach(c);
    const raw = await new EmailMessage({ subject: "A", body: "outer\n", from: "a@example.org", to: ["x@example.org"] }).attach(b).asBytes();
    const a = parseMessageSync(raw);
    const inner = a.attachments[0]!;
    const innermost = inner.message!.attachments[0]!;
    expect([inner.message!.subject, innermost.message!.subject]).toEqual(["B", "C"]);
    for (const [part, within] of [[inner, raw], [innermost, inner.content!]] as const) {
      const at = within.indexOf(part.content!);
      expect(at).toBeGreaterThan(0);
      // Up to the delimiter: the CRLF before it belongs to the delimiter (RFC 2046 §5.1.1).
      expect(within.subarray(at + part.content!.length, at + part.content!.length + 4).toString()).toBe("\r\n--");
      expect(parseMessageSync(part.content!).subject).toBe(part.message!.subject);
    }
  });

  it("bounds the number of parts, of header fields and the size of a header block", () => {
    const parts = parseMessageSync(`Content-Type: multipart/mixed; boundary=x\r\n\r\n${"--x\r\n\r\npart\r\n".repeat(50_000)}--x--\r\n`);
    expect(parts.tree.children).toHaveLength(1999);
    expect(parts.defects.map((d) => d.code)).toEqual(["too-many-parts"]);

    const many = parseMessageSync(`${"X-Spam: yes\r\n".repeat(200_000)}Subject: late\r\n\r\nbody\r\n`);
    expect(many.headers.fields).toHaveLength(1000);
    expect(many.defects.map((d) => d.code)).toEqual(["too-many-headers"]);
    expect(many.text).toBe("body\n");

    const huge = parseMessageSync(`Subject: ${"x".repeat(10 * 1024 * 1024)}\r\nX-After: 1\r\n\r\nbody\r\n`);
    expect(huge.subject!.length).toBeLessThanOrEqual(256 * 1024);
    expect(huge.defects.map((d) => d.code)).toEqual(["header-too-long", "too-many-headers"]);
    expect(huge.text).toBe("body\n");

    const small = parseMessageSync("A: 1\r\nB: 2\r\nC: 3\r\n\r\n", { maxHeaders: 2 });
    expect(small.headers.fields.map((f) => f.name)).toEqual(["A", "B"]);
  });

  it("reports each kind of damage it repairs", () => {
    const codes = (text: string) => parseMessageSync(text).defects.map((d) => d.code);
    expect(codes(" folded first\r\nSubject: x\r\n\r\n")).toEqual(["first-header-line-is-continuation"]);
    expect(codes("Subject: x\r\nnot a header\r\n")).toEqual(["missing-header-body-separator"]);
    expect(codes("Subject: x\r\n: no name\r\n\r\n")).toEqual(["missing-header-name"]);
    expect(codes("To: <<<\r\n\r\n")).toEqual(["invalid-address"]);
    expect(codes("Date: someday\r\n\r\n")).toEqual(["invalid-date"]);
    expect(codes("Content-Type: text\r\n\r\n")).toEqual(["invalid-content-type"]);
    expect(codes("Content-Type: multipart/mixed\r\n\r\nx\r\n")).toEqual(["no-boundary"]);
    expect(codes("Content-Type: multipart/mixed; boundary=a\r\n\r\nx\r\n")).toEqual(["start-boundary-not-found"]);
    expect(codes("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nx\r\n")).toEqual(["close-boundary-not-found"]);
    expect(codes("Content-Type: multipart/mixed; boundary=a\r\nContent-Transfer-Encoding: base64\r\n\r\n--a\r\n\r\nx\r\n--a--\r\n")).toEqual([
      "invalid-multipart-transfer-encoding",
    ]);
    expect(codes("Content-Transfer-Encoding: x-rot13\r\n\r\nx\r\n")).toEqual(["unknown-transfer-encoding"]);
    expect(codes("Content-Transfer-Encoding: base64\r\n\r\nAAA*A\r\n")).toEqual(["invalid-base64"]);
    expect(codes("Content-Type: text/plain; charset=x-nonesuch\r\n\r\nx\r\n")).toEqual(["unknown-charset"]);
  });

  it("decodes what other software writes: RFC 2231 and RFC 2047 filenames, QP soft breaks, base64 without padding, dates", () => {
    const m = parseMessageSync(
      [
        "Date: Sat, 21 Nov 26 09:30 EST",
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        "Content-Type: text/plain; charset=iso-8859-1",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Caf=E9 au lait,   ",
        "soft=",
        " break=3D",
        "--b",
        "Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%20rate.txt",
        "Content-Transfer-Encoding: base64",
        "",
        "w6k",
        "--b",
        "Content-Type: application/pdf; name=\"=?iso-8859-1?q?r=E9sum=E9?=.pdf\"",
        "",
        "%PDF",
        "--b--",
      ].join("\r\n"),
    );
    expect(m.defects).toEqual([]);
    expect(m.date?.toISOString()).toBe("2026-11-21T14:30:00.000Z");
    // Trailing white space on a quoted-printable line is dropped (RFC 2045 §6.7 rule 3).
    expect(m.text).toBe("Café au lait,\nsoft break=");
    expect(m.attachments.map((a) => [a.filename, a.content?.toString("utf8")])).toEqual([
      ["€ rate.txt", "é"],
      ["résumé.pdf", "%PDF"],
    ]);
  });

  it("keeps only what is asked for: bodies, nothing, or the parts a predicate picks", async () => {
    const bytes = fixtures.find((b) => b.includes("Content-ID: <logo>"))!;
    const bodies = parseMessageSync(bytes, { content: "bodies" });
    expect(bodies.html).toContain("cid:logo");
    expect(bodies.attachments[0]!.content).toBeUndefined();
    expect(bodies.attachments[0]!.size).toBe(70);
    const none = parseMessageSync(bytes, { content: "none" });
    expect([none.text, none.html, none.attachments[0]!.content]).toEqual([null, null, undefined]);
    const picked = await parseMessage(bytes, { content: (p) => p.contentId === "logo" });
    expect(picked.attachments[0]!.content!.length).toBe(70);
    expect(picked.html).toBeNull();
  });

  it("streams a 128 MiB attachment with bounded memory when only the bodies are asked for", async () => {
    const probe = fileURLToPath(new URL("./memory-probe.ts", import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", "--import", "tsx", probe, "128"], { timeout: 240_000, maxBuffer: 1024 * 1024 });
    const result = JSON.parse(stdout.trim().split("\n").pop()!) as { size: number; expected: number; kept: boolean; text: string; peakDelta: number };
    expect(result).toMatchObject({ size: result.expected, kept: false, text: "see attachment" });
    expect(result.size).toBeGreaterThan(128 * 1024 * 1024);
    expect(result.peakDelta).toBeLessThan(64 * 1024 * 1024);
  }, 300_000);

  it("accepts a string, bytes, a Readable or an async iterable, and rejects bad options clearly", async () => {
    const text = "Subject: hi\r\n\r\nbody\r\n";
    async function* chunks() {
      yield "Subject: h";
      yield Buffer.from("i\r\n\r\nbody\r\n");
    }
    for (const input of [text, Buffer.from(text), chunks()]) expect((await parseMessage(input)).subject).toBe("hi");
    expect(() => parseMessageSync(text, { maxDepth: 0 })).toThrow(InvalidArgumentError);
    expect(() => parseMessageSync(text, { content: "some" as never })).toThrow(/content must be/);
    await expect(parseMessage(42 as never)).rejects.toThrow(InvalidArgumentError);
    const parser = new MessageParser();
    parser.write(text);
    expect(parser.end()).toBe(parser.end());
    expect(() => parser.write("more")).toThrow(InvalidArgumentError);
  });
});
