import {
  LATITUDE_STEP_DEGREES,
  roundDistance,
  snapToGrid,
  type Distance,
  type LatLng,
} from "@hv/discovery/src/modules/geo";
import { useSystem } from "../../support/fixture";
import type { SignedIn } from "../../support/users-client";
import { eventually, UPDATE_LOCATION } from "./nearby-support";

/**
 * The trilateration attack: an attacker moves to many known points and reads the rounded distance
 * to a target each time. Whatever they combine, every position that would have produced the same
 * answers is as likely as the true one, and those positions cover at least the target's whole
 * ~500 m grid cell: the target cannot be pinned down more closely than the snapping.
 */
describe("location privacy against trilateration", () => {
  const fx = useSystem();
  const TARGET: LatLng = { latitude: 51.507_351_7, longitude: -0.127_758_3 };
  const METRES_PER_DEGREE = 111_195; // the sphere PostGIS's <-> uses (mean radius 6371.0088 km)

  it("should leave the target anywhere in a region at least the size of a grid cell, and never reveal the exact point", async () => {
    const responses: string[] = [];
    const target = await fx.client.signUp({ displayName: "Target" });
    const moved = await fx.client.request(
      UPDATE_LOCATION,
      { lat: TARGET.latitude, lng: TARGET.longitude },
      target.accessToken,
    );
    responses.push(JSON.stringify(moved.body));
    // Sign-up sent user.profile_changed: Discovery shows distances to people it has a profile for.
    await eventually(() =>
      fx.dbs.discovery.discoveryProfile.findUnique({ where: { userId: target.userId } }),
    );

    // Observations from 60 known points on rings 0.3–6 km around the target, by three attacker
    // accounts (each within its updateLocation budget of 30 a minute).
    const attackers: SignedIn[] = [];
    for (let i = 0; i < 3; i++) attackers.push(await fx.client.signUp({ displayName: `Attacker ${i}` }));
    const observations: Array<{ at: LatLng; distance: Distance }> = [];
    for (let i = 0; i < 60; i++) {
      const attacker = attackers[i % 3]!;
      const radiusKm = 0.3 + (i % 12) * 0.5;
      const angle = (i * 137.5 * Math.PI) / 180;
      const at = {
        latitude: TARGET.latitude + (radiusKm * 1000 * Math.cos(angle)) / METRES_PER_DEGREE,
        longitude:
          TARGET.longitude +
          (radiusKm * 1000 * Math.sin(angle)) /
            (METRES_PER_DEGREE * Math.cos((TARGET.latitude * Math.PI) / 180)),
      };
      const move = await fx.client.request(
        UPDATE_LOCATION,
        { lat: at.latitude, lng: at.longitude },
        attacker.accessToken,
      );
      expect(move.body.errors).toBeUndefined();
      const read = await fx.client.request<{ user: { distance: Distance | null } | null }>(
        `query($id: ID!) { user(id: $id) { id displayName distance { kilometres lessThanOneKilometre } isDiscoverable } }`,
        { id: target.userId },
        attacker.accessToken,
      );
      responses.push(JSON.stringify(read.body), JSON.stringify([...read.headers.entries()]));
      const distance = read.body.data?.user?.distance;
      expect(distance).toBeTruthy();
      observations.push({ at, distance: distance! });
    }
    expect(new Set(observations.map((o) => o.distance.kilometres)).size).toBeGreaterThan(4); // the answers do vary

    // Every candidate position on a 25 m grid over 3 × 3 km around the target, kept if it explains
    // every observation (distances computed by PostGIS exactly as the server does, between cells).
    const stepDeg = 25 / METRES_PER_DEGREE;
    const lngScale = Math.cos((TARGET.latitude * Math.PI) / 180);
    const candidates: Array<{ point: LatLng; cell: LatLng }> = [];
    for (let y = -60; y <= 60; y++)
      for (let x = -60; x <= 60; x++) {
        const point = {
          latitude: TARGET.latitude + y * stepDeg,
          longitude: TARGET.longitude + (x * stepDeg) / lngScale,
        };
        candidates.push({ point, cell: snapToGrid(point) });
      }
    const cells = [
      ...new Map(candidates.map((c) => [`${c.cell.latitude},${c.cell.longitude}`, c.cell])).values(),
    ];
    const viewerCells = observations.map((o) => snapToGrid(o.at));
    const rows = await fx.dbs.discovery.$queryRaw<Array<{ c: number; o: number; metres: number }>>`
      SELECT c.i::int AS c, o.i::int AS o,
             (ST_SetSRID(ST_MakePoint(c.lng, c.lat), 4326)::geography <-> ST_SetSRID(ST_MakePoint(o.lng, o.lat), 4326)::geography)::float8 AS metres
      FROM unnest(${cells.map((c) => c.latitude)}::float8[], ${cells.map((c) => c.longitude)}::float8[]) WITH ORDINALITY AS c(lat, lng, i),
           unnest(${viewerCells.map((c) => c.latitude)}::float8[], ${viewerCells.map((c) => c.longitude)}::float8[]) WITH ORDINALITY AS o(lat, lng, i)`;
    const consistentCells = new Set<string>();
    const bad = new Set<number>();
    for (const row of rows) {
      const expected = observations[row.o - 1]!.distance;
      const answer = roundDistance(Number(row.metres));
      if (
        answer.kilometres !== expected.kilometres ||
        answer.lessThanOneKilometre !== expected.lessThanOneKilometre
      )
        bad.add(row.c);
    }
    cells.forEach((cell, i) => {
      if (!bad.has(i + 1)) consistentCells.add(`${cell.latitude},${cell.longitude}`);
    });
    const consistent = candidates
      .filter((c) => consistentCells.has(`${c.cell.latitude},${c.cell.longitude}`))
      .map((c) => c.point);

    const metresNorth = (p: LatLng) => (p.latitude - TARGET.latitude) * METRES_PER_DEGREE;
    const metresEast = (p: LatLng) => (p.longitude - TARGET.longitude) * METRES_PER_DEGREE * lngScale;
    const spanNorth = Math.max(...consistent.map(metresNorth)) - Math.min(...consistent.map(metresNorth));
    const spanEast = Math.max(...consistent.map(metresEast)) - Math.min(...consistent.map(metresEast));
    const farthest = Math.max(...consistent.map((p) => Math.hypot(metresNorth(p), metresEast(p))));
    const cellMetres = LATITUDE_STEP_DEGREES * METRES_PER_DEGREE; // ~500 m
    // The true position is among the candidates, and so is every point of its cell.
    expect(consistentCells.has(`${snapToGrid(TARGET).latitude},${snapToGrid(TARGET).longitude}`)).toBe(true);
    expect(spanNorth).toBeGreaterThanOrEqual(cellMetres - 2 * 25);
    expect(spanEast).toBeGreaterThanOrEqual(cellMetres - 2 * 25);
    // The best guess an attacker can make is still wrong by a good part of a cell somewhere in it.
    expect(farthest).toBeGreaterThanOrEqual(cellMetres / 2 - 25);

    // The exact coordinates are nowhere: not in any response, not stored, not logged.
    const exact = [TARGET.latitude, TARGET.longitude].map((n) => n.toFixed(4));
    for (const text of [...responses, JSON.stringify(fx.system.logs)])
      for (const digits of exact) expect(text).not.toContain(digits);
    const [stored] = await fx.dbs.discovery.$queryRaw<Array<{ latitude: number; longitude: number }>>`
      SELECT ST_Y(location::geometry) AS latitude, ST_X(location::geometry) AS longitude FROM user_locations WHERE user_id = ${target.userId}::uuid`;
    expect(stored).toEqual(snapToGrid(TARGET));
    expect(Math.hypot(metresNorth(stored!), metresEast(stored!))).toBeGreaterThan(1);
  });
});
