// Shared pieces of the delivery engine's tests: SMTP backends over the fake server, a port
// nothing listens on, messages with their own Message-ID, and an observer that writes
// every decision down as a line.
import { SmtpBackend, type SmtpBackendOptions } from "../../src/backends/smtp.js";
import type { DeliveryObserver } from "../../src/delivery/observer.js";
import { EmailMessage } from "../../src/mime/message.js";
import { startFakeServer, type FakeServerOptions, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";

export const servers: FakeSmtpServer[] = [];

export async function fake(options: FakeServerOptions = {}): Promise<FakeSmtpServer> {
  const server = await startFakeServer(options);
  servers.push(server);
  return server;
}

export async function closeServers(): Promise<void> {
  await Promise.all(servers.splice(0).map((s) => s.close()));
}

/** A loopback port with nothing listening (connecting is refused at once). */
export async function deadPort(): Promise<number> {
  const server = await startFakeServer();
  const port = server.port;
  await server.close();
  return port;
}

export function smtp(port: number, options: SmtpBackendOptions = {}): SmtpBackend {
  return new SmtpBackend({ host: "127.0.0.1", port, localName: "client.test", timeout: 3000, ...options });
}

let counter = 0;
/** A message with a Message-ID of its own, `<n.label@example.com>`. */
export function message(to: readonly string[] = ["bob@example.org"], label = "m"): EmailMessage {
  counter += 1;
  return new EmailMessage({
    subject: `Message ${counter}`,
    body: "Hello",
    from: "ann@example.com",
    to: [...to],
    headers: { "Message-ID": `<${counter}.${label}@example.com>` },
  });
}

/** An observer that writes each call as one line: "retry 1000 ESMTP_REPLY", "failover primary→secondary ECONNECT", … */
export function recorder(): DeliveryObserver & { readonly lines: string[] } {
  const lines: string[] = [];
  const code = (e: { code?: string } | undefined) => e?.code ?? "-";
  return {
    lines,
    attempt: (c) => lines.push(`attempt ${c.attempt} ${c.route} [${c.recipients.length}]`),
    attemptEnd: (c, r) => lines.push(`attemptEnd ${c.attempt} ${c.route} ${r.status} ${code(r.error)}`),
    retry: (ms, e) => lines.push(`retry ${ms} ${code(e)}`),
    failover: (from, to, e) => lines.push(`failover ${from}→${to} ${code(e)}`),
    skip: (route, reason) => lines.push(`skip ${route} ${reason}`),
    circuitOpen: (route) => lines.push(`circuitOpen ${route}`),
    circuitProbe: (route) => lines.push(`circuitProbe ${route}`),
    circuitClose: (route) => lines.push(`circuitClose ${route}`),
    rateLimitWait: (route, ms) => lines.push(`rateLimitWait ${route} ${ms}`),
    outcome: (r) => lines.push(`outcome ${r.status} ${r.route ?? "-"} ${r.stopped ?? "-"}`),
  };
}

/** The Message-ID header of a received message's bytes. */
export function messageIdOf(data: Buffer): string | undefined {
  const head = data.toString("latin1").split("\r\n\r\n", 1)[0]!;
  return /^Message-ID: *(<[^>\r\n]+>)/im.exec(head)?.[1];
}
