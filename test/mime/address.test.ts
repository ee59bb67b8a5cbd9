import { domainToASCII, domainToUnicode } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BadHeaderError, EncodingError, InvalidAddressError, InvalidArgumentError } from "../../src/errors.js";
import {
  envelopeAddress,
  formatAddress,
  isAscii,
  needsSmtpUtf8,
  normalizeAddresses,
  parseAddressEntries,
  parseAddressList,
  parseMailbox,
  type Group,
  type Mailbox,
} from "../../src/mime/address.js";
import { EmailMessage } from "../../src/mime/message.js";
import { errorOf } from "../helpers/errors.js";

const ascii = { utf8: false, charset: "utf-8" };
const utf8 = { utf8: true, charset: "utf-8" };

describe("parseAddressList", () => {
  it("parses bare addresses and name-addrs", () => {
    expect(parseAddressList("a@x.org, Bob <b@y.org>")).toEqual([
      { name: "", address: "a@x.org" },
      { name: "Bob", address: "b@y.org" },
    ]);
  });

  it("gives an empty list for empty input and skips empty elements", () => {
    expect(parseAddressList("")).toEqual([]);
    expect(parseAddressList("  ,  , ")).toEqual([]);
    expect(parseAddressList("a@x.org,,b@y.org,")).toEqual([
      { name: "", address: "a@x.org" },
      { name: "", address: "b@y.org" },
    ]);
  });

  it("keeps commas, quotes and backslashes inside quoted display names", () => {
    expect(parseAddressList('"Doe, John" <j@x.org>, "Say \\"hi\\" \\\\ bye" <s@x.org>')).toEqual([
      { name: "Doe, John", address: "j@x.org" },
      { name: 'Say "hi" \\ bye', address: "s@x.org" },
    ]);
  });

  it("parses groups, including empty ones", () => {
    expect(parseAddressList("Team: a@x.org, B <b@y.org>;, c@z.org")).toEqual([
      { group: "Team", members: [{ name: "", address: "a@x.org" }, { name: "B", address: "b@y.org" }] },
      { name: "", address: "c@z.org" },
    ]);
    expect(parseAddressList("undisclosed-recipients:;")).toEqual([{ group: "undisclosed-recipients", members: [] }]);
  });

  it("drops comments, nested ones too, but uses a comment after a bare address as its name", () => {
    expect(parseAddressList("Ann (the (real) one) <ann@x.org> (work)")).toEqual([{ name: "Ann", address: "ann@x.org" }]);
    expect(parseAddressList("ann@x.org (Ann Example)")).toEqual([{ name: "Ann Example", address: "ann@x.org" }]);
    expect(parseAddressList("ann(c1)@(c2)x.org")).toEqual([{ name: "", address: "ann@x.org" }]);
  });

  it("parses quoted local parts and canonicalizes needless quotes", () => {
    expect(parseMailbox('"john doe"@x.org')).toEqual({ name: "", address: '"john doe"@x.org' });
    expect(parseMailbox('"john"@x.org')).toEqual({ name: "", address: "john@x.org" });
    expect(parseMailbox('"a\\"b"@x.org').address).toBe('"a\\"b"@x.org');
    expect(parseMailbox('"john".doe@x.org').address).toBe("john.doe@x.org");
  });

  it("parses domain literals", () => {
    expect(parseMailbox("root@[127.0.0.1]").address).toBe("root@[127.0.0.1]");
    expect(parseMailbox("Root <root@[IPv6:::1]>")).toEqual({ name: "Root", address: "root@[IPv6:::1]" });
  });

  it("is forgiving about white space, obs-phrases and routes", () => {
    expect(parseMailbox("  John   Q.  Public   <  john . public @ example . com >  ")).toEqual({
      name: "John Q. Public",
      address: "john.public@example.com",
    });
    expect(parseMailbox("<@relay.example,@other.example:ann@x.org>").address).toBe("ann@x.org");
    expect(parseMailbox("\tann@x.org\t").address).toBe("ann@x.org");
  });

  it("keeps Unicode (RFC 6532) in names, local parts and domains", () => {
    expect(parseMailbox("José <josé@bücher.example>")).toEqual({ name: "José", address: "josé@bücher.example" });
  });

  it("decodes RFC 2047 encoded-words in display names but not in quoted strings", () => {
    expect(parseMailbox("=?utf-8?q?Jos=C3=A9?= =?utf-8?q?_Mar=C3=ADa?= <j@x.org>").name).toBe("José María");
    expect(parseMailbox("=?utf-8?b?5pel5pys?= Team <j@x.org>").name).toBe("日本 Team");
    expect(parseMailbox('"=?utf-8?q?x?=" <j@x.org>').name).toBe("=?utf-8?q?x?=");
  });
});

describe("parsing the same text again", () => {
  it("gives the caller objects of its own: changing one parse does not change the next", () => {
    const text = "Team: Ann <ann@example.com>, bob@example.org;, Zoë <zoe@example.org>";
    const first = parseAddressList(text);
    (first[0] as Group).members[0]!.name = "changed";
    (first[0] as Group).members.push({ name: "", address: "x@example.com" });
    (first[1] as Mailbox).address = "changed@example.com";
    first.pop();
    const again = parseAddressList(text);
    expect(again).toEqual([
      { group: "Team", members: [{ name: "Ann", address: "ann@example.com" }, { name: "", address: "bob@example.org" }] },
      { name: "Zoë", address: "zoe@example.org" },
    ]);
    expect(again).not.toBe(first);
  });

  it("refuses a bad address every time", () => {
    for (let i = 0; i < 3; i++) expect(() => parseAddressList("a@b@c")).toThrow(InvalidAddressError);
  });
});

describe("parse errors say what and where", () => {
  const cases: [string, string][] = [
    ["Bob", 'Invalid address "Bob": missing "@" in "Bob" at offset 0: an address needs a domain (RFC 5322 addr-spec is local-part@domain); write "Bob@example.com", or "Bob@localhost" for a mailbox on this machine'],
    ["a@x.org, Bob Smith", 'Invalid address "a@x.org, Bob Smith": missing "@" in "Bob Smith" at offset 9'],
    ['"Bob <b@x.org>', 'Invalid address "\\"Bob <b@x.org>": unclosed quoted string starting at offset 0'],
    ["Bob <b@x.org", 'Invalid address "Bob <b@x.org": unclosed "<" at offset 4'],
    ["Bob b@x.org>", 'Invalid address "Bob b@x.org>": unexpected space in the local part at offset 4 (a local part with spaces must be quoted: "john doe"@example.com)'],
    ["b@x.org>", 'Invalid address "b@x.org>": expected "," between addresses but found ">" at offset 7'],
    ["(Bob b@x.org", 'Invalid address "(Bob b@x.org": unclosed comment "(" at offset 0'],
    ["Bob) b@x.org", 'Invalid address "Bob) b@x.org": unbalanced ")" at offset 3'],
    ["b@", 'Invalid address "b@": missing domain after "@" at offset 1'],
    ["@x.org", 'Invalid address "@x.org": missing local part before "@" at offset 0'],
    ["b@x..org", 'Invalid address "b@x..org": empty label ".." in the domain at offset 3'],
    ["b@x.org.", 'Invalid address "b@x.org.": the domain ends with "." at offset 7'],
    ["Bob <>", 'Invalid address "Bob <>": empty angle address "<>" at offset 4'],
    ["a\\b@x.org", 'Invalid address "a\\\\b@x.org": a backslash outside a quoted string at offset 1'],
    ["a\u0001b@x.org", 'Invalid address "a\\u0001b@x.org": control character U+0001 at offset 1'],
    ["a@x.org\r\nBcc: evil@y.org", 'Invalid address "a@x.org\\r\\nBcc: evil@y.org": a carriage return (CR) at offset 7'],
    ["a@x.org\n", 'Invalid address "a@x.org\\n": a line feed (LF) at offset 7'],
    ["a\0@x.org", 'Invalid address "a\\u0000@x.org": a NUL character at offset 1'],
    ["Team: a@x.org", 'Invalid address "Team: a@x.org": group "Team" is not closed with ";"'],
    ["A: B: c@x.org;;", 'Invalid address "A: B: c@x.org;;": a group cannot be nested inside another group (":" at offset 4)'],
    ["b@[1.2.3.4", 'Invalid address "b@[1.2.3.4": unclosed domain literal "[" at offset 2'],
  ];
  it.each(cases)("%j", (input, message) => {
    const err = errorOf(() => parseAddressList(input));
    expect(err).toBeInstanceOf(InvalidAddressError);
    expect(err.message).toBe(message);
    expect((err as InvalidAddressError).input).toBe(input);
    expect((err as InvalidAddressError).code).toBe("EADDRESS");
  });

  it("parseMailbox wants exactly one mailbox", () => {
    expect(errorOf(() => parseMailbox("")).message).toBe('Invalid address "": the address is empty');
    expect(errorOf(() => parseMailbox("a@x.org, b@x.org")).message).toBe('Invalid address "a@x.org, b@x.org": expected one address but found 2');
    expect(errorOf(() => parseMailbox("T: a@x.org;")).message).toBe('Invalid address "T: a@x.org;": expected one address but found the group "T"');
  });

  it("a lone surrogate is an EncodingError", () => {
    expect(errorOf(() => parseAddressList("\ud800 <a@x.org>"))).toBeInstanceOf(EncodingError);
    expect(errorOf(() => normalizeAddresses({ name: "x\udc00", address: "a@x.org" }, "to"))).toBeInstanceOf(EncodingError);
  });
});

describe("normalizeAddresses", () => {
  it("parses a string as a list, never into characters", () => {
    expect(normalizeAddresses("a@x.org, Bob <b@y.org>", "to")).toEqual([
      { name: "", address: "a@x.org" },
      { name: "Bob", address: "b@y.org" },
    ]);
    expect(normalizeAddresses("solo@x.org", "to")).toEqual([{ name: "", address: "solo@x.org" }]);
  });

  it("parses each array item, flattens groups, validates objects", () => {
    expect(
      normalizeAddresses(["a@x.org, b@x.org", "T: c@x.org;", { name: "Dee", address: ' "d"@x.org ' }], "cc"),
    ).toEqual([
      { name: "", address: "a@x.org" },
      { name: "", address: "b@x.org" },
      { name: "", address: "c@x.org" },
      { name: "Dee", address: "d@x.org" },
    ]);
    expect(normalizeAddresses(undefined, "cc")).toEqual([]);
    expect(normalizeAddresses([], "cc")).toEqual([]);
  });

  it("parseAddressEntries keeps groups, empty ones too; normalizeAddresses flattens them", () => {
    const input = ["Team: a@x.org, B <b@y.org>;", { name: "Dee", address: "d@x.org" }, "undisclosed-recipients:;"];
    expect(parseAddressEntries(input, "cc")).toEqual([
      { group: "Team", members: [{ name: "", address: "a@x.org" }, { name: "B", address: "b@y.org" }] },
      { name: "Dee", address: "d@x.org" },
      { group: "undisclosed-recipients", members: [] },
    ]);
    expect(normalizeAddresses(input, "cc")).toEqual([
      { name: "", address: "a@x.org" },
      { name: "B", address: "b@y.org" },
      { name: "Dee", address: "d@x.org" },
    ]);
    const err = errorOf(() => parseAddressEntries(["T: a@x.org\r\nBcc: e@y.org;"], "cc"));
    expect(err).toBeInstanceOf(BadHeaderError);
    expect((err as BadHeaderError).field).toBe("cc");
  });

  it("throws BadHeaderError naming the field for CR, LF or NUL anywhere", () => {
    for (const input of ["a@x.org\r\nBcc: e@y.org", ["ok@x.org", "b@x.org\n"], { name: "A\rB", address: "a@x.org" }, { name: "A", address: "a@x.org\0" }]) {
      const err = errorOf(() => normalizeAddresses(input as never, "reply-to"));
      expect(err).toBeInstanceOf(BadHeaderError);
      expect((err as BadHeaderError).field).toBe("reply-to");
    }
  });

  it("rejects wrong types and non-addresses", () => {
    expect(errorOf(() => normalizeAddresses([42] as never, "to"))).toBeInstanceOf(InvalidArgumentError);
    expect(errorOf(() => normalizeAddresses({ name: "A", address: "A <a@x.org>" }, "to"))).toBeInstanceOf(InvalidAddressError);
  });
});

describe("formatAddress", () => {
  const cases: [Mailbox, string][] = [
    [{ name: "", address: "a@x.org" }, "a@x.org"],
    [{ name: "Ann Example", address: "ann@x.org" }, "Ann Example <ann@x.org>"],
    [{ name: "Doe, John", address: "j@x.org" }, '"Doe, John" <j@x.org>'],
    [{ name: 'Say "hi" \\ bye', address: "s@x.org" }, '"Say \\"hi\\" \\\\ bye" <s@x.org>'],
    [{ name: "John Q. Public", address: "j@x.org" }, '"John Q. Public" <j@x.org>'],
    [{ name: " padded  name ", address: "j@x.org" }, '" padded  name " <j@x.org>'],
    [{ name: "", address: '"john doe"@x.org' }, '"john doe"@x.org'],
    [{ name: "", address: "root@[127.0.0.1]" }, "root@[127.0.0.1]"],
    [{ name: "", address: "jose@bücher.example" }, "jose@xn--bcher-kva.example"],
  ];
  it.each(cases)("%j", (m, expected) => {
    expect(formatAddress(m, ascii)).toBe(expected);
  });

  it("encodes non-ASCII names and encoded-word look-alikes as RFC 2047 phrase words", () => {
    const jose = formatAddress({ name: "José", address: "j@x.org" }, ascii);
    expect(jose).toBe("=?utf-8?B?Sm9zw6k=?= <j@x.org>");
    expect(parseMailbox(jose)).toEqual({ name: "José", address: "j@x.org" });
    const lookAlike = formatAddress({ name: "=?utf-8?q?x?=", address: "j@x.org" }, utf8);
    expect(lookAlike.startsWith("=?utf-8?")).toBe(true);
    expect(parseMailbox(lookAlike).name).toBe("=?utf-8?q?x?=");
  });

  it.each([
    ["Zoë Smith", "=?utf-8?Q?Zo=C3=AB?= Smith"],
    ["Dr. Zoë", '"Dr." =?utf-8?Q?Zo=C3=AB?='],
    ["Zoë Faßbender", "=?utf-8?B?Wm/DqyBGYcOfYmVuZGVy?="],
    ["Jürgen Groß-Übermensch von und zu Müllerhausen", "=?utf-8?B?SsO8cmdlbiBHcm/Dny3DnGJlcm1lbnNjaA==?= von und zu =?utf-8?Q?M=C3=BCllerhausen?="],
    ["a  é", '"a " =?utf-8?B?w6k=?='],
    ["é  ß", '=?utf-8?B?w6k=?= "" =?utf-8?B?w58=?='],
    [" é ", '"" =?utf-8?B?w6k=?= ""'],
    ["=?x?= plain", "=?utf-8?B?PT94Pz0=?= plain"],
  ])("encodes only the words of %j that need it (RFC 2047 §5(3))", (name, phrase) => {
    const text = formatAddress({ name, address: "a@x.org" }, ascii);
    expect(text).toBe(`${phrase} <a@x.org>`);
    expect(parseMailbox(text).name).toBe(name);
  });

  it("writes UTF-8 raw when utf8 is on", () => {
    expect(formatAddress({ name: "José", address: "josé@bücher.example" }, utf8)).toBe("José <josé@bücher.example>");
    expect(formatAddress({ name: "Doe, José", address: "j@x.org" }, utf8)).toBe('"Doe, José" <j@x.org>');
  });

  it("refuses a non-ASCII local part without utf8, saying SMTPUTF8 is needed", () => {
    const err = errorOf(() => formatAddress({ name: "", address: "josé@bücher.example" }, ascii));
    expect(err).toBeInstanceOf(InvalidAddressError);
    expect(err.message).toContain("needs SMTPUTF8");
  });

  it("refuses a domain that is not valid IDNA", () => {
    const err = errorOf(() => formatAddress({ name: "", address: "a@ex\u00ADample\u200b.xn--a" }, ascii));
    expect(err).toBeInstanceOf(InvalidAddressError);
    expect(err.message).toContain("IDNA");
  });

  it("round-trips arbitrary display names through parse (7-bit and UTF-8)", () => {
    const name = fc.string({ unit: "binary", maxLength: 60 }).filter((s) => !/[\r\n\0]/.test(s));
    const spice = fc.constantFrom("", " ", "  ", '"', "\\", ",", "=?utf-8?q?x?=", "=?", "?=", "(", ")", "\t", "日本語", "😀", "é");
    const names = fc.array(fc.oneof(name, spice), { maxLength: 6 }).map((parts) => parts.join(""));
    fc.assert(
      fc.property(names, fc.boolean(), (n, u) => {
        const text = formatAddress({ name: n, address: "a@x.org" }, u ? utf8 : ascii);
        if (!u) expect(/^[\x20-\x7e]*$/.test(text)).toBe(true);
        expect(parseMailbox(text)).toEqual({ name: n, address: "a@x.org" });
      }),
      { numRuns: 500 },
    );
  });

  it("round-trips arbitrary quoted local parts", () => {
    const local = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(local, (l) => {
        const address = parseMailbox(`"${l.replace(/[\\"]/g, "\\$&")}"@x.org`).address;
        const text = formatAddress({ name: "N", address }, ascii);
        expect(parseMailbox(text).address).toBe(address);
      }),
    );
  });
});

describe("domains and local parts keep to the DNS and SMTP limits", () => {
  const problem = (address: string) => errorOf(() => parseMailbox(address));

  it.each([
    ["a 64-octet label", `a@${"a".repeat(64)}.de`, /label .* longer than 63 octets/],
    ["a Unicode label whose A-label is over 63 octets", `a@${"ü".repeat(60)}.de`, /label .* longer than 63 octets/],
    ["a leading hyphen", "a@-ab.de", /starts or ends with a hyphen/],
    ["a trailing hyphen", "a@ab-.de", /starts or ends with a hyphen/],
    ["a Unicode label ending in a hyphen", "a@aü-.de", /starts or ends with a hyphen/],
    ["a Unicode label with hyphens in the third and fourth places", "a@üb--c.de", /third and fourth/],
    ["invalid punycode", "a@xn--zz.de", /not a valid A-label/],
    ["an A-label of plain ASCII (Punycode of ASCII ends in a hyphen)", "a@xn--ab-.de", /starts or ends with a hyphen/],
    ["an A-label of a label that is not in normal form (an upper-case Ü)", "a@xn--bcher-2pa.de", /not a valid A-label/],
    ["a character outside letters, digits and hyphens", "a@a_b.de", /letters, digits and hyphens/],
    ["more than 253 octets", `a@${Array.from({ length: 4 }, () => "d".repeat(63)).join(".")}.de`, /longer than 253 octets/],
    ["a 65-octet local part", `${"l".repeat(65)}@x.de`, /local part .* longer than 64 octets/],
    ["a quoted local part over 64 octets with its quotes", `"${"l".repeat(62)} "@x.de`, /local part .* longer than 64 octets/],
    ["a local part over 64 octets in UTF-8", `${"ü".repeat(33)}@x.de`, /local part .* longer than 64 octets/],
  ])("refuses %s", (_what, address, message) => {
    const err = problem(address);
    expect(err).toBeInstanceOf(InvalidAddressError);
    expect(err.message).toMatch(message);
    expect(errorOf(() => new EmailMessage({ to: [address] }))).toBeInstanceOf(InvalidAddressError);
    expect(errorOf(() => envelopeAddress(address, { smtputf8: true }))).toBeInstanceOf(InvalidAddressError);
  });

  it("accepts the longest labels, domains and local parts, A-labels and R-LDH ASCII labels", () => {
    const longest = `${Array.from({ length: 3 }, () => "d".repeat(63)).join(".")}.${"e".repeat(61)}`;
    expect(longest.length).toBe(253);
    for (const address of [`a@${longest}`, `${"l".repeat(64)}@x.de`, "a@xn--bcher-kva.example", "a@XN--BCHER-KVA.example", "a@bücher.example", "a@1.2.3.4", "a@ab--cd.de", "a@localhost", "a@[192.0.2.1]"]) {
      expect(parseMailbox(address).address, address).toBe(address);
    }
  });

  it('accepts a quoted local part ("a b"@example.org) and keeps it quoted for the envelope', () => {
    expect(parseMailbox('"a b"@example.org')).toEqual({ name: "", address: '"a b"@example.org' });
    expect(new EmailMessage({ to: ['"a b"@example.org', 'Ann <"a\\\\b\\"c"@example.org>'] }).envelope().to).toEqual(['"a b"@example.org', '"a\\\\b\\"c"@example.org']);
  });

  it("property: a domain accepted is valid by the label rules, and its A-labels decode back to it", () => {
    const label = fc.oneof(
      fc.stringMatching(/^[a-z0-9-]{1,70}$/),
      fc.constantFrom("xn--bcher-kva", "xn--zz", "xn--ab-", "xn--", "bücher", "münchen", "例え", "ü-", "-ü", "ab--c", "üb--c", "ß", "\u00ad", "a_b", "XN--BCHER-KVA"),
      fc.string({ unit: fc.constantFrom("a", "-", "ü", "é", "日", "x", "n", "1"), minLength: 1, maxLength: 66 }),
    );
    const domain = fc.array(label, { minLength: 1, maxLength: 6 }).map((labels) => labels.join("."));
    fc.assert(
      fc.property(domain, (d) => {
        let ascii: string;
        try {
          ascii = envelopeAddress(`a@${d}`, { smtputf8: false }).slice(2);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidAddressError);
          return;
        }
        expect(ascii.length).toBeLessThanOrEqual(253);
        for (const l of ascii.split(".")) {
          expect(l, ascii).toMatch(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i);
          if (/^xn--/i.test(l)) {
            const u = domainToUnicode(l);
            expect(u, l).not.toBe("");
            expect(isAscii(u), l).toBe(false);
            expect(domainToASCII(u)).toBe(l.toLowerCase());
          }
        }
        // What goes out is the domain as given, or for a Unicode one its UTS #46 A-labels.
        expect(ascii).toBe(isAscii(d) ? d : domainToASCII(d));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("envelopeAddress and needsSmtpUtf8", () => {
  it("returns the address for MAIL FROM / RCPT TO, IDNA unless smtputf8", () => {
    expect(envelopeAddress("a@x.org", { smtputf8: false })).toBe("a@x.org");
    expect(envelopeAddress("jose@bücher.example", { smtputf8: false })).toBe("jose@xn--bcher-kva.example");
    expect(envelopeAddress("josé@bücher.example", { smtputf8: true })).toBe("josé@bücher.example");
    expect(envelopeAddress('"john doe"@x.org', { smtputf8: false })).toBe('"john doe"@x.org');
  });

  it("refuses what would break or smuggle an SMTP command", () => {
    for (const bad of ['"a>b"@x.org', '"<a"@x.org', "a@x.org\r\nRCPT TO:<e@y.org>", "a@x.org>", "<a@x.org>", "a @x.org", " a@x.org", "a@x.org ", "Ann <a@x.org>", "a@x.org (c)", "", "a\0@x.org"]) {
      expect(errorOf(() => envelopeAddress(bad, { smtputf8: true }))).toBeInstanceOf(InvalidAddressError);
    }
  });

  it("enforces 254 octets", () => {
    const local = "a".repeat(64);
    const ok = `${local}@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
    expect(ok.length).toBe(254);
    expect(envelopeAddress(ok, { smtputf8: false })).toBe(ok);
    expect(errorOf(() => envelopeAddress(`${ok}d`, { smtputf8: false })).message).toContain("longer than 254 octets");
  });

  it("says SMTPUTF8 is required for a non-ASCII local part", () => {
    const err = errorOf(() => envelopeAddress("josé@x.org", { smtputf8: false }));
    expect(err).toBeInstanceOf(InvalidAddressError);
    expect(err.message).toBe(
      'The address "josé@x.org" has a non-ASCII local part, so the SMTP envelope needs SMTPUTF8 (RFC 6531/6532); send through a server that offers SMTPUTF8 or use an ASCII address',
    );
    expect(needsSmtpUtf8("josé@x.org")).toBe(true);
    expect(needsSmtpUtf8("jose@bücher.example")).toBe(false);
    expect(needsSmtpUtf8("a@x.org")).toBe(false);
  });
});
