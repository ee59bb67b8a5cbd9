/**
 * freeze(message) → render(frozen, policy): the same frozen message and policy give the same
 * bytes every time; another policy gives another rendering of the same message (same
 * Message-ID and Date); headers are fields in wire order; withHeaders prepends fields.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { BadHeaderError } from "../../src/errors.js";
import { EmailMessage, EmailMultiAlternatives } from "../../src/mime/message.js";
import { policies } from "../../src/mime/policy.js";
import { formatDate, freeze, render, renderedBytes, renderedChunks, renderedHeaderBytes, withHeaders } from "../../src/mime/render.js";
import { FIXED_DATE, FIXTURE_CASES, seededRandom } from "./fixture-cases.js";

const fixturesDir = fileURLToPath(new URL("../../fixtures/", import.meta.url));

const base = () => ({ subject: "Grüße aus Köln", body: "Grüße aus Köln, und so weiter.\n".repeat(3), from: "Ann <ann@example.com>", to: ["bob@example.org"] });

describe("render(freeze(message), policy)", () => {
  it("gives every fixture's exact bytes (the same as asBytes)", async () => {
    for (const fixture of FIXTURE_CASES) {
      const message = fixture.build({ clock: () => FIXED_DATE, random: seededRandom(fixture.name) });
      message.headers = { ...message.headers, "X-Fixture-Rule": fixture.rule };
      const bytes = await renderedBytes(await render(await freeze(message), fixture.policy ?? policies.default));
      const expected = await readFile(`${fixturesDir}${fixture.name}.eml`);
      expect(bytes.toString("latin1"), fixture.name).toBe(expected.toString("latin1"));
    }
  });

  it("the same frozen message and policy give the same bytes every time, with a real CSPRNG and clock", async () => {
    const message = new EmailMultiAlternatives(base()).attachAlternative("<p>Grüße</p>", "text/html");
    message.attach("a.bin", Buffer.alloc(5000, 7), "application/octet-stream");
    const frozen = await freeze(message);
    const first = await renderedBytes(await render(frozen, policies.default));
    const second = await renderedBytes(await render(frozen, policies.default));
    expect(second.equals(first)).toBe(true);
    expect(first.toString("latin1")).toMatch(/boundary="=_[0-9a-f]{32}"/);
  });

  it("another policy renders the same message: same Message-ID, Date and boundaries, other transfer encodings", async () => {
    const message = new EmailMultiAlternatives(base()).attachAlternative("<p>Grüße</p>", "text/html");
    const frozen = await freeze(message);
    const seven = await render(frozen, policies.default);
    const eight = await render(frozen, policies.eightBit);
    expect(eight.messageId).toBe(seven.messageId);
    const field = (r: typeof seven, name: string) => r.headers.find(([n]) => n === name)?.[1];
    expect(field(eight, "Date")).toBe(field(seven, "Date"));
    expect(field(eight, "Content-Type")).toBe(field(seven, "Content-Type"));
    expect([seven.eightBit, eight.eightBit]).toEqual([false, true]);
    const sevenBytes = await renderedBytes(seven);
    expect(sevenBytes.every((b) => b < 0x80)).toBe(true);
    expect((await renderedBytes(eight)).toString("utf8")).toContain("Grüße aus Köln, und so weiter.");
    // And back: the 7-bit rendering is unchanged after the 8-bit one.
    expect((await renderedBytes(await render(frozen, policies.default))).equals(sevenBytes)).toBe(true);
  });

  it("headers are every top-level field in wire order, MIME-Version and the root's Content-* included", async () => {
    const message = new EmailMessage({ ...base(), subject: "word ".repeat(30).trim(), cc: ["carl@example.org"], headers: { "X-Tag": "one" } });
    const rendered = await render(await freeze(message), policies.default);
    expect(rendered.headers.map(([name]) => name)).toEqual(["From", "To", "Cc", "Subject", "Date", "Message-ID", "X-Tag", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"]);
    const subject = rendered.headers.find(([n]) => n === "Subject")![1];
    expect(subject.startsWith(" word")).toBe(true);
    expect(subject).toContain("\r\n ");
    const bytes = await renderedBytes(rendered);
    const head = bytes.toString("latin1").split("\r\n\r\n")[0] + "\r\n";
    expect(renderedHeaderBytes(rendered).toString("latin1")).toBe(head);
    expect(head).toBe(rendered.headers.map(([n, v]) => `${n}:${v}\r\n`).join(""));
    expect(rendered.size).toBe(bytes.length);
  });

  it("body() is replayable: every call yields the same bytes", async () => {
    const message = new EmailMessage(base()).attach("a.txt", () => Readable.from([Buffer.from("from a factory\n")]), "text/plain");
    const rendered = await render(await freeze(message), policies.default);
    const read = async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of rendered.body()) chunks.push(Buffer.from(chunk));
      return Buffer.concat(chunks);
    };
    expect((await read()).equals(await read())).toBe(true);
  });

  it("a Readable given directly is read once: a second body() fails instead of going out without it", async () => {
    const message = new EmailMessage(base()).attach("a.bin", Readable.from([Buffer.from("abc")]), "application/octet-stream");
    const rendered = await render(await freeze(message), policies.default);
    for await (const _ of renderedChunks(rendered)) void _;
    await expect(async () => {
      for await (const _ of rendered.body()) void _;
    }).rejects.toThrow(/only once/);
  });

  it("the envelope: IDNA domains, or UTF-8 when the rendering is SMTPUTF8", async () => {
    const message = new EmailMessage({ ...base(), to: ["jörg@bücher.example"], bcc: ["hidden@xn--bcher-kva.example"] });
    const utf8 = await render(await freeze(message), policies.smtputf8);
    expect(utf8.smtputf8).toBe(true);
    expect(utf8.envelope).toEqual({ from: "ann@example.com", to: ["jörg@bücher.example", "hidden@xn--bcher-kva.example"] });
    const ascii = new EmailMessage({ ...base(), to: ["bob@bücher.example"] });
    const seven = await render(await freeze(ascii), policies.default);
    expect(seven.smtputf8).toBe(false);
    expect(seven.envelope.to).toEqual(["bob@xn--bcher-kva.example"]);
  });
});

describe("formatDate", () => {
  it("writes each date's own second in UTC, whichever dates came before it", () => {
    const at = Date.UTC(2026, 11, 1, 18, 24, 0);
    expect(formatDate(new Date(at))).toBe("Tue, 1 Dec 2026 18:24:00 +0000");
    expect(formatDate(new Date(at + 999))).toBe("Tue, 1 Dec 2026 18:24:00 +0000");
    expect(formatDate(new Date(at + 1000))).toBe("Tue, 1 Dec 2026 18:24:01 +0000");
    expect(formatDate(new Date(at - 1))).toBe("Tue, 1 Dec 2026 18:23:59 +0000");
    expect(formatDate(new Date(Date.UTC(1969, 11, 31, 23, 59, 59, 500)))).toBe("Wed, 31 Dec 1969 23:59:59 +0000");
    expect(formatDate(new Date(Date.UTC(1970, 0, 1, 0, 0, 0, 0)))).toBe("Thu, 1 Jan 1970 00:00:00 +0000");
    expect(formatDate(new Date(at))).toBe("Tue, 1 Dec 2026 18:24:00 +0000");
  });
});

describe("freeze", () => {
  it("calls the clock once and draws the Message-ID once; the same content gives the same Frozen", async () => {
    let clockCalls = 0;
    const message = new EmailMessage({ ...base(), clock: () => (clockCalls++, FIXED_DATE) });
    const frozen = await freeze(message);
    expect(await freeze(message)).toBe(frozen);
    await message.asBytes();
    await message.asBytes(policies.eightBit);
    expect(clockCalls).toBe(1);
    expect((await message.prepare()).messageId).toBe(frozen.messageId);
    expect(frozen.date).toBe("Sat, 21 Nov 2026 09:30:00 +0000");
  });

  it("a message keeps its Message-ID across renders and resends until its content changes", async () => {
    const message = new EmailMessage(base());
    const first = (await message.prepare()).messageId;
    expect((await message.prepare(policies.eightBit)).messageId).toBe(first);
    message.to.push("carl@example.org");
    const changed = (await message.prepare()).messageId;
    expect(changed).not.toBe(first);
    message.headers["X-Extra"] = "1";
    expect((await message.prepare()).messageId).not.toBe(changed);
    const withId = new EmailMessage({ ...base(), headers: { "Message-ID": "<fixed@example.com>" } });
    expect((await freeze(withId)).messageId).toBe("<fixed@example.com>");
  });

  it("refuses what is not a message", async () => {
    await expect(freeze({} as never)).rejects.toThrow(/EmailMessage/);
  });
});

describe("withHeaders", () => {
  it("prepends fields (repeated names allowed) and updates the size", async () => {
    const rendered = await render(await freeze(new EmailMessage(base())), policies.default);
    const signed = withHeaders(rendered, [
      ["Received", " from a by b; Sat, 21 Nov 2026 09:30:00 +0000"],
      ["Received", " from c\r\n by d; Sat, 21 Nov 2026 09:30:01 +0000"],
    ]);
    expect(signed.headers.slice(0, 3).map(([n]) => n)).toEqual(["Received", "Received", "From"]);
    const bytes = await renderedBytes(signed);
    expect(bytes.toString("latin1").startsWith("Received: from a by b;")).toBe(true);
    expect(signed.size).toBe(bytes.length);
    expect(bytes.subarray(bytes.length - (await renderedBytes(rendered)).length).equals(await renderedBytes(rendered))).toBe(true);
    expect(signed.envelope).toEqual(rendered.envelope);
  });

  it("refuses an invalid name and a line break that is not a fold", async () => {
    const rendered = await render(await freeze(new EmailMessage(base())), policies.default);
    expect(() => withHeaders(rendered, [["Bad Name", " x"]])).toThrow(BadHeaderError);
    expect(() => withHeaders(rendered, [["X-Evil", " x\r\nBcc: victim@example.com"]])).toThrow(BadHeaderError);
    expect(() => withHeaders(rendered, [["X-Evil", " x\nBcc: victim@example.com"]])).toThrow(BadHeaderError);
    expect(() => withHeaders(rendered, [["X-Evil", " x\r\n"]])).toThrow(BadHeaderError);
  });
});
