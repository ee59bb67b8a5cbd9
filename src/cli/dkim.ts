/**
 * `missive dkim`: make a key and its DNS record, show the record of a key, sign a message.
 *
 *   missive dkim keygen --domain example.com --selector s2026 [--type rsa|ed25519] [--bits 2048] [--out FILE]
 *   missive dkim record --domain example.com --selector s2026 --key FILE
 *   missive dkim sign --domain example.com --selector s2026 --key FILE [--selector S --key FILE ...] [MESSAGE|-]
 *
 * Exit codes as for every missive command: 0 done, 1 a file could not be read or written,
 * 2 bad usage or a bad option (domain, selector, key).
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { MissiveError } from "../errors.js";
import { keyRecordName, loadSigningKey, zoneFileLine } from "../dkim/keys.js";
import { selectorName, signingDomain, type DkimCanonicalization, type DkimOptions } from "../dkim/options.js";
import { signMessage } from "../dkim/sign-message.js";

const USAGE = 2;
const FAILED = 1;

class UsageError extends Error {}
class FileError extends Error {}

const HELP = `Usage:
  missive dkim keygen --domain DOMAIN --selector SELECTOR [--type rsa|ed25519] [--bits 2048] [--out FILE]
  missive dkim record --domain DOMAIN --selector SELECTOR --key FILE
  missive dkim sign --domain DOMAIN --selector SELECTOR --key FILE [MESSAGE|-]

keygen  makes a private key, writes it to FILE (mode 0600; default
        SELECTOR._domainkey.DOMAIN.pem, never overwritten; "-" prints it), and
        prints the DNS TXT record to publish, split into strings of at most 255
        bytes. RSA 2048 by default (--bits 1024, 2048, 3072 or 4096); Ed25519
        with --type ed25519 (not every receiver checks Ed25519 yet: sign with both).
record  prints the DNS TXT record of an existing private key.
sign    prints MESSAGE (a file, or stdin with "-" or nothing) with DKIM-Signature
        fields in front. Repeat --selector and --key (in pairs) for several
        signatures, e.g. RSA and Ed25519.
        --canonicalization relaxed/relaxed (default) | relaxed/simple | simple/relaxed | simple/simple
        --identity ADDR    the i= tag, e.g. @mail.example.com`;

const KEYGEN = {
  domain: { type: "string" },
  selector: { type: "string" },
  type: { type: "string" },
  bits: { type: "string" },
  out: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const RECORD = {
  domain: { type: "string" },
  selector: { type: "string" },
  key: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const SIGN = {
  domain: { type: "string" },
  selector: { type: "string", multiple: true },
  key: { type: "string", multiple: true },
  canonicalization: { type: "string" },
  identity: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Out = (line: string) => void;
const out: Out = (line) => process.stdout.write(`${line}\n`);
const err: Out = (line) => process.stderr.write(`${line}\n`);

export async function dkimCommand(argv: readonly string[]): Promise<number> {
  const [sub, ...args] = argv;
  try {
    switch (sub) {
      case "keygen":
        return await keygen(args);
      case "record":
        return await record(args);
      case "sign":
        return await sign(args);
      case "-h":
      case "--help":
      case "help":
        out(HELP);
        return 0;
      case undefined:
        err(HELP);
        return USAGE;
      default:
        throw new UsageError(`unknown dkim command "${sub}" (keygen, record or sign)`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof MissiveError) {
      err(`missive: ${e instanceof MissiveError ? `${e.name}: ` : ""}${e.message}`);
      return USAGE;
    }
    err(`missive: ${(e as Error)?.message ?? String(e)}`);
    return FAILED;
  }
}

function parse<T extends NonNullable<ParseArgsConfig["options"]>>(args: readonly string[], options: T, positionals: boolean) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: positionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function required(value: string | undefined, option: string): string {
  if (value === undefined || value === "") throw new UsageError(`${option} is required (try: missive dkim --help)`);
  return value;
}

async function keygen(args: readonly string[]): Promise<number> {
  const { values: v } = parse(args, KEYGEN, false);
  if (v.help) {
    out(HELP);
    return 0;
  }
  const domain = signingDomain(required(v.domain, "--domain"), "--domain");
  const selector = selectorName(required(v.selector, "--selector"), "--selector");
  const type = v.type ?? "rsa";
  if (type !== "rsa" && type !== "ed25519") throw new UsageError(`--type must be rsa or ed25519, not ${JSON.stringify(type)}`);
  if (type === "ed25519" && v.bits !== undefined) throw new UsageError("--bits is for RSA keys; an Ed25519 key is always 256 bits");
  const bits = v.bits === undefined ? 2048 : Number(v.bits);
  if (![1024, 2048, 3072, 4096].includes(bits)) throw new UsageError("--bits must be 1024, 2048, 3072 or 4096");
  const path = v.out ?? `${keyRecordName(selector, domain)}.pem`;

  const { privateKey } = type === "rsa" ? generateKeyPairSync("rsa", { modulusLength: bits }) : generateKeyPairSync("ed25519");
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  // With the key on stdout, everything else goes to stderr so that stdout is only the key.
  const say = path === "-" ? err : out;
  if (path === "-") process.stdout.write(pem);
  else {
    await writeSecret(path, pem);
    say(`Wrote the ${type === "rsa" ? `RSA ${bits}-bit` : "Ed25519"} private key to ${path} (mode 0600). Keep it secret; sign with it.`);
  }
  if (type === "rsa" && bits < 2048) say("Note: 1024-bit RSA is the least receivers accept; 2048 is recommended.");
  say("");
  say(`Publish this DNS TXT record (name ${keyRecordName(selector, domain)}):`);
  say("");
  say(zoneFileLine(selector, domain, privateKey));
  say("");
  say(`In a DNS provider's web form: name ${selector}._domainkey (under ${domain}), type TXT, value the quoted strings joined without the quotes.`);
  return 0;
}

/** Creates the file with mode 0600 and refuses to replace one: the old key may be the one in DNS. */
async function writeSecret(path: string, contents: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, "wx", 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new UsageError(`${path} exists; it may be the key your DNS record names. Remove it or choose another --out`);
    throw new FileError(`${path}: ${code ?? (e as Error).message}`);
  }
  try {
    await handle.chmod(0o600); // whatever the umask
    await handle.writeFile(contents);
  } finally {
    await handle.close();
  }
}

async function readKey(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new FileError(`--key ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

async function record(args: readonly string[]): Promise<number> {
  const { values: v } = parse(args, RECORD, false);
  if (v.help) {
    out(HELP);
    return 0;
  }
  const domain = signingDomain(required(v.domain, "--domain"), "--domain");
  const selector = selectorName(required(v.selector, "--selector"), "--selector");
  const key: KeyObject = loadSigningKey(await readKey(required(v.key, "--key")), "--key").key;
  out(zoneFileLine(selector, domain, key));
  return 0;
}

async function sign(args: readonly string[]): Promise<number> {
  const { values: v, positionals } = parse(args, SIGN, true);
  if (v.help) {
    out(HELP);
    return 0;
  }
  const selectors = v.selector ?? [];
  const keys = v.key ?? [];
  if (selectors.length === 0 || keys.length === 0) throw new UsageError("sign needs --selector and --key (try: missive dkim --help)");
  if (selectors.length !== keys.length) throw new UsageError("give --selector and --key in pairs, one pair per signature");
  if (positionals.length > 1) throw new UsageError("sign takes one message (a file, or - for stdin)");
  const domain = required(v.domain, "--domain");
  const signers: DkimOptions[] = [];
  for (const [i, selector] of selectors.entries()) {
    signers.push({
      domain,
      selector,
      privateKey: await readKey(keys[i]!),
      ...(v.canonicalization !== undefined ? { canonicalization: v.canonicalization as DkimCanonicalization } : {}),
      ...(v.identity !== undefined ? { identity: v.identity } : {}),
    });
  }
  const source = positionals[0] ?? "-";
  if (source === "-") {
    // stdin can be read only once: it is read into memory (a file is streamed twice instead).
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    process.stdout.write(await signMessage(Buffer.concat(chunks), signers));
    return 0;
  }
  try {
    if (!(await stat(source)).isFile()) throw new FileError(`${source}: not a regular file`);
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError(`${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  await pipeline(await signMessage(() => createReadStream(source), signers), process.stdout, { end: false });
  return 0;
}

