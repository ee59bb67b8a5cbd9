/**
 * README "Sending bulk mail": its example runs as written, against aiosmtpd over STARTTLS
 * with AUTH, and what arrives is verified by dkimpy and read by Python's email package. The
 * only changes made to the block: the import points at src/, the key file is the test key,
 * and the server is the local aiosmtpd trusted through the test CA. The signature is made
 * by the `dkim` setting inside the SMTP backend. Each replaced text must
 * occur exactly once, so an edit to the example that this test does not follow fails here.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAiosmtpd, type AiosmtpdServer } from "./helpers/aiosmtpd.js";
import { makeTestCerts, type TestCerts } from "./helpers/certs.js";
import { verifyWithDkimpy } from "./helpers/dkim-oracle.js";
import { parseOneWithPython } from "./helpers/python-oracle.js";
import { readmeBlocks, replaceOnce } from "./helpers/readme-blocks.js";
import { dkimFixtures, recordFor } from "./dkim/helpers.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const MARKER = "<!-- bulk-example: test/readme-bulk.test.ts runs this block against aiosmtpd and dkimpy -->";

let certs: TestCerts;
let server: AiosmtpdServer;
let dir: string;
beforeAll(async () => {
  certs = await makeTestCerts();
  server = await startAiosmtpd({ tls: "starttls", auth: { users: { news: "s3cret pass" } } });
  dir = await mkdtemp(join(tmpdir(), "missive-readme-bulk-"));
});
afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("README: Sending bulk mail", () => {
  it("the example sends a signed one-click message that dkimpy verifies, with the documented fields", async () => {
    // The fenced blocks after the marker: the example, then the header block it documents.
    const [example, documented] = (await readmeBlocks(join(root, "README.md"), MARKER, 2)) as [string, string];
    let code = example;
    code = replaceOnce(code, 'from "missive"', `from ${JSON.stringify(join(root, "src/index.js"))}`);
    code = replaceOnce(code, 'readFileSync("s2026._domainkey.example.com.pem")', `readFileSync(${JSON.stringify(`${dkimFixtures}keys/test-rsa-2048.pem`)})`);
    code = replaceOnce(code, 'host: "smtp.example.com", port: 587,', `host: ${JSON.stringify(server.host)}, port: ${server.port}, tlsOptions: { ca: ${JSON.stringify(certs.ca)} },`);
    const file = join(dir, "example.ts");
    await writeFile(file, code);
    const before = (await server.messages()).length;
    const saved = process.env.SMTP_PASSWORD;
    process.env.SMTP_PASSWORD = "s3cret pass";
    try {
      await import(file);
    } finally {
      if (saved === undefined) delete process.env.SMTP_PASSWORD;
      else process.env.SMTP_PASSWORD = saved;
    }

    const [stored] = (await server.waitForMessages(before + 1)).slice(before);
    expect(stored!.tls).toBe(true);
    expect(stored!.authUser).toBe("news");
    expect(stored!.rcptTos).toEqual(["reader@example.org"]);
    const [verdicts] = await verifyWithDkimpy([{ message: stored!.data, records: { "s2026._domainkey.example.com": recordFor(`${dkimFixtures}keys/test-rsa-2048.pem`) } }]);
    expect(verdicts!.map((v) => v.ok)).toEqual([true]);

    const py = await parseOneWithPython(stored!.data);
    expect(py.defects).toEqual([]);
    expect(py.messageId).toMatch(/^<[^@>]+@example\.com>$/);
    expect(py.textBodies.join("")).toContain("Unsubscribe: https://example.com/unsubscribe?t=b7Qf3kX9wL2m");
    // Every line of the documented header block is in what was sent (lines with "…" stand for what varies).
    const sent = stored!.data.toString("latin1");
    const head = sent.slice(0, sent.indexOf("\r\n\r\n") + 2);
    for (const line of documented.split("\n").filter((l) => l !== "" && !l.includes("…"))) expect(head).toContain(`${line}\r\n`);
    const signed = head.match(/^DKIM-Signature:.*(?:\r\n[ \t].*)*/m)![0].replace(/\s+/g, "").match(/;h=([^;]*)/)![1]!.toLowerCase().split(":");
    expect(signed).toEqual(expect.arrayContaining(["from", "message-id", "list-id", "list-unsubscribe", "list-unsubscribe-post"]));
  });
});
