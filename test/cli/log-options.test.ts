/**
 * `--log-level` and `--log-format` of `missive send` and `missive check`: JSON lines (or
 * text) on stderr, the report and check output on stdout as before; the dialogue at debug
 * with AUTH redacted; bad values are usage errors (exit 2).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LineLogger } from "../../src/cli/log-options.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { makeTestCerts } from "../helpers/certs.js";
import { runCli as run } from "../helpers/cli.js";

const PASSWORD = "pa55-Wq7Lx";


const lines = (stderr: string) => stderr.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>);

let server: AiosmtpdServer;
let dir: string;
let caPath: string;
beforeAll(async () => {
  const certs = await makeTestCerts();
  dir = await mkdtemp(join(tmpdir(), "missive-cli-log-"));
  caPath = join(dir, "ca.pem");
  await writeFile(caPath, certs.ca);
  server = await startAiosmtpd({ tls: "starttls", auth: { users: { alice: PASSWORD } }, rejectRecipients: ["gone@example.com"] });
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("missive send/check --log-level --log-format", () => {
  it("send --log-format json: one JSON object per line on stderr, the report on stdout", async () => {
    const url = `smtp://127.0.0.1:${server.port}`;
    const r = await run(["send", "--to", "b@example.com", "--to", "gone@example.com", "--from", "a@example.org", "--subject", "s", "--body", "secret body 7731", "--url", url, "--log-format", "json"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^accepted b@example\.com/m);
    const records = lines(r.stderr);
    expect(records.map((x) => x["event"])).toEqual(["smtp.connect", "message.partial", "smtp.close"]);
    for (const x of records) {
      expect(x["level"]).toMatch(/^(info|warn)$/);
      expect(new Date(x["time"] as string).toISOString()).toBe(x["time"]);
      expect(typeof x["msg"]).toBe("string");
    }
    expect(records[1]).toMatchObject({ level: "warn", backend: "smtp", route: "cli", recipients: 2, accepted: 1, rejected: 1, host: "127.0.0.1", port: server.port });
    expect(r.stderr).not.toContain("secret body");
    expect(r.stderr).not.toContain("@example.com");
  });

  it("check --log-level debug --log-format json: TLS, AUTH and the dialogue, AUTH redacted, no password", async () => {
    const r = await run(["check", `smtp://alice:${PASSWORD}@localhost:${server.port}?tls=starttls`, "--ca", caPath, "--log-level", "debug", "--log-format", "json"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("AUTH: ok (authenticated as alice)");
    const records = lines(r.stderr);
    const events = records.map((x) => x["event"]).filter((e) => e !== "smtp.command" && e !== "smtp.reply");
    // Two connections: the capabilities without credentials, then the AUTH check.
    expect(events).toEqual(["smtp.connect", "smtp.tls", "smtp.close", "smtp.connect", "smtp.tls", "smtp.auth", "smtp.close"]);
    const commands = records.filter((x) => x["event"] === "smtp.command").map((x) => x["command"]);
    expect(commands).toContain("STARTTLS");
    expect(commands.filter((c) => String(c).startsWith("AUTH"))).toEqual([expect.stringMatching(/^AUTH (PLAIN|LOGIN)( <redacted>)?$/)]);
    expect(r.stderr).not.toContain(PASSWORD);
    expect(r.stderr).not.toContain(Buffer.from(`\0alice\0${PASSWORD}`).toString("base64"));
    expect(r.stderr).not.toContain(Buffer.from(PASSWORD).toString("base64"));
  });

  it("text is the default format; --log-level warn leaves the info lines out; bad values are exit 2", async () => {
    const url = `smtp://127.0.0.1:${server.port}`;
    const text = await run(["send", "--to", "b@example.com", "--from", "a@example.org", "--subject", "s", "--body", "b", "--url", url, "--log-level", "info"]);
    expect(text.code).toBe(0);
    expect(text.stderr.split("\n").filter(Boolean).map((l) => /^\S+ (INFO  \S+)/.exec(l)?.[1])).toEqual(["INFO  smtp.connect", "INFO  message.sent", "INFO  smtp.close"]);
    expect(text.stderr).toMatch(/ message\.sent messageId=<\S+> backend=smtp route=cli host=127\.0\.0\.1 port=\d+ connectionId=c\d+ recipients=1 accepted=1 rejected=0 deferred=0 queueId=\S+ durationMs=\d+ replyCode=250 - message sent\n/);
    const quiet = await run(["send", "--to", "b@example.com", "--from", "a@example.org", "--subject", "s", "--body", "b", "--url", url, "--log-level", "warn"]);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe("");
    const bad = await run(["send", "--to", "b@example.com", "--subject", "s", "--body", "b", "--log-level", "verbose"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--log-level must be one of trace, debug, info, warn, error");
    const badFormat = await run(["check", url, "--log-format", "xml"]);
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr).toContain("--log-format must be json or text");
  });
});

describe("the CLI's logger", () => {
  it("checks levels, carries child bindings, quotes text values that need it", () => {
    const out: string[] = [];
    const logger = new LineLogger("info", "text", {}, (l) => out.push(l));
    expect(logger.isLevelEnabled("debug")).toBe(false);
    expect(logger.isLevelEnabled("warn")).toBe(true);
    logger.debug({ event: "smtp.command" }, "m");
    logger.child({ connectionId: "c1" }).info({ event: "smtp.close", reason: "error", error: "The server closed the connection", refused: [{ replyCode: 550 }] }, "SMTP connection closed");
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^\S+Z INFO  smtp\.close connectionId=c1 reason=error error="The server closed the connection" refused=\[\{"replyCode":550\}\] - SMTP connection closed\n$/);
    const json: string[] = [];
    new LineLogger("trace", "json", { a: 1 }, (l) => json.push(l)).trace({ event: "x", b: 2 }, "m");
    expect(JSON.parse(json[0]!)).toMatchObject({ level: "trace", a: 1, event: "x", b: 2, msg: "m" });
  });
});
