/**
 * The catcher's own certificate, made with node:crypto alone: openssl reads it as a valid
 * X.509 v3 certificate for localhost, 127.0.0.1 and ::1, and a TLS client that trusts it
 * verifies the catcher by name and by address.
 */
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { certificateSerial, makeSelfSignedCertificate } from "../../src/preview/certificate.js";
import { startMailCatcher } from "../../src/preview/catcher.js";
import { SmtpClient } from "../../src/smtp/client.js";

describe("the catcher's self-signed certificate", () => {
  it("has a serial in DER's shortest positive form whatever the random bytes (a zero or high first byte included)", () => {
    for (const first of [0x00, 0x01, 0x3f, 0x7f, 0x80, 0xff]) {
      const serial = certificateSerial(Buffer.from([first, 0x00, 0x12, 0x34]));
      // Positive (top bit clear) and not padded (a leading 0x00 needs a next byte with its top bit set).
      expect(serial[0]! & 0x80, `first byte ${first}`).toBe(0);
      expect(serial[0], `first byte ${first}`).not.toBe(0);
      expect([...serial.subarray(1)]).toEqual([0x00, 0x12, 0x34]);
    }
  });

  it("is a valid X.509 v3 certificate that openssl verifies against itself", async () => {
    const now = new Date(Date.UTC(2026, 10, 21, 12));
    const { cert } = makeSelfSignedCertificate({ now, days: 7 });
    const x = new X509Certificate(cert);
    expect(x.subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
    expect(x.verify(x.publicKey)).toBe(true);
    expect([new Date(x.validFrom).toISOString(), new Date(x.validTo).toISOString()]).toEqual(["2026-11-21T11:00:00.000Z", "2026-11-28T12:00:00.000Z"]);
    const run = promisify(execFile);
    const text = await new Promise<string>((resolve, reject) => {
      const child = execFile("openssl", ["x509", "-noout", "-text"], (err, stdout) => (err ? reject(err) : resolve(stdout)));
      child.stdin!.end(cert);
    });
    expect(text).toContain("Version: 3 (0x2)");
    expect(text).toContain("TLS Web Server Authentication");
    expect(text).toMatch(/CA:FALSE/);
    const dir = await mkdtemp(join(tmpdir(), "missive-cert-"));
    try {
      const file = join(dir, "c.pem");
      await writeFile(file, cert);
      const { stdout } = await run("openssl", ["verify", "-CAfile", file, "-attime", String(Math.floor(now.getTime() / 1000)), file]);
      expect(stdout.trim()).toBe(`${file}: OK`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("lets a client verify the catcher by name and by address, and each catcher gets a fresh one", async () => {
    const one = await startMailCatcher({ port: 0, webPort: false, tls: true });
    const two = await startMailCatcher({ port: 0, webPort: false, tls: true });
    try {
      expect(one.certificate).not.toBe(two.certificate);
      for (const host of ["localhost", "127.0.0.1"]) {
        const client = new SmtpClient({ host, port: one.smtpPort, tls: "starttls", tlsOptions: { ca: one.certificate! } });
        await client.connect();
        expect(client.tlsInfo?.authorized).toBe(true);
        await client.quit();
      }
      const wrong = new SmtpClient({ host: "127.0.0.1", port: one.smtpPort, tls: "starttls", tlsOptions: { ca: two.certificate! } });
      await expect(wrong.connect()).rejects.toMatchObject({ code: "ETLS" });
      wrong.destroy();
    } finally {
      await one.close();
      await two.close();
    }
  });
});
