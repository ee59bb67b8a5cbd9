/**
 * ARCHITECTURE.md is the map of the code: every folder under src/ and every module at the top
 * of src/ must be on it (named by its path, `src/backends`, `src/settings.ts`), so a new one
 * cannot be added without saying where it fits. And the repository explains itself: no file
 * points readers to a design or style document kept outside it.
 */
import { execFile } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../", import.meta.url));

async function folders(dir: string, prefix: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const here = entries.filter((e) => e.isDirectory()).map((e) => `${prefix}/${e.name}`);
  const below = await Promise.all(here.map((f) => folders(join(root, f), f)));
  return [...here, ...below.flat()];
}

describe("ARCHITECTURE.md", () => {
  it("names every folder under src/ and every top-level module of src/", async () => {
    const text = await readFile(join(root, "ARCHITECTURE.md"), "utf8");
    const modules = (await readdir(join(root, "src"))).filter((n) => n.endsWith(".ts")).map((n) => `src/${n}`);
    const wanted = [...(await folders(join(root, "src"), "src")), ...modules];
    expect(wanted.length).toBeGreaterThan(10);
    const missing = wanted.filter((path) => !new RegExp(`${path.replace(/[.]/g, "\\.")}(?![\\w.-])`).test(text));
    expect(missing, "add a section (or a line) to ARCHITECTURE.md for each").toEqual([]);
  });

  it("no file in the repository refers to a design or style document outside it", async () => {
    const { stdout } = await promisify(execFile)("git", ["ls-files", "-co", "--exclude-standard"], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
    // Built from pieces so that this file does not match itself.
    const outside = new RegExp(["DESIGN", "\\.md|STYLE", "\\.md|\\.\\./", "shared\\b"].join(""));
    const offenders: string[] = [];
    for (const file of stdout.split("\n").filter((f) => f !== "" && !/\.(png|jpe?g|pdf|gz|tgz|eml|pem|der|p12)$/.test(f))) {
      const content = await readFile(join(root, file), "utf8").catch(() => "");
      content.split("\n").forEach((line, i) => {
        if (outside.test(line)) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
