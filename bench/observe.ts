/**
 * What observability costs: 2,000 messages sent through SmtpBackend (one open connection,
 * one sendMessages call) to a loopback sink, with nothing attached, with pino logging at
 * info (to a stream that discards), and with missive/otel recording spans and metrics —
 * and, when MISSIVE_BASELINE names the checkout of another commit, that commit's missive
 * with nothing attached, in the same run:
 *
 *   git archive <commit> | tar -x -C /tmp/missive-base && ln -s "$PWD/node_modules" /tmp/missive-base/
 *   MISSIVE_BASELINE=/tmp/missive-base node --import tsx bench/observe.ts
 *
 * Each measurement runs in a process of its own (this file with `--worker`), which loads
 * missive from its directory, warms up with 2,000 messages and then times one send of 2,000:
 * two copies of missive in one process would not be measured alike (the one loaded second
 * ran about 25 % slower in a trial with two copies of the same commit). Variants take
 * turns, round after round, starting each round with a different one, so that a change in
 * the machine's load touches them alike. The sink is Postfix's smtp-sink when installed
 * (another process: the workers' CPU time is the client's alone), else the capture server.
 *
 * Shown: the median wall and CPU time (user + system of the worker) per send, and the
 * median over the rounds of each variant's ratio to the reference measured in the same
 * round — on a shared machine the paired CPU ratio is the figure to read. Nothing fails on
 * the figures.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { connect, createServer } from "node:net";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";

const MESSAGES = 2_000;
const WARM_UP = 2_000;
const SMTP_SINK = "/usr/sbin/smtp-sink";
const HERE = resolve(dirname(fileURLToPath(import.meta.url)), "..");

type VariantName = "nothing" | "pino" | "otel";

interface Variant {
  readonly label: string;
  readonly dir: string;
  readonly name: VariantName;
  readonly wall: number[];
  readonly cpu: number[];
}

// --- the worker: one measurement -------------------------------------------------------------

async function worker(dir: string, name: VariantName, port: number): Promise<void> {
  const { SmtpBackend } = (await import(pathToFileURL(join(dir, "src/backends/smtp.ts")).href)) as typeof import("../src/backends/smtp.js");
  const { EmailMessage } = (await import(pathToFileURL(join(dir, "src/mime/message.ts")).href)) as typeof import("../src/mime/message.js");
  const options: Record<string, unknown> = {};
  if (name === "pino") {
    const pino = (await import("pino")).default;
    options["logger"] = pino({ level: "info" }, new Writable({ write: (_chunk, _encoding, callback) => callback() }));
  }
  if (name === "otel") {
    const { BasicTracerProvider, SimpleSpanProcessor } = await import("@opentelemetry/sdk-trace-base");
    const { MeterProvider, MetricReader } = await import("@opentelemetry/sdk-metrics");
    const { instrument } = (await import(pathToFileURL(join(dir, "src/otel/index.ts")).href)) as typeof import("../src/otel/index.js");
    class Reader extends MetricReader {
      protected override async onForceFlush(): Promise<void> {}
      protected override async onShutdown(): Promise<void> {}
    }
    const dropSpans = { export: (_spans: unknown[], done: (r: { code: number }) => void) => done({ code: 0 }), shutdown: async () => {} };
    instrument({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(dropSpans)] }), meterProvider: new MeterProvider({ readers: [new Reader()] }) });
  }
  const batch = (n: number) =>
    Array.from(
      { length: n },
      (_, i) =>
        new EmailMessage({
          subject: `Order ${i} confirmed`,
          body: "Hello,\n\nyour order is on its way.\n\n— The shop\n".repeat(8),
          from: "Shop <shop@example.com>",
          to: [`customer${i}@example.org`],
        }),
    );
  const backend = new SmtpBackend({ host: "127.0.0.1", port, localName: "bench.test", ...options });
  await backend.open();
  await backend.sendMessages(batch(WARM_UP));
  const messages = batch(MESSAGES);
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const sent = await backend.sendMessages(messages);
  const wall = Number(process.hrtime.bigint() - started) / 1e6;
  const cpu = process.cpuUsage(cpuBefore);
  await backend.close();
  if (sent !== MESSAGES) throw new Error(`sent ${sent} of ${MESSAGES}`);
  process.stdout.write(`${JSON.stringify({ wall, cpu: (cpu.user + cpu.system) / 1000 })}\n`);
}

function measure(v: Variant, port: number): Promise<{ wall: number; cpu: number }> {
  return new Promise((done, fail) => {
    execFile(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--worker", v.dir, v.name, String(port)], { cwd: HERE, timeout: 300_000 }, (error, stdout, stderr) => {
      if (error) return fail(new Error(`${v.label}: ${stderr || error.message}`));
      done(JSON.parse(stdout.trim().split("\n").at(-1)!) as { wall: number; cpu: number });
    });
  });
}

// --- the sink ---------------------------------------------------------------------------

interface Sink {
  readonly port: number;
  readonly name: string;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const port = (server.address() as { port: number }).port;
  await new Promise((done) => server.close(done));
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
      const ok = await new Promise<boolean>((done) => {
        const socket = connect({ host: "127.0.0.1", port }, () => (socket.destroy(), done(true)));
        socket.once("error", () => done(false));
      });
      if (ok) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return {
      port,
      name: "smtp-sink (Postfix)",
      close: async () => {
        if (child.exitCode !== null) return;
        const exited = new Promise((done) => child.once("exit", done));
        child.kill("SIGTERM");
        await exited;
      },
    };
  }
  // Imported here only: a worker must load no missive but the one it measures.
  const { CaptureServer } = await import("../src/preview/smtp-server.js");
  const capture = await CaptureServer.start({ port: 0, hostname: "sink.bench", deliver: async () => "queued" });
  return { port: capture.port, name: "the capture server (in this process)", close: () => capture.close() };
}

// --- the coordinator ----------------------------------------------------------------------

export async function run(): Promise<void> {
  const baseDir = process.env["MISSIVE_BASELINE"];
  const variant = (label: string, dir: string, name: VariantName): Variant => ({ label, dir, name, wall: [], cpu: [] });
  const variants: Variant[] = [
    ...(baseDir ? [variant(`baseline (${baseDir}), nothing attached`, resolve(baseDir), "nothing")] : []),
    variant("nothing attached", HERE, "nothing"),
    variant("pino at info (discarded)", HERE, "pino"),
    variant("missive/otel (spans + metrics)", HERE, "otel"),
  ];
  const rounds = Number(process.env["ROUNDS"] ?? 7);
  const sink = await startSink();
  console.log(`# observability overhead (node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"}, ${cpus().length} cores): ${MESSAGES} messages per send to ${sink.name}, ${rounds} rounds, a process per measurement`);
  try {
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(k + round) % variants.length]!;
        const { wall, cpu } = await measure(v, sink.port);
        v.wall.push(wall);
        v.cpu.push(cpu);
      }
    }
  } finally {
    await sink.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const percent = (ratio: number) => `${ratio >= 1 ? "+" : ""}${((ratio - 1) * 100).toFixed(1)} %`;
  /** The median over the rounds of `v`'s figure over `ref`'s in the same round. */
  const paired = (v: Variant, ref: Variant, key: "wall" | "cpu") => median(v[key].map((x, i) => x / ref[key][i]!));
  const nothing = variants.find((v) => v.label === "nothing attached")!;
  const baseline = baseDir ? variants[0]! : undefined;
  for (const v of variants) {
    const wall = median(v.wall);
    const cpu = median(v.cpu);
    const vs = [
      ...(baseline !== undefined && v !== baseline ? [`vs baseline: wall ${percent(paired(v, baseline, "wall"))}, CPU ${percent(paired(v, baseline, "cpu"))}`] : []),
      ...(v !== nothing && v !== baseline ? [`vs nothing attached: wall ${percent(paired(v, nothing, "wall"))}, CPU ${percent(paired(v, nothing, "cpu"))}`] : []),
    ];
    console.log(`  ${v.label}`);
    console.log(`    wall ${wall.toFixed(0)} ms (${((wall * 1000) / MESSAGES).toFixed(1)} µs/message), CPU ${cpu.toFixed(0)} ms (${((cpu * 1000) / MESSAGES).toFixed(1)} µs/message)${vs.length ? `; ${vs.join("; ")}` : ""}`);
    console.log(`    rounds (wall/CPU ms): ${v.wall.map((t, i) => `${t.toFixed(0)}/${v.cpu[i]!.toFixed(0)}`).join(" ")}`);
  }
}

const [, self, flag, dir, name, port] = process.argv;
if (import.meta.url === pathToFileURL(self ?? "").href) {
  if (flag === "--worker") await worker(dir!, name as VariantName, Number(port));
  else await run();
}
