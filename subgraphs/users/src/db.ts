import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client";

export type UsersDb = PrismaClient;

/** Prisma on its WASM engine over node-postgres: no native engine to download. */
export function createUsersDb(databaseUrl: string): UsersDb {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}
