import type { DiscoveryDb } from "@hv/discovery/src/db";

/** The id of the i-th seeded person (1-based): the same in every database a benchmark seeds. */
export const benchPersonIdSql = (i: string) => `md5('hv-bench-' || ${i})::uuid`;

/**
 * Discovery's side of a dense city of `users` people, generated in SQL: profiles, snapped
 * locations and 100,000 passes. Person i has the id `md5('hv-bench-' || i)::uuid`, so another
 * subgraph's database can be seeded with the same people (bench/nearby-gateway.ts).
 */
export async function seedCity(db: DiscoveryDb, users: number): Promise<void> {
  // People: ages 18–60 (skewed young), 48% women, 48% men, 4% nonbinary; most want the other
  // binary gender, some the same, some everyone; age range around their own; 5–50 km; 5% hidden,
  // 0.5% banned.
  await db.$executeRawUnsafe(`
    CREATE UNLOGGED TABLE seed AS
    SELECT md5('hv-bench-' || i)::uuid AS id, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
           18 + floor(power(random(), 1.6) * 43)::int AS age
    FROM generate_series(1, ${users}) i`);
  await db.$executeRawUnsafe(`
    INSERT INTO discovery_profiles (user_id, birth_date, gender, genders_of_interest, age_min, age_max, max_distance_km, visible, banned, event_at)
    SELECT id,
           (current_date - make_interval(years => age) - (floor(r5 * 364)::int * interval '1 day'))::date,
           g.gender,
           CASE WHEN r2 < 0.8 THEN CASE g.gender WHEN 'WOMAN' THEN '{MAN}'::"Gender"[] WHEN 'MAN' THEN '{WOMAN}'::"Gender"[] ELSE '{WOMAN,MAN,NONBINARY}'::"Gender"[] END
                WHEN r2 < 0.9 THEN ARRAY[g.gender]
                ELSE '{WOMAN,MAN,NONBINARY}'::"Gender"[] END,
           GREATEST(18, age - 2 - floor(r3 * 8)::int), LEAST(99, age + 2 + floor(r4 * 12)::int),
           5 + floor(r3 * 46)::int, r4 > 0.05, r5 < 0.005, now()
    FROM seed, LATERAL (SELECT (CASE WHEN r1 < 0.48 THEN 'WOMAN' WHEN r1 < 0.96 THEN 'MAN' ELSE 'NONBINARY' END)::"Gender" AS gender) g`);
  // Locations: a ~100 × 100 km city around 52.52 N, 13.405 E, denser towards the centre (sum of
  // two uniforms), snapped to the 0.0045° grid like updateLocation; a third older than the 24 h
  // freshness window.
  await db.$executeRawUnsafe(`
    INSERT INTO user_locations (user_id, location, updated_at)
    SELECT id,
           ST_SetSRID(ST_MakePoint(
             round((13.405 + (random() + random() - 1) * 0.74) / 0.00739) * 0.00739,
             round((52.52 + (random() + random() - 1) * 0.45) / 0.0045) * 0.0045), 4326)::geography,
           now() - (random() * 36) * interval '1 hour'
    FROM seed`);
  await db.$executeRawUnsafe(`
    INSERT INTO swipes (swiper_id, target_id, kind)
    SELECT a.id, b.id, 'PASS' FROM (SELECT id, row_number() OVER () AS n FROM seed LIMIT ${Math.min(users, 100_000)}) a
    JOIN (SELECT id, row_number() OVER () AS n FROM seed OFFSET 1 LIMIT ${Math.min(users, 100_000)}) b ON a.n = b.n`);
  await db.$executeRawUnsafe(`VACUUM ANALYZE discovery_profiles`);
  await db.$executeRawUnsafe(`VACUUM ANALYZE user_locations`);
  await db.$executeRawUnsafe(`ANALYZE swipes`);
  await db.$executeRawUnsafe(`DROP TABLE seed`);
}
