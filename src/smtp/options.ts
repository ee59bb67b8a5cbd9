/**
 * SmtpClient options (their types; config.ts checks them and decides port and TLS mode),
 * the timeouts (defaults for applications, and RFC 5321 §4.5.3.2's as a preset), and the
 * Node TLS options built from a resolved config.
 */
import { readFile } from "node:fs/promises";
import net from "node:net";
import type tls from "node:tls";
import { SmtpTlsError } from "../errors.js";
import type { Clock } from "../observe/clock.js";
import type { Logger, LogRecipients } from "../observe/log.js";
import type { AuthMethod, AuthOptions } from "./auth.js";
import type { ResolvedSmtpConfig } from "./config.js";
import type { TranscriptHook } from "./transcript.js";

export type TlsMode = "implicit" | "starttls" | "opportunistic" | "none";

export interface SmtpTimeouts {
  /** TCP connect and TLS handshake. Default 10 s (RFC 5321's value: 30 s). */
  connect?: number;
  /** The 220 greeting. Default 30 s (RFC 5321 §4.5.3.2.1: 5 min). */
  greeting?: number;
  /** EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET, NOOP, QUIT. Default 60 s (§4.5.3.2.2–3: 5 min). */
  command?: number;
  /** The reply to DATA (354). Default 60 s (§4.5.3.2.4: 2 min). */
  dataStart?: number;
  /** Each block of the body written (waiting for the socket to drain). Default 60 s (§4.5.3.2.5: 3 min). */
  data?: number;
  /** The reply after the final dot (or BDAT LAST). Default 5 min (§4.5.3.2.6: 10 min). */
  finalDot?: number;
}

/**
 * The defaults: sized for an application waiting on a send, not for a relay queue. A
 * server that says nothing for a minute after a command is not going to; only the final
 * dot (the server may scan the message) keeps a long deadline, because giving up there
 * makes the outcome unknown.
 */
export const DEFAULT_TIMEOUTS: Readonly<Required<SmtpTimeouts>> = Object.freeze({
  connect: 10_000,
  greeting: 30_000,
  command: 60_000,
  dataStart: 60_000,
  data: 60_000,
  finalDot: 300_000,
});

/** RFC 5321 §4.5.3.2's values (what a relay between MTAs waits), as `timeouts: "rfc5321"`. */
export const RFC5321_TIMEOUTS: Readonly<Required<SmtpTimeouts>> = Object.freeze({
  connect: 30_000,
  greeting: 300_000,
  command: 300_000,
  dataStart: 120_000,
  data: 180_000,
  finalDot: 600_000,
});

/** Named sets of timeouts the `timeouts` option takes instead of an object. */
export type SmtpTimeoutPreset = "rfc5321";

export interface SmtpTlsOptions {
  ca?: string | Buffer | readonly (string | Buffer)[];
  /** SNI and certificate host name; defaults to `host` unless it is an IP address. */
  servername?: string;
  /** Verify the certificate chain and host name. Always passed as an explicit boolean; default true. */
  rejectUnauthorized?: boolean;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Default "TLSv1.2". */
  minVersion?: tls.SecureVersion;
}

export interface SmtpClientOptions {
  /** Default "localhost" (Django's EMAIL_HOST). */
  host?: string;
  /**
   * Default: 465 for implicit TLS, 587 for STARTTLS, else 25 (Django's default port,
   * which is what a loopback host gets with no TLS options).
   */
  port?: number;
  /**
   * Default: a loopback host (127.0.0.0/8, ::1, "localhost") gets "none"; any other host
   * gets "implicit" on port 465 and required "starttls" otherwise.
   */
  tls?: TlsMode;
  /** Django's EMAIL_USE_SSL: implicit TLS. Exclusive with `useTls`. */
  useSsl?: boolean;
  /** Django's EMAIL_USE_TLS: required STARTTLS. Exclusive with `useSsl`. */
  useTls?: boolean;
  tlsOptions?: SmtpTlsOptions;
  /** Path of a PEM client key (Django's EMAIL_SSL_KEYFILE), read at connect. */
  sslKeyfile?: string;
  /** Path of a PEM client certificate (Django's EMAIL_SSL_CERTFILE), read at connect. */
  sslCertfile?: string;
  /** EHLO name. Default: os.hostname() when it is a dotted, valid domain, else the local address literal. */
  localName?: string;
  auth?: AuthOptions;
  authMethod?: AuthMethod;
  /** Send credentials over plaintext to a non-loopback host. Off by default; name says what it does. */
  allowInsecureAuth?: boolean;
  /** Django-style single timeout in ms: sets every phase (individual `timeouts` win). */
  timeout?: number;
  /** Per-phase timeouts in ms (they win over `timeout`), or "rfc5321" for RFC 5321's longer values. */
  timeouts?: SmtpTimeouts | SmtpTimeoutPreset;
  /** Use PIPELINING when offered (RFC 2920). Default true. */
  pipelining?: boolean;
  /** Use BDAT when offered (RFC 3030). Default false. */
  chunking?: boolean;
  /** BDAT chunk size in octets. Default 256 KiB. */
  chunkSize?: number;
  /** Aborts whatever the client is doing and closes it. */
  signal?: AbortSignal;
  /**
   * Resolves `host` instead of the system resolver (Node's `lookup` for net.connect): a
   * resolver with its own cache, or a fixed address. The TLS server name, certificate check
   * and the loopback rules (TLS default, plaintext AUTH) still go by `host`.
   */
  lookup?: net.LookupFunction;
  transcript?: TranscriptHook;
  /** Time and timers for reply deadlines (tests inject one to step time). Default: the system clock. */
  clock?: Clock;
  /** Where each connection's events go (smtp.connect, smtp.tls, smtp.auth, the dialogue at debug, smtp.close); pino, or any object with its level methods. */
  logger?: Logger;
  /** How addresses appear in those events: "count" (default: masked), "domain", "hash" or "full". */
  logRecipients?: LogRecipients;
}

export interface DsnOptions {
  ret?: "FULL" | "HDRS";
  envid?: string;
  notify?: ("SUCCESS" | "FAILURE" | "DELAY" | "NEVER")[];
  /** Send ORCPT=rfc822;<recipient> with each RCPT. */
  orcpt?: boolean;
  /**
   * By default a DSN request to a server without DSN fails with SmtpCapabilityError("DSN")
   * before MAIL FROM, because silently dropping it changes what the sender gets back.
   * `optional: true` sends without the DSN parameters instead.
   */
  optional?: boolean;
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h === "localhost." || h.endsWith(".localhost")) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return net.isIPv4(v4) && v4.startsWith("127.");
}

/** An RFC 5321 §4.1.3 address literal for the local address: [192.0.2.1] or [IPv6:2001:db8::1]. */
export function addressLiteral(address: string | undefined): string {
  if (!address) return "[127.0.0.1]";
  const bare = address.split("%")[0]!;
  if (bare.startsWith("::ffff:") && net.isIPv4(bare.slice(7))) return `[${bare.slice(7)}]`;
  if (net.isIPv4(bare)) return `[${bare}]`;
  if (net.isIPv6(bare)) return `[IPv6:${bare}]`;
  return "[127.0.0.1]";
}

/** Node TLS options for implicit TLS and STARTTLS alike; client key/certificate files are read here, at connect. */
export async function buildTlsOptions(config: ResolvedSmtpConfig): Promise<tls.ConnectionOptions> {
  const host = config.host;
  const o = config.tls;
  const options: tls.ConnectionOptions = {
    host: host,
    // Always an explicit boolean (resolved from an own property): `undefined` or an
    // inherited value must never switch verification off.
    rejectUnauthorized: o.rejectUnauthorized,
    minVersion: o.minVersion,
  };
  // SNI must not be an IP address (RFC 6066 §3); certificate checks then use the IP.
  const servername = o.servername ?? (net.isIP(host) ? undefined : host);
  if (servername !== undefined) options.servername = servername;
  if (o.ca !== undefined) options.ca = o.ca as string | Buffer | (string | Buffer)[];
  const cert = o.cert ?? (o.certFile ? await readPem(o.certFile, "sslCertfile") : undefined);
  const key = o.key ?? (o.keyFile ? await readPem(o.keyFile, "sslKeyfile") : undefined);
  if (cert !== undefined) options.cert = cert;
  if (key !== undefined) options.key = key;
  return options;
}

async function readPem(path: string, option: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new SmtpTlsError(`Could not read ${option} ${JSON.stringify(path)}: ${(error as Error).message}`, { cause: error });
  }
}
