import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FIXED_DATE, FIXTURE_CASES, seededRandom } from "./fixture-cases.js";

const fixturesDir = fileURLToPath(new URL("../../fixtures/", import.meta.url));
const update = process.env.UPDATE_FIXTURES === "1";

export async function buildFixture(name: string): Promise<Buffer> {
  const fixture = FIXTURE_CASES.find((c) => c.name === name);
  if (!fixture) throw new Error(`no fixture ${name}`);
  const message = fixture.build({ clock: () => FIXED_DATE, random: seededRandom(fixture.name) });
  message.headers = { ...message.headers, "X-Fixture-Rule": fixture.rule };
  return message.asBytes(fixture.policy);
}

describe("byte-exact fixtures", () => {
  it("has at least 30 cases with distinct names", () => {
    expect(FIXTURE_CASES.length).toBeGreaterThanOrEqual(30);
    expect(new Set(FIXTURE_CASES.map((c) => c.name)).size).toBe(FIXTURE_CASES.length);
  });

  for (const fixture of FIXTURE_CASES) {
    it(`${fixture.name}: ${fixture.rule}`, async () => {
      const actual = await buildFixture(fixture.name);
      const path = `${fixturesDir}${fixture.name}.eml`;
      if (update || !existsSync(path)) {
        if (!update) throw new Error(`fixtures/${fixture.name}.eml is missing; run with UPDATE_FIXTURES=1 to create it`);
        await mkdir(fixturesDir, { recursive: true });
        await writeFile(path, actual);
      }
      const expected = await readFile(path);
      expect(actual.toString("latin1")).toBe(expected.toString("latin1"));
    });
  }
});
