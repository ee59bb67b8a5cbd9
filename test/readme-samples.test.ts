/**
 * Every ```ts / ```typescript / ```js block of README.md, as a user would copy it into a
 * project that installed the packed package (`npm pack`, unpacked into node_modules/missive):
 *
 * 1. compiled with strict tsc twice: as ESM with the settings `tsc --init` writes
 *    (module nodenext, target esnext, strict, noUncheckedIndexedAccess,
 *    exactOptionalPropertyTypes, verbatimModuleSyntax) in a `"type": "module"` package,
 *    and as CommonJS (module commonjs, moduleResolution node10, so `missive/testing` and the
 *    other subpaths are found through typesVersions), the block's statements inside an
 *    async function there since CommonJS has no top-level await (opened after the block's
 *    last top-level import, its `export` modifiers blanked: see asCommonJs); the project has
 *    the packages the blocks import (pino, the OpenTelemetry SDK) and missive's optional
 *    peers linked from this repository's node_modules, as a user would have installed them;
 * 2. the ESM output is parsed by this Node (`node --check`): syntax this Node cannot run
 *    (`await using` on Node 20) fails here;
 * 3. the blocks marked `<!-- sample: run NAME -->` are run with the packed package, against
 *    aiosmtpd where they send (an entry of RUNS below says what is replaced to reach it:
 *    each replaced text must occur exactly once, so an edit to the sample that the test does
 *    not follow fails loudly).
 *
 * Each block is classified by an HTML comment just before its opening fence:
 * - `<!-- sample: run NAME -->`: run here (RUNS[NAME]);
 * - `<!-- sample: fragment (why) declarations… -->`: not complete on its own (it continues
 *   the block above); the comment's lines after the first are TypeScript declarations for
 *   the names it uses (`declare const signers: import("missive/dkim").DkimOptions[];`),
 *   added at the end of the file so line numbers stay the README's;
 * - `<!-- sample: compile-only: why -->`: compiled, not run, for the reason given;
 * - any other comment naming a test/…test.ts file that runs the block (the bulk-mail
 *   example's): compiled here, run there.
 * A block that sends mail (sendMail, deliver, send(), sendMessages…) with none of these
 * fails, and so does every compile error, each reported as README.md:LINE.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAiosmtpd, type AiosmtpdServer, type StoredMessage } from "./helpers/aiosmtpd.js";
import { makeTestCerts, type TestCerts } from "./helpers/certs.js";
import { builtPackage, ROOT } from "./helpers/package-build.js";
import { dkimFixtures } from "./dkim/helpers.js";

const run = promisify(execFile);
const TSC = join(ROOT, "node_modules/typescript/lib/tsc.js");
const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href;
const PASSWORD = "s3cret pass";

interface Block {
  /** README line of the block's first code line (the one after the fence). */
  line: number;
  lang: string;
  code: string;
  /** The HTML comments right above the fence, without <!-- and -->. */
  comments: string[];
}

type Kind =
  | { kind: "run"; name: string }
  | { kind: "fragment"; declarations: string }
  | { kind: "compile-only"; reason: string }
  | { kind: "run-elsewhere"; test: string }
  | { kind: "plain" };

function readmeBlocks(text: string): Block[] {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    const comments: string[] = [];
    let j = i - 1;
    while (j >= 0 && lines[j]!.trimEnd().endsWith("-->")) {
      let start = j;
      while (start >= 0 && !lines[start]!.includes("<!--")) start--;
      if (start < 0) break;
      comments.unshift(lines.slice(start, j + 1).join("\n").replace(/^[\s\S]*?<!--\s?/, "").replace(/\s*-->\s*$/, ""));
      j = start - 1;
    }
    blocks.push({ line: i + 2, lang: open[1]!, code: lines.slice(i + 1, end).join("\n"), comments });
    i = end;
  }
  return blocks;
}

function kindOf(block: Block): Kind {
  for (const comment of block.comments) {
    const sample = /^sample:\s*(run|fragment|compile-only)\b([\s\S]*)$/.exec(comment);
    if (sample) {
      const rest = sample[2]!;
      if (sample[1] === "run") return { kind: "run", name: rest.trim() };
      if (sample[1] === "fragment") return { kind: "fragment", declarations: rest.split("\n").slice(1).join("\n") };
      return { kind: "compile-only", reason: rest.replace(/^:\s*/, "").trim() };
    }
    const test = /\b(test\/[\w/.-]+\.test\.ts)\b/.exec(comment);
    if (test) return { kind: "run-elsewhere", test: test[1]! };
  }
  return { kind: "plain" };
}

const SENDS = /\b(sendMail|sendMassMail|mailAdmins|mailManagers|deliver|deliverMany|sendMessages|sendMessagesWithReport)\s*\(|\.send\(\s*\)/;

interface RunContext {
  server: AiosmtpdServer;
  certs: TestCerts;
}

interface Run {
  /** [text in the sample, what it becomes]; each text must occur exactly once. */
  replace?: (ctx: RunContext) => [string, string][];
  env?: (ctx: RunContext) => Record<string, string>;
  /** What aiosmtpd must have received from this run (its messages, in order), and the output. */
  check?: (received: StoredMessage[], stdout: string) => void;
}

const subjectOf = (m: StoredMessage) => /^Subject: (.*)$/m.exec(m.data.toString("latin1"))?.[1];
const server = (ctx: RunContext) => `host: "127.0.0.1", port: ${ctx.server.port},`;
const trusted = (ctx: RunContext) => `${server(ctx)} tlsOptions: { ca: ${JSON.stringify(ctx.certs.ca)} },`;

const RUNS: Record<string, Run> = {
  tour: {
    replace: (ctx) => [['host: "smtp.example.com", port: 587,', trusted(ctx)]],
    env: () => ({ SMTP_PASSWORD: PASSWORD }),
    check: (received) => {
      expect(received.map((m) => [m.tls, m.authUser, m.rcptTos])).toEqual([
        [true, "app", ["zoe@example.org"]],
        [true, "app", ["bob@example.org", "carol@xn--bcher-kva.example", "audit@example.com"]],
      ]);
      expect(received[1]!.data.toString("latin1")).toMatch(/filename="?report\.pdf/);
    },
  },
  freeze: {},
  sending: {
    env: (ctx) => ({ EMAIL_URL: `smtp://127.0.0.1:${ctx.server.port}` }),
    check: (received) => expect(received.map(subjectOf)).toEqual(["Welcome", "Subject 1", "Subject 2", "Monthly report", "Monthly report", "Monthly report"]),
  },
  report: {
    replace: (ctx) => [['host: "mail.example.com", port: 587,', trusted(ctx)]],
    env: () => ({ SMTP_PASSWORD: PASSWORD }),
    check: (received) => expect(received.map((m) => [m.authUser, m.rcptTos])).toEqual([["app", ["a@x.org"]]]),
  },
  pooling: {
    replace: (ctx) => [['host: "relay.example.com",', server(ctx)]],
    check: (received, stdout) => {
      expect(received.map((m) => m.rcptTos[0]).sort()).toEqual(["ann@example.org", "bob@example.org", "carol@example.org", "dan@example.org"]);
      expect(stdout.trim()).toBe("[ 'sent', 'sent', 'sent', 'sent' ]");
    },
  },
  "smtp-pool": {
    replace: (ctx) => [['host: "relay.example.com",', server(ctx)]],
    check: (received) => expect(received.map((m) => [m.mailFrom, m.rcptTos, subjectOf(m)])).toEqual([["a@example.org", ["b@example.org"], "hi"]]),
  },
  "named-connections": {
    replace: (ctx) => [['host: "smtp.postmark.example", port: 587,', trusted(ctx)]],
    env: () => ({ POSTMARK_TOKEN: PASSWORD }),
    check: (received) => expect(received.map((m) => [m.tls, m.authUser, subjectOf(m)])).toEqual([[true, "app", "Your receipt"]]),
  },
  "dkim-settings": {
    replace: (ctx) => [['host: "smtp.example.com", port: 587,', trusted(ctx)]],
    env: () => ({ SMTP_PASSWORD: PASSWORD }),
    check: (received) => {
      const head = received.map((m) => m.data.toString("latin1").split("\r\n\r\n")[0]!);
      expect(head.map((h) => [...h.matchAll(/^DKIM-Signature: v=1; a=([\w-]+)/gm)].map((m) => m[1]))).toEqual([["rsa-sha256", "ed25519-sha256"]]);
    },
  },
  "dkim-per-connection": {},
  "sign-message": {
    replace: (ctx) => [['host: "smtp.example.com", port: 587, tls: "starttls",', `${server(ctx)} tls: "starttls", tlsOptions: { ca: ${JSON.stringify(ctx.certs.ca)} },`]],
    env: () => ({ SMTP_PASSWORD: PASSWORD }),
    check: (received) => expect(received.map((m) => [m.tls, m.authUser, (m.data.toString("latin1").match(/^DKIM-Signature:/gm) ?? []).length])).toEqual([[true, "app", 2]]),
  },
  pino: {
    env: (ctx) => ({ EMAIL_URL: `smtp://127.0.0.1:${ctx.server.port}` }),
    check: (received, stdout) => {
      expect(received.map((m) => [m.rcptTos, subjectOf(m)])).toEqual([[["zoe@example.org"], "Your code"]]);
      const records = stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(records.map((r) => r["event"])).toEqual(["smtp.connect", "message.sent", "smtp.close"]);
    },
  },
  otel: {},
  calendar: {},
  catcher: {},
  parse: {},
};

const readme = await readFile(join(ROOT, "README.md"), "utf8");
const samples = readmeBlocks(readme).filter((b) => ["ts", "typescript", "js"].includes(b.lang));

let project: string;
let certs: TestCerts;
let aiosmtpd: AiosmtpdServer;

/** The package a bare specifier names: `pino`, `@opentelemetry/sdk-metrics` (of `@opentelemetry/sdk-metrics/x`). */
const packageOf = (specifier: string) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/");

/**
 * What a user of the samples installed beside missive: every package a README block imports
 * (pino, the OpenTelemetry SDK…) and missive's peer dependencies (what `missive/otel` and
 * `missive/bullmq` need), when the repository has it as a dev or peer dependency.
 */
async function userInstalls(): Promise<string[]> {
  const manifest = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as Record<string, Record<string, string> | undefined>;
  const known = new Set([...Object.keys(manifest["devDependencies"] ?? {}), ...Object.keys(manifest["peerDependencies"] ?? {})]);
  const imported = samples.flatMap((block) => importsOf(block).map((i) => packageOf(i.specifier)));
  return [...new Set([...imported, ...Object.keys(manifest["peerDependencies"] ?? {})])].filter((name) => known.has(name));
}

/** The block's top-level import declarations (and their module names), parsed by TypeScript. */
function importsOf(block: Block): { node: ts.Statement; specifier: string }[] {
  const source = ts.createSourceFile(fileName(block), block.code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  return source.statements.flatMap((node): { node: ts.Statement; specifier: string }[] => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) return [{ node, specifier: node.moduleSpecifier.text }];
    if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      return [{ node, specifier: node.moduleReference.expression.text }];
    }
    return [];
  });
}

/** A project that installed the packed package: node_modules/missive from the tarball, the rest linked. */
async function makeProject(): Promise<string> {
  const pack = await builtPackage();
  const dir = await mkdtemp(join(tmpdir(), "missive-readme-samples-"));
  await mkdir(join(dir, "node_modules/@types"), { recursive: true });
  await run("tar", ["-xzf", pack.tarball, "-C", join(dir, "node_modules")]);
  await run("mv", [join(dir, "node_modules/package"), join(dir, "node_modules/missive")]);
  for (const dep of new Set(["iconv-lite", "mime-types", "safer-buffer", "mime-db", "vitest", "@types/node", "undici-types", ...(await userInstalls())])) {
    if (!existsSync(join(ROOT, "node_modules", dep))) continue;
    await mkdir(dirname(join(dir, "node_modules", dep)), { recursive: true });
    await symlink(join(ROOT, "node_modules", dep), join(dir, "node_modules", dep));
  }
  const common = { strict: true, skipLibCheck: true, types: ["node"], noEmitOnError: false };
  await mkdir(join(dir, "esm"));
  await mkdir(join(dir, "cjs"));
  await writeFile(join(dir, "esm/package.json"), JSON.stringify({ type: "module" }));
  await writeFile(join(dir, "cjs/package.json"), JSON.stringify({ type: "commonjs" }));
  await writeFile(join(dir, "tsconfig.esm.json"), JSON.stringify({
    compilerOptions: {
      ...common, module: "nodenext", target: "esnext", noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true,
      verbatimModuleSyntax: true, isolatedModules: true, moduleDetection: "force", outDir: "out-esm", rootDir: "esm",
    },
    include: ["esm/readme-*.ts"],
  }));
  await writeFile(join(dir, "tsconfig.cjs.json"), JSON.stringify({
    compilerOptions: { ...common, module: "commonjs", moduleResolution: "node10", target: "es2022", esModuleInterop: true, noEmit: true },
    include: ["cjs/readme-*.ts"],
  }));
  // What the samples read from the working directory: the tour's attachments and the DKIM keys.
  await copyFile(join(ROOT, "examples/assets/logo.png"), join(dir, "logo.png"));
  await copyFile(join(ROOT, "examples/assets/report.pdf"), join(dir, "report.pdf"));
  for (const name of ["s2026._domainkey.example.com.pem", "p1._domainkey.partner.example.pem"]) await copyFile(join(dkimFixtures, "keys/test-rsa-2048.pem"), join(dir, name));
  await copyFile(join(dkimFixtures, "keys/test-ed25519.pem"), join(dir, "ed2026._domainkey.example.com.pem"));
  return dir;
}

const fileName = (block: Block) => `readme-${block.line}.ts`;

/** Appended after the code so that line N of the file is README line block.line + N - 1. */
function tail(block: Block): string {
  const kind = kindOf(block);
  return `\n${kind.kind === "fragment" ? kind.declarations : ""}\nexport {};\n`;
}

/**
 * CommonJS has no top-level await: the statements go inside an async function, on the same
 * lines. The function opens right after the block's last top-level import (wherever it is:
 * after a `// app.ts` comment too), and `export` on a top-level declaration (`export const
 * server = …`) becomes spaces, since a function's locals cannot be exported; columns stay.
 */
function asCommonJs(block: Block): string {
  const source = ts.createSourceFile(fileName(block), block.code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const edits: { at: number; end: number; text: string }[] = [];
  for (const statement of source.statements) {
    for (const modifier of ts.canHaveModifiers(statement) ? (ts.getModifiers(statement) ?? []) : []) {
      if (modifier.kind === ts.SyntaxKind.ExportKeyword || modifier.kind === ts.SyntaxKind.DefaultKeyword) {
        edits.push({ at: modifier.getStart(source), end: modifier.end, text: " ".repeat(modifier.end - modifier.getStart(source)) });
      }
    }
  }
  const imports = importsOf(block);
  const open = imports.length === 0 ? 0 : Math.max(...imports.map((i) => i.node.end));
  edits.push({ at: open, end: open, text: imports.length === 0 ? "async function sample() { " : " async function sample() {" });
  let code = block.code;
  for (const edit of edits.sort((a, b) => b.at - a.at)) code = code.slice(0, edit.at) + edit.text + code.slice(edit.end);
  return `${code}\n}\nvoid sample;${tail(block)}`;
}

/** tsc's `esm/readme-42.ts(3,5): error TS…` as `README.md:44:5 (ESM): error TS…`. */
function readmeErrors(output: string, setting: string): string[] {
  return output.split("\n").filter((l) => /error TS\d+/.test(l)).map((l) => {
    const at = /readme-(\d+)\.ts\((\d+),(\d+)\): (.*)$/.exec(l);
    if (!at) return `${setting}: ${l.trim()}`;
    return `README.md:${Number(at[1]) + Number(at[2]) - 1}:${at[3]} (${setting}): ${at[4]}`;
  });
}

async function tsc(config: string): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [TSC, "-p", config, "--pretty", "false"], { cwd: project, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    return (error as { stdout?: string }).stdout ?? String(error);
  }
}

beforeAll(async () => {
  [project, certs] = await Promise.all([makeProject(), makeTestCerts()]);
  aiosmtpd = await startAiosmtpd({ tls: "starttls", auth: { users: { app: PASSWORD } }, rejectRecipients: ["gone@x.org"] });
  for (const block of samples) {
    await writeFile(join(project, "esm", fileName(block)), block.code + tail(block));
    await writeFile(join(project, "cjs", fileName(block)), asCommonJs(block));
  }
}, 500_000);

afterAll(async () => {
  await aiosmtpd?.stop();
  if (project) await rm(project, { recursive: true, force: true });
});

describe("README samples", () => {
  it("finds the samples and classifies every one that sends", () => {
    expect(samples.length).toBeGreaterThan(10);
    const problems: string[] = [];
    for (const block of samples) {
      const kind = kindOf(block);
      if (kind.kind === "plain" && SENDS.test(block.code)) {
        problems.push(`README.md:${block.line}: this block sends mail but says neither how it runs nor why not: put <!-- sample: run NAME --> before it (and an entry in RUNS in test/readme-samples.test.ts), a comment naming the test that runs it, or <!-- sample: compile-only: why -->`);
      }
      if (kind.kind === "run" && RUNS[kind.name] === undefined) problems.push(`README.md:${block.line}: <!-- sample: run ${kind.name} --> has no entry in RUNS (test/readme-samples.test.ts)`);
      if (kind.kind === "compile-only" && kind.reason === "") problems.push(`README.md:${block.line}: compile-only needs a reason`);
      if (kind.kind === "run-elsewhere" && !existsSync(join(ROOT, kind.test))) problems.push(`README.md:${block.line}: ${kind.test} does not exist`);
    }
    const named = samples.map(kindOf).flatMap((k) => (k.kind === "run" ? [k.name] : []));
    for (const name of Object.keys(RUNS)) if (named.filter((n) => n === name).length !== 1) problems.push(`RUNS.${name} must be named by exactly one <!-- sample: run ${name} --> in README.md`);
    expect(problems).toEqual([]);
  });

  it("compiles every sample with strict tsc as ESM (tsc --init's settings) and as CommonJS (node10 resolution)", async () => {
    const [esm, cjs] = await Promise.all([tsc("tsconfig.esm.json"), tsc("tsconfig.cjs.json")]);
    const errors = [...readmeErrors(esm, "ESM, module nodenext"), ...readmeErrors(cjs, "CommonJS, moduleResolution node10")];
    expect(errors, errors.join("\n")).toEqual([]);
    // The ESM output must be syntax this Node parses (target esnext leaves `await using` as it is).
    const emitted = (await readdir(join(project, "out-esm"))).filter((f) => f.endsWith(".js"));
    expect(emitted).toHaveLength(samples.length);
    const unparsable: string[] = [];
    await Promise.all(emitted.map(async (file) => {
      try {
        await run(process.execPath, ["--check", join(project, "out-esm", file)], { timeout: 30_000 });
      } catch (error) {
        const line = Number(/readme-(\d+)/.exec(file)![1]);
        unparsable.push(`README.md:${line}: Node ${process.version} cannot parse the compiled sample: ${String((error as { stderr?: string }).stderr).split("\n").find((l) => l.includes("Error")) ?? error}`);
      }
    }));
    expect(unparsable, unparsable.join("\n")).toEqual([]);
  }, 200_000);

  for (const block of samples) {
    const kind = kindOf(block);
    if (kind.kind !== "run") continue;
    it(`runs "${kind.name}" (README.md:${block.line}) with the packed package`, async () => {
      const spec = RUNS[kind.name]!;
      const ctx = { server: aiosmtpd, certs };
      let code = block.code;
      for (const [from, to] of spec.replace?.(ctx) ?? []) {
        expect(code.split(from).length - 1, `README.md:${block.line}: the sample holds ${JSON.stringify(from)} once`).toBe(1);
        code = code.replace(from, () => to);
      }
      const file = join(project, "esm", `run-${block.line}.ts`);
      await writeFile(file, code + tail(block));
      const before = (await aiosmtpd.messages()).length;
      const { stdout } = await run(process.execPath, ["--import", TSX, file], {
        cwd: project,
        env: { ...process.env, ...spec.env?.(ctx) },
        timeout: 60_000,
      }).catch((error: { stderr?: string; message: string }) => {
        throw new Error(`README.md:${block.line} (sample "${kind.name}") failed: ${error.stderr || error.message}`);
      });
      const received = (await aiosmtpd.messages()).slice(before);
      if (spec.check) spec.check(received, stdout);
      else expect(received, `README.md:${block.line} sends nothing`).toEqual([]);
    }, 90_000);
  }
});
