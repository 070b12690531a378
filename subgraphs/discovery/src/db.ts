import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client";

export type DiscoveryDb = PrismaClient;

/** Prisma on its WASM engine over node-postgres: no native engine to download. */
export function createDiscoveryDb(databaseUrl: string): DiscoveryDb {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}
