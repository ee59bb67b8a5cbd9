/**
 * Runs the `missive` command from the sources (`node --import tsx bin/missive.ts …`) as a
 * user would, in a mail environment cleared of every EMAIL_* / DEFAULT_FROM_EMAIL variable
 * (plus the ones a test sets), and gives its exit code and output.
 */
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { ENVIRONMENT_VARIABLES } from "../../src/settings.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CLI = join(ROOT, "bin/missive.ts");

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The process environment without missive's variables, then `env` on top. */
export function cleanMailEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ENVIRONMENT_VARIABLES) delete clean[name];
  return { ...clean, ...env };
}

/** `missive ...args`; a non-zero exit resolves with its code, only a failure to start rejects. */
export function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((done, fail) => {
    execFile(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: ROOT, env: cleanMailEnv(env), encoding: "utf8", timeout: 30_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return fail(error);
      done({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}
