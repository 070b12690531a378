import DataLoader from "dataloader";
import type { UsersDb } from "./db";
import type { ProfileCache } from "./modules/profile-cache";

/** A user as profiles see it: never the password hash (which must not reach the cache). */
export type UserRow = Omit<NonNullable<Awaited<ReturnType<UsersDb["user"]["findUnique"]>>>, "passwordHash">;

/** One set per request: every user asked for during a request costs at most one query. */
export function createLoaders(profiles: ProfileCache) {
  return {
    userById: new DataLoader<string, UserRow | null>((ids) => profiles.load(ids)),
  };
}
export type UsersLoaders = ReturnType<typeof createLoaders>;
