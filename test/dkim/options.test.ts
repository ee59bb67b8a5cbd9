/**
 * DkimSigner: every bad option is a ConfigurationError naming the setting, when the
 * signer is made; the defaults are pinned; the key never shows.
 */
import { generateKeyPairSync } from "node:crypto";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { DEFAULT_OVERSIGNED_HEADERS, DEFAULT_SIGNED_HEADERS, DkimSigner, toSigners, type DkimOptions } from "../../src/dkim/options.js";
import { errorOf } from "../helpers/errors.js";
import { ED25519_PEM, edSigner, RSA_PEM, rsaSigner } from "./helpers.js";

function refusal(options: unknown): ConfigurationError {
  const error = errorOf(() => new DkimSigner(options as DkimOptions));
  expect(error).toBeInstanceOf(ConfigurationError);
  return error as ConfigurationError;
}

describe("defaults", () => {
  it("relaxed/relaxed, the algorithm from the key, the default header lists, no x=, no i=", () => {
    const rsa = new DkimSigner(rsaSigner());
    expect(rsa.toJSON()).toEqual({
      domain: "example.com",
      selector: "rsa",
      algorithm: "rsa-sha256",
      canonicalization: "relaxed/relaxed",
      headers: DEFAULT_SIGNED_HEADERS,
      oversign: DEFAULT_OVERSIGNED_HEADERS,
      expiresIn: undefined,
      identity: undefined,
      keyBits: 2048,
      privateKey: "<redacted>",
    });
    expect(new DkimSigner(edSigner()).algorithm).toBe("ed25519-sha256");
  });

  it("pins the signed and over-signed lists", () => {
    expect(DEFAULT_OVERSIGNED_HEADERS).toEqual(["from", "to", "cc", "subject", "date", "message-id", "reply-to"]);
    expect(DEFAULT_SIGNED_HEADERS).toEqual([
      "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc",
      "mime-version", "content-type", "content-transfer-encoding", "content-id", "content-description",
      "in-reply-to", "references",
      "resent-date", "resent-from", "resent-sender", "resent-to", "resent-cc", "resent-message-id",
      "list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post", "list-subscribe", "list-post", "list-owner", "list-archive",
      "feedback-id",
    ]);
    for (const never of ["received", "return-path", "bcc", "dkim-signature"]) expect(DEFAULT_SIGNED_HEADERS).not.toContain(never);
  });

  it("normalises names: lower case, From first, duplicates dropped; Unicode domains become A-labels", () => {
    const s = new DkimSigner(rsaSigner({ domain: "Bücher.Example", selector: "S2026", headers: ["Subject", "FROM", "subject", "X-Custom"], oversign: ["From"] }));
    expect(s.domain).toBe("xn--bcher-kva.example");
    expect(s.selector).toBe("s2026");
    expect(s.headers).toEqual(["from", "subject", "x-custom"]);
    expect(s.oversign).toEqual(["from"]);
  });
});

describe("refusals", () => {
  const weak = generateKeyPairSync("rsa", { modulusLength: 512 }).privateKey.export({ type: "pkcs8", format: "pem" });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" });
  const publicPem = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" });
  const cases: [string, Partial<DkimOptions> | Record<string, unknown>, string, RegExp][] = [
    ["no domain", { domain: "" }, "dkim.domain", /required/],
    ["a domain with one label", { domain: "localhost" }, "dkim.domain", /not a domain/],
    ["a domain with a space", { domain: "exa mple.com" }, "dkim.domain", /not a domain/],
    ["a domain with a trailing dot", { domain: "example.com." }, "dkim.domain", /trailing dot/],
    ["an IP address", { domain: "192.0.2.1" }, "dkim.domain", /not a domain/],
    ["an e-mail address as domain", { domain: "ann@example.com" }, "dkim.domain", /not a domain/],
    ["a selector with an underscore", { selector: "s_1" }, "dkim.selector", /not a selector/],
    ["no selector", { selector: undefined }, "dkim.selector", /required/],
    ["no key", { privateKey: undefined }, "dkim.privateKey", /required/],
    ["a public key", { privateKey: publicPem }, "dkim.privateKey", /public key/],
    ["garbage", { privateKey: "not a key at all" }, "dkim.privateKey", /not a private key/],
    ["an RSA key of 512 bits", { privateKey: weak }, "dkim.privateKey", /512 bits.*at least 1024/],
    ["an EC key", { privateKey: ec }, "dkim.privateKey", /ec key.*RSA.*Ed25519/],
    ["an algorithm the key does not have", { algorithm: "ed25519-sha256" }, "dkim.algorithm", /is ed25519-sha256 but the key is an RSA key/],
    ["rsa-sha1", { algorithm: "rsa-sha1" }, "dkim.algorithm", /rsa-sha1 is not allowed/],
    ["an unknown canonicalization", { canonicalization: "relaxed" }, "dkim.canonicalization", /must be one of/],
    ["a header list without From", { headers: ["To", "Subject"] }, "dkim.headers", /must include From/],
    ["a header name with a colon", { headers: ["From", "X:Y"] }, "dkim.headers", /not a header field name/],
    ["an oversign list that is not a list", { oversign: "From" }, "dkim.oversign", /list of header names/],
    ["expiresIn given in seconds", { expiresIn: 86400 }, "dkim.expiresIn", /did you mean 86400000/],
    ["an i= outside the domain", { identity: "ann@example.org" }, "dkim.identity", /outside the signing domain example\.com/],
    ["an i= on a look-alike domain", { identity: "@notexample.com" }, "dkim.identity", /outside the signing domain/],
    ["an i= without @", { identity: "example.com" }, "dkim.identity", /needs an @/],
    ["l=", { length: true }, "dkim.length", /never writes l=/],
    ["an unknown option", { selectr: "x" }, "dkim.selectr", /Unknown DKIM option/],
  ];
  it.each(cases)("%s", (_name, change, setting, message) => {
    const error = refusal({ ...rsaSigner(), ...change });
    expect(error.setting).toBe(setting);
    expect(error.code).toBe("ECONFIG");
    expect(error.message).toMatch(message);
  });

  it("accepts i= at the domain and at a subdomain, and 1024-bit RSA", () => {
    expect(new DkimSigner(rsaSigner({ identity: "@example.com" })).identity).toBe("@example.com");
    expect(new DkimSigner(rsaSigner({ identity: "Ann@Mail.Example.com" })).identity).toBe("Ann@mail.example.com");
    const k1024 = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
    expect(new DkimSigner(rsaSigner({ privateKey: k1024 })).keyBits).toBe(1024);
  });

  it("refuses two signers with one selector, and an empty list", () => {
    expect(errorOf(() => toSigners([rsaSigner(), rsaSigner()])).message).toMatch(/Two DKIM signers use rsa\._domainkey\.example\.com/);
    expect(errorOf(() => toSigners([]))).toBeInstanceOf(ConfigurationError);
  });
});

describe("the key never shows", () => {
  it("not in toJSON, JSON.stringify, inspect, nor in any property", () => {
    for (const pem of [RSA_PEM, ED25519_PEM]) {
      const signer = new DkimSigner(rsaSigner({ privateKey: pem, selector: "k" }));
      const body = pem.split("\n")[1]!;
      for (const view of [JSON.stringify(signer), inspect(signer, { depth: 10, showHidden: true }), JSON.stringify(Object.entries(signer))]) {
        expect(view).not.toContain(body);
        expect(view).not.toContain("PRIVATE");
      }
      expect(inspect(signer)).toContain("<redacted>");
    }
  });

  it("not in the error for a bad key", () => {
    const truncated = RSA_PEM.slice(0, 400);
    const error = refusal(rsaSigner({ privateKey: truncated }));
    expect(error.message).not.toContain(truncated.split("\n")[1]!);
  });
});
