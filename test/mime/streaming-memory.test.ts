import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const probe = fileURLToPath(new URL("./memory-probe.ts", import.meta.url));

describe("streaming a large file attachment", () => {
  it("keeps peak memory growth under 64 MiB for a 256 MiB attachment", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", "--import", "tsx", probe, "256"], {
      timeout: 240_000,
      maxBuffer: 1024 * 1024,
    });
    const result = JSON.parse(stdout.trim().split("\n").pop()!) as { bytes: number; expected: number; peakDelta: number };
    expect(result.bytes).toBe(result.expected);
    expect(result.bytes).toBeGreaterThan(256 * 1024 * 1024 * (4 / 3));
    expect(result.peakDelta).toBeLessThan(64 * 1024 * 1024);
  }, 300_000);
});
