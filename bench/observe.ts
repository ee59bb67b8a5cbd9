/**
 * What observability costs: 2,000 messages sent through SmtpBackend (one open connection,
 * one sendMessages call) to a loopback sink, with nothing attached, with pino logging at
 * info (to a stream that discards), and with missive/otel recording spans and metrics —
 * and, when MISSIVE_BASELINE names the checkout of another commit, that commit's missive
 * with nothing attached, in the same process and the same rounds:
 *
 *   git archive <commit> | tar -x -C /tmp/missive-base && ln -s "$PWD/node_modules" /tmp/missive-base/
 *   MISSIVE_BASELINE=/tmp/missive-base node --import tsx bench/observe.ts
 *
 * The sink is Postfix's smtp-sink when installed (another process, so the server's work
 * is not on this event loop), else the capture server. Variants take turns, round after
 * round, starting each round with a different one, so that a change in the machine's load
 * touches them alike; the median of the rounds is shown. Nothing fails on the figures.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { connect, createServer } from "node:net";
import { cpus } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import pino from "pino";
import { BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { SmtpBackend } from "../src/backends/smtp.js";
import { EmailMessage } from "../src/mime/message.js";
import { instrument, uninstrument } from "../src/otel/index.js";
import { CaptureServer } from "../src/preview/smtp-server.js";

const MESSAGES = 2_000;
const SMTP_SINK = "/usr/sbin/smtp-sink";

interface Sink {
  readonly port: number;
  readonly name: string;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startSink(): Promise<Sink> {
  if (existsSync(SMTP_SINK)) {
    const port = await freePort();
    // As root, smtp-sink wants a user to drop to.
    const user = process.getuid?.() === 0 ? ["-u", "nobody"] : [];
    const child: ChildProcess = spawn(SMTP_SINK, [...user, `127.0.0.1:${port}`, "256"], { stdio: "ignore" });
    // Ready once it accepts a connection (bounded).
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect({ host: "127.0.0.1", port }, () => (socket.destroy(), resolve(true)));
        socket.once("error", () => resolve(false));
      });
      if (ok) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return {
      port,
      name: "smtp-sink (Postfix)",
      close: async () => {
        child.kill("SIGTERM");
        if (child.exitCode === null) await new Promise((resolve) => child.once("exit", resolve));
      },
    };
  }
  const capture = await CaptureServer.start({ port: 0, hostname: "sink.bench", deliver: async () => "queued" });
  return { port: capture.port, name: "the capture server (in this process)", close: () => capture.close() };
}

interface Missive {
  SmtpBackend: typeof SmtpBackend;
  EmailMessage: typeof EmailMessage;
}

function batch(m: Missive): EmailMessage[] {
  return Array.from(
    { length: MESSAGES },
    (_, i) =>
      new m.EmailMessage({
        subject: `Order ${i} confirmed`,
        body: "Hello,\n\nyour order is on its way.\n\n— The shop\n".repeat(8),
        from: "Shop <shop@example.com>",
        to: [`customer${i}@example.org`],
      }),
  );
}

interface Variant {
  readonly label: string;
  readonly missive: Missive;
  readonly options?: Record<string, unknown>;
  readonly attach?: () => void;
  readonly detach?: () => void;
  readonly times: number[];
}

const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
const dropSpans: SpanExporter = { export: (_spans: ReadableSpan[], done) => done({ code: 0 }), shutdown: async () => {} };
class Reader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

export async function run(): Promise<void> {
  const here: Missive = { SmtpBackend, EmailMessage };
  const baseDir = process.env["MISSIVE_BASELINE"];
  const base: Missive | undefined = baseDir
    ? {
        SmtpBackend: ((await import(pathToFileURL(join(baseDir, "src/backends/smtp.ts")).href)) as { SmtpBackend: typeof SmtpBackend }).SmtpBackend,
        EmailMessage: ((await import(pathToFileURL(join(baseDir, "src/mime/message.ts")).href)) as { EmailMessage: typeof EmailMessage }).EmailMessage,
      }
    : undefined;
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(dropSpans)] });
  const meterProvider = new MeterProvider({ readers: [new Reader()] });
  const variants: Variant[] = [
    ...(base ? [{ label: `baseline (${baseDir}), nothing attached`, missive: base, times: [] }] : []),
    { label: "nothing attached", missive: here, times: [] },
    { label: "pino at info (discarded)", missive: here, options: { logger: pino({ level: "info" }, discard) }, times: [] },
    { label: "missive/otel (spans + metrics)", missive: here, attach: () => instrument({ tracerProvider, meterProvider }), detach: uninstrument, times: [] },
  ];
  const sink = await startSink();
  const rounds = Number(process.env["ROUNDS"] ?? 7);
  console.log(`# observability overhead (node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"}, ${cpus().length} cores): ${MESSAGES} messages per send to ${sink.name}, ${rounds} rounds`);
  try {
    for (let round = -1; round < rounds; round++) {
      const order = variants.map((_, i) => variants[(i + Math.max(round, 0)) % variants.length]!);
      for (const v of order) {
        const messages = batch(v.missive);
        const backend = new v.missive.SmtpBackend({ host: "127.0.0.1", port: sink.port, localName: "bench.test", ...v.options });
        await backend.open();
        v.attach?.();
        const started = process.hrtime.bigint();
        const sent = await backend.sendMessages(messages);
        const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
        v.detach?.();
        await backend.close();
        if (sent !== MESSAGES) throw new Error(`${v.label}: sent ${sent} of ${MESSAGES}`);
        if (round >= 0) v.times.push(elapsed);
      }
    }
  } finally {
    uninstrument();
    await sink.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const reference = median((base ? variants[1]! : variants[0]!).times);
  const baseline = base ? median(variants[0]!.times) : undefined;
  for (const v of variants) {
    const m = median(v.times);
    const perMessage = (m * 1000) / MESSAGES;
    const against = baseline !== undefined && v !== variants[0] ? `   ${(((m - baseline) / baseline) * 100).toFixed(1).padStart(5)} % vs baseline` : "";
    const vsNothing = v.missive === here && v.times !== (base ? variants[1]! : variants[0]!).times ? `   ${(((m - reference) / reference) * 100).toFixed(1).padStart(5)} % vs nothing attached` : "";
    console.log(`  ${v.label.padEnd(40)} ${m.toFixed(0).padStart(6)} ms  ${perMessage.toFixed(1).padStart(6)} µs/message${against}${vsNothing}`);
    console.log(`  ${"".padEnd(40)} rounds: ${v.times.map((t) => t.toFixed(0)).join(", ")}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await run();
