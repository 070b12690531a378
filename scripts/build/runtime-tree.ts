/**
 * What one image holds at /app, made from `npm run build`'s output: dist/<process>/ (the bundle, its
 * data files) and node_modules/ with only the packages the bundle leaves outside (its
 * dist/<process>/node_modules links) and what they need at run time. No tsx, no TypeScript, no
 * @types, no jest, no Prisma CLI: nothing the bundle does not `require`.
 *
 *   pnpm exec tsx scripts/build/runtime-tree.ts <out-dir> [process...]     -> <out-dir>/<process>/
 *
 * The packages come from `pnpm deploy --prod` of the process's workspace package (from the
 * lockfile, offline when the store has them), with a flat (hoisted) node_modules, then pruned to
 * that closure. infra/docker/Dockerfile runs this in its build stage.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { BUILT_PROCESSES, REPOSITORY_ROOT, type BuiltProcess } from "./processes";

interface PackageJson {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** The external packages a built process requires: the links the build made in dist/<process>/node_modules. */
export function externalsOf(proc: BuiltProcess): string[] {
  const modules = path.join(REPOSITORY_ROOT, "dist", proc.name, "node_modules");
  if (!existsSync(modules)) throw new Error(`dist/${proc.name} is not built: run npm run build first`);
  return readdirSync(modules).flatMap((name) =>
    name.startsWith("@") ? readdirSync(path.join(modules, name)).map((inner) => `${name}/${inner}`) : [name],
  );
}

/** Where `name` resolves from `fromDir` in a node_modules tree rooted at `root` (Node's upward search). */
function resolvePackage(name: string, fromDir: string, root: string): string | undefined {
  for (let dir = fromDir; dir.startsWith(root); dir = path.dirname(dir)) {
    const candidate = path.join(dir, "node_modules", name);
    if (existsSync(path.join(candidate, "package.json"))) return candidate;
    if (dir === root) break;
  }
  return undefined;
}

/**
 * The top-level packages of `root`/node_modules that `entries` need at run time: dependencies,
 * optional dependencies that are installed, and peers not marked optional.
 */
export function runtimeClosure(root: string, entries: string[]): Set<string> {
  const topLevel = path.join(root, "node_modules");
  const keep = new Set<string>();
  const seen = new Set<string>();
  const queue: Array<{ name: string; from: string }> = entries.map((name) => ({ name, from: root }));
  while (queue.length > 0) {
    const { name, from } = queue.shift()!;
    const dir = resolvePackage(name, from, root);
    if (!dir)
      throw new Error(
        `${name} (needed from ${path.relative(root, from) || "the bundle"}) is not installed under ${root}`,
      );
    if (seen.has(dir)) continue;
    seen.add(dir);
    const relative = path.relative(topLevel, dir).split(path.sep);
    // The top-level package that holds `dir` (itself, or the one whose nested node_modules it is in).
    keep.add(relative[0]!.startsWith("@") ? `${relative[0]}/${relative[1]}` : relative[0]!);
    const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as PackageJson;
    const optional = new Set(Object.keys(manifest.optionalDependencies ?? {}));
    const needed = [
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}).filter(
        (peer) => !manifest.peerDependenciesMeta?.[peer]?.optional,
      ),
    ];
    for (const dependency of needed) queue.push({ name: dependency, from: dir });
    for (const dependency of optional)
      if (resolvePackage(dependency, dir, root)) queue.push({ name: dependency, from: dir });
  }
  return keep;
}

function deploy(proc: BuiltProcess, into: string): void {
  rmSync(into, { recursive: true, force: true });
  execFileSync(
    "pnpm",
    [
      "--filter",
      proc.package,
      "deploy",
      "--prod",
      "--prefer-offline",
      "--config.inject-workspace-packages=true",
      "--config.node-linker=hoisted",
      "--reporter=silent",
      into,
    ],
    { cwd: REPOSITORY_ROOT, stdio: "inherit" },
  );
}

export function runtimeTree(proc: BuiltProcess, outDir: string, deployed: string): void {
  const app = path.join(outDir, proc.name);
  rmSync(app, { recursive: true, force: true });
  cpSync(path.join(REPOSITORY_ROOT, "dist", proc.name), path.join(app, "dist", proc.name), {
    recursive: true,
    filter: (source) => path.basename(source) !== "node_modules",
  });
  for (const name of runtimeClosure(deployed, externalsOf(proc))) {
    cpSync(path.join(deployed, "node_modules", name), path.join(app, "node_modules", name), {
      recursive: true,
      verbatimSymlinks: true,
      // Command links (e.g. @prisma/client's to the Prisma CLI, which is not copied) have no use here.
      filter: (source) => path.basename(source) !== ".bin",
    });
  }
}

function main(): void {
  const [outArg, ...names] = process.argv.slice(2);
  if (!outArg) throw new Error("usage: runtime-tree.ts <out-dir> [process...]");
  const outDir = path.resolve(outArg);
  const selected =
    names.length > 0
      ? names.map((name) => BUILT_PROCESSES.find((proc) => proc.name === name) ?? name)
      : [...BUILT_PROCESSES];
  const unknown = selected.filter((proc): proc is string => typeof proc === "string");
  if (unknown.length > 0) throw new Error(`not in scripts/build/processes.ts: ${unknown.join(", ")}`);
  mkdirSync(outDir, { recursive: true });
  const deployments = path.join(outDir, ".deploy");
  const deployedPackages = new Map<string, string>();
  for (const proc of selected as BuiltProcess[]) {
    let deployed = deployedPackages.get(proc.package);
    if (!deployed) {
      deployed = path.join(deployments, proc.package.replace(/[@/]/g, "_"));
      deploy(proc, deployed);
      deployedPackages.set(proc.package, deployed);
    }
    runtimeTree(proc, outDir, deployed);
    console.log(
      `${path.join(outDir, proc.name)}: dist/${proc.name} and node_modules (${externalsOf(proc).join(", ")} and what they need)`,
    );
  }
  rmSync(deployments, { recursive: true, force: true });
}

if (require.main === module) main();
