/**
 * The README is the user's first page: it must open with the two commands, and its error
 * table is generated from ERROR_CODES so that it cannot drift. After changing a code, run
 * `UPDATE_README=1 npx vitest run test/readme.test.ts`.
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../src/errors.js";
import { CLASSIFICATION_RULES } from "../src/errors/classify.js";
import * as missive from "../src/index.js";
import { RECIPIENT_ACTIONS, RULE_ACTIONS, decisionRows } from "../src/delivery/decisions.js";

const path = fileURLToPath(new URL("../README.md", import.meta.url));
const START = "<!-- error-codes:start (generated from src/errors.ts ERROR_CODES; test/readme.test.ts keeps it in sync) -->";
const END = "<!-- error-codes:end -->";

const CLASS_START = "<!-- classification:start (generated from src/errors/classify.ts CLASSIFICATION_RULES; test/readme.test.ts keeps it in sync) -->";
const CLASS_END = "<!-- classification:end -->";

function classificationTable(): string {
  const rows = CLASSIFICATION_RULES.map((r) => `| ${r.rule} | \`${r.verdict}\` | ${typeof r.transient === "boolean" ? (r.transient ? "yes" : "no") : "depends"} |`);
  return ["| when | verdict | retryable |", "| --- | --- | --- |", ...rows].join("\n");
}

const DECISIONS_START = "<!-- decisions:start (generated from src/delivery/decisions.ts and CLASSIFICATION_RULES; test/readme.test.ts keeps it in sync) -->";
const DECISIONS_END = "<!-- decisions:end -->";

function decisionTable(): string {
  const rows = decisionRows().map((r) => `| ${r.when} | \`${r.verdict}\` | ${r.action} | ${r.circuit ? "yes" : "no"} |`);
  const recipients = Object.entries(RECIPIENT_ACTIONS).map(([verdict, action]) => `| \`${verdict}\` | ${action} |`);
  return [
    "| failure of a try (first match wins) | verdict | what the engine does | counts toward the circuit |",
    "| --- | --- | --- | --- |",
    ...rows,
    "",
    "| a recipient's RCPT reply (2xx `accepted`, 452 4.5.3 `over-limit`, other 4xx `deferred`, 5xx `rejected`) | what the engine does |",
    "| --- | --- |",
    ...recipients,
  ].join("\n");
}

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

  it("documents the classification table, generated from CLASSIFICATION_RULES", async () => {
    const text = await readFile(path, "utf8");
    const start = text.indexOf(CLASS_START);
    const end = text.indexOf(CLASS_END);
    expect(start).toBeGreaterThan(-1);
    expect(end).toBeGreaterThan(start);
    const wanted = `${CLASS_START}\n${classificationTable()}\n${CLASS_END}`;
    if (process.env.UPDATE_README === "1") await writeFile(path, text.slice(0, start) + wanted + text.slice(end + CLASS_END.length));
    else expect(text.slice(start, end + CLASS_END.length)).toBe(wanted);
  });

  it("documents the delivery engine's decision table, generated from its actions and CLASSIFICATION_RULES", async () => {
    const text = await readFile(path, "utf8");
    const start = text.indexOf(DECISIONS_START);
    const end = text.indexOf(DECISIONS_END);
    expect(start).toBeGreaterThan(-1);
    expect(end).toBeGreaterThan(start);
    // Every rule-specific action names a rule that exists (a renamed rule must not lose its words).
    for (const rule of Object.keys(RULE_ACTIONS)) expect(CLASSIFICATION_RULES.map((r) => r.rule)).toContain(rule);
    const wanted = `${DECISIONS_START}\n${decisionTable()}\n${DECISIONS_END}`;
    if (process.env.UPDATE_README === "1") await writeFile(path, text.slice(0, start) + wanted + text.slice(end + DECISIONS_END.length));
    else expect(text.slice(start, end + DECISIONS_END.length)).toBe(wanted);
  });

  it("names only exports that exist", async () => {
    const text = await readFile(path, "utf8");
    const named = [...text.matchAll(/import \{([^}]+)\} from "missive"/g)].flatMap((m) => m[1]!.split(",").map((s) => s.trim()).filter(Boolean));
    expect(named.length).toBeGreaterThan(0);
    for (const name of named) expect(missive, name).toHaveProperty(name);
  });
});
