import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client";

export type MediaDb = PrismaClient;

/** Prisma on its WASM engine over node-postgres: no native engine to download. */
export function createMediaDb(databaseUrl: string): MediaDb {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}
