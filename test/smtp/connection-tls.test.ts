/**
 * The TLS upgrade of one SMTP connection (SmtpConnection.startTls) against a bare TCP peer
 * that starts TLS when told: what the handshake reports (protocol, cipher, verification,
 * the peer's certificate), the plaintext read buffer dropped (RFC 3207 §4.2), each way a
 * handshake fails (an untrusted certificate, a plaintext answer, a hang-up, its deadline
 * exactly, an abort) and what each error says, and tlsError's messages on their own.
 */
import { X509Certificate } from "node:crypto";
import { getEventListeners } from "node:events";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import net from "node:net";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SmtpConnection, tlsError, type OpenOptions, type Submission } from "../../src/smtp/connection.js";
import { AbortError, SmtpClosedError, SmtpTimeoutError, SmtpTlsError } from "../../src/errors.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { VirtualClock } from "../helpers/virtual-clock.js";
import { rejection } from "../helpers/errors.js";
import { sleep } from "../helpers/fake-smtp-server.js";

let certs: TestCerts;
/** A self-signed localhost certificate whose subject has two OU values. */
let twoUnits: { key: string; cert: string };
let twoUnitsDir: string;

beforeAll(async () => {
  certs = await makeTestCerts();
  twoUnitsDir = await mkdtemp(join(tmpdir(), "missive-two-ou-"));
  await promisify(execFile)(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "k.pem", "-out", "c.pem", "-days", "2", "-subj", "/CN=localhost/OU=mail/OU=relay"],
    { cwd: twoUnitsDir, timeout: 30_000 },
  );
  twoUnits = { key: await readFile(join(twoUnitsDir, "k.pem"), "utf8"), cert: await readFile(join(twoUnitsDir, "c.pem"), "utf8") };
}, 60_000);

afterAll(async () => {
  await rm(twoUnitsDir, { recursive: true, force: true });
});

interface Peer {
  readonly port: number;
  accept(): Promise<net.Socket>;
  close(): Promise<void>;
}

const peers: Peer[] = [];
const connections: SmtpConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) c.destroy();
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

async function peer(): Promise<Peer> {
  const sockets: net.Socket[] = [];
  const waiting: ((s: net.Socket) => void)[] = [];
  let taken = 0;
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => undefined);
    waiting.shift()?.(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const p: Peer = {
    port: (server.address() as net.AddressInfo).port,
    accept: () => {
      const i = taken++;
      if (sockets[i]) return Promise.resolve(sockets[i]);
      return new Promise((resolve) => waiting.push(resolve));
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  peers.push(p);
  return p;
}

/** The server side of the handshake on `raw`, with `pair` as its certificate. */
function serveTls(raw: net.Socket, pair: { key: string; cert: string } = certs.server): tls.TLSSocket {
  const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: tls.createSecureContext({ key: pair.key, cert: pair.cert }) });
  secure.on("error", () => undefined);
  return secure;
}

function received(socket: net.Socket): () => string {
  const chunks: Buffer[] = [];
  socket.on("data", (b: Buffer) => chunks.push(b));
  return () => Buffer.concat(chunks).toString("latin1");
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await sleep(5);
  if (!condition()) throw new Error(`not reached: ${what}`);
}

const greeting: Submission = { expect: [220], phase: "greeting", deadline: 2000 };
const noop: Submission = { line: "NOOP\r\n", expect: [250], phase: "command", deadline: 2000 };

/** A connection past its greeting, and the peer's socket. */
async function ready(options: Partial<OpenOptions> = {}) {
  const p = await peer();
  const conn = await SmtpConnection.open({ host: "127.0.0.1", port: p.port, timeoutMs: 5000, ...options });
  connections.push(conn);
  const raw = await p.accept();
  const hello = conn.submit(greeting);
  raw.write("220 peer ready\r\n");
  await hello;
  return { conn, raw };
}

const trusted = (): tls.ConnectionOptions => ({ servername: "localhost", ca: certs.ca });

describe("a successful upgrade", () => {
  it("reports what was negotiated and verified, and the dialogue goes on encrypted", async () => {
    const { conn, raw } = await ready();
    const secure = serveTls(raw);
    await conn.startTls(trusted(), 2000);
    expect(conn.secure).toBe(true);
    const info = conn.tlsInfo!;
    const x509 = new X509Certificate(certs.server.cert);
    expect(info.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(info.cipher).toMatch(/^TLS_|^ECDHE/);
    expect(info.authorized).toBe(true);
    expect(info.authorizationError).toBeUndefined();
    expect(info.peerCertificate).toEqual({
      subject: "CN=localhost",
      issuer: "CN=missive test CA",
      validFrom: x509.validFrom,
      validTo: x509.validTo,
      fingerprint256: x509.fingerprint256,
    });
    const plain = received(secure);
    const reply = conn.submit(noop);
    await until(() => plain() === "NOOP\r\n", "NOOP through TLS");
    secure.write("250 2.0.0 encrypted\r\n");
    expect((await reply).text).toBe("2.0.0 encrypted");
    // Closing ends the raw socket below the TLS layer too, and keeps what was negotiated.
    const rawClosed = new Promise<void>((resolve) => raw.once("close", () => resolve()));
    conn.destroy();
    await rawClosed;
    expect(conn.tlsInfo).toBe(info);
  });

  it("an unverified certificate, when allowed, is reported as such with the reason", async () => {
    const { conn, raw } = await ready();
    serveTls(raw, certs.selfSigned);
    await conn.startTls({ servername: "localhost", rejectUnauthorized: false }, 2000);
    expect(conn.tlsInfo!.authorized).toBe(false);
    expect(conn.tlsInfo!.authorizationError).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
    expect(conn.tlsInfo!.peerCertificate!.issuer).toBe("CN=localhost");
  });

  it("a name part with several values shows them joined with '+'", async () => {
    const { conn, raw } = await ready();
    serveTls(raw, twoUnits);
    await conn.startTls({ servername: "localhost", rejectUnauthorized: false }, 2000);
    expect(conn.tlsInfo!.peerCertificate!.subject).toBe("CN=localhost, OU=mail+relay");
  });

  it("a handshake without certificates (TLS-PSK, RFC 4279) reports no peer certificate", async () => {
    const { conn, raw } = await ready();
    const psk = Buffer.from("00112233445566778899aabbccddeeff", "hex");
    const ciphers = "PSK-AES128-GCM-SHA256";
    // TLSSocket takes the server's pskCallback as tls.createServer does (its typings omit it).
    const serverOptions: tls.TLSSocketOptions & { pskCallback: () => Buffer } = {
      isServer: true,
      pskCallback: () => psk,
      secureContext: tls.createSecureContext({ ciphers, maxVersion: "TLSv1.2" }),
    };
    const secure = new tls.TLSSocket(raw, serverOptions);
    secure.on("error", () => undefined);
    await conn.startTls({ pskCallback: () => ({ psk, identity: "client" }), ciphers, maxVersion: "TLSv1.2", checkServerIdentity: () => undefined }, 2000);
    expect(conn.tlsInfo).toEqual({ protocol: "TLSv1.2", cipher: ciphers, authorized: true, authorizationError: undefined, peerCertificate: undefined });
  });

  it("nothing read in plaintext is used after the handshake (RFC 3207 §4.2)", async () => {
    const { conn, raw } = await ready();
    const starttls = conn.submit({ line: "STARTTLS\r\n", expect: [220], phase: "command", deadline: 2000 });
    raw.write("220 go ahead\r\n250-INJECTED");
    await starttls;
    await until(() => conn.hasUnreadInput && raw.readableLength > 0, "the injected bytes and STARTTLS read");
    expect(String(raw.read())).toBe("STARTTLS\r\n");
    const secure = serveTls(raw);
    await conn.startTls(trusted(), 2000);
    expect(conn.hasUnreadInput).toBe(false);
    const reply = conn.submit(noop);
    secure.write("250 real\r\n");
    expect((await reply).lines).toEqual(["real"]);
  });

  it("the deadline and the signal are let go of once the handshake is done", async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const { conn, raw } = await ready({ clock });
    serveTls(raw);
    await conn.startTls(trusted(), 2000, controller.signal);
    expect(clock.pending).toEqual([]);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    controller.abort();
    await clock.advance(10_000);
    expect(conn.closed).toBe(false);
  });
});

describe("refused upgrades", () => {
  it("on a closed connection: the recorded reason", async () => {
    const { conn } = await ready();
    conn.destroy();
    expect(await rejection(conn.startTls(trusted(), 2000))).toBe(conn.failure);
  });

  it("with a reply still pending: an internal error, and the connection is left alone", async () => {
    const { conn, raw } = await ready();
    const pending = conn.submit(noop);
    const error = await rejection(conn.startTls(trusted(), 2000));
    expect(error.constructor).toBe(Error);
    expect(error.message).toBe("Internal error: TLS upgrade with replies still pending");
    expect(conn.closed).toBe(false);
    raw.write("250 ok\r\n");
    expect((await pending).code).toBe(250);
  });
});

describe("failed handshakes", () => {
  async function failedWith(run: (conn: SmtpConnection, raw: net.Socket) => Promise<Error>) {
    const { conn, raw } = await ready();
    const rawClosed = new Promise<void>((resolve) => raw.once("close", () => resolve()));
    const error = await run(conn, raw);
    expect(conn.closed).toBe(true);
    expect(conn.failure).toBe(error);
    expect(conn.secure).toBe(false);
    expect(await rejection(conn.submit(noop))).toBe(error);
    await rawClosed;
    return error;
  }

  it("an untrusted certificate: SmtpTlsError with the code and what to do", async () => {
    const error = await failedWith(async (conn, raw) => {
      serveTls(raw, certs.selfSigned);
      return rejection(conn.startTls({ servername: "localhost" }, 2000));
    });
    expect(error).toBeInstanceOf(SmtpTlsError);
    expect((error as SmtpTlsError).tlsCode).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
    expect(error.message).toBe(
      "TLS with localhost failed (DEPTH_ZERO_SELF_SIGNED_CERT): the server's certificate is self-signed; trust it by passing its certificate as tlsOptions.ca",
    );
  });

  it("a certificate for another name", async () => {
    const error = await failedWith(async (conn, raw) => {
      serveTls(raw, certs.wrongHost);
      return rejection(conn.startTls({ host: "localhost", ca: certs.ca }, 2000));
    });
    expect((error as SmtpTlsError).tlsCode).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
    expect(error.message).toMatch(/^TLS with localhost failed \(ERR_TLS_CERT_ALTNAME_INVALID\): the server's certificate is not valid for this host name/);
  });

  it("a plaintext answer to the ClientHello", async () => {
    const error = await failedWith(async (conn, raw) => {
      raw.once("data", () => raw.write("500 5.5.1 what is this?\r\n"));
      return rejection(conn.startTls(trusted(), 2000));
    });
    expect((error as SmtpTlsError).tlsCode).toBe("ERR_SSL_WRONG_VERSION_NUMBER");
    expect(error.message).toMatch(/^TLS with localhost failed \(ERR_SSL_WRONG_VERSION_NUMBER\): the server did not answer with TLS/);
  });

  it("the server hanging up during the handshake", async () => {
    const error = await failedWith(async (conn, raw) => {
      raw.once("data", () => raw.end());
      return rejection(conn.startTls(trusted(), 2000));
    });
    expect(error).toBeInstanceOf(SmtpTlsError);
    // Node reports the hang-up as a socket error (ECONNRESET) or as a plain close, depending on timing.
    const dropped = /^TLS with localhost failed \(ECONNRESET\): the connection was dropped during the handshake \(.+\)$/;
    const closed = new RegExp(`^The server closed the connection during the TLS handshake with 127\\.0\\.0\\.1:\\d+$`);
    expect(error.message).toMatch(new RegExp(`${dropped.source}|${closed.source}`));
    if (closed.test(error.message)) expect(error.cause).toBeInstanceOf(SmtpClosedError);
  });

  it("no answer: the handshake deadline fires at timeoutMs exactly", async () => {
    const clock = new VirtualClock();
    const { conn, raw } = await ready({ clock });
    const rawClosed = new Promise<void>((resolve) => raw.once("close", () => resolve()));
    // The peer reads the ClientHello and never answers it.
    raw.resume();
    let outcome: unknown;
    const upgrading = conn.startTls(trusted(), 1500).then(
      () => (outcome = "secure"),
      (e: unknown) => (outcome = e),
    );
    expect(clock.pending.map((t) => t.ms)).toEqual([1500]);
    await clock.advance(1499);
    expect(outcome).toBeUndefined();
    await clock.advance(1);
    await upgrading;
    expect(outcome).toBeInstanceOf(SmtpTimeoutError);
    expect((outcome as SmtpTimeoutError).phase).toBe("tls");
    expect((outcome as SmtpTimeoutError).timeoutMs).toBe(1500);
    expect((outcome as SmtpTimeoutError).command).toBe("TLS handshake");
    expect(conn.failure).toBe(outcome);
    await rawClosed;
  });

  it("an abort during the handshake: AbortError, the connection closed, the listener removed", async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const { conn } = await ready({ clock });
    const upgrading = conn.startTls(trusted(), 1500, controller.signal);
    const reason = new AbortError("not now");
    controller.abort(reason);
    expect(await rejection(upgrading)).toBe(reason);
    expect(conn.failure).toBe(reason);
    expect(clock.pending).toEqual([]);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });
});

describe("tlsError", () => {
  const failure = (code: string | undefined, message = "low-level text") => Object.assign(new Error(message), code === undefined ? {} : { code }) as NodeJS.ErrnoException;

  it("names the server by servername, else host, else 'the server'", () => {
    expect(tlsError(failure("X"), { servername: "a.example", host: "b.example" }).message).toBe("TLS with a.example failed (X): low-level text");
    expect(tlsError(failure("X"), { host: "b.example" }).message).toBe("TLS with b.example failed (X): low-level text");
    expect(tlsError(failure("X"), {}).message).toBe("TLS with the server failed (X): low-level text");
  });

  it("a code spelled like an Object member is an unknown code: the error's own text", () => {
    for (const code of ["constructor", "toString", "__proto__"]) {
      expect(tlsError(failure(code), { host: "h" }).message).toBe(`TLS with h failed (${code}): low-level text`);
    }
  });

  it("without a code: no code in the message, the error's own text", () => {
    const error = tlsError(failure(undefined), { host: "h" });
    expect(error.message).toBe("TLS with h failed: low-level text");
    expect(error.tlsCode).toBeUndefined();
    expect(error.code).toBe("ETLS");
  });

  it("a network error code is a dropped connection, not a verdict on TLS", () => {
    for (const code of ["ECONNRESET", "EPIPE", "ETIMEDOUT"]) {
      const error = tlsError(failure(code, "socket hang up"), { host: "h" });
      expect(error.message).toBe(`TLS with h failed (${code}): the connection was dropped during the handshake (socket hang up)`);
      expect(error.tlsCode).toBe(code);
      expect(error.cause).toBeInstanceOf(Error);
    }
  });

  it("each known code has its own hint, in place of the library's text", () => {
    const codes = [
      "DEPTH_ZERO_SELF_SIGNED_CERT",
      "SELF_SIGNED_CERT_IN_CHAIN",
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
      "UNABLE_TO_GET_ISSUER_CERT",
      "CERT_HAS_EXPIRED",
      "CERT_NOT_YET_VALID",
      "ERR_TLS_CERT_ALTNAME_INVALID",
      "ERR_SSL_WRONG_VERSION_NUMBER",
      "ERR_SSL_UNSUPPORTED_PROTOCOL",
      "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION",
    ];
    const hints = codes.map((code) => {
      const message = tlsError(failure(code), { host: "h" }).message;
      const prefix = `TLS with h failed (${code}): `;
      expect(message.startsWith(prefix)).toBe(true);
      const hint = message.slice(prefix.length);
      expect(hint, code).not.toBe("low-level text");
      expect(hint.length, code).toBeGreaterThan(20);
      return hint;
    });
    expect(new Set(hints).size).toBe(hints.length);
    expect(hints[0]).toMatch(/self-signed/);
    expect(hints[5]).toMatch(/expired/);
    expect(hints[6]).toMatch(/not valid yet/);
    // A code that is not listed (and not a network error) keeps the library's text.
    expect(tlsError(failure("ERR_SSL_SOMETHING_ELSE"), { host: "h" }).message).toBe("TLS with h failed (ERR_SSL_SOMETHING_ELSE): low-level text");
  });
});
