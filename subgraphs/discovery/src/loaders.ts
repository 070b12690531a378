import DataLoader from "dataloader";
import type { DiscoveryDb } from "./db";

/** One set per request: each loader turns N lookups into one query. */
export function createLoaders(db: DiscoveryDb, locationMaxAgeMinutes: number) {
  return {
    hasFreshLocation: new DataLoader<string, boolean>(async (userIds) => {
      const cutoff = new Date(Date.now() - locationMaxAgeMinutes * 60_000);
      const rows = await db.userLocation.findMany({
        where: { userId: { in: [...userIds] }, updatedAt: { gte: cutoff } },
        select: { userId: true },
      });
      const fresh = new Set(rows.map((row) => row.userId));
      return userIds.map((id) => fresh.has(id));
    }),
  };
}
export type DiscoveryLoaders = ReturnType<typeof createLoaders>;
