/**
 * Keys: the forms a private key arrives in, the refusals, and the DNS key record (RFC 6376
 * §3.6.1, RFC 8463 §4.2) byte for byte against RFC 8463's published records and openssl.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { ed25519PrivateKeyFromSeed, keyRecord, loadSigningKey, txtStrings, zoneFileLine } from "../../src/dkim/keys.js";
import { errorOf } from "../helpers/errors.js";
import { dkimFixtures, ED25519_PEM, keyPem, RECORDS, recordFor, RSA_PEM } from "./helpers.js";

const refusal = (input: unknown) => errorOf(() => loadSigningKey(input as never)) as ConfigurationError;

describe("reading a private key", () => {
  const rsa = createPrivateKey(RSA_PEM);
  const forms: [string, unknown][] = [
    ["PKCS#8 PEM text", RSA_PEM],
    ["PKCS#1 PEM text (BEGIN RSA PRIVATE KEY)", rsa.export({ type: "pkcs1", format: "pem" })],
    ["PEM in a Buffer (readFileSync)", Buffer.from(RSA_PEM)],
    ["PKCS#8 DER bytes", rsa.export({ type: "pkcs8", format: "der" })],
    ["PKCS#1 DER bytes", rsa.export({ type: "pkcs1", format: "der" })],
    ["base64 of the DER, without PEM lines", rsa.export({ type: "pkcs8", format: "der" }).toString("base64")],
    ["PEM with literal \\n (from an environment variable)", RSA_PEM.trim().replace(/\n/g, "\\n")],
    ["a KeyObject", rsa],
  ];
  it.each(forms)("%s", (_name, input) => {
    const key = loadSigningKey(input as never);
    expect(key.algorithm).toBe("rsa-sha256");
    expect(key.bits).toBe(2048);
    expect(keyRecord(key.key)).toBe(RECORDS["rsa._domainkey.example.com"]);
  });

  it("Ed25519 in PKCS#8, and from a bare seed only when asked to", () => {
    const key = loadSigningKey(ED25519_PEM);
    expect(key.algorithm).toBe("ed25519-sha256");
    expect(keyRecord(key.key)).toBe(RECORDS["ed._domainkey.example.com"]);
    const seed = createPrivateKey(ED25519_PEM).export({ type: "pkcs8", format: "der" }).subarray(-32);
    expect(keyRecord(ed25519PrivateKeyFromSeed(seed))).toBe(RECORDS["ed._domainkey.example.com"]);
    expect(refusal(seed.toString("base64")).message).toMatch(/32 bare bytes.*seed or an Ed25519 public key/);
  });

  it("refuses public keys, certificates, encrypted keys and what is not a key", () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
    expect(refusal(publicKey).message).toMatch(/is a public key/);
    expect(refusal(publicKey.export({ type: "spki", format: "pem" })).message).toMatch(/is a public key/);
    expect(refusal(publicKey.export({ type: "spki", format: "der" })).message).toMatch(/is a public key/);
    expect(refusal("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").message).toMatch(/certificate/);
    const encrypted = privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "secret" });
    expect(refusal(encrypted).message).toMatch(/encrypted; decrypt it first/);
    expect(refusal(Buffer.from("hello")).message).toMatch(/not a private key/);
    expect(refusal("").message).toMatch(/empty/);
    expect(refusal(42)).toBeInstanceOf(ConfigurationError);
  });
});

describe("the DNS key record", () => {
  it("is RFC 8463 §A.2's records for its keys, byte for byte", () => {
    const ed = ed25519PrivateKeyFromSeed("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=");
    expect(keyRecord(ed)).toBe("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    expect(keyRecord(createPrivateKey(keyPem("rfc8463-rsa")))).toBe(
      "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
    );
    expect(zoneFileLine("brisbane", "football.example.com", createPublicKey(ed))).toBe(
      'brisbane._domainkey.football.example.com. IN TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="',
    );
  });

  it("agrees with openssl for the test keys", () => {
    expect(keyRecord(createPrivateKey(RSA_PEM))).toBe(recordFor(`${dkimFixtures}keys/test-rsa-2048.pem`));
    expect(keyRecord(createPrivateKey(ED25519_PEM))).toBe(recordFor(`${dkimFixtures}keys/test-ed25519.pem`));
  });

  it("is split into strings of at most 255 octets that join back to it (RFC 1035 §3.3.14)", () => {
    for (const bits of [1024, 2048, 4096]) {
      const record = keyRecord(generateKeyPairSync("rsa", { modulusLength: bits }).privateKey);
      const strings = txtStrings(record);
      expect(strings.join("")).toBe(record);
      expect(strings.every((s) => s.length <= 255 && s.length > 0)).toBe(true);
      expect(strings.length).toBe(Math.ceil(record.length / 255));
    }
    const line = zoneFileLine("s2026", "example.com", createPrivateKey(RSA_PEM));
    expect(line).toMatch(/^s2026\._domainkey\.example\.com\. IN TXT "v=DKIM1; k=rsa; p=[A-Za-z0-9+/]{237}" "[A-Za-z0-9+/=]+"$/);
  });
});
