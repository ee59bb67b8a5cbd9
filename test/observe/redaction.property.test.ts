/**
 * Redaction, as a property: for random passwords, OAuth 2 tokens and message bodies, over
 * PLAIN, LOGIN and XOAUTH2, with AUTH accepted or refused and the message delivered or
 * refused, nothing missive writes anywhere an observer can read — pino's lines at trace
 * level, every diagnostics channel's payload, every span (attributes, events, status), the
 * reports' errors as JSON and as util.inspect prints them — holds the secret in any form
 * it takes on the wire (itself, the AUTH PLAIN / LOGIN / XOAUTH2 base64 payloads), nor the
 * body.
 */
import { inspect } from "node:util";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { SmtpBackend } from "../../src/backends/smtp.js";
import { EmailMessage } from "../../src/mime/message.js";
import { instrument, uninstrument } from "../../src/otel/index.js";
import { messageReply, startFakeServer } from "../helpers/fake-smtp-server.js";
import { captureChannels, capturePino, passwordForms, tokenForms } from "./helpers.js";

afterEach(() => uninstrument());

const token = fc.stringMatching(/^[A-Za-z0-9_-]{16,40}$/);
const user = fc.stringMatching(/^[a-z][a-z0-9]{2,9}$/);
// Bodies of words a log could never hold by chance: each starts with a marker.
const body = fc.array(fc.stringMatching(/^[A-Za-z0-9]{4,12}$/), { minLength: 2, maxLength: 20 }).map((words) => words.map((w) => `zq${w}`).join(" "));

describe("no secret and no body in any log record, event payload, span or error", () => {
  it("for any credentials, mechanism, AUTH outcome and message outcome, at trace level", async () => {
    await fc.assert(
      fc.asyncProperty(
        user,
        token,
        body,
        fc.constantFrom("PLAIN", "LOGIN", "XOAUTH2"),
        fc.boolean(),
        fc.boolean(),
        async (name, secret, text, mechanism, authOk, delivered) => {
          const server = await startFakeServer({
            authMechanisms: [mechanism],
            users: { [name]: authOk ? secret : `${secret}-not` },
            script: delivered ? [] : [messageReply("554 5.7.1 refused")],
          });
          const pino = capturePino("trace");
          const channels = captureChannels();
          const exporter = new InMemorySpanExporter();
          instrument({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }) });
          const transcript: string[] = [];
          let reports;
          try {
            const backend = new SmtpBackend({
              host: "127.0.0.1",
              port: server.port,
              timeout: 3000,
              auth: mechanism === "XOAUTH2" ? { user: name, accessToken: secret } : { user: name, pass: secret },
              authMethod: mechanism,
              logger: pino.logger,
              transcript: (e) => transcript.push(e.line),
            });
            const m = new EmailMessage({ subject: "s", body: text, from: "ann@example.com", to: ["bob@example.org"] });
            ({ reports } = await backend.sendMessagesWithReport([m], { stopOnError: false }));
          } finally {
            channels.stop();
            uninstrument();
            await server.close();
          }
          const expected = !authOk ? "failed" : delivered ? "sent" : "failed";
          expect(reports[0]!.status).toBe(expected);
          const haystack = [
            pino.text(),
            ...channels.messages.map(([channel, payload]) => `${channel} ${JSON.stringify(payload)} ${inspect(payload, { depth: null })}`),
            ...exporter.getFinishedSpans().map((s) => JSON.stringify({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })),
            ...reports.map((r) => `${JSON.stringify(r.error)} ${inspect(r.error, { depth: null })} ${JSON.stringify(r.attempts)}`),
            transcript.join("\n"),
          ].join("\n");
          // Something was written at all: the records exist, the secret is not in them.
          expect(pino.text()).toContain('"event":"smtp.connect"');
          expect(channels.messages.length).toBeGreaterThan(0);
          for (const form of mechanism === "XOAUTH2" ? tokenForms(name, secret) : passwordForms(name, secret)) expect(haystack).not.toContain(form);
          for (const word of text.split(" ")) expect(haystack).not.toContain(word);
        },
      ),
      { numRuns: 40 },
    );
  });
});
