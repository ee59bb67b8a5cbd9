import { domainToASCII, domainToUnicode } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodePunycode } from "../../../src/mime/encoding/punycode.js";

describe("decodePunycode (RFC 3492)", () => {
  it("decodes the RFC 3492 §7.1 samples and everyday labels", () => {
    expect(decodePunycode("ihqwcrb4cv8a8dqg056pqjye")).toBe("他们为什么不说中文");
    expect(decodePunycode("3B-ww4c5e180e575a65lsy2b")).toBe("3年B組金八先生");
    expect(decodePunycode("bcher-kva")).toBe("bücher");
    expect(decodePunycode("ls8h")).toBe("💩");
    expect(decodePunycode("abc-")).toBe("abc");
    expect(decodePunycode("")).toBe("");
  });

  it("refuses what is not Punycode: truncated, out-of-alphabet, overflowing, a leading delimiter (§6.2)", () => {
    for (const bad of ["zz", "-a", "bcher-kv!", "ü-kva", "99999999999999999", "bcher-kv"]) expect(decodePunycode(bad), bad).toBeUndefined();
  });

  it("property: decodes every A-label that UTS #46 makes, as Node decodes it", () => {
    const ulabel = fc.string({ unit: fc.oneof(fc.constantFrom("a", "z", "0", "-"), fc.integer({ min: 0xa0, max: 0x2ffff }).map((c) => String.fromCodePoint(c))), minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(ulabel, (u) => {
        const ascii = domainToASCII(u);
        if (!ascii.startsWith("xn--") || ascii.includes(".")) return;
        expect(decodePunycode(ascii.slice(4))).toBe(domainToUnicode(ascii));
      }),
      { numRuns: 1000 },
    );
  });
});
