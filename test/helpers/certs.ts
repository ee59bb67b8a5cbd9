// Test certificates made with `openssl` at test time, in a fresh temp dir.
// EC P-256 keys (fast to generate, fine for TLS 1.2 and 1.3).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface CertKeyPair {
  /** PEM private key (PKCS#8, unencrypted). */
  key: string;
  /** PEM certificate. */
  cert: string;
  keyPath: string;
  certPath: string;
}

export interface TestCerts {
  dir: string;
  /** PEM of the test CA certificate; pass as `ca` to trust it. */
  ca: string;
  caPath: string;
  /** CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1, signed by the CA. */
  server: CertKeyPair;
  /** CN/SAN wrong.example, signed by the CA: fails hostname checks for localhost. */
  wrongHost: CertKeyPair;
  /** Self-signed localhost certificate that the CA does not vouch for. */
  selfSigned: CertKeyPair;
  /** Client certificate (CN=missive test client, clientAuth), signed by the CA. */
  client: CertKeyPair;
  /** Removes the directory; the next makeTestCerts() call generates afresh. */
  cleanup(): Promise<void>;
}

const DAYS = "30";
const CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await execFileAsync("openssl", args, { cwd: dir, timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0] ?? ""} failed: ${e.stderr ?? e.message}`);
  }
}

async function pair(dir: string, name: string): Promise<CertKeyPair> {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  const [key, cert] = await Promise.all([readFile(keyPath, "utf8"), readFile(certPath, "utf8")]);
  return { key, cert, keyPath, certPath };
}

async function signedLeaf(
  dir: string,
  name: string,
  subject: string,
  extensions: string[],
): Promise<CertKeyPair> {
  await openssl(dir, ["req", "-new", ...CURVE, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject]);
  await writeFile(join(dir, `${name}.ext`), extensions.join("\n") + "\n");
  await openssl(dir, [
    "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key",
    // A random serial per leaf: no shared serial file, so leaves can be signed in parallel.
    "-set_serial", `0x${randomSerial()}`,
    "-days", DAYS, "-sha256", "-extfile", `${name}.ext`, "-out", `${name}.crt`,
  ]);
  return pair(dir, name);
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return bytes.toString("hex");
}

const SERVER_EXT = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment", "extendedKeyUsage=serverAuth"];

async function generate(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), "missive-certs-"));
  liveDirs.add(dir);
  try {
    const selfSignedDone = openssl(dir, [
      "req", "-x509", ...CURVE, "-keyout", "self-signed.key", "-out", "self-signed.crt",
      "-days", DAYS, "-sha256", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
      "-addext", "basicConstraints=critical,CA:FALSE",
      "-addext", "extendedKeyUsage=serverAuth",
    ]);
    await openssl(dir, [
      "req", "-x509", ...CURVE, "-keyout", "ca.key", "-out", "ca.crt",
      "-days", DAYS, "-sha256", "-subj", "/CN=missive test CA",
      "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    const [server, wrongHost, client] = await Promise.all([
      signedLeaf(dir, "server", "/CN=localhost", [
        ...SERVER_EXT, "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
      ]),
      signedLeaf(dir, "wrong-host", "/CN=wrong.example", [
        ...SERVER_EXT, "subjectAltName=DNS:wrong.example",
      ]),
      signedLeaf(dir, "client", "/CN=missive test client", [
        "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth",
      ]),
      selfSignedDone,
    ]);
    const selfSigned = await pair(dir, "self-signed");
    const caPath = join(dir, "ca.crt");
    const ca = await readFile(caPath, "utf8");
    return {
      dir, ca, caPath, server, wrongHost, selfSigned, client,
      async cleanup() {
        if (cached !== undefined && (await cached.catch(() => undefined))?.dir === dir) cached = undefined;
        liveDirs.delete(dir);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    liveDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

let cached: Promise<TestCerts> | undefined;
const liveDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * A CA plus server, wrong-host, self-signed and client certificates. Generated once
 * per process (i.e. once per test file with vitest's forks pool) and removed at exit.
 */
export function makeTestCerts(): Promise<TestCerts> {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
    });
  }
  if (cached === undefined) {
    const p = generate();
    cached = p;
    p.catch(() => {
      if (cached === p) cached = undefined;
    });
  }
  return cached;
}
