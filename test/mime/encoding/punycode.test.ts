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

  it("code points at the edges: U+0080 is the first, U+10FFFF the last, surrogates are refused (§6.2)", () => {
    // Encoded with RFC 3492's encoder (the delta of one code point after the initial n of 0x80).
    expect(decodePunycode("a")).toBe("\u0080");
    expect(decodePunycode("wda")).toBe("\u00ff");
    expect(decodePunycode("xda")).toBe("\u0100");
    expect(decodePunycode("hb9b")).toBe("\ud7ff");
    expect(decodePunycode("ib9b")).toBeUndefined(); // U+D800
    expect(decodePunycode("zy0c")).toBeUndefined(); // U+DFFF
    expect(decodePunycode("0y0c")).toBe("\ue000");
    expect(decodePunycode("dn32g")).toBe("\u{10ffff}");
    expect(decodePunycode("en32g")).toBeUndefined(); // U+110000
    expect(decodePunycode("dn32ga")).toBe("\u{10ffff}\u{10ffff}");
    expect(decodePunycode("a-ba")).toBe("a\u0080");
  });

  it("basic code points before the delimiter must be ASCII: U+007F passes, U+0080 does not", () => {
    expect(decodePunycode("\u007f-")).toBe("\u007f");
    expect(decodePunycode("\u0080-")).toBeUndefined();
    expect(decodePunycode("\u0080-a")).toBeUndefined();
    expect(decodePunycode("a-b-")).toBe("a-b");
  });

  it("digits: a-z and A-Z are 0-25, 0-9 are 26-35, in either case; anything else is refused", () => {
    expect(decodePunycode("BCHER-KVA")).toBe("B\u00fcCHER");
    expect(decodePunycode("bcher-KVA")).toBe("b\u00fccher");
    expect(decodePunycode("bcher-kva")).toBe("b\u00fccher");
    // z and Z are 25, the last letter of each range.
    expect(decodePunycode("faade-zra")).toBe("fa\u00e7ade");
    expect(decodePunycode("faade-ZRA")).toBe("fa\u00e7ade");
    expect(decodePunycode("ZCA")).toBe("\u00df");
    for (const bad of ["bcher-kv@", "bcher-kv[", "bcher-kv`", "bcher-kv{", "bcher-kv/", "bcher-kv:", "bcher-k.a"]) expect(decodePunycode(bad), bad).toBeUndefined();
  });

  it("a delta of 2^31 - 1 is decoded, 2^31 overflows and is refused (§6.4), even where the code point would be in range", () => {
    // With 2,999 basic code points the delta is divided by 3,000: 2^31 - 1 gives U+AECB3 (0x80 + 715,827).
    const basic = "a".repeat(2999);
    const decoded = decodePunycode(`${basic}-w416146o`);
    expect(decoded).toBeDefined();
    expect([...decoded!]).toHaveLength(3000);
    expect([...decoded!].filter((c) => c !== "a")).toEqual(["\u{aecb3}"]);
    expect(decodePunycode(`${basic}-x416146o`)).toBeUndefined();
    expect(decodePunycode(`${basic}-zu39006v`)).toBeUndefined();
    expect(decodePunycode("w416146o")).toBeUndefined();
  });

  it("characters next to the digit ranges are not digits: [ and { are not 0, ` is not a", () => {
    // "3B-ww4c5e180e575a65lsy2b" holds the digit 0 (26): the characters that a range check
    // one wider would read as 26 or 27 must be refused in its place.
    expect(decodePunycode("3B-ww4c5e180e575a65lsy2b")).toBe("3\u5e74B\u7d44\u91d1\u516b\u5148\u751f");
    for (const c of ["[", "\\", "{", "|", "`", "@", "/", ":"]) expect(decodePunycode(`3B-ww4c5e18${c}e575a65lsy2b`), c).toBeUndefined();
  });

  it("a variable-length integer whose weight passes 2^31 / 62 is still decoded when it fits (§6.2)", () => {
    // A first delta that sets the bias to 45, then a second whose weight reaches 35,000,000
    // before its last digit: decoded as Node's reference decoder (and RFC 3492) reads it.
    const decoded = decodePunycode(`${"a".repeat(2000)}-hk8xb0000000a`);
    expect(decoded).toBeDefined();
    expect([...decoded!].filter((c) => c !== "a")).toEqual(["\u{7b5fc}", "\u0121"]);
    expect([...decoded!]).toHaveLength(2002);
  });

  it("the bias adapts past a delta of exactly 455 × 700 only when it is larger (§3.4)", () => {
    // "4c4x" is a first delta of 318,600: 455 after damping by 700, which adapt() must not
    // divide again. Positions and code points as Node's reference decoder gives them.
    const decoded = [...decodePunycode(`${"a".repeat(2000)}-4c4xb0a`)!];
    expect(decoded).toHaveLength(2003);
    const inserted = decoded.flatMap((c, i) => (c === "a" ? [] : [[i, c]]));
    expect(inserted).toEqual([
      [441, "\u011f"],
      [443, "\u011f"],
      [470, "\u011f"],
    ]);
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
