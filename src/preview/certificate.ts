/**
 * A self-signed certificate for the catcher's STARTTLS, made at startup with node:crypto
 * alone (no openssl binary needed): an ECDSA P-256 key and an X.509 v3 certificate
 * (RFC 5280) for localhost, 127.0.0.1 and ::1, written in DER by the few encoders below.
 * Clients trust it by passing `certificate` as their CA.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate } from "node:crypto";

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A DER TLV (X.690 §8.1). */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);

function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const out = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const group = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) group.unshift(0x80 | (v & 0x7f));
    out.push(...group);
  }
  return tlv(0x06, Buffer.from(out));
}

function utcTime(date: Date): Buffer {
  // RFC 5280 §4.1.2.5.1: YYMMDDHHMMSSZ for years before 2050.
  const iso = date.toISOString();
  return tlv(0x17, Buffer.from(`${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`, "ascii"));
}

function name(commonName: string): Buffer {
  return sequence(set(sequence(oid("2.5.4.3"), tlv(0x0c, Buffer.from(commonName, "utf8")))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), tlv(0x04, value));
}

export interface TlsIdentity {
  /** PEM certificate; give it to a client as its CA to trust the catcher. */
  cert: string;
  /** PEM private key (PKCS #8). */
  key: string;
}

/**
 * A serial number from random bytes, as DER needs it: a positive INTEGER (RFC 5280 §4.1.2.2:
 * top bit clear) in its shortest form (X.690 §8.3.2: a first byte of 0x00 followed by a byte
 * with its top bit clear is padding, which strict parsers such as OpenSSL refuse). Clearing
 * the top bit alone leaves a zero first byte one time in 128; setting the next bit rules it out.
 */
export function certificateSerial(random: Buffer): Buffer {
  const serial = Buffer.from(random);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  return serial;
}

/** A fresh key and a certificate valid from an hour ago for `days` days, for localhost, 127.0.0.1 and ::1. */
export function makeSelfSignedCertificate(options: { days?: number; now?: Date } = {}): TlsIdentity {
  const now = options.now ?? new Date();
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ecdsaWithSha256 = sequence(oid("1.2.840.10045.4.3.2"));
  const serial = certificateSerial(randomBytes(16));
  const subject = name("missive mail catcher");
  const altNames = sequence(
    tlv(0x82, Buffer.from("localhost", "ascii")),
    tlv(0x87, Buffer.from([127, 0, 0, 1])),
    tlv(0x87, Buffer.from("00000000000000000000000000000001", "hex")),
  );
  const tbs = sequence(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // version v3
    tlv(0x02, serial),
    ecdsaWithSha256,
    subject,
    sequence(utcTime(new Date(now.getTime() - 3600_000)), utcTime(new Date(now.getTime() + (options.days ?? 30) * 86400_000))),
    subject,
    publicKey.export({ type: "spki", format: "der" }),
    tlv(
      0xa3,
      sequence(
        extension("2.5.29.19", true, sequence()), // basicConstraints: not a CA
        extension("2.5.29.15", true, tlv(0x03, Buffer.from([0x07, 0x80]))), // keyUsage: digitalSignature
        extension("2.5.29.37", false, sequence(oid("1.3.6.1.5.5.7.3.1"))), // extKeyUsage: serverAuth
        extension("2.5.29.17", false, altNames),
      ),
    ),
  );
  const signature = sign("sha256", tbs, privateKey);
  const der = sequence(tbs, ecdsaWithSha256, tlv(0x03, Buffer.from([0]), signature));
  const cert = `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
  const key = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  // Parse it back once: a certificate that does not load is a bug here, not the user's problem.
  new X509Certificate(cert);
  createPrivateKey(key);
  return { cert, key };
}
