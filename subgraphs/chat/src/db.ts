import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client";

export type ChatDb = PrismaClient;

/** Prisma on its WASM engine over node-postgres: no native engine to download. */
export function createChatDb(databaseUrl: string): ChatDb {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}
