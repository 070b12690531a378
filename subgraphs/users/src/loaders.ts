import DataLoader from "dataloader";
import type { UsersDb } from "./db";

export type UserRow = NonNullable<Awaited<ReturnType<UsersDb["user"]["findUnique"]>>>;

/** One set per request: every user asked for during a request costs one query. */
export function createLoaders(db: UsersDb) {
  return {
    userById: new DataLoader<string, UserRow | null>(async (ids) => {
      const rows = await db.user.findMany({ where: { id: { in: [...ids] } } });
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
}
export type UsersLoaders = ReturnType<typeof createLoaders>;
