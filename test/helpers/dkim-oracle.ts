// dkimpy (Debian python3-dkim) as the independent judge of DKIM signatures and of the
// canonical forms. One Python process per batch: JSON lines in, JSON lines out. DNS is
// never asked: key records come with each request.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { askPython } from "./python-lines.js";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "oracle", "dkim_oracle.py");

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
  const answers = await askPython(SCRIPT, requests, timeoutMs, "dkim oracle");
  for (const answer of answers) {
    if (typeof answer["error"] === "string") throw new Error(`dkim oracle request #${answer.id} failed: ${answer["error"]}\n${String(answer["traceback"] ?? "")}`);
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
