/**
 * The SMTP connection flags `missive send` and `missive check` share: --timeout, --ca,
 * --tls, --username, --password-file. They become the SMTP backend's options (`timeout`,
 * `tlsOptions.ca`, `tls`, `username`, `password`) and win over EMAIL_URL and the EMAIL_*
 * environment. A password is only ever read from a file, so that it is not in the shell's
 * history or the process list.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { InvalidArgumentError, SmtpTimeoutError, SmtpTlsError, type MissiveError } from "../errors.js";
import { TLS_MODES } from "../smtp/config.js";

export const CONNECTION_CLI_OPTIONS = {
  timeout: { type: "string" },
  ca: { type: "string" },
  tls: { type: "string" },
  username: { type: "string" },
  "password-file": { type: "string" },
} as const;

export const CONNECTION_CLI_HELP = `
SMTP connection (over the URL and the environment):
  --timeout SECONDS  deadline for each step
  --ca FILE          trust this CA certificate (PEM) in addition to the system's
  --tls MODE         implicit, starttls, opportunistic or none
  --username NAME    the SMTP user name
  --password-file FILE  read the SMTP password from FILE (its first line)`;

export interface ConnectionCliValues {
  timeout?: string | undefined;
  ca?: string | undefined;
  tls?: string | undefined;
  username?: string | undefined;
  "password-file"?: string | undefined;
}

/** The SMTP backend options the flags ask for (none given: an empty object). */
export async function connectionOptionsFromArgs(v: ConnectionCliValues): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  if (v.timeout !== undefined) {
    const n = Number(v.timeout);
    if (!/^\d+(\.\d+)?$/.test(v.timeout) || !(n > 0) || n > 2_147_483) throw new InvalidArgumentError("--timeout must be a positive number of seconds");
    out["timeout"] = Math.max(1, Math.round(n * 1000));
  }
  if (v.ca !== undefined) out["tlsOptions"] = { ca: await readFileOption(v.ca, "--ca") };
  if (v.tls !== undefined) {
    if (!(TLS_MODES as readonly string[]).includes(v.tls)) throw new InvalidArgumentError(`--tls must be one of ${TLS_MODES.join(", ")}`);
    // The flag decides the mode, over the URL's scheme or ?tls= and EMAIL_USE_TLS/SSL.
    Object.assign(out, { tls: v.tls, useTls: false, useSsl: false });
  }
  if (v.username !== undefined) out["username"] = v.username;
  if (v["password-file"] !== undefined) {
    const password = (await readFileOption(v["password-file"], "--password-file")).split(/\r?\n/)[0]!;
    if (password === "") throw new InvalidArgumentError(`--password-file ${v["password-file"]}: the first line is empty`);
    out["password"] = password;
  }
  return out;
}

/**
 * A file named by a flag, as text; when it cannot be read, an error naming the flag, the
 * path as given and as resolved, and what to check.
 */
export async function readFileOption(path: string, option: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new InvalidArgumentError(`${option} ${path}: ${fileProblem(path, e)}`);
  }
}

/** What went wrong with `path`, and what to check, in a few words. */
export function fileProblem(path: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException)?.code;
  const where = resolve(path) === path ? "" : ` (looked for ${resolve(path)})`;
  switch (code) {
    case "ENOENT":
      return `no such file${where}; check the path and the directory the command runs in`;
    case "EACCES":
    case "EPERM":
      return `not readable${where}; check its permissions`;
    case "EISDIR":
      return `is a directory, not a file${where}`;
    case "ENOTDIR":
      return `a part of the path is not a directory${where}; check the path`;
    default:
      return code ?? (error as Error)?.message ?? String(error);
  }
}

/** Where a TLS or greeting failure's fix is a flag, the flag (the library's hint names the option). */
export function connectionFlagHint(e: MissiveError): string | undefined {
  if (e instanceof SmtpTlsError) {
    switch (e.tlsCode) {
      case "DEPTH_ZERO_SELF_SIGNED_CERT":
      case "SELF_SIGNED_CERT_IN_CHAIN":
      case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
      case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
      case "UNABLE_TO_GET_ISSUER_CERT":
        return "on the command line, trust the server's CA with --ca FILE";
      case "ERR_SSL_WRONG_VERSION_NUMBER":
        return "on the command line, --tls starttls (or --tls none) if this port does not speak TLS from the start";
      default:
        return undefined;
    }
  }
  if (e instanceof SmtpTimeoutError && e.phase === "greeting") return "on the command line, --tls implicit if this port expects TLS from the first byte";
  return undefined;
}
