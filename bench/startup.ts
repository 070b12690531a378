/**
 * Start-up time (spawn -> GET /readyz answers 200) and idle resident memory of each of the seven
 * processes, run four ways:
 *   tsx       node --import tsx <source>            (npm start today)
 *   tsc       node <tsc output>                     (the sources compiled file by file by tsc,
 *                                                    node_modules as installed; made by this script)
 *   bundle    node dist/<process>/main.js           (npm run build: one esbuild bundle per process)
 *   bundle+sm node --enable-source-maps dist/...    (the images' ENTRYPOINT)
 *
 *   pnpm run build && pnpm exec tsx bench/startup.ts [--runs 3] [--idle-ms 3000]
 *
 * Each start is alone (the others that a process needs are up in the background, built), NODE_ENV
 * production, LOG_LEVEL warn, its own databases and Redis prefix; the RSS is read --idle-ms after
 * ready. Prints the median of --runs per process and way.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { generateSigningKeyJwk, SUBGRAPH_NAMES } from "@hv/kit";
import { SCHEMAS, databaseUrlEnvVar, type SchemaName } from "@hv/prisma";
import { BUILT_PROCESSES, type BuiltProcess } from "../scripts/build/processes";
import { flag } from "./support/args";
import {
  benchDatabase,
  dropUnlessKept,
  freePort,
  printHeader,
  ROOT,
  rssKb,
  runBench,
  sleep,
} from "./support/service";

type Way = "tsx" | "tsc" | "bundle" | "bundle+sm";
const WAYS: Way[] = ["tsx", "tsc", "bundle", "bundle+sm"];

/** The workspace packages (directory -> name) whose sources the tsc way compiles. */
const WORKSPACE = [
  "kit",
  "gateway",
  "prisma",
  "subgraphs/users",
  "subgraphs/discovery",
  "subgraphs/chat",
  "subgraphs/media",
];

/**
 * The sources compiled by tsc into `out`, at the same relative paths, each package given a
 * node_modules of links to its installed dependencies except the workspace's own, which point at
 * the compiled copies (their package.json `main` renamed .ts -> .js), and the data files copied.
 */
function compileWithTsc(out: string): void {
  const tsconfig = path.join(out, "tsconfig.json");
  mkdirSync(out, { recursive: true });
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(ROOT, "tsconfig.json"),
      compilerOptions: {
        noEmit: false,
        outDir: out,
        rootDir: ROOT,
        sourceMap: true,
        declaration: false,
        // The tsconfig is written outside the repository: find the repository's @types there.
        typeRoots: [path.join(ROOT, "node_modules", "@types")],
        incremental: false,
        types: ["node"],
      },
      // Every workspace package's sources: tsc does not emit files it reached through node_modules
      // (the workspace links), so they must be roots of the program themselves.
      include: WORKSPACE.map((dir) => path.join(ROOT, dir, "src", "**", "*.ts")),
    }),
  );
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", tsconfig], {
    cwd: ROOT,
    stdio: "inherit",
  });
  const names = new Map(
    WORKSPACE.map((dir) => [
      (JSON.parse(readFileSync(path.join(ROOT, dir, "package.json"), "utf8")) as { name: string }).name,
      dir,
    ]),
  );
  for (const dir of WORKSPACE) {
    const manifest = JSON.parse(readFileSync(path.join(ROOT, dir, "package.json"), "utf8")) as {
      main?: string;
    };
    mkdirSync(path.join(out, dir), { recursive: true });
    writeFileSync(
      path.join(out, dir, "package.json"),
      JSON.stringify({ ...manifest, main: manifest.main?.replace(/\.ts$/, ".js") }),
    );
    const modules = path.join(out, dir, "node_modules");
    mkdirSync(modules, { recursive: true });
    const installed = path.join(ROOT, dir, "node_modules");
    for (const entry of readdirSync(installed)) {
      const scoped = entry.startsWith("@")
        ? readdirSync(path.join(installed, entry)).map((inner) => `${entry}/${inner}`)
        : [entry];
      for (const name of scoped) {
        const workspaceDir = names.get(name);
        const target = workspaceDir ? path.join(out, workspaceDir) : path.join(installed, name);
        mkdirSync(path.dirname(path.join(modules, name)), { recursive: true });
        symlinkSync(target, path.join(modules, name), "dir");
      }
    }
  }
  for (const file of BUILT_PROCESSES.flatMap((proc) => proc.files))
    cpSync(path.join(ROOT, file), path.join(out, file));
}

function command(way: Way, proc: BuiltProcess, tscOut: string): string[] {
  switch (way) {
    case "tsx":
      return ["--import", "tsx", path.join(ROOT, proc.source)];
    case "tsc":
      return [path.join(tscOut, proc.source.replace(/\.ts$/, ".js"))];
    case "bundle":
      return [path.join(ROOT, proc.entry)];
    case "bundle+sm":
      return ["--enable-source-maps", path.join(ROOT, proc.entry)];
  }
}

interface Sample {
  readyMs: number;
  rssMiB: number;
}

async function startOnce(
  args: string[],
  env: NodeJS.ProcessEnv,
  readyUrl: string,
  idleMs: number,
): Promise<Sample & { child: ChildProcess }> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`${args.join(" ")} exited (${child.exitCode}) before it was ready:\n${stderr}`);
    const ok = await fetch(readyUrl).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ok) break;
    if (performance.now() - started > 120_000) throw new Error(`${args.join(" ")} was not ready in 120 s`);
    await sleep(20);
  }
  const readyMs = performance.now() - started;
  await sleep(idleMs);
  return { readyMs, rssMiB: rssKb(child.pid!) / 1024, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(20_000)]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function main(): Promise<void> {
  printHeader("startup.ts");
  const runs = flag("runs", 3);
  const idleMs = flag("idle-ms", 3000);
  for (const proc of BUILT_PROCESSES) {
    if (!existsSync(path.join(ROOT, proc.entry)))
      throw new Error(`${proc.entry} is missing: pnpm run build first`);
  }
  const tscOut = mkdtempSync(path.join(os.tmpdir(), "hv-bench-tsc-"));
  const mediaDir = mkdtempSync(path.join(os.tmpdir(), "hv-bench-media-"));
  const compileStarted = performance.now();
  compileWithTsc(tscOut);
  console.log(
    `tsc output: ${tscOut} (compiled in ${((performance.now() - compileStarted) / 1000).toFixed(1)} s)`,
  );
  const stamp = `${Date.now().toString(36)}${randomBytes(2).toString("hex")}`;
  const databases = Object.fromEntries(
    await Promise.all(
      SCHEMAS.map(
        async (name: SchemaName) =>
          [databaseUrlEnvVar(name), await benchDatabase(name, "startup", `${stamp}_${name}`)] as const,
      ),
    ),
  );

  const ports = Object.fromEntries(
    await Promise.all(
      [...BUILT_PROCESSES.map((proc) => proc.portVariable), "GATEWAY_METRICS_PORT", "MEDIA_FILES_PORT"].map(
        async (variable) => [variable, String(await freePort())] as const,
      ),
    ),
  );
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: "production",
    LOG_LEVEL: "warn",
    HOST: "127.0.0.1",
    REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    EVENTS_PREFIX: `hvbench_startup_${stamp}`,
    ...databases,
    ...ports,
    USERS_URL: `http://127.0.0.1:${ports.USERS_PORT}/graphql`,
    DISCOVERY_URL: `http://127.0.0.1:${ports.DISCOVERY_PORT}/graphql`,
    CHAT_URL: `http://127.0.0.1:${ports.CHAT_PORT}/graphql`,
    MEDIA_URL: `http://127.0.0.1:${ports.MEDIA_PORT}/graphql`,
    AUTH_JWKS_URL: `http://127.0.0.1:${ports.USERS_PORT}/.well-known/jwks.json`,
    AUTH_SIGNING_KEYS: JSON.stringify([generateSigningKeyJwk("bench-startup")]),
    MEDIA_GRANT_SECRET: randomBytes(32).toString("base64url"),
    MEDIA_URL_SECRET: randomBytes(32).toString("base64url"),
    MEDIA_LOCAL_DIR: mediaDir,
    // Production's push providers, with credentials made here (nothing is sent while idle).
    FCM_SERVICE_ACCOUNT: JSON.stringify({
      type: "service_account",
      project_id: "bench",
      private_key_id: "k1",
      client_email: "push@bench.iam.gserviceaccount.com",
      private_key: rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      token_uri: "https://oauth2.googleapis.com/token",
    }),
    APNS_KEY: ec.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    APNS_KEY_ID: "BENCH00001",
    APNS_TEAM_ID: "BENCHTEAM1",
    APNS_TOPIC: "com.haiyvee.app",
  };
  const readyUrl = (proc: BuiltProcess) => `http://127.0.0.1:${ports[proc.portVariable]}/readyz`;

  // The gateway needs the four subgraphs answering: built ones run in the background while it is measured.
  const results: Array<{ process: string; way: Way; readyMs: number; rssMiB: number }> = [];
  try {
    for (const proc of BUILT_PROCESSES) {
      const background: ChildProcess[] = [];
      if (proc.name === "gateway") {
        for (const subgraph of BUILT_PROCESSES.filter((candidate) =>
          (SUBGRAPH_NAMES as readonly string[]).includes(candidate.name),
        )) {
          background.push(
            (await startOnce([path.join(ROOT, subgraph.entry)], env, readyUrl(subgraph), 0)).child,
          );
        }
      }
      try {
        for (const way of WAYS) {
          const samples: Sample[] = [];
          for (let run = 0; run < runs; run += 1) {
            const { child, ...sample } = await startOnce(
              command(way, proc, tscOut),
              env,
              readyUrl(proc),
              idleMs,
            );
            samples.push(sample);
            await stop(child);
          }
          const row = {
            process: proc.name,
            way,
            readyMs: median(samples.map((s) => s.readyMs)),
            rssMiB: median(samples.map((s) => s.rssMiB)),
          };
          results.push(row);
          console.log(
            `${row.process.padEnd(13)} ${way.padEnd(10)} ready ${row.readyMs.toFixed(0).padStart(6)} ms   idle RSS ${row.rssMiB.toFixed(0).padStart(4)} MiB   (median of ${runs}; ${samples.map((s) => s.readyMs.toFixed(0)).join("/")} ms)`,
          );
        }
      } finally {
        await Promise.all(background.map(stop));
      }
    }
  } finally {
    rmSync(tscOut, { recursive: true, force: true });
    rmSync(mediaDir, { recursive: true, force: true });
    for (const url of Object.values(databases)) await dropUnlessKept(url, false);
  }
  console.log("\n| process | " + WAYS.map((way) => `${way} ready ms / RSS MiB`).join(" | ") + " |");
  console.log("|---|" + WAYS.map(() => "---").join("|") + "|");
  for (const proc of BUILT_PROCESSES) {
    const cells = WAYS.map((way) => {
      const row = results.find((candidate) => candidate.process === proc.name && candidate.way === way);
      return row ? `${row.readyMs.toFixed(0)} / ${row.rssMiB.toFixed(0)}` : "-";
    });
    console.log(`| ${proc.name} | ${cells.join(" | ")} |`);
  }
  console.log(
    `load average at the end: ${os
      .loadavg()
      .map((load) => load.toFixed(2))
      .join(" ")}`,
  );
}

runBench(main);
