/**
 * The opening of an SMTP session, after the socket (and implicit TLS) is up: the greeting,
 * EHLO (HELO if EHLO is not recognised), STARTTLS and AUTH. The client (client.ts) decides
 * which steps run and in what order; each step here talks through the client's funnel
 * (`exchange`) and records what it learns (greeting, capabilities, the authenticated user)
 * on the session it is given.
 */
import type tls from "node:tls";
import { SmtpAuthError, SmtpClosedError, SmtpConnectError, SmtpError, SmtpTimeoutError, SmtpTlsError, quoteReply, type SmtpStage } from "../errors.js";
import type { ConnectionEvents } from "../observe/connection-events.js";
import { MAX_CHALLENGES, chooseMechanism, createMechanism, decodeChallenge, type Credentials } from "./auth.js";
import { Capabilities, parseEhlo } from "./capabilities.js";
import * as cmd from "./commands.js";
import { greetingTimeoutHint, type ResolvedSmtpConfig } from "./config.js";
import type { SmtpConnection, Submission } from "./connection.js";
import { isLoopback, type SmtpTimeouts, type TlsMode } from "./options.js";
import type { SmtpReply } from "./reply.js";
import { REDACTED } from "./transcript.js";

/** What the opening steps read from, and record on, the client they run for. */
export interface HandshakeSession {
  readonly host: string;
  readonly port: number;
  readonly tlsMode: TlsMode;
  readonly timeouts: Readonly<Required<SmtpTimeouts>>;
  readonly config: ResolvedSmtpConfig;
  /** The current connection (undefined before the first). */
  readonly conn: SmtpConnection | undefined;
  readonly secure: boolean;
  readonly events: ConnectionEvents | undefined;
  greeting: SmtpReply | undefined;
  capabilities: Capabilities | undefined;
  authenticatedAs: string | undefined;
  /** The name to say in EHLO/HELO. */
  localName(): string;
  /** One command through the funnel; any failure leaves with `stage` recorded. */
  exchange(line: string, stage: SmtpStage, expect: Submission["expect"], display?: string): Promise<SmtpReply>;
  /** Runs one step; an error leaving it records `stage`. */
  at<T>(stage: SmtpStage, step: () => Promise<T>): Promise<T>;
}

export async function readGreeting(s: HandshakeSession, conn: SmtpConnection): Promise<void> {
  try {
    s.greeting = await conn.submit({ display: "<greeting>", expect: [220], phase: "greeting", deadline: s.timeouts.greeting });
  } catch (error) {
    if (error instanceof SmtpClosedError) {
      throw new SmtpConnectError(`${s.host}:${s.port} closed the connection before greeting`, { cause: error });
    }
    // Silence instead of a greeting: most often a port that expects TLS first. Say so,
    // in the options of the layer the caller used, rather than a bare timeout.
    const hint = error instanceof SmtpTimeoutError && error.phase === "greeting" ? greetingTimeoutHint(s.config) : undefined;
    if (hint !== undefined) throw new SmtpTimeoutError("greeting", (error as SmtpTimeoutError).timeoutMs, { command: "<greeting>", hint, cause: error });
    const reply = replyOf(error);
    if (reply === undefined) throw error;
    s.greeting = reply;
    // 554 (RFC 5321 §3.1): "no SMTP service here"; 421: busy, try later.
    throw new SmtpConnectError(`${s.host}:${s.port} refused the session: ${quoteReply(reply)}`, { reply, command: "<greeting>" });
  }
}

/**
 * EHLO, or HELO when the server does not know EHLO (RFC 5321 §3.2: "command not
 * recognized", 500 or 502). Any other refusal (554: no service for you) ends the session.
 * Learns the capabilities afresh.
 */
export async function hello(s: HandshakeSession): Promise<void> {
  const name = s.localName();
  s.capabilities = undefined;
  let reply: SmtpReply;
  try {
    reply = await s.exchange(cmd.ehlo(name), "ehlo", [250]);
  } catch (error) {
    const code = replyOf(error)?.code;
    if (s.conn?.closed !== false || (code !== 500 && code !== 502)) throw error;
    await s.exchange(cmd.helo(name), "ehlo", [250]);
    s.capabilities = Capabilities.none();
    return;
  }
  s.capabilities = parseEhlo(reply);
  if (s.conn) s.conn.enhancedStatusCodes = s.capabilities.enhancedStatusCodes;
}

export async function starttls(s: HandshakeSession, conn: SmtpConnection, tlsOptions: tls.ConnectionOptions, signal: AbortSignal): Promise<void> {
  const required = s.tlsMode === "starttls";
  const started = s.events?.startOf("smtp.tls");
  if (!s.capabilities?.starttls) {
    if (!required) return;
    throw new SmtpTlsError(
      `${s.host}:${s.port} does not offer STARTTLS, and tls is "starttls" (or useTls: true); use tls: "implicit" (port 465) if the server speaks TLS from the start, or "opportunistic"/"none" to allow plaintext`,
    );
  }
  try {
    await s.exchange(cmd.starttls(), "tls", [220]);
  } catch (error) {
    const reply = replyOf(error);
    if (reply === undefined || conn.closed) throw error;
    // "opportunistic" means plaintext is acceptable; "starttls" never falls back silently.
    if (!required) return;
    throw new SmtpTlsError(`${s.host}:${s.port} refused STARTTLS: ${quoteReply(reply)}`, { command: "STARTTLS", reply });
  }
  await conn.startTls(tlsOptions, s.timeouts.connect, signal);
  s.events?.tls(conn.tlsInfo, started, true);
  // RFC 3207 §4.2: discard everything learnt before TLS and say EHLO again.
  s.capabilities = undefined;
  conn.enhancedStatusCodes = false;
  await s.at("ehlo", () => hello(s));
}

export async function authenticate(s: HandshakeSession, credentials: Credentials): Promise<void> {
  if (!s.secure && !isLoopback(s.host) && !s.config.allowInsecureAuth) {
    throw new SmtpAuthError(
      `Refusing to send credentials in plaintext to ${s.host}: use tls "implicit" or "starttls", or set allowInsecureAuth: true if the network path is trusted`,
    );
  }
  const started = s.events?.startOf("smtp.auth");
  const name = chooseMechanism(s.capabilities?.authMechanisms ?? new Set(), credentials, s.config.authMethod);
  const mechanism = createMechanism(name, credentials);
  const initial = await mechanism.start();
  const display = initial === null ? `AUTH ${name}` : `AUTH ${name} ${REDACTED}`;
  const first = cmd.auth(name, initial === null ? undefined : Buffer.from(initial).toString("base64"));
  // 334: a challenge to answer; 235: authenticated (RFC 4954 §4, §6).
  const step = (line: string, shown: string): Promise<SmtpReply> =>
    s.exchange(line, "auth", [235, 334], shown).catch((error: unknown) => {
      const reply = replyOf(error);
      if (reply === undefined || s.conn?.closed !== false) throw error;
      throw new SmtpAuthError(`Authentication with ${name} failed: ${quoteReply(reply)}`, { command: display, reply });
    });
  let reply = await step(first, display);
  for (let challenges = 0; reply.code === 334; challenges++) {
    let response: string;
    try {
      if (challenges >= MAX_CHALLENGES) throw new SmtpAuthError(`The server sent more than ${MAX_CHALLENGES} AUTH ${name} challenges`, { command: display });
      const challenge = decodeChallenge(reply.lines[0] ?? "");
      response = Buffer.from(await mechanism.next(challenge)).toString("base64");
    } catch (error) {
      // Cancel the exchange (RFC 4954 §4) so the connection stays in step, then report.
      await s.exchange(cmd.authResponse("*"), "auth", "any", "*").catch(() => undefined);
      throw error;
    }
    reply = await step(cmd.authResponse(response), REDACTED);
  }
  s.authenticatedAs = credentials.user;
  s.events?.auth(name, started);
}

/** The reply an SmtpError holds, if the error is one (a reply the step did not expect). */
function replyOf(error: unknown): SmtpReply | undefined {
  return error instanceof SmtpError ? error.reply : undefined;
}
