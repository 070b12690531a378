import { execFile } from "node:child_process";
import path from "node:path";
import { databaseUrlEnvVar, schemaDir, type SchemaName } from "./config";

export {
  SCHEMAS,
  databaseUrl,
  databaseUrlEnvVar,
  defaultDatabaseUrl,
  schemaDir,
  type SchemaName,
} from "./config";
export {
  databaseName,
  dropDatabase,
  dropStaleTestDatabases,
  ensureDatabase,
  postgisStatus,
  withConnection,
  withDatabaseName,
} from "./databases";

/**
 * Environment for the Prisma CLI: no telemetry or update check (they would reach the network).
 * Engine downloads are avoided by the `engine: "js"` configs (see ../README.md).
 */
const CLI_ENV = { CHECKPOINT_DISABLE: "1", PRISMA_HIDE_UPDATE_MESSAGE: "1" };
/** Lets the CLI exit as soon as it is done (see the file). */
const CLI_PRELOAD = path.join(__dirname, "unref-long-timers.js");

/** Runs the local Prisma CLI on one schema's config; resolves with its output, rejects with it. */
function runPrisma(name: SchemaName, args: string[], env: Record<string, string> = {}): Promise<string> {
  const cli = require.resolve("prisma/build/index.js");
  const config = path.join(schemaDir(name), "prisma.config.ts");
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--require", CLI_PRELOAD, cli, ...args, "--config", config],
      {
        cwd: path.join(__dirname, ".."),
        env: { ...process.env, ...CLI_ENV, ...env },
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim();
        if (error)
          reject(new Error(`prisma ${args.join(" ")} (${name}) failed:\n${output || error.message}`));
        else resolve(output);
      },
    );
  });
}

/** Generates a schema's client into subgraphs/<name>/src/generated/prisma. Needs no database. */
export async function generateClient(name: SchemaName): Promise<string> {
  return runPrisma(name, ["generate"]);
}

/** Applies a schema's pending migrations to the database at `databaseUrl` (which must exist). */
export async function migrateDeploy(name: SchemaName, databaseUrl: string): Promise<string> {
  return runPrisma(name, ["migrate", "deploy"], { [databaseUrlEnvVar(name)]: databaseUrl });
}
