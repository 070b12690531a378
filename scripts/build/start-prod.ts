/**
 * `npm run start:prod`: runs every built process (dist/<process>/main.js, from `npm run build`)
 * with plain Node and NODE_ENV=production, each in its own process as its image would, waits
 * until each answers /readyz, and on Ctrl-C or SIGTERM stops them all (exit 0 when every one
 * stopped cleanly). Bundled by the build into dist/start-prod.js; settings come from the
 * environment as for each image (docs/production.md lists what production requires).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { ALL_ENV } from "../config-catalogue";
import { BUILT_PROCESSES, type BuiltProcess } from "./processes";

/** dist/start-prod.js lives in dist/: the repository root is one up (from source, two). */
const ROOT =
  path.basename(__dirname) === "dist" ? path.join(__dirname, "..") : path.join(__dirname, "..", "..");
const READY_TIMEOUT_MS = 60_000;

const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: "production" };

/** The port a process listens on: its variable, else the catalogue's default (kit/src/config.ts). */
function portOf(proc: BuiltProcess): number {
  const spec = ALL_ENV[proc.portVariable];
  if (!spec)
    throw new Error(`${proc.portVariable} is in no process's catalogue (scripts/config-catalogue.ts)`);
  return Number(spec.schema.parse(env[proc.portVariable]));
}

// Unless told otherwise, everyone fetches the access-token keys from the users subgraph started here.
env.AUTH_JWKS_URL ??= `http://127.0.0.1:${portOf(BUILT_PROCESSES.find((proc) => proc.name === "users")!)}/.well-known/jwks.json`;

const children = new Map<string, ChildProcess>();
let stopping = false;
let exitCode = 0;

function launch(proc: BuiltProcess): void {
  const entry = path.join(ROOT, proc.entry);
  if (!existsSync(entry)) throw new Error(`${proc.entry} does not exist: run npm run build first`);
  // Own process group: a terminal's Ctrl-C reaches only this launcher, which stops each child once.
  const child = spawn(process.execPath, [entry], { cwd: ROOT, env, stdio: "inherit", detached: true });
  children.set(proc.name, child);
  child.on("exit", (code, signal) => {
    children.delete(proc.name);
    if (!stopping) {
      console.error(`${proc.name} exited unexpectedly (${signal ?? `code ${code}`}); stopping everything`);
      stopAll(1);
    } else if (code !== 0) {
      console.error(`${proc.name} did not stop cleanly (${signal ?? `code ${code}`})`);
      exitCode = 1;
    }
    if (stopping && children.size === 0) process.exit(exitCode);
  });
}

async function waitUntilReady(proc: BuiltProcess): Promise<void> {
  const url = `http://127.0.0.1:${portOf(proc)}/readyz`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && !stopping) {
    const ready = await fetch(url).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  if (!stopping) throw new Error(`${proc.name} was not ready at ${url} within ${READY_TIMEOUT_MS / 1000} s`);
}

function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  if (children.size === 0) process.exit(code);
  for (const child of children.values()) child.kill("SIGTERM");
}

process.on("exit", () => {
  for (const child of children.values()) child.kill("SIGKILL");
});
process.on("SIGINT", () => stopAll(0));
process.on("SIGTERM", () => stopAll(0));

async function main(): Promise<void> {
  // The gateway last: it loads the subgraphs' schemas through the supergraph and needs them up.
  const backends = BUILT_PROCESSES.filter((proc) => proc.name !== "gateway");
  const gateway = BUILT_PROCESSES.find((proc) => proc.name === "gateway")!;
  backends.forEach(launch);
  await Promise.all(backends.map(waitUntilReady));
  if (stopping) return;
  launch(gateway);
  await waitUntilReady(gateway);
  if (stopping) return;
  console.log(
    `All ${BUILT_PROCESSES.length} built processes ready (NODE_ENV=production). GraphQL: http://localhost:${portOf(gateway)}/graphql. Ctrl-C stops them.`,
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  stopAll(1);
});
