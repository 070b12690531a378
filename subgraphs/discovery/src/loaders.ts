import type { SqlClient } from "@hv/kit";
import DataLoader from "dataloader";
import { Prisma } from "./generated/prisma/client";
import type { DiscoveryDb } from "./db";
import { MATCH_SELECT, type MatchRow } from "./modules/matches";

/** The SQL condition "no block between `viewer` and `target`, in either direction" (distance and nearby). */
export function notBlockedSql(viewer: Prisma.Sql, target: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`
    NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = ${viewer} AND b.blocked_id = ${target})
    AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = ${target} AND b.blocked_id = ${viewer})`;
}

/** One set per request: each loader turns N lookups into one query. */
export function createLoaders(
  db: DiscoveryDb,
  sql: SqlClient,
  locationMaxAgeMinutes: number,
  viewerId: string | null = null,
) {
  return {
    /** Matches by id (entity references from other subgraphs): who may see one is the resolver's call. */
    matchById: new DataLoader<string, MatchRow | null>(async (ids) => {
      const rows = await db.match.findMany({ where: { id: { in: [...ids] } }, select: MATCH_SELECT });
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    hasFreshLocation: new DataLoader<string, boolean>(async (userIds) => {
      const cutoff = new Date(Date.now() - locationMaxAgeMinutes * 60_000);
      const rows = await db.userLocation.findMany({
        where: { userId: { in: [...userIds] }, updatedAt: { gte: cutoff } },
        select: { userId: true },
      });
      const fresh = new Set(rows.map((row) => row.userId));
      return userIds.map((id) => fresh.has(id));
    }),
    /**
     * Metres between the viewer's and each person's snapped locations (the KNN `<->` distance, as
     * nearby orders by), or null: no viewer, either location missing or stale, a block either way,
     * or the person's profile missing, hidden or banned. One query for all the ids of a request;
     * nearby's nodes carry their own (modules/location.ts).
     */
    distanceMetres: new DataLoader<string, number | null>(async (userIds) => {
      if (!viewerId) return userIds.map(() => null);
      const cutoff = new Date(Date.now() - locationMaxAgeMinutes * 60_000);
      const rows = await sql.query<{ id: string; metres: number }>(Prisma.sql`
        SELECT t.user_id::text AS id, (t.location <-> v.location)::float8 AS metres
        FROM user_locations v
        JOIN user_locations t ON t.user_id = ANY(${[...userIds]}::uuid[])
        JOIN discovery_profiles p ON p.user_id = t.user_id AND p.visible AND NOT p.banned
        WHERE v.user_id = ${viewerId}::uuid AND v.updated_at >= ${cutoff} AND t.updated_at >= ${cutoff}
          AND ${notBlockedSql(Prisma.sql`v.user_id`, Prisma.sql`t.user_id`)}`);
      const byId = new Map(rows.map((row) => [row.id, Number(row.metres)]));
      return userIds.map((id) => byId.get(id) ?? null);
    }),
  };
}
export type DiscoveryLoaders = ReturnType<typeof createLoaders>;
