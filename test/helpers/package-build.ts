/**
 * The package as published, built once per change of its sources: `npm run build`, then
 * `npm pack`. Several test files need it (test/package/*, test/readme-samples.test.ts) and
 * the build takes minutes, so the first caller builds while the others wait on a lock, and
 * a later run reuses dist/ while a hash of everything that goes into the build (src/, bin/,
 * package.json, tsup.config.ts, tsconfig.json) is unchanged. The stamp and the tarballs are
 * kept in node_modules/.cache/missive-package/.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CACHE = join(ROOT, "node_modules/.cache/missive-package");
const LOCK = join(CACHE, "lock");
const INPUTS = ["src", "bin", "package.json", "tsup.config.ts", "tsconfig.json"];

export interface PackedFile {
  path: string;
  size: number;
}

export interface BuiltPackage {
  /** The .tgz `npm pack` wrote. */
  tarball: string;
  /** From `npm pack --json`: sizes and the file list. */
  size: number;
  unpackedSize: number;
  files: PackedFile[];
}

async function filesUnder(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) return [];
  if (!info.isDirectory()) return [path];
  const names = (await readdir(path)).sort();
  return (await Promise.all(names.map((n) => filesUnder(join(path, n))))).flat();
}

async function inputHash(): Promise<string> {
  const hash = createHash("sha256");
  for (const input of INPUTS) {
    for (const file of await filesUnder(join(ROOT, input))) {
      hash.update(file.slice(ROOT.length)).update("\0").update(await readFile(file)).update("\0");
    }
  }
  return hash.digest("hex");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** mkdir is atomic: whoever creates the lock directory builds; a lock left by a dead process is taken over. */
async function withLock<T>(work: () => Promise<T>, timeoutMs: number): Promise<T> {
  await mkdir(CACHE, { recursive: true });
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch {
      const holder = Number(await readFile(join(LOCK, "pid"), "utf8").catch(() => "NaN"));
      if (Number.isInteger(holder) && !alive(holder)) await rm(LOCK, { recursive: true, force: true });
      else if (Date.now() > until) throw new Error(`the package build lock ${LOCK} is still held after ${timeoutMs} ms`);
      else await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  await writeFile(join(LOCK, "pid"), String(process.pid));
  try {
    return await work();
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
}

let built: Promise<BuiltPackage> | undefined;

/**
 * The built and packed package for the current sources. dist/ is rebuilt when the build's
 * inputs changed; the tarball is made afresh by each test process (a few seconds), into a
 * folder of its own, so that README.md and LICENSE in it are always the current ones and no
 * process reads a tarball another is writing.
 */
export function builtPackage(): Promise<BuiltPackage> {
  built ??= withLock(async () => {
    const hash = await inputHash();
    const stampFile = join(CACHE, "stamp.json");
    const stamp = JSON.parse(await readFile(stampFile, "utf8").catch(() => "{}")) as { hash?: string; dist?: number };
    // dist/ as this helper left it (a build by hand since then may have had other sources).
    const distTime = () => stat(join(ROOT, "dist/index.js")).then((s) => s.mtimeMs, () => undefined);
    if (stamp.hash !== hash || stamp.dist !== (await distTime())) {
      await rm(stampFile, { force: true });
      await run("npm", ["run", "build"], { cwd: ROOT, timeout: 400_000 });
      await writeFile(stampFile, JSON.stringify({ hash, dist: await distTime() }));
    }
    const packs = join(CACHE, "packs");
    await mkdir(packs, { recursive: true });
    for (const old of await readdir(packs)) if (!alive(Number(old))) await rm(join(packs, old), { recursive: true, force: true });
    const destination = join(packs, String(process.pid));
    await mkdir(destination, { recursive: true });
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", destination], { cwd: ROOT, timeout: 60_000 });
    const [report] = JSON.parse(stdout) as [{ filename: string; size: number; unpackedSize: number; files: PackedFile[] }];
    return {
      tarball: join(destination, report.filename),
      size: report.size,
      unpackedSize: report.unpackedSize,
      files: report.files.map(({ path, size }) => ({ path, size })),
    };
  }, 450_000);
  return built;
}
