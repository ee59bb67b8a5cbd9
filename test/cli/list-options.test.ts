/**
 * `missive send`'s bulk-mail flags: the message written by the file backend carries the
 * fields (read back by Python's email package); a bad flag is exit 2 with the message's
 * own error; the flags map onto the message options as documented.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli.js";
import { listOptionsFromArgs } from "../../src/cli/list-options.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { parseOneWithPython } from "../helpers/python-oracle.js";
import { runCli as run } from "../helpers/cli.js";



let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "missive-cli-list-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const message = ["send", "--to", "reader@example.org", "--from", "news@example.com", "--subject", "Weekly", "--body", "News"];

describe("missive send with the bulk-mail flags", () => {
  it("writes List-Unsubscribe (https and mailto), List-Unsubscribe-Post, List-Id, priority and Auto-Submitted", async () => {
    const r = await run([
      ...message,
      "--list-unsubscribe", "https://example.com/u/abc", "--list-unsubscribe", "mailto:unsubscribe@example.com?subject=unsubscribe", "--one-click",
      "--list-id", "Weekly news <weekly.example.com>", "--list-help", "https://example.com/help", "--priority", "high", "--auto-submitted", "auto-generated",
      "--url", `file://${dir}`,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [file] = (await readdir(dir)).filter((f) => f.endsWith(".eml"));
    const py = await parseOneWithPython(await readFile(join(dir, file!)));
    const field = (name: string) => py.headers.find(([n]) => n === name)?.[1];
    expect(field("List-Unsubscribe")).toBe("<https://example.com/u/abc>, <mailto:unsubscribe@example.com?subject=unsubscribe>");
    expect(field("List-Unsubscribe-Post")).toBe("List-Unsubscribe=One-Click");
    expect(field("List-Id")).toBe("Weekly news <weekly.example.com>");
    expect(field("List-Help")).toBe("<https://example.com/help>");
    expect(field("Auto-Submitted")).toBe("auto-generated");
    expect([field("X-Priority"), field("X-MSMail-Priority"), field("Importance")]).toEqual(["1 (Highest)", "High", "high"]);
  });

  it("--one-click with an http: URL is exit 2 with the reason, and nothing is written", async () => {
    const out = join(dir, "refused");
    const r = await run([...message, "--list-unsubscribe", "http://example.com/u", "--one-click", "--url", `file://${out}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/BadHeaderError: One-click unsubscribe \(RFC 8058\) needs an https: URL/);
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });

  it("--help lists the flags", async () => {
    const writes: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => (writes.push(String(chunk)), true));
    try {
      expect(await main(["send", "--help"])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    for (const flag of ["--list-unsubscribe URL", "--one-click", "--list-id", "--priority high|normal|low", "--auto-submitted"]) expect(writes.join("")).toContain(flag);
  });
});

describe("listOptionsFromArgs", () => {
  it("sorts --list-unsubscribe values into url and mailto by scheme; --one-click sets oneClick", () => {
    expect(listOptionsFromArgs({ "list-unsubscribe": ["MAILTO:u@example.com", "https://example.com/u"], "one-click": true })).toEqual({
      listUnsubscribe: { mailto: "MAILTO:u@example.com", url: "https://example.com/u", oneClick: true },
    });
    expect(listOptionsFromArgs({ "list-id": "<a.example.com>", "list-archive": ["https://example.com/a"], priority: "low", "auto-submitted": "auto-replied" })).toEqual({
      listId: "<a.example.com>", listArchive: ["https://example.com/a"], priority: "low", autoSubmitted: "auto-replied",
    });
    expect(listOptionsFromArgs({})).toEqual({});
  });

  it("refuses two URLs of one kind, and --one-click without --list-unsubscribe", () => {
    expect(() => listOptionsFromArgs({ "list-unsubscribe": ["https://a.example/u", "https://b.example/u"] })).toThrow(/at most one https: URL/);
    expect(() => listOptionsFromArgs({ "list-unsubscribe": ["mailto:a@example.com", "mailto:b@example.com"] })).toThrow(/at most one mailto: URI/);
    expect(() => listOptionsFromArgs({ "one-click": true })).toThrow(InvalidArgumentError);
  });
});
