/**
 * The production processes: one list that the build, the production launcher, the production-mode
 * test, the infra generator (scripts/infra/generate.ts) and the infra checks all read. Each subgraph
 * of the registry (kit/src/subgraphs.ts) is one process; the gateway and the workers are named here.
 */
import path from "node:path";
import { SUBGRAPHS, type SubgraphEntry } from "@hv/kit/src/subgraphs";

export interface BuiltProcess {
  /** The process's name: its Dockerfile target, its directory under dist/ and its log `service`. */
  name: string;
  /** The workspace package whose production dependencies it runs on (`pnpm deploy --filter`). */
  package: string;
  /** That package's directory, from the repository root. */
  packageDir: string;
  /** The TypeScript entry point `npm start` runs with tsx. */
  source: string;
  /** The built entry file, from the repository root (the same path under /app in its image). */
  entry: string;
  /** The variable holding its HTTP port (`/healthz`, `/readyz`). */
  portVariable: string;
  /** Data files it reads at run time, from the repository root (copied under `dist/<name>/`). */
  files: string[];
  /** BullMQ's sandboxed processor, loaded by path in child processes: built beside the entry. */
  sandboxedProcessor?: { source: string; entry: string };
}

export const REPOSITORY_ROOT = path.join(__dirname, "..", "..");
export const DIST_DIR = path.join(REPOSITORY_ROOT, "dist");

/** `npm run start:prod`'s launcher (scripts/build/start-prod.ts, bundled), which starts all of them. */
export const LAUNCHER_ENTRY = "dist/start-prod.js";

/** A subgraph's process: `subgraphs/<name>/src/index.ts`, package `@hv/<name>`, its SDL shipped. */
export function subgraphProcess(subgraph: SubgraphEntry): BuiltProcess {
  const packageDir = `subgraphs/${subgraph.name}`;
  return {
    name: subgraph.name,
    package: `@hv/${subgraph.name}`,
    packageDir,
    source: `${packageDir}/src/index.ts`,
    entry: `dist/${subgraph.name}/main.js`,
    portVariable: `${subgraph.name.toUpperCase()}_PORT`,
    files: [subgraph.sdl],
  };
}

const GATEWAY: BuiltProcess = {
  name: "gateway",
  package: "@hv/gateway",
  packageDir: "gateway",
  source: "gateway/src/index.ts",
  entry: "dist/gateway/main.js",
  portVariable: "GATEWAY_PORT",
  files: ["gateway/supergraph.graphql", "operations/persisted-query-manifest.json"],
};

const WORKERS: BuiltProcess[] = [
  {
    name: "push-worker",
    package: "@hv/users",
    packageDir: "subgraphs/users",
    source: "subgraphs/users/src/push-worker.ts",
    entry: "dist/push-worker/main.js",
    portVariable: "PUSH_WORKER_PORT",
    files: [],
  },
  {
    name: "media-worker",
    package: "@hv/media",
    packageDir: "subgraphs/media",
    source: "subgraphs/media/src/worker-main.ts",
    entry: "dist/media-worker/main.js",
    portVariable: "MEDIA_WORKER_PORT",
    files: [],
    sandboxedProcessor: {
      source: "subgraphs/media/src/processor.ts",
      entry: "dist/media-worker/processor.js",
    },
  },
];

/** The gateway, every subgraph of the registry, then the workers. */
export const BUILT_PROCESSES: readonly BuiltProcess[] = [
  GATEWAY,
  ...SUBGRAPHS.map(subgraphProcess),
  ...WORKERS,
];
