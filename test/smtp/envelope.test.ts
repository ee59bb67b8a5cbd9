/**
 * The envelope on its own: validateEnvelope's refusals before anything connects, and
 * renderEnvelope's lines for what a server offers, with each capability that is needed
 * but missing refused by name (SMTPUTF8, SIZE at its limit exactly and one past it,
 * 8BITMIME, DSN and dsn.optional).
 */
import { describe, expect, it } from "vitest";
import { renderEnvelope, validateEnvelope, type Envelope } from "../../src/smtp/envelope.js";
import { parseEhlo, Capabilities } from "../../src/smtp/capabilities.js";
import { parseReply } from "../../src/smtp/reply.js";
import { InvalidArgumentError, SmtpCapabilityError } from "../../src/errors.js";
import { errorOf } from "../helpers/errors.js";

const offering = (...lines: string[]) => parseEhlo(parseReply(["mx.example.org", ...lines].map((l, i, all) => `250${i === all.length - 1 ? " " : "-"}${l}\r\n`).join("")));
const everything = offering("SIZE 1000", "8BITMIME", "SMTPUTF8", "DSN");
const nothing = Capabilities.none();
const render = (envelope: Envelope, caps: Capabilities) => renderEnvelope(envelope, caps, "mx.example.org");

function capabilityError(fn: () => unknown): SmtpCapabilityError {
  const error = errorOf(fn);
  expect(error).toBeInstanceOf(SmtpCapabilityError);
  return error as SmtpCapabilityError;
}

describe("validateEnvelope", () => {
  it("takes a sender (or the null sender) and recipients, and a size of 0 or more", () => {
    expect(() => validateEnvelope({ from: "a@example.org", to: ["b@example.org"] })).not.toThrow();
    expect(() => validateEnvelope({ from: "", to: ["b@example.org", "c@example.org"], size: 0 })).not.toThrow();
    expect(() => validateEnvelope({ from: "a@example.org", to: ["b@example.org"], size: Number.MAX_SAFE_INTEGER })).not.toThrow();
    expect(() => validateEnvelope({ from: "ä@example.org", to: ["ö@example.org"] })).not.toThrow();
  });

  it("refuses what is not an envelope", () => {
    for (const bad of [null, undefined, "a@example.org", 5]) {
      const error = errorOf(() => validateEnvelope(bad as never));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toBe("sendMail needs an envelope { from, to }");
    }
  });

  it("refuses missing, empty or non-array recipients", () => {
    for (const to of [undefined, [], "b@example.org", {}]) {
      const error = errorOf(() => validateEnvelope({ from: "a@example.org", to } as never));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toBe("envelope.to must be a non-empty array of addresses");
    }
  });

  it("checks the sender and every recipient, naming which", () => {
    expect(errorOf(() => validateEnvelope({ from: "a\r\n@example.org", to: ["b@example.org"] })).message).toMatch(/^from "a\\r\\n@example\.org" contains/);
    expect(errorOf(() => validateEnvelope({ from: 7, to: ["b@example.org"] } as never)).message).toBe("from must be a string");
    expect(errorOf(() => validateEnvelope({ from: "a@example.org", to: ["b@example.org", "<c@example.org>"] })).message).toMatch(/^recipient "<c@example\.org>" contains/);
    const empty = errorOf(() => validateEnvelope({ from: "a@example.org", to: ["b@example.org", ""] }));
    expect(empty).toBeInstanceOf(InvalidArgumentError);
    expect(empty.message).toBe("recipient must not be empty");
  });

  it("refuses a size that is negative, fractional, not a number or past 2^53", () => {
    for (const size of [-1, 1.5, Number.NaN, Infinity, 2 ** 53, "10"]) {
      const error = errorOf(() => validateEnvelope({ from: "a@example.org", to: ["b@example.org"], size } as never));
      expect(error, String(size)).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toBe("envelope.size must be a non-negative integer");
    }
  });
});

describe("renderEnvelope", () => {
  it("plain lines when nothing is asked for", () => {
    expect(render({ from: "a@example.org", to: ["b@example.org", "c@example.org"] }, nothing)).toEqual({
      mail: "MAIL FROM:<a@example.org>\r\n",
      rcpts: ["RCPT TO:<b@example.org>\r\n", "RCPT TO:<c@example.org>\r\n"],
    });
    expect(render({ from: "", to: ["b@example.org"] }, everything).mail).toBe("MAIL FROM:<>\r\n");
  });

  it("SIZE= only to a server that offers SIZE; a limit of 0 means none", () => {
    expect(render({ from: "a@example.org", to: ["b@example.org"], size: 999 }, nothing).mail).toBe("MAIL FROM:<a@example.org>\r\n");
    expect(render({ from: "a@example.org", to: ["b@example.org"], size: 999 }, everything).mail).toBe("MAIL FROM:<a@example.org> SIZE=999\r\n");
    expect(render({ from: "a@example.org", to: ["b@example.org"], size: 10 ** 9 }, offering("SIZE")).mail).toBe("MAIL FROM:<a@example.org> SIZE=1000000000\r\n");
    expect(render({ from: "a@example.org", to: ["b@example.org"], size: 10 ** 9 }, offering("SIZE 0")).mail).toBe("MAIL FROM:<a@example.org> SIZE=1000000000\r\n");
  });

  it("a message at the server's SIZE limit exactly goes; one octet past it is refused before MAIL FROM", () => {
    expect(render({ from: "a@example.org", to: ["b@example.org"], size: 1000 }, everything).mail).toBe("MAIL FROM:<a@example.org> SIZE=1000\r\n");
    const error = capabilityError(() => render({ from: "a@example.org", to: ["b@example.org"], size: 1001 }, everything));
    expect(error.capability).toBe("SIZE");
    expect(error.message).toBe("The message is 1001 octets but mx.example.org accepts at most 1000 (SIZE)");
  });

  it("BODY=8BITMIME for 8-bit content, refused without 8BITMIME", () => {
    expect(render({ from: "a@example.org", to: ["b@example.org"], eightBit: true }, everything).mail).toBe("MAIL FROM:<a@example.org> BODY=8BITMIME\r\n");
    expect(render({ from: "a@example.org", to: ["b@example.org"], eightBit: false }, everything).mail).toBe("MAIL FROM:<a@example.org>\r\n");
    const error = capabilityError(() => render({ from: "a@example.org", to: ["b@example.org"], eightBit: true }, offering("SMTPUTF8")));
    expect(error.capability).toBe("8BITMIME");
    expect(error.message).toMatch(/^The message has 8-bit content but mx\.example\.org does not offer 8BITMIME\. /);
  });

  describe("SMTPUTF8", () => {
    const utf8 = { from: "ä@example.org", to: ["b@example.org", "ö@example.org"] };

    it("requested and offered: SMTPUTF8 on MAIL FROM, the UTF-8 addresses as they are", () => {
      expect(render({ ...utf8, smtputf8: true }, everything)).toEqual({
        mail: "MAIL FROM:<ä@example.org> SMTPUTF8\r\n",
        rcpts: ["RCPT TO:<b@example.org>\r\n", "RCPT TO:<ö@example.org>\r\n"],
      });
      expect(render({ from: "a@example.org", to: ["b@example.org"], smtputf8: true }, everything).mail).toBe("MAIL FROM:<a@example.org> SMTPUTF8\r\n");
    });

    it("a non-ASCII address without SMTPUTF8 offered, or not requested, is refused and says which", () => {
      const offered = capabilityError(() => render({ ...utf8, smtputf8: true }, offering("8BITMIME")));
      expect(offered.capability).toBe("SMTPUTF8");
      expect(offered.message).toBe(
        "An envelope address has non-ASCII characters but mx.example.org does not offer SMTPUTF8; use an IDNA (punycode) domain and an ASCII local part",
      );
      const requested = capabilityError(() => render(utf8, everything));
      expect(requested.message).toBe(
        "An envelope address has non-ASCII characters but smtputf8 was not requested for this message; use an IDNA (punycode) domain and an ASCII local part",
      );
      // A non-ASCII recipient alone is enough.
      expect(capabilityError(() => render({ from: "a@example.org", to: ["b@example.org", "ö@example.org"] }, everything)).capability).toBe("SMTPUTF8");
    });

    it("a message that needs SMTPUTF8 (its headers) is refused by a server without it", () => {
      const error = capabilityError(() => render({ from: "a@example.org", to: ["b@example.org"], smtputf8: true }, offering("8BITMIME")));
      expect(error.capability).toBe("SMTPUTF8");
      expect(error.message).toBe("The message needs SMTPUTF8 but mx.example.org does not offer SMTPUTF8");
    });
  });

  describe("DSN (RFC 3461)", () => {
    const dsn = { ret: "HDRS", envid: "id-1", notify: ["FAILURE", "DELAY"], orcpt: true } as const;

    it("every parameter to a server that offers DSN", () => {
      expect(render({ from: "a@example.org", to: ["b@example.org", "c@example.org"], dsn: { ...dsn, notify: [...dsn.notify] } }, everything)).toEqual({
        mail: "MAIL FROM:<a@example.org> RET=HDRS ENVID=id-1\r\n",
        rcpts: ["RCPT TO:<b@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.org\r\n", "RCPT TO:<c@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;c@example.org\r\n"],
      });
    });

    it("ORCPT only when asked for", () => {
      expect(render({ from: "a@example.org", to: ["b@example.org"], dsn: { notify: ["NEVER"], orcpt: false } }, everything).rcpts).toEqual(["RCPT TO:<b@example.org> NOTIFY=NEVER\r\n"]);
      expect(render({ from: "a@example.org", to: ["b@example.org"], dsn: { ret: "FULL" } }, everything)).toEqual({
        mail: "MAIL FROM:<a@example.org> RET=FULL\r\n",
        rcpts: ["RCPT TO:<b@example.org>\r\n"],
      });
    });

    it("to a server without DSN: refused, unless optional, which sends none of the parameters", () => {
      const error = capabilityError(() => render({ from: "a@example.org", to: ["b@example.org"], dsn: { ...dsn, notify: [...dsn.notify] } }, offering("8BITMIME")));
      expect(error.capability).toBe("DSN");
      expect(error.message).toBe("Delivery status notifications were requested but mx.example.org does not offer DSN; set dsn.optional to send without them");
      expect(render({ from: "a@example.org", to: ["b@example.org"], dsn: { ...dsn, notify: [...dsn.notify], optional: true } }, offering("8BITMIME"))).toEqual({
        mail: "MAIL FROM:<a@example.org>\r\n",
        rcpts: ["RCPT TO:<b@example.org>\r\n"],
      });
    });
  });
});
