/**
 * The production processes of scripts/build/processes.json, typed: one list that the build, the
 * production launcher, the production-mode test and the Dockerfile check all read.
 */
import path from "node:path";
import list from "./processes.json";

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

export const BUILT_PROCESSES: readonly BuiltProcess[] = list.processes;
