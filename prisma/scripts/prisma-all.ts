/**
 * tsx scripts/prisma-all.ts generate   generates the four Prisma clients
 * tsx scripts/prisma-all.ts migrate    creates each database if missing and applies its migrations
 * Database URLs come from USERS_DATABASE_URL etc., else the local defaults. Safe to run again.
 */
import {
  SCHEMAS,
  databaseName,
  databaseUrl,
  ensureDatabase,
  generateClient,
  migrateDeploy,
} from "../src/index";

const seconds = (since: number): string => `${((performance.now() - since) / 1000).toFixed(1)}s`;

async function main(command: string | undefined): Promise<void> {
  if (command !== "generate" && command !== "migrate") {
    throw new Error("usage: tsx scripts/prisma-all.ts generate|migrate");
  }
  for (const name of SCHEMAS) {
    const started = performance.now();
    if (command === "generate") {
      await generateClient(name);
      console.log(
        `${name}: client generated into subgraphs/${name}/src/generated/prisma (${seconds(started)})`,
      );
    } else {
      const url = databaseUrl(name);
      const created = await ensureDatabase(url);
      const output = await migrateDeploy(name, url);
      const applied = [...output.matchAll(/└─ (\w+)\/$/gm)].map((match) => match[1]);
      const outcome = applied.length > 0 ? `applied ${applied.join(", ")}` : "no pending migrations";
      console.log(
        `${name}: ${databaseName(url)}${created ? " (created)" : ""}: ${outcome} (${seconds(started)})`,
      );
    }
  }
}

main(process.argv[2]).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
