/**
 * `npm run build`: one esbuild bundle per production process (scripts/build/processes.ts) into
 * dist/<process>/main.js, CommonJS for Node 20+, with source maps, the data files it reads at run
 * time copied beside it, and a `node_modules` of links to the few packages left outside the bundle
 * (EXTERNAL_PACKAGES), so that they resolve in the repository as they do in the image.
 *
 *   pnpm run build [--only <process>]      (needs the generated Prisma clients: pnpm run db:generate)
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { isBuiltin } from "node:module";
import path from "node:path";
import { build, type BuildOptions, type Metafile, type Plugin } from "esbuild";
import { BUILT_PROCESSES, DIST_DIR, LAUNCHER_ENTRY, REPOSITORY_ROOT, type BuiltProcess } from "./processes";

/**
 * Loaded from node_modules at run time, never bundled:
 * - native add-ons (`.node` files): sharp, @node-rs/argon2;
 * - what OpenTelemetry patches as it is `require`d (kit/src/tracing.ts), since a bundled copy is
 *   never `require`d: graphql, pg, ioredis (http is Node's own; undici reports through
 *   diagnostics_channel, which works bundled);
 * - bullmq, which forks its sandbox's main file by a path relative to its own files;
 * - pg's optional native binding, which is not installed.
 */
export const EXTERNAL_PACKAGES = ["sharp", "@node-rs/argon2", "graphql", "pg", "ioredis", "bullmq"];
/**
 * Optional add-ons that are not installed and that their users `require` inside try/catch, falling
 * back to JavaScript: pg's native binding, ws's buffer helpers, node-fetch's charset conversion. Left unresolved.
 */
const ABSENT_PACKAGES = ["pg-native", "bufferutil", "utf-8-validate", "encoding"];

/** `npm run start:prod`: starts every built process (run from the repository, not in an image). */
export const LAUNCHER = { source: "scripts/build/start-prod.ts", entry: LAUNCHER_ENTRY };

/**
 * `keepNames` wraps every named function and class in `__name(fn, "name")`, a defineProperty that
 * turns the function into a dictionary-mode object (a 256-byte property table) and costs CPU each
 * time a closure is made. The names that esbuild's renaming would change (`Gauge2`) are those of
 * top-level functions and classes, all made while the bundle loads: after that, `__name` returns its
 * function as it is (stack traces are unchanged; a closure's `.name` is then the engine's own).
 * Reasons and figures: docs/production.md ("Function names").
 */
const KEEP_NAMES_AT_LOAD_ONLY = "__name = (target) => target;";

/**
 * Apollo's `@apollo/utils.createhash` (the query hash of every request, in the gateway and every
 * subgraph) uses node:crypto only when its `module.require` exists, which esbuild's module wrapper
 * lacks: bundled, it fell back to sha.js, SHA-256 in JavaScript. The bundle gets sha.js's call form
 * on node:crypto instead (scripts/build/native-sha.cjs). Figures: docs/measurements.md (round 8).
 */
const NATIVE_SHA: Plugin = {
  name: "native-sha",
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^sha\.js$/ }, () => ({
      path: path.join(REPOSITORY_ROOT, "scripts", "build", "native-sha.cjs"),
    }));
  },
};

/** Node 20 until the project's minimum is 22 (package.json `engines`); the output runs on 22 and 24 too. */
const TARGET = "node20";

function options(entryPoint: string, outfile: string): BuildOptions {
  return {
    entryPoints: [path.join(REPOSITORY_ROOT, entryPoint)],
    outfile: path.join(REPOSITORY_ROOT, outfile),
    bundle: true,
    platform: "node",
    format: "cjs",
    target: TARGET,
    sourcemap: "linked",
    // Maps name the repository's files and lines; the sources themselves stay out (a smaller dist and image).
    sourcesContent: false,
    // Stack traces name our functions; the size saved by minifying is not worth unreadable logs.
    minify: false,
    keepNames: true,
    footer: { js: KEEP_NAMES_AT_LOAD_ONLY },
    external: [...EXTERNAL_PACKAGES, ...ABSENT_PACKAGES],
    define: { HV_BUNDLED: "true" },
    plugins: [NATIVE_SHA],
    // Packages' `exports` conditions for Node's require.
    conditions: ["node", "require"],
    metafile: true,
    logLevel: "warning",
    legalComments: "linked",
  };
}

/** The packages the bundles `require` at run time (an import path's package name: `graphql/language` -> `graphql`). */
export function externalsRequired(metafiles: Metafile[]): Set<string> {
  const names = new Set<string>();
  for (const metafile of metafiles) {
    // The output's imports: what the written file really requires (an input's list also holds
    // imports that only carried types and were dropped).
    for (const output of Object.values(metafile.outputs)) {
      for (const imported of output.imports) {
        if (!imported.external || /^(node:|\.|<)/.test(imported.path)) continue;
        const parts = imported.path.split("/");
        const name = imported.path.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? "");
        if (!isBuiltin(name)) names.add(name);
      }
    }
  }
  return names;
}

/**
 * dist/<process>/node_modules/<package> -> the installed copy the package (or @hv/kit, which most
 * of them come through) resolves, for each external package the bundle requires. The image has its
 * own copies instead (infra/docker/Dockerfile, scripts/build/runtime-modules.ts).
 */
function linkExternals(proc: BuiltProcess, dir: string, required: Set<string>): void {
  const searched = [proc.packageDir, "kit"].map((from) => path.join(REPOSITORY_ROOT, from, "node_modules"));
  const missing = [...required].filter(
    (name) =>
      !ABSENT_PACKAGES.includes(name) && !searched.some((modules) => existsSync(path.join(modules, name))),
  );
  if (missing.length > 0) {
    throw new Error(
      `${proc.name}: the bundle requires ${missing.join(", ")}, which neither ${proc.packageDir} nor kit has installed`,
    );
  }
  for (const name of required) {
    const installed = searched
      .map((modules) => path.join(modules, name))
      .find((candidate) => existsSync(candidate));
    if (!installed) continue;
    const link = path.join(dir, "node_modules", name);
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(path.relative(path.dirname(link), realpathSync(installed)), link, "dir");
  }
}

/** The footer assigns esbuild's `__name` helper: fails the build if the bundle has none by that name. */
function assertNamesHelper(entry: string): void {
  if (!/^var __name = /m.test(readFileSync(path.join(REPOSITORY_ROOT, entry), "utf8")))
    throw new Error(
      `${entry}: esbuild's keepNames helper is no longer \`var __name\` (see KEEP_NAMES_AT_LOAD_ONLY)`,
    );
}

/** Bundles one process; returns the bytes written. */
export async function buildProcess(proc: BuiltProcess): Promise<number> {
  const dir = path.join(DIST_DIR, proc.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const metafiles: Metafile[] = [(await build(options(proc.source, proc.entry))).metafile!];
  assertNamesHelper(proc.entry);
  if (proc.sandboxedProcessor) {
    metafiles.push(
      (await build(options(proc.sandboxedProcessor.source, proc.sandboxedProcessor.entry))).metafile!,
    );
  }
  for (const file of proc.files) {
    const from = path.join(REPOSITORY_ROOT, file);
    if (!existsSync(from))
      throw new Error(`${proc.name}: ${file} does not exist (listed in scripts/build/processes.ts)`);
    cpSync(from, path.join(dir, file));
  }
  linkExternals(proc, dir, externalsRequired(metafiles));
  writeFileSync(
    path.join(dir, "package.json"),
    `${JSON.stringify({ private: true, type: "commonjs" }, null, 2)}\n`,
  );
  return metafiles.reduce(
    (total, metafile) =>
      total + Object.values(metafile.outputs).reduce((sum, output) => sum + output.bytes, 0),
    0,
  );
}

async function main(): Promise<void> {
  const onlyIndex = process.argv.indexOf("--only");
  const only = onlyIndex >= 0 ? process.argv[onlyIndex + 1] : undefined;
  const selected = BUILT_PROCESSES.filter((proc) => !only || proc.name === only);
  if (selected.length === 0) throw new Error(`--only ${only}: no such process in scripts/build/processes.ts`);
  const started = performance.now();
  // In parallel: esbuild shares its own worker threads between builds.
  await Promise.all(
    selected.map(async (proc) => {
      const bytes = await buildProcess(proc);
      console.log(`built ${proc.entry} (${(bytes / 1024 / 1024).toFixed(1)} MiB with source maps)`);
    }),
  );
  if (!only) {
    await build(options(LAUNCHER.source, LAUNCHER.entry));
    console.log(`built ${LAUNCHER.entry} (npm run start:prod)`);
  }
  console.log(
    `build: ${selected.length} process(es) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
