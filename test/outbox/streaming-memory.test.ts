import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const probe = fileURLToPath(new URL("./memory-probe.ts", import.meta.url));

describe("a 1 GiB attachment through the outbox", () => {
  it("is enqueued into the spool and sent to a loopback sink with peak memory growth under 64 MiB", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", "--import", "tsx", probe, "1024"], { timeout: 280_000, maxBuffer: 1024 * 1024 });
    const result = JSON.parse(stdout.trim().split("\n").pop()!) as { stored: number; state: string; enqueuedPeak: number; peakDelta: number };
    console.log(`outbox memory: ${JSON.stringify(result)}`);
    expect(result.state).toBe("sent");
    // base64 of 1 GiB, in 76-character lines: more than 4/3 of it.
    expect(result.stored).toBeGreaterThan(1024 * 1024 * 1024 * (4 / 3));
    expect(result.enqueuedPeak).toBeLessThan(64 * 1024 * 1024);
    expect(result.peakDelta).toBeLessThan(64 * 1024 * 1024);
  }, 300_000);
});
