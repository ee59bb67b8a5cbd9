/**
 * The `missive` command.
 *
 *   missive send --to ADDR --subject TEXT (--body TEXT | --body-file PATH) [...]
 *   missive check [EMAIL_URL]
 *   missive dkim keygen | record | sign ...   (src/cli/dkim.ts)
 *   missive dev | missive preview DIR   (the mail catcher, in src/preview/cli.ts)
 *   missive outbox list | show | release | retry | purge, missive worker   (src/cli/outbox.ts)
 *
 * `main` runs it; bin/missive.ts is the launcher (importing this module does nothing).
 *
 * Exit codes: 0 done; 1 delivery failed (connection, TLS, AUTH, a refused message or
 * recipient); 2 bad usage or configuration (unknown option, invalid address, bad header,
 * unreadable file, invalid EMAIL_URL).
 */
import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { getConnection } from "./api.js";
import type { EmailBackend } from "./backends/base.js";
import { ConsoleBackend } from "./backends/console.js";
import { isUnconfiguredDefaultFrom } from "./backends/default-from.js";
import { FileBackend } from "./backends/file.js";
import { SmtpBackend } from "./backends/smtp.js";
import { printReport } from "./cli/send-report.js";
import { FailoverBackend } from "./delivery/failover.js";
import { BackendError, MissiveError, SmtpError } from "./errors.js";
import { calendarInvite } from "./mime/calendar.js";
import { classification } from "./errors/classify.js";
import { EmailMultiAlternatives } from "./mime/message.js";
import { backendFromUrl, configure, getSettings } from "./settings.js";
import { dkimCommand } from "./cli/dkim.js";
import { LIST_CLI_HELP, LIST_CLI_OPTIONS, listOptionsFromArgs } from "./cli/list-options.js";
import { DKIM_CLI_HELP, DKIM_CLI_OPTIONS, dkimFromArgs } from "./cli/dkim-options.js";
import { CONNECTION_CLI_HELP, CONNECTION_CLI_OPTIONS, connectionFlagHint, connectionOptionsFromArgs, fileProblem } from "./cli/connection-options.js";
import { LOG_CLI_HELP, LOG_CLI_OPTIONS, loggerFromArgs } from "./cli/log-options.js";
import type { TranscriptEntry } from "./smtp/transcript.js";
import { dev, preview } from "./preview/cli.js";
import { outboxCommand, workerCommand } from "./cli/outbox.js";

const USAGE = 2;
const FAILED = 1;

class UsageError extends Error {}

const TOP_HELP = `missive ${pkg.version}: send and check email from the command line

Usage:
  missive send --to ADDR --subject TEXT (--body TEXT | --body-file PATH) [options]
  missive check [EMAIL_URL] [options]
  missive dkim keygen --domain DOMAIN --selector SELECTOR [--type rsa|ed25519]
  missive dkim record | sign ...        (missive dkim --help)
  missive dev [options]          a local mail catcher: SMTP server + web UI
  missive preview DIR [options]  the web UI over a directory of .eml files (an outbox spool too)
  missive outbox list | show ID | release ID | retry ID | purge --dead   the outbox (--store URL)
  missive worker --store URL [--url EMAIL_URL] [--concurrency N]  deliver the outbox's mail
  missive --help | --version
  missive <command> --help

Where mail goes: --url EMAIL_URL or --backend NAME; else the environment (EMAIL_URL,
EMAIL_BACKEND or EMAIL_HOST and the other EMAIL_* variables); with none of those set,
"send" prints the message to stdout (the console backend) instead of sending it.

Exit codes: 0 ok, 1 delivery failed, 2 bad usage or configuration.`;

const SEND_HELP = `Usage: missive send --to ADDR --subject TEXT (--body TEXT | --body-file PATH) [options]

Options:
  --to ADDR          recipient; repeat it or give a comma-separated list
  --cc ADDR          copy recipient (repeatable)
  --bcc ADDR         blind copy recipient (repeatable; never in the headers)
  --reply-to ADDR    Reply-To address (repeatable)
  --from ADDR        sender; default DEFAULT_FROM_EMAIL, else webmaster@localhost
  --subject TEXT     the subject
  --body TEXT        the plain-text body
  --body-file PATH   read the plain-text body from a file ("-" for stdin)
  --html-file PATH   an HTML alternative to the body
  --calendar-file PATH  an iCalendar invitation (.ics) as a text/calendar alternative,
                     its method= read from the file's METHOD (REQUEST, CANCEL, ...)
  --attach FILE      attach a file; its type is guessed from the name (repeatable)
  --header "N: V"    an extra header (repeatable)
  --backend NAME     smtp, console, file, memory, dummy or a named connection
  --url EMAIL_URL    e.g. smtp://user:pass@host:587?tls=starttls, smtps://host, file:///dir;
                     repeat it for failover: the routes are tried in the order given
  --attempts N       tries in all, over every route, with backoff between them
                     (default 3 with several --url, else 1)
  -h, --help         this help
${CONNECTION_CLI_HELP}
${LIST_CLI_HELP}
${DKIM_CLI_HELP}
${LOG_CLI_HELP}

Prints the Message-ID, and for SMTP each recipient as accepted, refused or deferred with
the server's reply; over routes or retries, the status, the route that delivered and
every attempt; with the file backend, the path written. With the console backend the
message itself goes to stdout and the report to stderr. Without --from and with no sender
configured (DEFAULT_FROM_EMAIL), it warns that mail goes From webmaster@localhost. Exit code
1 when the message or any recipient was not delivered. When the reader of stdout goes away
(missive send ... | head -1), the rest of the output is dropped quietly.`;

const CHECK_HELP = `Usage: missive check [EMAIL_URL] [options]

Connects to the SMTP server (EMAIL_URL, or the EMAIL_* environment), and shows the
greeting, the TLS protocol, cipher and certificate (subject, issuer, validity), the EHLO
capabilities and, when credentials are given, whether AUTH works; then says QUIT.
Nothing is sent. Credentials never appear in the output.

Options:
  --url EMAIL_URL    the server to check (same as the positional argument)
  --transcript       show the SMTP dialogue (AUTH data redacted)
  -h, --help         this help
${CONNECTION_CLI_HELP.replace("deadline for each step", "deadline for each step (default 30)")}
${LOG_CLI_HELP}`;

type Out = (line: string) => void;
/** Set when the reader of stdout went away (EPIPE): nothing more is written there. */
let stdoutClosed = false;
const out: Out = (line) => {
  if (!stdoutClosed) process.stdout.write(`${line}\n`);
};
const err: Out = (line) => process.stderr.write(`${line}\n`);

/**
 * `missive send ... | head -1`: the reader closing the pipe is not an error of missive's.
 * EPIPE arrives as an 'error' event on stdout, possibly after main() returned, so the
 * listener stays for the life of the process (it is added once, when a command runs).
 */
function watchStdout(): void {
  if (process.stdout.listeners("error").includes(onStdoutError)) return;
  process.stdout.on("error", onStdoutError);
}
function onStdoutError(error: NodeJS.ErrnoException): void {
  if (error.code === "EPIPE") {
    stdoutClosed = true;
    return;
  }
  throw error;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  watchStdout();
  try {
    switch (command) {
      case undefined:
        err(TOP_HELP);
        return USAGE;
      case "-h":
      case "--help":
      case "help":
        out(TOP_HELP);
        return 0;
      case "-V":
      case "--version":
        out(pkg.version);
        return 0;
      case "send":
        return await send(rest);
      case "check":
        return await check(rest);
      case "dkim":
        return await dkimCommand(rest);
      case "dev":
        return await dev(rest);
      case "preview":
        return await preview(rest);
      case "outbox":
        return await outboxCommand(rest);
      case "worker":
        return await workerCommand(rest);
      default:
        throw new UsageError(`unknown command "${command}" (try: missive --help)`);
    }
  } catch (e) {
    return report(e);
  }
}

function report(e: unknown): number {
  if (e instanceof UsageError) {
    err(`missive: ${e.message}`);
    return USAGE;
  }
  if (e instanceof SmtpError || e instanceof BackendError) {
    err(`missive: ${e.name}: ${e.message}`);
    for (const line of adviceLines(e)) err(`missive: ${line}`);
    return FAILED;
  }
  if (e instanceof MissiveError) {
    // Bad headers, addresses, settings, arguments: the command line or environment is wrong.
    err(`missive: ${e.name}: ${e.message}`);
    return USAGE;
  }
  err(`missive: ${(e as Error)?.message ?? String(e)}`);
  return FAILED;
}

/** The advice, then the flag that fixes it when there is one (--ca, --tls). */
function adviceLines(e: MissiveError): string[] {
  const flag = connectionFlagHint(e);
  return flag === undefined ? [advice(e)] : [advice(e), flag];
}

/** What to do about a delivery failure, in one line: classify()'s verdict, where it happened, and why. */
function advice(e: MissiveError): string {
  const { verdict, transient } = classification(e);
  const where = e instanceof SmtpError && e.stage !== undefined ? ` (at ${e.stage})` : "";
  const why =
    verdict === "retry-here"
      ? "nothing was delivered; sending again later may work"
      : verdict === "next-route"
        ? transient
          ? "this server or the way to it failed; try again later, or another server"
          : "this server or the way to it refused; fix the settings or use another server"
        : verdict === "unknown"
          ? "it may have been delivered: check before sending it again"
          : "sending it again will not help";
  return `${verdict}${where}: ${why}`;
}

function parse<T extends NonNullable<ParseArgsConfig["options"]>>(args: readonly string[], options: T, allowPositionals: boolean) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

// --- send --------------------------------------------------------------------------------

const SEND_OPTIONS = {
  to: { type: "string", multiple: true },
  cc: { type: "string", multiple: true },
  bcc: { type: "string", multiple: true },
  "reply-to": { type: "string", multiple: true },
  from: { type: "string" },
  subject: { type: "string" },
  body: { type: "string" },
  "body-file": { type: "string" },
  "html-file": { type: "string" },
  "calendar-file": { type: "string" },
  attach: { type: "string", multiple: true },
  header: { type: "string", multiple: true },
  backend: { type: "string" },
  url: { type: "string", multiple: true },
  attempts: { type: "string" },
  help: { type: "boolean", short: "h" },
  ...CONNECTION_CLI_OPTIONS,
  ...LIST_CLI_OPTIONS,
  ...DKIM_CLI_OPTIONS,
  ...LOG_CLI_OPTIONS,
} as const;

async function send(args: readonly string[]): Promise<number> {
  const { values: v } = parse(args, SEND_OPTIONS, false);
  if (v.help) {
    out(SEND_HELP);
    return 0;
  }
  const to = v.to ?? [];
  const cc = v.cc ?? [];
  const bcc = v.bcc ?? [];
  if (to.length + cc.length + bcc.length === 0) throw new UsageError("send needs at least one recipient (--to, --cc or --bcc)");
  if (v.subject === undefined) throw new UsageError("send needs --subject");
  if ((v.body === undefined) === (v["body-file"] === undefined)) throw new UsageError("send needs exactly one of --body and --body-file");
  if (v.backend !== undefined && (v.url?.length ?? 0) > 0) throw new UsageError("give --backend or --url, not both");
  const logger = useLogger(v);

  const body = v.body ?? (await readText(v["body-file"]!, "--body-file"));
  const html = v["html-file"] === undefined ? undefined : await readText(v["html-file"], "--html-file");
  const calendar = v["calendar-file"] === undefined ? undefined : calendarInvite(await readText(v["calendar-file"], "--calendar-file"));
  for (const path of v.attach ?? []) await readable(path, "--attach");
  const dkim = await dkimFromArgs(v);
  const headers: Record<string, string> = {};
  for (const h of v.header ?? []) {
    const colon = h.indexOf(":");
    if (colon <= 0) throw new UsageError(`--header ${JSON.stringify(h)} must look like "Name: value"`);
    headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }

  let attempts: number | undefined;
  if (v.attempts !== undefined) {
    attempts = Number(v.attempts);
    if (!/^\d+$/.test(v.attempts) || attempts < 1 || attempts > 100) throw new UsageError("--attempts must be a whole number from 1 to 100");
  }
  const smtpOptions = await connectionOptionsFromArgs(v);
  const connection = chooseBackend(v.backend, v.url ?? [], attempts, smtpOptions);
  const message = new EmailMultiAlternatives({
    subject: v.subject,
    body,
    to: to.join(", "),
    cc: cc.join(", "),
    bcc: bcc.join(", "),
    replyTo: (v["reply-to"] ?? []).join(", "),
    headers,
    ...(v.from !== undefined ? { from: v.from } : {}),
    ...listOptionsFromArgs(v),
    ...(dkim !== undefined ? { dkim } : {}),
  });
  if (html !== undefined) message.attachAlternative(html, "text/html");
  if (calendar !== undefined) message.attachAlternative(calendar);
  for (const path of v.attach ?? []) message.attachFile(path);

  if (v.from === undefined && isUnconfiguredDefaultFrom(getSettings().defaultFrom)) {
    const warning = `no sender configured, so this goes From ${getSettings().defaultFrom} (Django's default), which servers usually refuse; pass --from or set DEFAULT_FROM_EMAIL`;
    // With --log-format, stderr is the log: the warning is one of its records.
    if (logger !== undefined) logger.warn({ event: "cli.default-from", from: getSettings().defaultFrom }, warning);
    else err(`missive: warning: ${warning}`);
  }

  // The report goes to stderr when the message itself is printed on stdout.
  const toStdout = connection instanceof ConsoleBackend && connection.stream === process.stdout;
  const say = toStdout ? err : out;
  if (connection instanceof SmtpBackend || connection instanceof FailoverBackend) {
    const { reports } = await connection.sendMessagesWithReport([message], { stopOnError: false });
    const r = reports[0]!;
    printReport(r, say, err, adviceLines);
    return r.status === "sent" ? 0 : FAILED;
  }
  // Fix the Message-ID first, so that what is printed is what was sent.
  const messageId = (await message.prepare()).messageId;
  message.headers = { ...message.headers, "Message-ID": messageId };
  let sent: number;
  try {
    sent = await connection.sendMessages([message]);
  } catch (e) {
    // The message was going to stdout and its reader closed the pipe: what it read is what it wanted.
    if (toStdout && stdoutClosed) return 0;
    throw e;
  }
  say(`Message-ID: ${messageId}`);
  if (connection instanceof FileBackend && sent === 1) say(`file: wrote ${connection.written.at(-1)}`);
  else say(sent === 1 ? `${backendName(connection)}: done` : `${backendName(connection)}: not sent`);
  return sent === 1 ? 0 : FAILED;
}

/**
 * --url (several: failover in that order), --backend, the environment, else the console.
 * `smtp` (the connection flags) goes to every SMTP backend; given for another kind of
 * backend, it is a usage error rather than ignored.
 */
function chooseBackend(backend: string | undefined, urls: readonly string[], attempts: number | undefined, smtp: Record<string, unknown>): EmailBackend {
  if (backend !== undefined && urls.length > 0) throw new UsageError("give --backend or --url, not both");
  const flags = Object.keys(smtp).length > 0;
  const checked = (connection: EmailBackend): EmailBackend => {
    if (flags && !(connection instanceof SmtpBackend)) {
      throw new UsageError(`--timeout, --ca, --tls, --username and --password-file are for SMTP; this sends with the ${backendName(connection)} backend`);
    }
    if (smtp["password"] !== undefined && connection instanceof SmtpBackend && !connection.hasCredentials) {
      throw new UsageError("--password-file needs a user name: --username, or user@ in the URL");
    }
    return connection;
  };
  if (urls.length > 0) {
    const names = urls.map((_, i) => (urls.length === 1 ? "cli" : `route${i + 1}`));
    const backends: Record<string, ReturnType<typeof backendFromUrl>> = {};
    urls.forEach((url, i) => {
      const config = backendFromUrl(url, "--url");
      if (flags && config.backend !== "smtp") throw new UsageError(`--timeout, --ca, --tls, --username and --password-file are for SMTP; --url ${config.backend}: is not`);
      backends[names[i]!] = { ...config, ...smtp } as ReturnType<typeof backendFromUrl>;
    });
    configure({ backends });
    if (urls.length === 1 && attempts === undefined) return checked(getConnection("cli"));
    return new FailoverBackend({ routes: names, retry: { attempts: attempts ?? (urls.length > 1 ? 3 : 1) } });
  }
  if (attempts !== undefined) throw new UsageError("--attempts needs --url (the routes to try)");
  if (backend !== undefined) return checked(getConnection(backend, smtp));
  const env = process.env;
  const configured = ["EMAIL_URL", "EMAIL_BACKEND", "EMAIL_HOST"].some((name) => (env[name] ?? "").trim() !== "");
  getSettings(); // reports an invalid environment (exit 2) before anything else
  // The connection flags alone mean SMTP (to EMAIL_HOST, else localhost), not the console.
  if (!configured && flags) return checked(getConnection("smtp", smtp));
  return checked(configured ? getConnection(undefined, smtp) : getConnection("console"));
}

function backendName(b: EmailBackend): string {
  return b.constructor.name.replace(/Backend$/, "").toLowerCase() || "backend";
}

async function readText(path: string, option: string): Promise<string> {
  try {
    if (path === "-") {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    }
    return await readFile(path, "utf8");
  } catch (e) {
    throw new UsageError(`${option} ${path}: ${fileProblem(path, e)}`);
  }
}

/** A file to attach: it must exist and be a regular file now, so that a typo fails before anything is sent. */
async function readable(path: string, option: string): Promise<void> {
  let isFile = false;
  try {
    isFile = (await stat(path)).isFile();
  } catch (e) {
    throw new UsageError(`${option} ${path}: ${fileProblem(path, e)}`);
  }
  if (!isFile) throw new UsageError(`${option} ${path}: not a regular file${resolve(path) === path ? "" : ` (looked at ${resolve(path)})`}`);
}

/** --log-level / --log-format: every backend made from here on logs to stderr. */
function useLogger(values: Parameters<typeof loggerFromArgs>[0]): ReturnType<typeof loggerFromArgs> {
  const logger = loggerFromArgs(values, (message) => new UsageError(message));
  if (logger !== undefined) configure({ logger });
  return logger;
}

// --- check -------------------------------------------------------------------------------

const CHECK_OPTIONS = {
  url: { type: "string" },
  transcript: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  ...CONNECTION_CLI_OPTIONS,
  ...LOG_CLI_OPTIONS,
} as const;

async function check(args: readonly string[]): Promise<number> {
  const { values: v, positionals } = parse(args, CHECK_OPTIONS, true);
  if (v.help) {
    out(CHECK_HELP);
    return 0;
  }
  if (positionals.length > 1 || (positionals.length === 1 && v.url !== undefined)) throw new UsageError("check takes one EMAIL_URL");
  const url = positionals[0] ?? v.url;
  useLogger(v);
  const extra: Record<string, unknown> = { timeout: 30_000, ...(await connectionOptionsFromArgs(v)) };
  let backend: EmailBackend;
  if (url !== undefined) {
    configure({ backends: { cli: backendFromUrl(url, "EMAIL_URL") } });
    backend = getConnection("cli", extra);
  } else {
    getSettings();
    backend = getConnection("smtp", extra);
  }
  if (!(backend instanceof SmtpBackend)) throw new UsageError(`check needs an SMTP server (smtp://, smtps:// or submission:// URL), not the ${backendName(backend)} backend`);
  if (extra["password"] !== undefined && !backend.hasCredentials) throw new UsageError("--password-file needs a user name: --username, or user@ in the URL");

  const transcript = v.transcript ? (e: TranscriptEntry) => out(`${e.direction === "client" ? "C:" : "S:"} ${e.line}`) : undefined;
  const mode = backend.createClient({ auth: false }).tlsMode;
  out(`Connecting to ${backend.host}:${backend.port} (TLS: ${mode === "implicit" ? "implicit" : mode === "starttls" ? "STARTTLS, required" : mode})`);
  const client = backend.createClient({ auth: false, ...(transcript ? { transcript } : {}) });
  try {
    await client.connect();
  } catch (e) {
    if (client.greeting) out(`Greeting: ${client.greeting.code} ${client.greeting.text}`);
    throw e;
  }
  try {
    const greeting = client.greeting;
    if (greeting) out(`Greeting: ${greeting.code} ${greeting.lines.join(" / ")}`);
    const tls = client.tlsInfo;
    if (tls) {
      out(`TLS: ${tls.protocol ?? "?"} ${tls.cipher} (certificate ${tls.authorized ? "verified" : `NOT verified${tls.authorizationError ? `: ${tls.authorizationError}` : ""}`})`);
      const cert = tls.peerCertificate;
      if (cert) {
        out(`  subject: ${cert.subject}`);
        out(`  issuer:  ${cert.issuer}`);
        out(`  valid:   ${cert.validFrom} to ${cert.validTo}`);
        out(`  sha256:  ${cert.fingerprint256}`);
      }
    } else {
      out("TLS: none (plaintext)");
    }
    const caps = client.capabilities;
    if (caps) {
      out(caps.esmtp ? "Capabilities:" : "Capabilities: none (the server only answered HELO)");
      for (const [keyword, params] of caps.extensions) out(`  ${[keyword, ...params].join(" ")}`);
    }
  } finally {
    await client.quit();
  }
  if (backend.hasCredentials) {
    const authClient = backend.createClient(transcript ? { transcript } : {});
    try {
      await authClient.connect();
      out(`AUTH: ok (authenticated as ${authClient.authenticatedAs ?? "?"})`);
    } catch (e) {
      out(`AUTH: failed: ${(e as Error).message}`);
      authClient.destroy();
      return FAILED;
    }
    await authClient.quit();
  } else {
    out("AUTH: not tested (no credentials given)");
  }
  out("OK");
  return 0;
}
