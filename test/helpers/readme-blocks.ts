// The README's runnable examples: the fenced blocks after a marker comment, and the edits a
// test makes to them (each replaced text must occur exactly once, so that a README edit the
// test does not follow fails the test instead of passing unseen).
import { readFile } from "node:fs/promises";
import { expect } from "vitest";

/** The first `count` fenced blocks after `marker` in the file `readme`. */
export async function readmeBlocks(readme: string, marker: string, count: number): Promise<string[]> {
  const text = await readFile(readme, "utf8");
  const at = text.indexOf(marker);
  expect(at, `the README holds ${JSON.stringify(marker)}`).toBeGreaterThan(-1);
  const blocks = [...text.slice(at).matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).slice(0, count);
  expect(blocks, `${count} fenced blocks after ${JSON.stringify(marker)}`).toHaveLength(count);
  return blocks;
}

export function replaceOnce(code: string, from: string, to: string): string {
  expect(code.split(from).length - 1, `the README example holds ${JSON.stringify(from)} once`).toBe(1);
  return code.replace(from, () => to);
}
