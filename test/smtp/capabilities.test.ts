import { describe, expect, it } from "vitest";
import { parseEhlo, Capabilities } from "../../src/smtp/capabilities.js";
import { parseReply } from "../../src/smtp/reply.js";

describe("parseEhlo", () => {
  it("reads every extension we use", () => {
    const caps = parseEhlo(
      parseReply(
        "250-mx.example.org Hello\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n250-STARTTLS\r\n" +
          "250-AUTH PLAIN login\r\n250-AUTH=LOGIN CRAM-MD5\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n",
      ),
    );
    expect(caps.sizeLimit).toBe(10240000);
    expect(caps).toMatchObject({ eightBitMime: true, smtputf8: true, pipelining: true, starttls: true, dsn: true, enhancedStatusCodes: true, chunking: true, esmtp: true });
    expect([...caps.authMechanisms].sort()).toEqual(["CRAM-MD5", "LOGIN", "PLAIN"]);
    expect(caps.has("size")).toBe(true);
    expect(caps.params("SIZE")).toEqual(["10240000"]);
  });

  it("SIZE without a number means no fixed limit; the greeting line is not an extension", () => {
    const caps = parseEhlo(parseReply("250-PIPELINING\r\n250 SIZE\r\n"));
    expect(caps.pipelining).toBe(false);
    expect(caps.sizeLimit).toBe(0);
    expect(parseEhlo(parseReply("250 only.name\r\n")).sizeLimit).toBeUndefined();
  });

  it("ignores junk lines", () => {
    const caps = parseEhlo(parseReply("250-x\r\n250-  \r\n250-!!!\r\n250 8BITMIME\r\n"));
    expect([...caps.extensions.keys()]).toEqual(["8BITMIME"]);
  });

  it("none() after HELO", () => {
    const caps = Capabilities.none();
    expect(caps.esmtp).toBe(false);
    expect(caps.authMechanisms.size).toBe(0);
  });
});
