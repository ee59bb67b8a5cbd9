/**
 * One Python process per batch, the way both oracles talk to theirs: one JSON request per
 * line on stdin (each given its index as `id`), one JSON answer per line on stdout, in any
 * order. Debian's /usr/bin/python3 when present (another python3 first on PATH may lack the
 * Debian modules). Bounded: the process is killed after `timeoutMs`.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

export const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** The answers in request order; throws with the process's stderr when it fails or answers short. */
export async function askPython(script: string, requests: readonly Record<string, unknown>[], timeoutMs: number, name: string): Promise<(Record<string, unknown> & { id: number })[]> {
  if (requests.length === 0) return [];
  const child = spawn(PYTHON, [script], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PYTHONIOENCODING: "utf-8", PYTHONDONTWRITEBYTECODE: "1" } });
  const stdout: Buffer[] = [];
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => stdout.push(c));
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (c: string) => {
    if (stderr.length < 65536) stderr += c;
  });
  child.stdin.on("error", () => undefined); // reported through the exit code instead
  const exited = new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${PYTHON}: ${err.message}`));
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  child.stdin.end(requests.map((r, id) => JSON.stringify({ ...r, id }) + "\n").join(""));
  const code = await exited;
  const lines = Buffer.concat(stdout).toString("utf8").split("\n").filter((l) => l.length > 0);
  if (code !== 0 || lines.length !== requests.length) throw new Error(`${name} failed (exit ${code}, ${lines.length}/${requests.length} answers)\n${stderr}`);
  const answers = new Array<Record<string, unknown> & { id: number }>(requests.length);
  for (const line of lines) {
    const answer = JSON.parse(line) as Record<string, unknown> & { id: number };
    answers[answer.id] = answer;
  }
  return answers;
}
