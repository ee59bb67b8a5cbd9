/**
 * A MIME type given with parameters (`"text/calendar; method=REQUEST"`) to attach(),
 * attachAlternative() or a MimePart: parsed strictly (RFC 2045 §5.1), the parameters
 * rendered through the RFC 2231 path, and the calendar METHOD kept consistent (RFC 6047 §2.4).
 */
import { describe, expect, it } from "vitest";
import { BadHeaderError, EncodingError, InvalidArgumentError } from "../../src/errors.js";
import { calendarInvite } from "../../src/mime/calendar.js";
import { parseMimeType } from "../../src/mime/content-type.js";
import { EmailMessage, EmailMultiAlternatives } from "../../src/mime/message.js";
import { MimePart } from "../../src/mime/part.js";
import { errorOf } from "../helpers/errors.js";
import { parseOneWithPython } from "../helpers/python-oracle.js";
import { FIXED_DATE, seededRandom } from "./fixture-cases.js";

const base = () => ({ subject: "Meeting", body: "You are invited.", from: "ann@example.com", to: ["bob@example.org"], clock: () => FIXED_DATE, random: seededRandom("content-type") });
const ICS = [
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//missive//test//EN",
  "METHOD:REQUEST",
  "BEGIN:VEVENT",
  "UID:1@example.org",
  "DTSTAMP:20261121T093000Z",
  "DTSTART:20261201T100000Z",
  "SUMMARY:Réunion d'équipe",
  "END:VEVENT",
  "END:VCALENDAR",
  "",
].join("\r\n");

describe("parseMimeType", () => {
  it("reads type/subtype and token or quoted-string parameters, names case-insensitively", () => {
    expect(parseMimeType("Text/Calendar; Method=REQUEST")).toEqual({ type: "text/calendar", params: { method: "REQUEST" }, charset: undefined });
    expect(parseMimeType(' text/plain ;charset="ISO-8859-1" ; format=flowed;')).toEqual({ type: "text/plain", params: { format: "flowed" }, charset: "ISO-8859-1" });
    expect(parseMimeType('application/x-thing; name="a \\"b\\" ; c.txt"').params).toEqual({ name: 'a "b" ; c.txt' });
    expect(parseMimeType('application/pdf; name="Résumé.pdf"').params).toEqual({ name: "Résumé.pdf" });
  });

  it.each([
    ["text/calendar; method", /"="/],
    ["text/calendar; method=", /value/],
    ["text/calendar; method=RE QUEST", /after the value/],
    ["text/calendar; =REQUEST", /name/],
    ['text/calendar; method="REQUEST', /unclosed/],
    ["text/calendar; method=REQUEST; METHOD=CANCEL", /twice/],
    ["text/plain; boundary=x", /boundary/],
    ["text/plain; name*=utf-8''x", /RFC 2231/],
    ["text/plain; na(me)=x", /name/],
    ["text/plain; method=é", /token/],
    ["text calendar", /type\/subtype/],
    ["text/", /type\/subtype/],
    ["text/plain (comment)", /type\/subtype|after/],
  ])("refuses %j", (input, problem) => {
    const err = errorOf(() => parseMimeType(input));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toMatch(problem);
  });

  it("CR, LF or NUL is a BadHeaderError (header injection)", () => {
    for (const bad of ["text/plain\r\nBcc: x@y.org", "text/plain; a=b\nX: y", 'text/plain; a="b\0"']) {
      expect(errorOf(() => parseMimeType(bad)), bad).toBeInstanceOf(BadHeaderError);
      expect(errorOf(() => new EmailMessage(base()).attach("a.txt", "x", bad)), bad).toBeInstanceOf(BadHeaderError);
    }
  });
});

describe("a MIME type with parameters in attach() and attachAlternative()", () => {
  it('attachAlternative(ics, "text/calendar; method=REQUEST") writes the method, as Python reads it', async () => {
    const msg = new EmailMultiAlternatives(base()).attachAlternative(ICS, "text/calendar; method=REQUEST");
    const bytes = await msg.asBytes();
    expect(bytes.toString("latin1")).toContain("Content-Type: text/calendar; charset=utf-8; method=REQUEST\r\n");
    const py = await parseOneWithPython(bytes);
    expect(py.defects).toEqual([]);
    const calendar = py.parts.children?.[1];
    expect(calendar?.contentType).toBe("text/calendar");
    expect(calendar?.params).toEqual({ charset: "utf-8", method: "REQUEST" });
    expect(py.attachments[0]?.contentType).toBe("text/calendar");
    expect(Buffer.from(py.attachments[0]!.data, "base64").toString("utf8")).toBe(ICS);
  });

  it("attach(filename, content, type with parameters): non-ASCII values go out RFC 2231-encoded, the type's charset encodes the text", async () => {
    const msg = new EmailMessage(base())
      .attach("invite.ics", ICS, 'text/calendar; method=REQUEST; name="Réunion d\'équipe.ics"')
      .attach("latin.txt", "Crème brûlée", "text/plain; charset=ISO-8859-1; format=flowed");
    const bytes = await msg.asBytes();
    expect(bytes.toString("latin1")).toContain("name*=utf-8''R%C3%A9union%20d%27%C3%A9quipe.ics");
    const py = await parseOneWithPython(bytes);
    expect(py.defects).toEqual([]);
    const [invite, latin] = py.parts.children!.slice(1);
    expect(invite?.params).toEqual({ charset: "utf-8", method: "REQUEST", name: "Réunion d'équipe.ics" });
    expect(invite?.filename).toBe("invite.ics");
    expect(latin?.params).toEqual({ charset: "iso-8859-1", format: "flowed" });
    expect(Buffer.from(py.attachments[1]!.data, "base64")).toEqual(Buffer.from("Crème brûlée\r\n", "latin1"));
  });

  it("keeps the case of parameter values (type and names are lower-cased)", async () => {
    const bytes = await new EmailMessage(base()).attach("x.bin", new Uint8Array([1]), "Application/X-Thing; Version=ABC").asBytes();
    expect(bytes.toString("latin1")).toContain("Content-Type: application/x-thing; version=ABC\r\n");
  });

  it("refuses a method parameter that is not the calendar's METHOD (RFC 6047 §2.4), and an unknown charset", () => {
    const alt = new EmailMultiAlternatives(base());
    expect(errorOf(() => alt.attachAlternative(ICS, "text/calendar; method=CANCEL")).message).toMatch(/METHOD:REQUEST/);
    expect(errorOf(() => new EmailMessage(base()).attach("i.ics", Buffer.from(ICS), "text/calendar; method=PUBLISH"))).toBeInstanceOf(InvalidArgumentError);
    expect(errorOf(() => new EmailMessage(base()).attach({ filename: "i.ics", content: ICS.replace("METHOD:REQUEST\r\n", ""), mimetype: "text/calendar; method=REQUEST" })).message).toMatch(/no METHOD/);
    // A ready MimePart is inserted as it is: its body is not read.
    expect(() => new MimePart({ contentType: "text/calendar; method=REQUEST", body: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n" })).not.toThrow();
    expect(errorOf(() => alt.attachAlternative("x", "text/plain; charset=no-such-charset"))).toBeInstanceOf(EncodingError);
    expect(alt.alternatives).toEqual([]);
  });

  it("a MimePart takes parameters in contentType too; the same parameter twice is refused", () => {
    const part = new MimePart({ contentType: "text/calendar; method=REQUEST", params: { component: "VEVENT" }, body: ICS });
    expect(part.contentType).toBe("text/calendar");
    expect(part.params).toEqual({ method: "REQUEST", component: "VEVENT" });
    expect(() => new MimePart({ contentType: "text/calendar; method=REQUEST", params: { Method: "REQUEST" }, body: ICS })).toThrow(/twice/);
    expect(() => new MimePart({ contentType: "text/plain; charset=utf-8", charset: "iso-8859-1", body: "x" })).toThrow(/charset/);
  });
});

describe("calendarInvite(ics)", () => {
  it("reads METHOD from the calendar and gives content and a MIME type for attachAlternative() or attach()", async () => {
    const invite = calendarInvite(ICS);
    expect(invite).toEqual({ content: ICS, mimetype: "text/calendar; method=REQUEST" });
    const msg = new EmailMultiAlternatives({ ...base(), alternatives: [invite] });
    msg.attach({ filename: "invite.ics", ...calendarInvite(Buffer.from(ICS.replace("METHOD:REQUEST", "METHOD:CANCEL"))) });
    const py = await parseOneWithPython(await msg.asBytes());
    expect(py.defects).toEqual([]);
    expect(py.parts.children?.[0]?.children?.[1]?.params.method).toBe("REQUEST");
    expect(py.parts.children?.[1]?.params.method).toBe("CANCEL");
  });

  it("reads folded and parameterised lines, any case, LF line ends; only the calendar's own METHOD", () => {
    const folded = "begin:vcalendar\nmeth\n od;X-A=\"x:y\":\n PUBLISH\nBEGIN:VEVENT\nUID:1\nEND:VEVENT\nEND:VCALENDAR\n";
    expect(calendarInvite(folded).mimetype).toBe("text/calendar; method=PUBLISH");
  });

  it.each([
    ["no calendar", "hello", /BEGIN:VCALENDAR/],
    ["no METHOD", ICS.replace("METHOD:REQUEST\r\n", ""), /no METHOD/],
    ["two METHODs", ICS.replace("METHOD:REQUEST", "METHOD:REQUEST\r\nMETHOD:CANCEL"), /more than one METHOD/],
    ["METHOD only inside an event", ICS.replace("METHOD:REQUEST\r\n", "").replace("UID:", "METHOD:REQUEST\r\nUID:"), /no METHOD/],
    ["a METHOD that is not a token", ICS.replace("METHOD:REQUEST", "METHOD:RE QUEST"), /token/],
  ])("refuses %s", (_what, ics, problem) => {
    const err = errorOf(() => calendarInvite(ics));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toMatch(problem);
  });
});
