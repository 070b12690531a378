import path from "node:path";
import { PrismaPg } from "@prisma/adapter-pg";
import type { PrismaConfig } from "prisma/config";

// The registry alone (no other kit module): the Prisma CLI loads this file.
import { SUBGRAPH_NAMES, subgraphEntry, type SubgraphName } from "@hv/kit/src/subgraphs";

/** One Prisma schema per subgraph, named like it. */
export const SCHEMAS = SUBGRAPH_NAMES;
export type SchemaName = SubgraphName;

/** The environment variable holding a schema's database URL, e.g. `USERS_DATABASE_URL`. */
export function databaseUrlEnvVar(name: SchemaName): string {
  return subgraphEntry(name).databaseUrlVar;
}

/** The local development database of a schema, used when its variable is not set. */
export function defaultDatabaseUrl(name: SchemaName): string {
  return subgraphEntry(name).devDatabaseUrl;
}

export function databaseUrl(name: SchemaName): string {
  return process.env[databaseUrlEnvVar(name)] || defaultDatabaseUrl(name);
}

/** The folder holding a schema's `schema.prisma`, `prisma.config.ts` and `migrations/`. */
export function schemaDir(name: SchemaName): string {
  return path.join(__dirname, "..", "..", subgraphEntry(name).prismaDir);
}

/**
 * The Prisma CLI configuration of one schema (used by `<name>/prisma.config.ts`). Migrations run on
 * Prisma's JS/WASM schema engine over node-postgres, so no native engine is needed.
 */
export function schemaConfig(name: SchemaName): PrismaConfig {
  // schema.prisma reads its URL with env(); give it the default when the variable is absent.
  process.env[databaseUrlEnvVar(name)] = databaseUrl(name);
  return {
    experimental: { adapter: true },
    engine: "js",
    schema: path.join(schemaDir(name), "schema.prisma"),
    migrations: { path: path.join(schemaDir(name), "migrations") },
    // allowExitOnIdle: the CLI never closes the pool, which would keep it alive for pg's idle timeout.
    adapter: async () => new PrismaPg({ connectionString: databaseUrl(name), allowExitOnIdle: true }),
  };
}
