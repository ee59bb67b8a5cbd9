// dkimpy (Debian python3-dkim) as the independent judge of DKIM signatures and of the
// canonical forms. One Python process per batch: JSON lines in, JSON lines out. DNS is
// never asked: key records come with each request.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "oracle", "dkim_oracle.py");
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

export interface SignatureVerdict {
  ok: boolean;
  /** The exception dkimpy raised (an expired x=, a malformed tag), else null. */
  error: string | null;
  /** dkimpy's last log lines (why a signature failed: body hash mismatch, ...). */
  log: string[];
}

/** Key records by DNS name, e.g. { "s1._domainkey.example.com": "v=DKIM1; k=rsa; p=..." }. */
export type KeyRecords = Record<string, string>;

export interface CanonicalForms {
  body: { simple: Buffer; relaxed: Buffer };
  fields: { simple: Buffer[]; relaxed: Buffer[] };
}

async function run(requests: readonly Record<string, unknown>[], timeoutMs: number): Promise<Record<string, unknown>[]> {
  if (requests.length === 0) return [];
  const child = spawn(PYTHON, [SCRIPT], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
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
      reject(new Error(`dkim oracle timed out after ${timeoutMs} ms\n${stderr}`));
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
  if (code !== 0 || lines.length !== requests.length) throw new Error(`dkim oracle failed (exit ${code}, ${lines.length}/${requests.length} answers)\n${stderr}`);
  const answers = new Array<Record<string, unknown>>(requests.length);
  for (const line of lines) {
    const answer = JSON.parse(line) as Record<string, unknown> & { id: number };
    if (typeof answer["error"] === "string") throw new Error(`dkim oracle request #${answer.id} failed: ${answer["error"]}\n${String(answer["traceback"] ?? "")}`);
    answers[answer.id] = answer;
  }
  return answers;
}

/** dkimpy's verdict on every DKIM-Signature of every message (top first), in one process. */
export async function verifyWithDkimpy(
  messages: readonly { message: Uint8Array; records: KeyRecords }[],
  opts: { timeoutMs?: number } = {},
): Promise<SignatureVerdict[][]> {
  const answers = await run(
    messages.map(({ message, records }) => ({ op: "verify", message: Buffer.from(message).toString("base64"), records })),
    opts.timeoutMs ?? 120_000,
  );
  return answers.map((a) => a["results"] as SignatureVerdict[]);
}

/** dkimpy's canonical forms of bodies and header fields (`[name, value-with-final-CRLF]`, as dkimpy splits a header line). */
export async function canonicalizeWithDkimpy(
  inputs: readonly { body: Uint8Array; fields?: readonly (readonly [Uint8Array, Uint8Array])[] }[],
): Promise<CanonicalForms[]> {
  const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
  const answers = await run(
    inputs.map(({ body, fields = [] }) => ({ op: "canon", body: b64(body), fields: fields.map(([n, v]) => [b64(n), b64(v)]) })),
    60_000,
  );
  const bytes = (s: string) => Buffer.from(s, "base64");
  return answers.map((a) => {
    const body = a["body"] as { simple: string; relaxed: string };
    const fields = a["fields"] as { simple: string[]; relaxed: string[] };
    return {
      body: { simple: bytes(body.simple), relaxed: bytes(body.relaxed) },
      fields: { simple: fields.simple.map(bytes), relaxed: fields.relaxed.map(bytes) },
    };
  });
}
