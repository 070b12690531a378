import { appError, ErrorCode, requireViewer } from "@hv/kit";
import type { DiscoveryContext } from "../context";
import type { DiscoveryDb } from "../db";
import { Prisma } from "../generated/prisma/client";
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

export async function loadNearbyViewer(db: DiscoveryDb, viewerId: string, freshAfter: Date): Promise<NearbyViewer | null> {
  const [row] = await db.$queryRaw<NearbyViewer[]>`
    SELECT p.user_id::text AS "userId", p.gender::text AS gender, p.genders_of_interest::text[] AS "gendersOfInterest",
           date_part('year', age(current_date, p.birth_date))::int AS age, p.age_min AS "ageMin", p.age_max AS "ageMax",
           p.max_distance_km AS "maxDistanceKm", l.location::text AS point
    FROM discovery_profiles p JOIN user_locations l ON l.user_id = p.user_id
    WHERE p.user_id = ${viewerId}::uuid AND l.updated_at >= ${freshAfter}`;
  return row ?? null;
}

/** Where a chunk of the KNN walk starts, or the one distance a tie group is read at. */
type ChunkScope = { from: number; inclusive: boolean; chunk: number } | { exactly: number };

/**
 * One chunk of the nearby walk. Who is shown to whom:
 *  - both have a fresh location, the candidate within the viewer's maxDistanceKm (narrowed by the
 *    filter), a visible, unbanned profile, and is not the viewer;
 *  - both ways: the candidate's age (from birth date, today) in the viewer's age range and the
 *    viewer's age in the candidate's, the candidate's gender in the viewer's gendersOfInterest and
 *    the viewer's gender in the candidate's. A null gender is in nobody's list (`NULL = ANY(…)` is
 *    not true): someone who has not set a gender neither sees nor is shown to anyone;
 *  - no block either way, and the viewer has not swiped the candidate (like, super like or pass).
 *
 * The inner query `k` is nothing but the GiST KNN walk, `ORDER BY location <-> viewer_point LIMIT
 * chunk`: with any other condition or a second sort key PostgreSQL (15) plans "everyone in the
 * radius, then sort" instead (it badly under-estimates how many people pass the filters). The
 * outer query applies every rule to that chunk and returns who is shown, plus the chunk's size
 * and first and last distance so the caller can walk on (searchNearby).
 */
export function nearbyChunkSql(viewer: NearbyViewer, search: NearbySearch, scope: ChunkScope): Prisma.Sql {
  const point = Prisma.sql`${viewer.point}::geography`;
  const maxKm = Math.min(viewer.maxDistanceKm, search.maxDistanceKm ?? viewer.maxDistanceKm);
  const ageMin = Math.max(viewer.ageMin, search.ageMin ?? viewer.ageMin);
  const ageMax = Math.min(viewer.ageMax, search.ageMax ?? viewer.ageMax);
  // Distances travel as text: JS's shortest round-trip form parses back to the same float8 (a
  // number parameter loses the last digit, which made pages overlap).
  const inner =
    "exactly" in scope
      ? Prisma.sql`WHERE ST_DWithin(l.location, ${point}, ${String(scope.exactly)}::float8 + 1, false)
                     AND (l.location <-> ${point}) = ${String(scope.exactly)}::float8`
      : Prisma.sql`WHERE (l.location <-> ${point}) ${scope.inclusive ? Prisma.sql`>=` : Prisma.sql`>`} ${String(scope.from)}::float8
                   ORDER BY l.location <-> ${point}
                   LIMIT ${scope.chunk}`;
  return Prisma.sql`
    WITH k AS MATERIALIZED (
      SELECT l.user_id, (l.location <-> ${point})::float8 AS metres, l.updated_at
      FROM user_locations l
      ${inner}
    )
    SELECT id, metres, shown, scanned, dmin, dmax FROM (
      SELECT k.user_id::text AS id, k.metres,
             count(*) OVER () AS scanned, min(k.metres) OVER () AS dmin, max(k.metres) OVER () AS dmax,
             row_number() OVER () = 1 AS meta,
             COALESCE(
               k.user_id <> ${viewer.userId}::uuid
               AND k.metres <= ${maxKm * 1000}::float8
               AND k.updated_at >= ${search.freshAfter}
               AND c.visible AND NOT c.banned
               AND c.gender::text = ANY(${viewer.gendersOfInterest}::text[])
               AND ${viewer.gender}::text = ANY(c.genders_of_interest::text[])
               AND c.birth_date <= (current_date - make_interval(years => ${ageMin}::int))::date
               AND c.birth_date > (current_date - make_interval(years => ${ageMax}::int + 1))::date
               AND ${viewer.age}::int BETWEEN c.age_min AND c.age_max
               AND ${notBlockedSql(Prisma.sql`${viewer.userId}::uuid`, Prisma.sql`k.user_id`)}
               AND NOT EXISTS (SELECT 1 FROM swipes s WHERE s.swiper_id = ${viewer.userId}::uuid AND s.target_id = k.user_id),
               false) AS shown
      FROM k LEFT JOIN discovery_profiles c ON c.user_id = k.user_id
    ) x
    WHERE shown OR meta`;
}

const FIRST_CHUNK = 256;
const MAX_CHUNK = 16_384;

interface ChunkRow {
  id: string;
  metres: number;
  shown: boolean;
  scanned: bigint | number;
  dmin: number;
  dmax: number;
}

const isAfter = (row: { metres: number; id: string }, key: NearbyCursor | null) =>
  !key || row.metres > key.d || (row.metres === key.d && row.id > key.id);
const byDistanceThenId = (a: { metres: number; id: string }, b: { metres: number; id: string }) =>
  a.metres - b.metres || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Nearest first, keyset (distance, id) after `search.after`, up to `search.limit` people.
 *
 * Walks the KNN order in chunks (the first usually suffices; they grow ×4 while the rules reject
 * most people nearby). Many people share a distance (cell centres), and a chunk may end inside
 * such a tie group: only the distances below the chunk's last one are taken as complete, the next
 * chunk starts at that last distance again, and a tie group larger than the biggest chunk is read
 * on its own. The walk stops once past the viewer's radius. Queries: one for the viewer plus one
 * per chunk. A viewer without a profile, a gender or a fresh location gets nobody.
 *
 * When people move (or the viewer does) between pages, the keyset is recomputed from the new
 * positions: someone who moved from beyond the cursor to before it is skipped, and someone who
 * moved from before it to beyond it is shown again. No one is shown who should not be, and nothing
 * but the rounded distance is shown; a client wanting a consistent list starts from the first page.
 */
export async function searchNearby(db: DiscoveryDb, search: NearbySearch): Promise<Array<{ id: string; metres: number }>> {
  const viewer = await loadNearbyViewer(db, search.viewerId, search.freshAfter);
  if (!viewer || !viewer.gender) return [];
  const radius = Math.min(viewer.maxDistanceKm, search.maxDistanceKm ?? viewer.maxDistanceKm) * 1000;
  const found: Array<{ id: string; metres: number }> = [];
  let key = search.after;
  let from = { from: search.after?.d ?? 0, inclusive: true };
  let chunk = Math.max(FIRST_CHUNK, search.limit * 4);
  for (;;) {
    const rows = await db.$queryRaw<ChunkRow[]>(nearbyChunkSql(viewer, search, { ...from, chunk }));
    const meta = rows[0];
    if (!meta) return found; // nobody further away
    const dmin = Number(meta.dmin);
    const dmax = Number(meta.dmax);
    const reachedEnd = Number(meta.scanned) < chunk;
    let shown: Array<{ id: string; metres: number }>;
    let next: typeof from;
    if (reachedEnd) {
      shown = rows.filter((row) => row.shown).map((row) => ({ id: row.id, metres: Number(row.metres) }));
      next = from;
    } else if (dmin < dmax) {
      // Everyone closer than dmax is in this chunk; dmax's tie group may continue in the next.
      shown = rows.filter((row) => row.shown && Number(row.metres) < dmax).map((row) => ({ id: row.id, metres: Number(row.metres) }));
      next = { from: dmax, inclusive: true };
    } else if (chunk < MAX_CHUNK) {
      chunk = Math.min(chunk * 4, MAX_CHUNK); // one tie group filled the chunk: look wider
      continue;
    } else {
      const group = await db.$queryRaw<ChunkRow[]>(nearbyChunkSql(viewer, search, { exactly: dmax }));
      shown = group.filter((row) => row.shown).map((row) => ({ id: row.id, metres: Number(row.metres) }));
      next = { from: dmax, inclusive: false };
    }
    for (const row of shown.filter((row) => isAfter(row, key)).sort(byDistanceThenId)) {
      found.push(row);
      if (found.length >= search.limit) return found;
    }
    if (reachedEnd || dmax > radius) return found;
    from = next;
    key = found.at(-1) ? { d: found.at(-1)!.metres, id: found.at(-1)!.id } : key;
    chunk = Math.min(chunk * 4, MAX_CHUNK);
  }
}

interface NearbyArgs {
  first?: number | null;
  after?: string | null;
  filters?: { maxDistanceKm?: number | null; ageMin?: number | null; ageMax?: number | null } | null;
}

function optionalInt(value: number | null | undefined, min: number, max: number, field: string): number | undefined {
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
        throw appError(ErrorCode.BAD_USER_INPUT, `first must be from 1 to ${NEARBY_MAX_FIRST}`, { field: "first" });
      const after = args.after === null || args.after === undefined ? null : decodeCursor(args.after);
      const maxDistanceKm = optionalInt(args.filters?.maxDistanceKm, 1, MAX_DISTANCE_KM, "filters.maxDistanceKm");
      const ageMin = optionalInt(args.filters?.ageMin, AGE_BOUNDS.min, AGE_BOUNDS.max, "filters.ageMin");
      const ageMax = optionalInt(args.filters?.ageMax, AGE_BOUNDS.min, AGE_BOUNDS.max, "filters.ageMax");
      if (ageMin !== undefined && ageMax !== undefined && ageMin > ageMax)
        throw appError(ErrorCode.BAD_USER_INPUT, "filters.ageMin must not be above filters.ageMax", { field: "filters" });

      const rows = await searchNearby(context.services.db, {
        viewerId: viewer.userId,
        freshAfter: new Date(Date.now() - context.services.config.locationMaxAgeMinutes * 60_000),
        limit: first + 1,
        after,
        maxDistanceKm,
        ageMin,
        ageMax,
      });
      const page = rows.slice(0, first);
      // `distance` on these nodes costs no query: the same number the search ordered by.
      for (const row of page) context.loaders.distanceMetres.prime(row.id, row.metres);
      const edges = page.map((row) => ({ cursor: encodeCursor({ d: row.metres, id: row.id }), node: { id: row.id } }));
      return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
    },
  },
};
