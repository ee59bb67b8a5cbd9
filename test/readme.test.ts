/**
 * The README is the user's first page: it must open with the two commands, and its error
 * table is generated from ERROR_CODES so that it cannot drift. After changing a code, run
 * `UPDATE_README=1 npx vitest run test/readme.test.ts`.
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../src/errors.js";
import * as missive from "../src/index.js";

const path = fileURLToPath(new URL("../README.md", import.meta.url));
const START = "<!-- error-codes:start (generated from src/errors.ts ERROR_CODES; test/readme.test.ts keeps it in sync) -->";
const END = "<!-- error-codes:end -->";

function errorTable(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, meaning]) => `| \`${code}\` | ${meaning} |`);
  return ["| code | meaning |", "| --- | --- |", ...rows].join("\n");
}

describe("README", () => {
  it("opens with the two commands: the main job and the tests", async () => {
    const head = (await readFile(path, "utf8")).split("\n").slice(0, 40).join("\n");
    expect(head).toContain("npm ci && npm run demo");
    expect(head).toContain("bash .ci/run");
  });

  it("documents every error code, generated from ERROR_CODES", async () => {
    const text = await readFile(path, "utf8");
    const start = text.indexOf(START);
    const end = text.indexOf(END);
    expect(start).toBeGreaterThan(-1);
    expect(end).toBeGreaterThan(start);
    const wanted = `${START}\n${errorTable()}\n${END}`;
    if (process.env.UPDATE_README === "1") await writeFile(path, text.slice(0, start) + wanted + text.slice(end + END.length));
    else expect(text.slice(start, end + END.length)).toBe(wanted);
  });

  it("names only exports that exist", async () => {
    const text = await readFile(path, "utf8");
    const named = [...text.matchAll(/import \{([^}]+)\} from "missive"/g)].flatMap((m) => m[1]!.split(",").map((s) => s.trim()).filter(Boolean));
    expect(named.length).toBeGreaterThan(0);
    for (const name of named) expect(missive, name).toHaveProperty(name);
  });
});
