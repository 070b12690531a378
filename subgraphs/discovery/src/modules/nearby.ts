import { appError, ErrorCode, requireViewer } from "@hv/kit";
import type { DiscoveryContext } from "../context";
import type { SearchPool } from "./search-pool";
import { Prisma } from "../generated/prisma/client";
import type { QueryNearbyArgs } from "../generated/resolvers-types";
import { notBlockedSql } from "../loaders";
import { decodeCursor, encodeCursor, type NearbyCursor } from "./geo";

export const NEARBY_MAX_FIRST = 50;
/** Bounds of a filter: the preferences Users accepts are within these. */
const AGE_BOUNDS = { min: 18, max: 130 };
const MAX_DISTANCE_KM = 20_000;

export interface NearbySearch {
  viewerId: string;
  /** Only locations updated at or after this count. */
  freshAfter: Date;
  /** Page size + 1 is fetched to know whether there is a next page. */
  limit: number;
  after: NearbyCursor | null;
  /** Narrowing filters (already validated); the viewer's own preferences always apply. */
  maxDistanceKm?: number | undefined;
  ageMin?: number | undefined;
  ageMax?: number | undefined;
}

/** What the search needs of the viewer: their preferences, age and snapped point. */
export interface NearbyViewer {
  userId: string;
  gender: string | null;
  gendersOfInterest: string[];
  age: number;
  ageMin: number;
  ageMax: number;
  maxDistanceKm: number;
  /** The snapped point, as PostGIS's hex EWKB: passed back as a constant so the planner sees it. */
  point: string;
}

export async function loadNearbyViewer(
  pool: SearchPool,
  viewerId: string,
  freshAfter: Date,
): Promise<NearbyViewer | null> {
  const [row] = await pool.query<NearbyViewer>(Prisma.sql`
    SELECT p.user_id::text AS "userId", p.gender::text AS gender, p.genders_of_interest::text[] AS "gendersOfInterest",
           date_part('year', age(current_date, p.birth_date))::int AS age, p.age_min AS "ageMin", p.age_max AS "ageMax",
           p.max_distance_km AS "maxDistanceKm", l.location::text AS point
    FROM discovery_profiles p JOIN user_locations l ON l.user_id = p.user_id
    WHERE p.user_id = ${viewerId}::uuid AND l.updated_at >= ${freshAfter}`);
  return row ?? null;
}

/**
 * The nearby statement. Who is shown to whom:
 *  - both have a fresh location, the candidate within the viewer's maxDistanceKm (narrowed by the
 *    filter), a visible, unbanned profile, and is not the viewer;
 *  - both ways: the candidate's age (from birth date, today) in the viewer's age range and the
 *    viewer's age in the candidate's, the candidate's gender in the viewer's gendersOfInterest and
 *    the viewer's gender in the candidate's. A null gender is in nobody's list (`NULL = ANY(…)` and
 *    `@> ARRAY[NULL]` are not true): someone who has not set a gender neither sees nor is shown;
 *  - no block either way, and the viewer has not swiped the candidate (like, super like or pass).
 *
 * Everything the rules need of the candidate's profile is copied onto their `user_locations` row
 * (`shown` = visible and not banned, gender, genders of interest, birth date, age range; kept in
 * sync by triggers, see the `…_nearby_candidates` migration), so this is ONE statement on one
 * table, planned as an ordered scan of the partial GiST index on `location WHERE shown`
 * (`Index Cond: location && _st_expand(point, radius)`, `Order By: location <-> point`), each row
 * filtered and anti-joined (blocks, swipes) until the LIMIT is reached. What keeps PostgreSQL (15)
 * on that plan rather than "everyone in the radius, then sort":
 *  - the radius is the bare bounding-box operator `&& _st_expand` (what ST_DWithin's index
 *    condition is) plus the exact `<->` distance: ST_DWithin's own filter is estimated at 1/10,000
 *    of the rows, which made the planner expect a handful of people and sort them all;
 *  - gender and genders of interest are compared as the enum (`= ANY`, `@>`), so column statistics
 *    apply (a `::text` cast falls back to a 0.5 % guess each);
 *  - one sort key only: the KNN order cannot be followed by `, user_id` (no incremental sort on an
 *    ordering operator). `FETCH FIRST n ROWS WITH TIES` returns the whole last group of equal
 *    distances instead, and the caller sorts by (distance, id) and cuts: many people share a
 *    distance (cell centres), and the keyset must neither skip nor repeat anyone in a group.
 * Keyset: strictly after (distance, id) of the cursor.
 */
export function nearbySql(viewer: NearbyViewer, search: NearbySearch): Prisma.Sql {
  const point = Prisma.sql`${viewer.point}::geography`;
  const maxKm = Math.min(viewer.maxDistanceKm, search.maxDistanceKm ?? viewer.maxDistanceKm);
  const ageMin = Math.max(viewer.ageMin, search.ageMin ?? viewer.ageMin);
  const ageMax = Math.min(viewer.ageMax, search.ageMax ?? viewer.ageMax);
  // Distances travel as text: JS's shortest round-trip form parses back to the same float8 (a
  // number parameter loses the last digit, which made pages overlap).
  const after = search.after
    ? Prisma.sql`AND ((l.location <-> ${point}) > ${String(search.after.d)}::float8
                   OR ((l.location <-> ${point}) = ${String(search.after.d)}::float8 AND l.user_id > ${search.after.id}::uuid))`
    : Prisma.empty;
  return Prisma.sql`
    SELECT l.user_id::text AS id, (l.location <-> ${point})::float8 AS metres
    FROM user_locations l
    WHERE l.shown
      AND l.location && _ST_Expand(${point}, ${maxKm * 1000 + 1}::float8)
      AND (l.location <-> ${point}) <= ${maxKm * 1000}::float8
      AND l.updated_at >= ${search.freshAfter}
      AND l.user_id <> ${viewer.userId}::uuid
      AND l.gender = ANY(${viewer.gendersOfInterest}::text[]::"Gender"[])
      AND l.genders_of_interest @> ARRAY[${viewer.gender}::text::"Gender"]
      AND l.birth_date <= (current_date - make_interval(years => ${ageMin}::int))::date
      AND l.birth_date > (current_date - make_interval(years => ${ageMax}::int + 1))::date
      AND ${viewer.age}::int BETWEEN l.age_min AND l.age_max
      ${after}
      AND ${notBlockedSql(Prisma.sql`${viewer.userId}::uuid`, Prisma.sql`l.user_id`)}
      AND NOT EXISTS (SELECT 1 FROM swipes s WHERE s.swiper_id = ${viewer.userId}::uuid AND s.target_id = l.user_id)
    ORDER BY l.location <-> ${point}
    FETCH FIRST (${search.limit}::int) ROWS WITH TIES`;
}

const byDistanceThenId = (a: { metres: number; id: string }, b: { metres: number; id: string }) =>
  a.metres - b.metres || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Nearest first, keyset (distance, id) after `search.after`, up to `search.limit` people, on the
 * search pool (search-pool.ts: its planner settings keep the KNN plan). Two queries: the viewer,
 * then nearbySql (whose last tie group is complete, so sorting by id and cutting at the limit is
 * exact). A viewer without a profile, a gender or a fresh location gets
 * nobody.
 *
 * When people move (or the viewer does) between pages, the keyset is recomputed from the new
 * positions: someone who moved from beyond the cursor to before it is skipped, and someone who
 * moved from before it to beyond it is shown again. No one is shown who should not be, and nothing
 * but the rounded distance is shown; a client wanting a consistent list starts from the first page.
 */
export async function searchNearby(
  pool: SearchPool,
  search: NearbySearch,
  replica: SearchPool | null = null,
): Promise<NearbyRow[]> {
  const viewer = await loadNearbyViewer(pool, search.viewerId, search.freshAfter);
  if (!viewer || !viewer.gender) return [];
  const rows = (await (replica ?? pool).query<{ id: string; metres: number }>(nearbySql(viewer, search)))
    .map((row) => ({ id: row.id, metres: Number(row.metres) }))
    .sort(byDistanceThenId)
    .slice(0, search.limit);
  if (!replica || rows.length === 0) return rows;
  const stillShown = new Set(
    (
      await pool.query<{ id: string }>(
        recheckSql(
          search.viewerId,
          rows.map((row) => row.id),
        ),
      )
    ).map((row) => row.id),
  );
  return rows.map((row) => (stillShown.has(row.id) ? row : { ...row, dropped: true }));
}

/** A candidate, with `dropped` when the primary says it may no longer be shown (see recheckSql). */
export interface NearbyRow {
  id: string;
  metres: number;
  dropped?: true;
}

/**
 * With a read replica (DISCOVERY_READ_DATABASE_URL) the candidates come from a copy that may lag
 * the primary by the replication delay: the viewer's own row is read from the primary (a location
 * just updated is searched from), and the people the replica returned are checked again on the
 * primary, by primary key, for what must never be late: visible and not banned (`shown`), no block
 * either way, not already swiped by the viewer. Those who fail stay in the keyset (the cursor and
 * `hasNextPage` still come from what was scanned) but are not shown. Their distance is the
 * replica's: at worst a move made within the lag is shown a page later.
 */
export function recheckSql(viewerId: string, ids: string[]): Prisma.Sql {
  return Prisma.sql`
    SELECT l.user_id::text AS id
    FROM user_locations l
    WHERE l.user_id = ANY(${ids}::uuid[])
      AND l.shown
      AND ${notBlockedSql(Prisma.sql`${viewerId}::uuid`, Prisma.sql`l.user_id`)}
      AND NOT EXISTS (SELECT 1 FROM swipes s WHERE s.swiper_id = ${viewerId}::uuid AND s.target_id = l.user_id)`;
}

type NearbyArgs = QueryNearbyArgs;

function optionalInt(
  value: number | null | undefined,
  min: number,
  max: number,
  field: string,
): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || value > max)
    throw appError(ErrorCode.BAD_USER_INPUT, `${field} must be from ${min} to ${max}`, { field });
  return value;
}

export const nearbyResolvers = {
  Query: {
    async nearby(_: unknown, args: NearbyArgs, context: DiscoveryContext) {
      const viewer = requireViewer(context);
      const first = args.first ?? 20;
      if (!Number.isInteger(first) || first < 1 || first > NEARBY_MAX_FIRST)
        throw appError(ErrorCode.BAD_USER_INPUT, `first must be from 1 to ${NEARBY_MAX_FIRST}`, {
          field: "first",
        });
      const after = args.after === null || args.after === undefined ? null : decodeCursor(args.after);
      const maxDistanceKm = optionalInt(
        args.filters?.maxDistanceKm,
        1,
        MAX_DISTANCE_KM,
        "filters.maxDistanceKm",
      );
      const ageMin = optionalInt(args.filters?.ageMin, AGE_BOUNDS.min, AGE_BOUNDS.max, "filters.ageMin");
      const ageMax = optionalInt(args.filters?.ageMax, AGE_BOUNDS.min, AGE_BOUNDS.max, "filters.ageMax");
      if (ageMin !== undefined && ageMax !== undefined && ageMin > ageMax)
        throw appError(ErrorCode.BAD_USER_INPUT, "filters.ageMin must not be above filters.ageMax", {
          field: "filters",
        });

      const rows = await searchNearby(
        context.services.searchPool,
        {
          viewerId: viewer.userId,
          freshAfter: new Date(Date.now() - context.services.config.locationMaxAgeMinutes * 60_000),
          limit: first + 1,
          after,
          maxDistanceKm,
          ageMin,
          ageMax,
        },
        context.services.replicaSearchPool,
      );
      const page = rows.slice(0, first);
      const shown = page.filter((row) => !row.dropped);
      const cursorOf = (row: NearbyRow) => encodeCursor({ d: row.metres, id: row.id });
      // `distance` on these nodes costs no query: they carry the number the search ordered by.
      const edges = shown.map((row) => ({ cursor: cursorOf(row), node: { id: row.id, metres: row.metres } }));
      // The keyset continues after the last row scanned, shown or dropped (replica re-check).
      const last = page.at(-1);
      return {
        edges,
        pageInfo: { hasNextPage: rows.length > first, endCursor: last ? cursorOf(last) : null },
      };
    },
  },
};
