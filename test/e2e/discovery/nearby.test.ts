import { randomUUID } from "node:crypto";
import { clusterLocations } from "@hv/discovery/src/maintenance/cluster-locations";
import { encodeCursor } from "@hv/discovery/src/modules/geo";
import { createSearchPool } from "@hv/discovery/src/modules/search-pool";
import { Prisma } from "@hv/discovery/src/generated/prisma/client";
import { useSystem } from "../../support/fixture";
import { errorCode } from "../../support/users-client";
import {
  allNearby,
  NEARBY,
  northOf,
  placeAt,
  seedMany,
  seedProfile,
  tokenFor,
  type NearbyPage,
} from "./nearby-support";

/** A random spot of the globe per test, so tests (and other files sharing the run's databases) never see each other's people. */
function somewhere(): [number, number] {
  return [-50 + Math.random() * 100, -170 + Math.random() * 340];
}

describe("nearby through the gateway", () => {
  const fx = useSystem();

  /** A woman of 30 looking for men 25–35 within 10 km, at a random spot. */
  async function viewerAt(origin: [number, number]) {
    const viewerId = await seedProfile(fx.dbs, {
      age: 30,
      gender: "WOMAN",
      gendersOfInterest: ["MAN"],
      ageMin: 25,
      ageMax: 35,
      maxDistanceKm: 10,
    });
    await placeAt(fx.dbs, viewerId, ...origin);
    return { viewerId, token: await tokenFor(fx.system, viewerId) };
  }

  async function ids(token: string, first = 50, filters?: Record<string, number>) {
    return (await allNearby(fx.client, token, first, filters)).map((edge) => edge.node.id);
  }

  it("should show only people whose profile matches the viewer's preferences and whose preferences match the viewer, nearest first", async () => {
    const origin = somewhere();
    const { token } = await viewerAt(origin);
    const at = async (km: number, seed: Parameters<typeof seedProfile>[1]) => {
      const id = await seedProfile(fx.dbs, seed);
      await placeAt(fx.dbs, id, ...northOf(...origin, km));
      return id;
    };
    const match = {
      age: 30,
      gender: "MAN" as const,
      gendersOfInterest: ["WOMAN" as const],
      ageMin: 25,
      ageMax: 35,
    };
    const far = await at(8, match);
    const near = await at(0.1, match);
    const middle = await at(3, { ...match, gendersOfInterest: ["WOMAN", "NONBINARY"], age: 25 });
    await at(2, { ...match, gendersOfInterest: ["MAN"] }); // does not want women
    await at(2, { ...match, gender: "WOMAN" }); // not a gender the viewer wants
    await at(2, { ...match, gender: null }); // no gender: in nobody's filter
    await at(2, { ...match, age: 40 }); // too old for the viewer
    await at(2, { ...match, age: 24 }); // too young for the viewer
    await at(2, { ...match, ageMin: 31 }); // the viewer (30) is too young for him
    await at(2, { ...match, ageMax: 29 }); // the viewer is too old for him
    await at(12, match); // beyond the viewer's 10 km

    const response = await fx.client.request<NearbyPage>(NEARBY, { first: 50 }, token);
    expect(response.body.errors).toBeUndefined();
    const edges = response.body.data!.nearby.edges;
    expect(edges.map((edge) => edge.node.id)).toEqual([near, middle, far]);
    expect(edges.map((edge) => edge.node.distance)).toEqual([
      { kilometres: 0, lessThanOneKilometre: true },
      { kilometres: 3, lessThanOneKilometre: false },
      { kilometres: 8, lessThanOneKilometre: false },
    ]);
    expect(response.body.data!.nearby.pageInfo).toEqual({ hasNextPage: false, endCursor: edges[2]!.cursor });
  });

  it("should leave out the viewer, blocks either way, swiped, banned, hidden and stale people", async () => {
    const origin = somewhere();
    const { viewerId, token } = await viewerAt(origin);
    const person = async (seed: Parameters<typeof seedProfile>[1] = {}, ageMinutes = 0) => {
      const id = await seedProfile(fx.dbs, { age: 30, gender: "MAN", gendersOfInterest: ["WOMAN"], ...seed });
      await placeAt(fx.dbs, id, ...northOf(...origin, 1 + Math.random()), ageMinutes);
      return id;
    };
    const shown = await person();
    const blockedByViewer = await person();
    const blockingViewer = await person();
    const liked = await person();
    const passed = await person();
    const superLiked = await person();
    await person({ banned: true });
    await person({ visible: false });
    await person({}, 24 * 60 + 5); // older than DISCOVERY_LOCATION_MAX_AGE_MINUTES (a day)
    await fx.dbs.discovery.block.createMany({
      data: [
        { blockerId: viewerId, blockedId: blockedByViewer, eventAt: new Date() },
        { blockerId: blockingViewer, blockedId: viewerId, eventAt: new Date() },
      ],
    });
    await fx.dbs.discovery.swipe.createMany({
      data: [
        { swiperId: viewerId, targetId: liked, kind: "LIKE" },
        { swiperId: viewerId, targetId: passed, kind: "PASS" },
        { swiperId: viewerId, targetId: superLiked, kind: "SUPER_LIKE" },
      ],
    });

    expect(await ids(token)).toEqual([shown]);
  });

  it("should page through a stable set nearest first, without duplicates or gaps", async () => {
    const origin = somewhere();
    const { token } = await viewerAt(origin);
    const everyone: string[] = [];
    for (let i = 0; i < 23; i++) {
      const id = await seedProfile(fx.dbs, { age: 30, gender: "MAN", gendersOfInterest: ["WOMAN"] });
      // Several people per snapped cell: ties on distance are broken by id.
      await placeAt(fx.dbs, id, ...northOf(...origin, Math.floor(i / 3) + 0.05));
      everyone.push(id);
    }
    const onePage = await allNearby(fx.client, token, 50);
    expect(onePage).toHaveLength(23);
    const kilometres = onePage.map((edge) => edge.node.distance!.kilometres);
    expect(kilometres).toEqual([...kilometres].sort((a, b) => a - b));

    const paged = await allNearby(fx.client, token, 5);
    expect(paged.map((edge) => edge.node.id)).toEqual(onePage.map((edge) => edge.node.id));
    expect(new Set(paged.map((edge) => edge.node.id)).size).toBe(23);
    expect(new Set(paged.map((edge) => edge.node.id))).toEqual(new Set(everyone));
  });

  it("should page the same people in the same order after the locations table is rewritten in spatial order", async () => {
    const origin = somewhere();
    const { token } = await viewerAt(origin);
    for (let i = 0; i < 12; i++) {
      const id = await seedProfile(fx.dbs, { age: 30, gender: "MAN", gendersOfInterest: ["WOMAN"] });
      await placeAt(fx.dbs, id, ...northOf(...origin, (i % 6) + 0.05));
    }
    const before = await ids(token, 5);
    expect(before).toHaveLength(12);
    await clusterLocations(fx.dbs.discovery);
    expect(await ids(token, 5)).toEqual(before);
    // The rewrite's own index is gone again; the search index is still there.
    const indexes = await fx.dbs.discovery.$queryRaw<Array<{ indexname: string }>>`
      SELECT indexname FROM pg_indexes WHERE tablename = 'user_locations' ORDER BY indexname`;
    expect(indexes.map((row) => row.indexname)).toContain("user_locations_shown_location_idx");
    expect(indexes.map((row) => row.indexname)).not.toContain("user_locations_cluster_order");
  });

  it("should run on connections whose planner cannot fall back to 'everyone in the radius, then sort'", async () => {
    const pool = createSearchPool(process.env.DISCOVERY_DATABASE_URL!, 1);
    try {
      const settings = await pool.query<{ bitmap: string; parallel: string }>(
        Prisma.sql`SELECT current_setting('enable_bitmapscan') AS bitmap, current_setting('max_parallel_workers_per_gather') AS parallel`,
      );
      expect(settings).toEqual([{ bitmap: "off", parallel: "0" }]);
    } finally {
      await pool.close();
    }
  });

  it("should walk past crowds of people who do not match and large ties at one distance", async () => {
    const origin = somewhere();
    const { token } = await viewerAt(origin);
    const woman = { gender: "WOMAN" as const };
    await seedMany(fx.dbs, 300, woman, ...origin); // same cell as the viewer: one distance, more than a chunk
    const sameCell = await seedMany(fx.dbs, 40, {}, ...origin);
    await seedMany(fx.dbs, 700, woman, ...northOf(...origin, 2));
    const further = await seedMany(fx.dbs, 5, {}, ...northOf(...origin, 4));

    const onePage = (await allNearby(fx.client, token, 50)).map((edge) => edge.node.id);
    expect(onePage).toEqual([...[...sameCell].sort(), ...[...further].sort()]);
    expect((await allNearby(fx.client, token, 7)).map((edge) => edge.node.id)).toEqual(onePage);
  });

  it("should let filters narrow the viewer's preferences, never widen them", async () => {
    const origin = somewhere();
    const { token } = await viewerAt(origin);
    const person = async (km: number, age: number) => {
      const id = await seedProfile(fx.dbs, { age, gender: "MAN", gendersOfInterest: ["WOMAN"] });
      await placeAt(fx.dbs, id, ...northOf(...origin, km));
      return id;
    };
    const near30 = await person(2, 30);
    const far30 = await person(7, 30);
    const near34 = await person(2.5, 34);
    await person(15, 30); // beyond the viewer's own 10 km
    await person(2, 40); // beyond the viewer's own 35

    expect(await ids(token)).toEqual([near30, near34, far30]);
    expect(await ids(token, 50, { maxDistanceKm: 5 })).toEqual([near30, near34]);
    expect(await ids(token, 50, { maxDistanceKm: 1000, ageMin: 18, ageMax: 99 })).toEqual([
      near30,
      near34,
      far30,
    ]);
    expect(await ids(token, 50, { ageMin: 32 })).toEqual([near34]);
    expect(await ids(token, 50, { ageMax: 31 })).toEqual([near30, far30]);
  });

  it("should give an empty page to a viewer without a fresh location or a profile", async () => {
    const origin = somewhere();
    const stale = await viewerAt(origin);
    await placeAt(fx.dbs, stale.viewerId, ...origin, 24 * 60 + 5);
    const other = await seedProfile(fx.dbs, { gender: "MAN", gendersOfInterest: ["WOMAN"] });
    await placeAt(fx.dbs, other, ...origin);
    const noProfile = randomUUID();
    await placeAt(fx.dbs, noProfile, ...origin);
    for (const token of [stale.token, await tokenFor(fx.system, noProfile)]) {
      const response = await fx.client.request<NearbyPage>(NEARBY, {}, token);
      expect(response.body).toEqual({
        data: { nearby: { edges: [], pageInfo: { hasNextPage: false, endCursor: null } } },
      });
    }
  });

  it("should refuse an anonymous search", async () => {
    const response = await fx.client.request(NEARBY, {});
    expect(errorCode(response)).toBe("UNAUTHENTICATED");
  });

  const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64url");
  it.each([
    ["first above the cap", { first: 51 }, "first"],
    ["first of zero", { first: 0 }, "first"],
    ["a negative first", { first: -5 }, "first"],
    ["a garbage cursor", { after: "not a cursor!" }, "after"],
    ["a cursor that is not JSON", { after: b64("d=1,id=2") }, "after"],
    [
      "a cursor with an extra field",
      { after: b64(JSON.stringify({ d: 1, id: randomUUID(), x: 1 })) },
      "after",
    ],
    ["a cursor with a negative distance", { after: encodeCursor({ d: -1, id: randomUUID() }) }, "after"],
    [
      "a cursor with an absurd distance",
      { after: b64(JSON.stringify({ d: 1e308, id: randomUUID() })) },
      "after",
    ],
    [
      "a cursor with a bad id",
      { after: b64(JSON.stringify({ d: 10, id: "1; DROP TABLE blocks" })) },
      "after",
    ],
    [
      "a cursor with non-canonical padding",
      { after: `${encodeCursor({ d: 5, id: randomUUID() })}=` },
      "after",
    ],
    ["a zero distance filter", { filters: { maxDistanceKm: 0 } }, "filters.maxDistanceKm"],
    ["an under-age filter", { filters: { ageMin: 12 } }, "filters.ageMin"],
    ["an inverted age filter", { filters: { ageMin: 40, ageMax: 30 } }, "filters"],
  ])("should refuse %s with BAD_USER_INPUT", async (_name, variables, field) => {
    const { token } = await viewerAt(somewhere());
    const response = await fx.client.request(NEARBY, variables, token);
    expect(response.body.data).toBeNull();
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
  });
});
