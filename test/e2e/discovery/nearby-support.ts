import { randomUUID } from "node:crypto";
import { snapToGrid } from "@hv/discovery/src/modules/geo";
import type { TestDatabases } from "../../support/seed";
import type { GraphQLResponse, RunningSystem } from "../../support/system";
import type { UsersClient } from "../../support/users-client";

/** Shared by the nearby and location tests: arranging Discovery's own tables directly (bulk cases). */

export type Gender = "WOMAN" | "MAN" | "NONBINARY";

export interface ProfileSeed {
  userId?: string;
  /** Age in whole years today (birthday half a year ago). */
  age?: number;
  gender?: Gender | null;
  gendersOfInterest?: Gender[];
  ageMin?: number;
  ageMax?: number;
  maxDistanceKm?: number;
  visible?: boolean;
  banned?: boolean;
}

export function birthDateForAge(age: number): string {
  const date = new Date();
  date.setUTCFullYear(date.getUTCFullYear() - age);
  date.setUTCMonth(date.getUTCMonth() - 6);
  return date.toISOString().slice(0, 10);
}

export async function seedProfile(dbs: TestDatabases, seed: ProfileSeed = {}): Promise<string> {
  const userId = seed.userId ?? randomUUID();
  await dbs.discovery.$executeRaw`
    INSERT INTO discovery_profiles (user_id, birth_date, gender, genders_of_interest, age_min, age_max, max_distance_km, visible, banned, event_at)
    VALUES (${userId}::uuid, ${birthDateForAge(seed.age ?? 30)}::date, ${seed.gender === undefined ? "MAN" : seed.gender}::"Gender",
      ${seed.gendersOfInterest ?? ["WOMAN"]}::"Gender"[], ${seed.ageMin ?? 18}, ${seed.ageMax ?? 99}, ${seed.maxDistanceKm ?? 50},
      ${seed.visible ?? true}, ${seed.banned ?? false}, now())`;
  return userId;
}

/** Stores a location as updateLocation would (snapped), optionally `ageMinutes` old. */
export async function placeAt(
  dbs: TestDatabases,
  userId: string,
  latitude: number,
  longitude: number,
  ageMinutes = 0,
): Promise<void> {
  const snapped = snapToGrid({ latitude, longitude });
  await dbs.discovery.$executeRaw`
    INSERT INTO user_locations (user_id, location, updated_at)
    VALUES (${userId}::uuid, ST_SetSRID(ST_MakePoint(${snapped.longitude}, ${snapped.latitude}), 4326)::geography,
            now() - ${ageMinutes} * interval '1 minute')
    ON CONFLICT (user_id) DO UPDATE SET location = EXCLUDED.location, updated_at = EXCLUDED.updated_at`;
}

/** A point `km` kilometres north of (latitude, longitude). */
export function northOf(latitude: number, longitude: number, km: number): [number, number] {
  return [latitude + km / 111.2, longitude];
}

export async function tokenFor(system: RunningSystem, userId: string): Promise<string> {
  return (await system.accessTokens.issue({ userId, sessionId: randomUUID(), role: "USER" })).token;
}

export const NEARBY = `query($first: Int, $after: String, $filters: NearbyFilters) {
  nearby(first: $first, after: $after, filters: $filters) {
    edges { cursor node { id distance { kilometres lessThanOneKilometre } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export interface NearbyPage {
  nearby: {
    edges: Array<{
      cursor: string;
      node: { id: string; distance: { kilometres: number; lessThanOneKilometre: boolean } | null };
    }>;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

export const UPDATE_LOCATION = `mutation($lat: Float!, $lng: Float!) { updateLocation(latitude: $lat, longitude: $lng) { updatedAt } }`;

/** Polls until `check` returns a value (events are asynchronous); fails after `attempts`. */
export async function eventually<T>(
  check: () => Promise<T | null | undefined | false>,
  attempts = 200,
): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await check();
    if (value) return value;
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("condition not reached");
}

export async function allNearby(
  client: UsersClient,
  token: string,
  first: number,
  filters?: Record<string, number>,
): Promise<NearbyPage["nearby"]["edges"]> {
  const edges: NearbyPage["nearby"]["edges"] = [];
  let after: string | null = null;
  for (let page = 0; page < 100; page++) {
    const response: GraphQLResponse<NearbyPage> = await client.request<NearbyPage>(
      NEARBY,
      { first, after, filters },
      token,
    );
    if (response.body.errors) throw new Error(JSON.stringify(response.body.errors));
    const nearby = response.body.data!.nearby;
    edges.push(...nearby.edges);
    if (!nearby.pageInfo.hasNextPage) return edges;
    after = nearby.pageInfo.endCursor;
  }
  throw new Error("too many pages");
}

/** `count` people with the same profile at one point (snapped), in two statements. */
export async function seedMany(
  dbs: TestDatabases,
  count: number,
  seed: ProfileSeed,
  latitude: number,
  longitude: number,
): Promise<string[]> {
  const snapped = snapToGrid({ latitude, longitude });
  const rows = await dbs.discovery.$queryRaw<Array<{ id: string }>>`
    INSERT INTO discovery_profiles (user_id, birth_date, gender, genders_of_interest, age_min, age_max, max_distance_km, visible, banned, event_at)
    SELECT gen_random_uuid(), ${birthDateForAge(seed.age ?? 30)}::date, ${seed.gender === undefined ? "MAN" : seed.gender}::"Gender",
      ${seed.gendersOfInterest ?? ["WOMAN"]}::"Gender"[], ${seed.ageMin ?? 18}, ${seed.ageMax ?? 99}, ${seed.maxDistanceKm ?? 50},
      ${seed.visible ?? true}, ${seed.banned ?? false}, now()
    FROM generate_series(1, ${count})
    RETURNING user_id::text AS id`;
  const ids = rows.map((row) => row.id);
  await dbs.discovery.$executeRaw`
    INSERT INTO user_locations (user_id, location, updated_at)
    SELECT id, ST_SetSRID(ST_MakePoint(${snapped.longitude}, ${snapped.latitude}), 4326)::geography, now()
    FROM unnest(${ids}::uuid[]) AS id`;
  return ids;
}
