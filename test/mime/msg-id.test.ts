import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BadHeaderError } from "../../src/errors.js";
import { assertMsgIdHeader, parseMsgIds } from "../../src/mime/msg-id.js";

// The RFC 5322 §3.6.4 grammar (ASCII, no obsolete forms) written out as a regex, to judge the scanner.
const ATEXT = "[A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~]";
const DOT_ATOM = `${ATEXT}+(?:\\.${ATEXT}+)*`;
const MSG_ID = `<${DOT_ATOM}@(?:${DOT_ATOM}|\\[[\\x21-\\x5a\\x5e-\\x7e]*\\])>`;
const LIST = new RegExp(`^[ \\t]*${MSG_ID}(?:[ \\t]*${MSG_ID})*[ \\t]*$`);

describe("msg-id grammar (RFC 5322 §3.6.4)", () => {
  it("property: In-Reply-To and References accept exactly what the grammar allows", () => {
    const piece = fc.constantFrom("<", ">", "@", ".", " ", "\t", "[", "]", "\\", '"', "(", ")", "a", "b", "1", "-", "_", "=", "~", "<a@b.c>", "<x.y@[1.2.3.4]>", "<p@q>");
    const value = fc.array(piece, { maxLength: 14 }).map((parts) => parts.join(""));
    fc.assert(
      fc.property(value, (v) => {
        const accepted = parseMsgIds(v).problem === undefined && (parseMsgIds(v).ids?.length ?? 0) > 0;
        expect(accepted, JSON.stringify(v)).toBe(LIST.test(v));
        if (accepted) assertMsgIdHeader("References", v);
        else expect(() => assertMsgIdHeader("References", v)).toThrow(BadHeaderError);
      }),
      { numRuns: 3000 },
    );
  });

  it("Message-ID holds exactly one; other headers are not checked", () => {
    expect(parseMsgIds(" <a@b> <c@d>\t").ids).toEqual(["<a@b>", "<c@d>"]);
    expect(() => assertMsgIdHeader("Message-ID", "<a@b> <c@d>")).toThrow(/exactly one msg-id, found 2/);
    expect(() => assertMsgIdHeader("X-Message-ID", "anything at all")).not.toThrow();
  });
});
