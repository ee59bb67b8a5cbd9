/**
 * `missive send`'s DKIM flags: the message's `dkim` from the command line. cli.ts adds
 * these to its options and help. Without them, `send` signs as configured (the `dkim`
 * setting, from EMAIL_DKIM_* in a shell); with them, these signers replace that for the
 * message, and `--no-dkim` sends it unsigned.
 *
 *   --dkim-domain example.com --dkim-selector rsa2026 --dkim-key rsa.pem
 *       [--dkim-selector ed2026 --dkim-key ed.pem]          two signatures, one domain
 *
 * Each mistake names the flag: a key file that cannot be read, a key that is not a
 * private key, a domain that is not a domain (exit 2, like any bad option).
 */
import { readFile } from "node:fs/promises";
import { InvalidArgumentError } from "../errors.js";
import { signerNamed, toSigners, type DkimSigner } from "../dkim/options.js";

export const DKIM_CLI_OPTIONS = {
  "dkim-domain": { type: "string", multiple: true },
  "dkim-selector": { type: "string", multiple: true },
  "dkim-key": { type: "string", multiple: true },
  "no-dkim": { type: "boolean" },
} as const;

export const DKIM_CLI_HELP = `
DKIM (default: as configured, EMAIL_DKIM_DOMAIN, EMAIL_DKIM_SELECTOR and
EMAIL_DKIM_PRIVATE_KEY_FILE; these flags replace it for this message):
  --dkim-domain DOMAIN    the signing domain (d=), e.g. example.com; once, or once
                     per --dkim-selector
  --dkim-selector NAME    the key's selector (s=); repeat it with --dkim-key for a
                     second signature (RSA and Ed25519)
  --dkim-key FILE    the private key (PEM), as missive dkim keygen writes it
  --no-dkim          send this message unsigned`;

export interface DkimCliValues {
  "dkim-domain"?: string[] | undefined;
  "dkim-selector"?: string[] | undefined;
  "dkim-key"?: string[] | undefined;
  "no-dkim"?: boolean | undefined;
}

/** The message's `dkim` the flags ask for: signers, `false` (--no-dkim), or undefined (no flag: as configured). */
export async function dkimFromArgs(v: DkimCliValues): Promise<DkimSigner[] | false | undefined> {
  const domains = v["dkim-domain"] ?? [];
  const selectors = v["dkim-selector"] ?? [];
  const keys = v["dkim-key"] ?? [];
  const given = domains.length + selectors.length + keys.length > 0;
  if (v["no-dkim"]) {
    if (given) throw new InvalidArgumentError("--no-dkim sends the message unsigned; it cannot be given with --dkim-domain, --dkim-selector or --dkim-key");
    return false;
  }
  if (!given) return undefined;
  if (selectors.length === 0 || keys.length !== selectors.length) {
    throw new InvalidArgumentError("give --dkim-selector and --dkim-key in pairs, one pair per signature");
  }
  if (domains.length !== 1 && domains.length !== selectors.length) {
    throw new InvalidArgumentError(domains.length === 0 ? "--dkim-domain is required with --dkim-selector and --dkim-key" : "give --dkim-domain once, or once per --dkim-selector");
  }
  const signers: DkimSigner[] = [];
  for (const [i, selector] of selectors.entries()) {
    const path = keys[i]!;
    const names = { domain: "--dkim-domain", selector: "--dkim-selector", privateKey: `--dkim-key ${path}` };
    signers.push(signerNamed({ domain: domains[domains.length === 1 ? 0 : i]!, selector, privateKey: await readKey(path) }, "--dkim", names));
  }
  return toSigners(signers);
}

async function readKey(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new InvalidArgumentError(`--dkim-key ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
