/**
 * The tarball `npm pack` makes, as a registry would serve it: what is in it, and whether
 * TypeScript finds the types of every entry under every module resolution a user may have
 * (@arethetypeswrong/cli: node10, node16 from CJS, node16 from ESM, bundler).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtPackage, ROOT, type BuiltPackage } from "../helpers/package-build.js";

const run = promisify(execFile);
let pack: BuiltPackage;
let unpacked: string;

interface ExportConditions {
  import: { types: string; default: string };
  require: { types: string; default: string };
}
const manifest = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
  exports: Record<string, ExportConditions | string>;
  typesVersions: Record<string, Record<string, string[]>>;
  sideEffects: string[];
  license: string;
  types: string;
};
const subpaths = Object.entries(manifest.exports).filter((e): e is [string, ExportConditions] => typeof e[1] === "object" && e[0] !== ".");

beforeAll(async () => {
  pack = await builtPackage();
  unpacked = await mkdtemp(join(tmpdir(), "missive-pack-"));
  await run("tar", ["-xzf", pack.tarball, "-C", unpacked]);
}, 500_000);

afterAll(async () => {
  if (unpacked) await rm(unpacked, { recursive: true, force: true });
});

/** Glob of package.json's sideEffects: `*` within one path segment. */
function matches(pattern: string, path: string): boolean {
  const source = pattern.replace(/^\.\//, "").replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*");
  return new RegExp(`^${source}$`).test(path);
}

describe("the packed package", () => {
  it("ships LICENSE (MIT, as package.json says), README and dist only", () => {
    const top = new Set(pack.files.map((f) => f.path.split("/")[0]));
    expect([...top].sort()).toEqual(["LICENSE", "README.md", "dist", "package.json"]);
    expect(manifest.license).toBe("MIT");
  });

  it("has the LICENSE text for the missive authors", async () => {
    const text = await readFile(join(unpacked, "package/LICENSE"), "utf8");
    expect(text).toMatch(/^MIT License\n\nCopyright \(c\) 2026 the missive authors\n/);
  });

  it("ships source maps without sourcesContent (they point at src/ lines, not a second copy of the code)", async () => {
    const maps = pack.files.filter((f) => f.path.endsWith(".map"));
    expect(maps.length).toBeGreaterThan(0);
    for (const map of maps) {
      const json = JSON.parse(await readFile(join(unpacked, "package", map.path), "utf8")) as { sources: string[]; sourcesContent?: unknown };
      expect(json.sourcesContent, map.path).toBeUndefined();
      // Relative paths (src/ lines, or the CJS pass's own file), never the build machine's absolute ones.
      expect(json.sources.filter((s) => s.startsWith("/")), map.path).toEqual([]);
    }
  });

  it("gives moduleResolution node10 the CJS types of every entry: `types` for the root, typesVersions for each subpath export", () => {
    // One flavour for all: missive's root types and missive/backends' types from the ESM and
    // the CJS declaration files would be two different EmailMessage types that do not mix.
    expect(manifest.types).toBe((manifest.exports["."] as ExportConditions).require.types);
    const map = manifest.typesVersions["*"]!;
    const wanted = Object.fromEntries(subpaths.map(([subpath, conditions]) => [subpath.slice(2), [conditions.require.types]]));
    expect(map).toEqual(wanted);
    for (const [, [types]] of Object.entries(map)) expect(pack.files.map((f) => `./${f.path}`), types).toContain(types);
  });

  it("marks as having side effects only the command and the chunks (where built-in backends register); every other file is an entry that only re-exports or defines", () => {
    const code = pack.files.map((f) => f.path).filter((p) => /\.c?js$/.test(p));
    for (const pattern of manifest.sideEffects) expect(code.some((p) => matches(pattern, p)), pattern).toBe(true);
    const pure = code.filter((p) => !manifest.sideEffects.some((pattern) => matches(pattern, p)));
    const entries = Object.values(manifest.exports).flatMap((c) => (typeof c === "object" ? [c.import.default, c.require.default] : []));
    expect(pure.map((p) => `./${p}`).sort()).toEqual(entries.sort());
  });

  it("has no problem under node10, node16 (CJS and ESM) and bundler resolution (@arethetypeswrong/cli)", async () => {
    const attw = join(ROOT, "node_modules/@arethetypeswrong/cli/dist/index.js");
    const { stdout } = await run(process.execPath, [attw, pack.tarball, "--format", "json"], { cwd: unpacked, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
    const { analysis } = JSON.parse(stdout) as {
      analysis: { problems: unknown[]; entrypoints: Record<string, { resolutions: Record<string, { resolution?: { fileName: string; isTypeScript: boolean } }> }> };
    };
    expect(analysis.problems).toEqual([]);
    const expected = [".", ...subpaths.map(([s]) => s)].sort();
    expect(Object.keys(analysis.entrypoints).filter((e) => e !== "./package.json").sort()).toEqual(expected);
    for (const [entry, { resolutions }] of Object.entries(analysis.entrypoints)) {
      if (entry === "./package.json") continue;
      for (const kind of ["node10", "node16-cjs", "node16-esm", "bundler"]) {
        const file = resolutions[kind]?.resolution?.fileName;
        expect(file, `${entry} under ${kind}`).toMatch(/\.d\.c?ts$/);
      }
    }
  }, 150_000);

  it("is mostly code: the source maps are under a third of the unpacked size", () => {
    const maps = pack.files.filter((f) => f.path.endsWith(".map")).reduce((sum, f) => sum + f.size, 0);
    expect(maps / pack.unpackedSize).toBeLessThan(1 / 3);
  });
});
