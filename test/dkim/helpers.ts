/**
 * Shared by the DKIM tests: the test keys (fixtures/dkim/keys, made once with openssl for
 * these tests only), their DNS records, a RenderedLike made from message bytes by a plain
 * split at the first empty line (independent of src/dkim's own parser), and the bytes a
 * receiver sees after SMTP (line breaks normalised, a final CRLF).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { HeaderField, RenderedLike } from "../../src/dkim/sign.js";
import type { DkimOptions } from "../../src/dkim/options.js";
import { encodeData } from "../../src/smtp/data-stream.js";
import type { KeyRecords } from "../helpers/dkim-oracle.js";

export const dkimFixtures = fileURLToPath(new URL("../../fixtures/dkim/", import.meta.url));

export const keyPem = (name: string) => readFileSync(`${dkimFixtures}keys/${name}.pem`, "utf8");
export const RSA_PEM = keyPem("test-rsa-2048");
export const ED25519_PEM = keyPem("test-ed25519");

/** The key record of a private key, from openssl's view of the key (not src/dkim's). */
export function recordFor(pemPath: string): string {
  const der = execFileSync("openssl", ["pkey", "-in", pemPath, "-pubout", "-outform", "DER"]);
  const ed25519 = execFileSync("openssl", ["pkey", "-in", pemPath, "-noout", "-text"]).toString().startsWith("ED25519");
  return ed25519 ? `v=DKIM1; k=ed25519; p=${der.subarray(der.length - 32).toString("base64")}` : `v=DKIM1; k=rsa; p=${der.toString("base64")}`;
}

export const RECORDS: KeyRecords = {
  "rsa._domainkey.example.com": recordFor(`${dkimFixtures}keys/test-rsa-2048.pem`),
  "ed._domainkey.example.com": recordFor(`${dkimFixtures}keys/test-ed25519.pem`),
  "rsa1024._domainkey.example.com": recordFor(`${dkimFixtures}keys/test-rsa-1024.pem`),
};

export const rsaSigner = (extra: Partial<DkimOptions> = {}): DkimOptions => ({ domain: "example.com", selector: "rsa", privateKey: RSA_PEM, ...extra });
export const edSigner = (extra: Partial<DkimOptions> = {}): DkimOptions => ({ domain: "example.com", selector: "ed", privateKey: ED25519_PEM, ...extra });

/** A time safely in the past (dkimpy refuses t= in the future) for byte-exact output. */
export const SIGNING_TIME = new Date(Date.UTC(2025, 0, 15, 12, 0, 0));

/** Splits message bytes at the first empty line; the header block into fields at line starts that are not white space. */
export function renderedFrom(message: Uint8Array, chunkSize = 7): RenderedLike & { bodyCalls: number } {
  const bytes = Buffer.from(message);
  const text = bytes.toString("latin1");
  const split = text.indexOf("\r\n\r\n");
  const headText = split < 0 ? text : text.slice(0, split + 2);
  const body = split < 0 ? Buffer.alloc(0) : bytes.subarray(split + 4);
  const headBytes = bytes.subarray(0, Buffer.byteLength(headText, "latin1"));
  const headers: HeaderField[] = headBytes
    .toString("utf8")
    .split(/\r\n(?![ \t])/)
    .filter((f) => f !== "")
    .map((f) => {
      const colon = f.indexOf(":");
      return [f.slice(0, colon), f.slice(colon + 1)] as const;
    });
  const rendered = {
    headers,
    bodyCalls: 0,
    async *body(): AsyncGenerator<Uint8Array> {
      rendered.bodyCalls++;
      for (let i = 0; i < body.length; i += chunkSize) yield body.subarray(i, i + chunkSize);
    },
  };
  return rendered;
}

/** The DKIM-Signature fields in front of the message, as a signer hands them over. */
export function prepend(fields: readonly HeaderField[], message: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(fields.map(([n, v]) => `${n}:${v}\r\n`).join(""), "utf8"), message]);
}

/** What the receiver stores: the bytes after SMTP's data stream (bare CR/LF made CRLF, a final CRLF). */
export function asReceived(message: Uint8Array): Buffer {
  return encodeData(message, { dotStuff: false });
}
