import DataLoader from "dataloader";
import type { UsersDb } from "./db";
import type { ProfileCache } from "./modules/profile-cache";

/**
 * A user as profiles see it, and as the shared Redis cache holds it: never the password hash, nor
 * the email (read from Postgres for its owner only).
 */
export type UserRow = Omit<
  NonNullable<Awaited<ReturnType<UsersDb["user"]["findUnique"]>>>,
  "passwordHash" | "email"
>;

/** One set per request: every user asked for during a request costs at most one query. */
export function createLoaders(profiles: ProfileCache) {
  return {
    userById: new DataLoader<string, UserRow | null>((ids) => profiles.load(ids)),
  };
}
export type UsersLoaders = ReturnType<typeof createLoaders>;
