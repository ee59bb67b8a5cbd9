/**
 * MIME boundaries never occur in what they enclose (RFC 2046 §5.1.1): every ancestor's
 * boundary is checked against every descendant's bytes held in memory — bodies, headers,
 * the boundaries of multiparts inside, attached messages — not only against its own
 * children. A random source is injected so that collisions can be forced.
 */
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { EmailMessage, EmailMultiAlternatives } from "../../src/mime/message.js";
import { parseOneWithPython } from "../helpers/python-oracle.js";
import { FIXED_DATE } from "./fixture-cases.js";

/** A random source that returns each of `blocks` in turn (a byte repeated), then the last one forever. */
function scripted(...blocks: number[]): (size: number) => Buffer {
  let i = 0;
  return (size) => Buffer.alloc(size, blocks[Math.min(i++, blocks.length - 1)]!);
}
const boundaryOf = (byte: number) => `=_${Buffer.alloc(16, byte).toString("hex")}`;
const boundaries = (bytes: Buffer) => [...bytes.toString("latin1").matchAll(/boundary="([^"]+)"/g)].map((m) => m[1]!);

const message = (random: (size: number) => Buffer, body = "plain text") => {
  const msg = new EmailMultiAlternatives({ subject: "s", body, from: "ann@example.com", to: ["bob@example.org"], headers: { "Message-ID": "<m@example.com>" }, clock: () => FIXED_DATE, random });
  msg.attachAlternative("<p>html</p>", "text/html");
  return msg.attach("a.bin", Buffer.from([0, 1, 2]), "application/octet-stream");
};

describe("boundaries do not occur inside any part they enclose", () => {
  it("redraws the outer boundary when a text body two levels down holds it", async () => {
    // Drawn bottom-up: the alternative gets 0x11, the mixed 0x22 (in the text), so it must redraw 0x33.
    const bytes = await message(scripted(0x11, 0x22, 0x33), `line\n--${boundaryOf(0x22)}\nmore`).asBytes();
    expect(boundaries(bytes)).toEqual([boundaryOf(0x33), boundaryOf(0x11)]);
    const py = await parseOneWithPython(bytes);
    expect(py.defects).toEqual([]);
    expect(py.textBodies).toEqual([`line\n--${boundaryOf(0x22)}\nmore\n`]);
    expect(py.attachments.map((a) => a.filename)).toEqual(["a.bin"]);
  });

  it("redraws when a multipart inside already uses the same boundary", async () => {
    const bytes = await message(scripted(0x11, 0x11, 0x44)).asBytes();
    expect(boundaries(bytes)).toEqual([boundaryOf(0x44), boundaryOf(0x11)]);
    expect((await parseOneWithPython(bytes)).parts.children?.map((c) => c.contentType)).toEqual(["multipart/alternative", "application/octet-stream"]);
  });

  it("redraws when an attached message uses it", async () => {
    const inner = message(scripted(0x55, 0x56));
    const outer = new EmailMessage({ subject: "fwd", body: "see attached", from: "ann@example.com", to: ["bob@example.org"], headers: { "Message-ID": "<o@example.com>" }, clock: () => FIXED_DATE, random: scripted(0x55, 0x66) });
    outer.attach(inner);
    const bytes = await outer.asBytes();
    expect(boundaries(bytes)[0]).toBe(boundaryOf(0x66));
    const py = await parseOneWithPython(bytes);
    expect(py.defects).toEqual([]);
    expect(py.attachments[0]?.message?.attachments.map((a) => a.filename)).toEqual(["a.bin"]);
  });

  it("redraws when an attached serialized message holds it", async () => {
    const outer = new EmailMessage({ subject: "fwd", body: "b", from: "ann@example.com", to: ["bob@example.org"], clock: () => FIXED_DATE, random: scripted(0x01, 0x77, 0x78) });
    outer.attach("fwd.eml", `Subject: inner\r\n\r\n--${boundaryOf(0x77)}\r\n`, "message/rfc822");
    expect(boundaries(await outer.asBytes())).toEqual([boundaryOf(0x78)]);
  });

  it("gives up with a clear error when the random source keeps colliding", async () => {
    await expect(message(scripted(0x11)).asBytes()).rejects.toThrow(InvalidArgumentError);
    await expect(message(scripted(0x11)).asBytes()).rejects.toThrow(/random source/);
  });
});
