import { once } from "node:events";
import { connect, createServer, type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { makeTestCerts, type CertKeyPair, type TestCerts } from "../helpers/certs.js";

let certs: TestCerts;

afterAll(async () => {
  await certs?.cleanup();
});

/** Serves `pair` on a TLS server and connects with `opts`; resolves to the client's verdict. */
async function handshake(
  pair: CertKeyPair,
  opts: { ca?: string; servername?: string; host?: string; cert?: CertKeyPair; requestCert?: boolean },
): Promise<{ authorized: boolean; error: string | null; clientCN?: string }> {
  let clientCN: string | undefined;
  const server = createServer(
    { key: pair.key, cert: pair.cert, minVersion: "TLSv1.2", requestCert: opts.requestCert ?? false, ...(opts.requestCert ? { ca: certs.ca } : {}), rejectUnauthorized: false },
    (s: TLSSocket) => {
      const peer = s.getPeerCertificate();
      const cn = peer?.subject?.CN;
      clientCN = Array.isArray(cn) ? cn[0] : cn;
      s.end();
    },
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  try {
    return await new Promise((resolve) => {
      const sock = connect({
        host: opts.host ?? "127.0.0.1",
        port,
        ca: opts.ca,
        servername: opts.servername,
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
        ...(opts.cert ? { key: opts.cert.key, cert: opts.cert.cert } : {}),
      });
      sock.once("secureConnect", () => {
        const authorized = sock.authorized;
        sock.once("close", () => resolve({ authorized, error: null, clientCN }));
        sock.resume();
        sock.end();
      });
      sock.once("error", (err) => {
        sock.destroy();
        resolve({ authorized: false, error: (err as NodeJS.ErrnoException).code ?? err.message });
      });
    });
  } finally {
    server.close();
  }
}

describe("makeTestCerts", () => {
  it("generates once per process and returns PEMs and paths", async () => {
    const t0 = Date.now();
    certs = await makeTestCerts();
    const again = await makeTestCerts();
    expect(again).toBe(certs);
    expect(Date.now() - t0).toBeLessThan(20_000);
    for (const p of [certs.server, certs.wrongHost, certs.selfSigned, certs.client]) {
      expect(p.cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(p.key).toMatch(/-----BEGIN PRIVATE KEY-----/);
      expect(p.certPath.startsWith(certs.dir)).toBe(true);
    }
    expect(certs.ca).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });

  it("server cert verifies against the CA for localhost, 127.0.0.1 (and ::1 SAN)", async () => {
    expect(await handshake(certs.server, { ca: certs.ca, servername: "localhost" })).toMatchObject({ authorized: true, error: null });
    // no SNI: Node checks the IP SAN
    expect(await handshake(certs.server, { ca: certs.ca, servername: "" })).toMatchObject({ authorized: true, error: null });
    const { X509Certificate } = await import("node:crypto");
    const x = new X509Certificate(certs.server.cert);
    expect(x.subjectAltName).toContain("DNS:localhost");
    expect(x.subjectAltName).toContain("IP Address:127.0.0.1");
    expect(x.subjectAltName).toMatch(/IP Address:0:0:0:0:0:0:0:1|IP Address:::1/);
    expect(x.checkIssued(new X509Certificate(certs.ca))).toBe(true);
  });

  it("wrong-host cert is trusted by the CA but fails hostname verification", async () => {
    const r = await handshake(certs.wrongHost, { ca: certs.ca, servername: "localhost" });
    expect(r.error).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
    expect(await handshake(certs.wrongHost, { ca: certs.ca, servername: "wrong.example" })).toMatchObject({ authorized: true });
  });

  it("self-signed cert is not trusted by the CA", async () => {
    const r = await handshake(certs.selfSigned, { ca: certs.ca, servername: "localhost" });
    expect(r.error).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
  });

  it("server cert is untrusted without the CA", async () => {
    const r = await handshake(certs.server, { servername: "localhost" });
    expect(r.error).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });

  it("client cert is presented and signed by the CA", async () => {
    const r = await handshake(certs.server, { ca: certs.ca, servername: "localhost", cert: certs.client, requestCert: true });
    expect(r).toMatchObject({ authorized: true, clientCN: "missive test client" });
  });
});
