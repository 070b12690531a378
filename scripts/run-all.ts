/**
 * `npm start`: runs the four subgraphs and the gateway as separate processes, waits until each
 * is ready, prints where to connect, and on Ctrl-C (or SIGTERM) stops them all and waits for them.
 * When one exits unexpectedly: in development (NODE_ENV != production) it is started again after a
 * growing delay (restart-backoff.ts); in production everything stops and this exits 1, leaving
 * restarts to the orchestrator. Ports and every other setting come from the environment (see the README).
 * Outside production, without MAIL_SMTP_URL, account mails go to a local catch-all SMTP sink that
 * writes them to `.data/mail/` (docs/accounts.md).
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { loadGatewayConfig, loadSubgraphConfig, SUBGRAPH_NAMES } from "@hv/kit";
import { loadPushWorkerConfig } from "@hv/users/src/push/config";
import { loadMediaWorkerConfig } from "@hv/media/src/config";
import { startMailSink } from "./mail-sink";
import { DEVELOPMENT_RESTART_BACKOFF, RestartBackoff } from "./run-all/restart-backoff";

const ROOT = path.join(__dirname, "..");
const READY_TIMEOUT_MS = 60_000;

interface Process {
  name: string;
  entry: string;
  readyUrl: string;
}

// Unless told otherwise, everyone fetches the access-token keys from the users subgraph started here.
if (!process.env.AUTH_JWKS_URL) {
  process.env.AUTH_JWKS_URL = `http://127.0.0.1:${loadSubgraphConfig("users", process.env).port}/.well-known/jwks.json`;
}
const gatewayConfig = loadGatewayConfig(process.env);
const subgraphs: Process[] = SUBGRAPH_NAMES.map((name) => {
  const config = loadSubgraphConfig(name, process.env);
  return {
    name,
    entry: path.join(ROOT, "subgraphs", name, "src", "index.ts"),
    readyUrl: `http://127.0.0.1:${config.port}/readyz`,
  };
});
const gateway: Process = {
  name: "gateway",
  entry: path.join(ROOT, "gateway", "src", "index.ts"),
  readyUrl: `http://127.0.0.1:${gatewayConfig.port}/readyz`,
};
// Background workers, started beside the subgraphs.
const workers: Process[] = [
  {
    name: "push-worker",
    entry: path.join(ROOT, "subgraphs", "users", "src", "push-worker.ts"),
    readyUrl: `http://127.0.0.1:${loadPushWorkerConfig(process.env).port}/readyz`,
  },
  {
    name: "media-worker",
    entry: path.join(ROOT, "subgraphs", "media", "src", "worker-main.ts"),
    readyUrl: `http://127.0.0.1:${loadMediaWorkerConfig(process.env).port}/readyz`,
  },
];

const children = new Map<string, ChildProcess>();
const backoffs = new Map<string, RestartBackoff>();
const pendingRestarts = new Set<NodeJS.Timeout>();
let stopping = false;

function launch(proc: Process): void {
  // Own process group: a terminal's Ctrl-C reaches only this script, which then stops each child
  // with one SIGTERM, instead of every process receiving the signal twice.
  const child = spawn(process.execPath, ["--import", "tsx", proc.entry], {
    cwd: ROOT,
    stdio: "inherit",
    env: process.env,
    detached: true,
  });
  children.set(proc.name, child);
  const backoff = backoffs.get(proc.name) ?? new RestartBackoff(DEVELOPMENT_RESTART_BACKOFF);
  backoffs.set(proc.name, backoff);
  backoff.started(Date.now());
  console.log(`${proc.name} started (pid ${child.pid})`);
  child.on("exit", (code, signal) => {
    children.delete(proc.name);
    if (!stopping && gatewayConfig.isProduction) {
      console.error(`${proc.name} exited unexpectedly (${signal ?? `code ${code}`}); stopping everything`);
      void stopAll(1);
      return;
    }
    if (!stopping) {
      scheduleRestart(proc, backoff, signal ?? `code ${code}`);
      return;
    }
    if (code !== 0) {
      // A clean stop exits 0: anything else (a forced exit, a crash while draining) is a failure.
      console.error(`${proc.name} did not stop cleanly (${signal ?? `code ${code}`})`);
      exitCode = 1;
    }
    if (children.size === 0) process.exit(exitCode);
  });
}

function scheduleRestart(proc: Process, backoff: RestartBackoff, how: string): void {
  const { delayMs, attempt } = backoff.exited(Date.now());
  console.error(
    `${proc.name} exited unexpectedly (${how}); restarting it in ${delayMs} ms (restart ${attempt} in a row)`,
  );
  const timer = setTimeout(() => {
    pendingRestarts.delete(timer);
    if (stopping) return;
    launch(proc);
    waitUntilReady(proc).then(
      () => {
        if (!stopping && children.has(proc.name)) console.log(`${proc.name} is ready again`);
      },
      (error: unknown) => console.error(error instanceof Error ? error.message : error),
    );
  }, delayMs);
  pendingRestarts.add(timer);
}

async function waitUntilReady(proc: Process): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (stopping) return;
    try {
      if ((await fetch(proc.readyUrl)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${proc.name} was not ready at ${proc.readyUrl} within ${READY_TIMEOUT_MS / 1000} s`);
}

let exitCode = 0;
async function stopAll(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  for (const timer of pendingRestarts) clearTimeout(timer);
  pendingRestarts.clear();
  if (children.size === 0) process.exit(code);
  for (const child of children.values()) child.kill("SIGTERM");
}

process.on("exit", () => {
  for (const child of children.values()) child.kill("SIGKILL");
});
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

/** Development: the mail sink, when no SMTP server is given; null when one is (or in production). */
async function startDevelopmentMail(): Promise<string | null> {
  if (process.env.MAIL_SMTP_URL || gatewayConfig.isProduction) return null;
  const dir = path.join(ROOT, ".data", "mail");
  const sink = await startMailSink({ dir, host: "127.0.0.1", port: 2525 });
  process.env.MAIL_SMTP_URL = sink.url; // the users worker sends there
  return `  Mails:            ${sink.url} catches them; each is written to ${path.relative(process.cwd(), dir) || "."}/*.eml`;
}

async function main(): Promise<void> {
  const mailLine = await startDevelopmentMail();
  [...subgraphs, ...workers].forEach(launch);
  await Promise.all([...subgraphs, ...workers].map(waitUntilReady));
  if (stopping) return; // one of them exited in production, or Ctrl-C came first
  launch(gateway);
  await waitUntilReady(gateway);
  if (stopping) return;
  const url = `http://localhost:${gatewayConfig.port}/graphql`;
  console.log(
    `\nAll services ready.\n  GraphQL endpoint: ${url}\n  Apollo Sandbox:   ${url} (open in a browser${gatewayConfig.isProduction ? "; off in production" : ""})\n${mailLine ? `${mailLine}\n` : ""}Press Ctrl-C to stop.\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  void stopAll(1);
});
