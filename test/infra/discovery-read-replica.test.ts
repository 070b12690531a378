import { databaseName, dropDatabase, ensureDatabase, migrateDeploy, withDatabaseName } from "@hv/prisma";
import { createDiscoveryDb, type DiscoveryDb } from "@hv/discovery/src/db";
import { useSystem } from "../support/fixture";
import type { TestDatabases } from "../support/seed";
import {
  allNearby,
  northOf,
  placeAt,
  seedProfile,
  tokenFor,
  type ProfileSeed,
} from "../e2e/discovery/nearby-support";

/**
 * DISCOVERY_READ_DATABASE_URL: nearby's candidates from a read replica, the rest from the primary.
 *
 * No streaming replica can be made here, so the "replica" is a second database, migrated with the
 * same migrations, into which the test copies what "has replicated" and leaves out what has not:
 * a replica lagging behind the primary by exactly the writes the test chooses. That shows which
 * query reads which database, which a replica pointing at the primary itself could not.
 */
describe("discovery with a read replica for nearby", () => {
  const primaryUrl = process.env.DISCOVERY_DATABASE_URL!;
  const replicaUrl = withDatabaseName(primaryUrl, `${databaseName(primaryUrl)}_replica`);
  let replica: DiscoveryDb;
  beforeAll(async () => {
    await ensureDatabase(replicaUrl);
    await migrateDeploy("discovery", replicaUrl);
    replica = createDiscoveryDb(replicaUrl);
  });
  afterAll(async () => {
    await replica?.$disconnect();
    await dropDatabase(replicaUrl);
  });
  const fx = useSystem({ DISCOVERY_READ_DATABASE_URL: replicaUrl });

  /** Seeding helpers on the replica: the same statements, the other database. */
  const onReplica = () => ({ ...fx.dbs, discovery: replica }) as TestDatabases;
  const somewhere = (): [number, number] => [-50 + Math.random() * 100, -170 + Math.random() * 340];
  const man: ProfileSeed = { age: 30, gender: "MAN", gendersOfInterest: ["WOMAN"] };

  /** A person whose profile and location have reached the replica too. */
  async function replicated(origin: [number, number], km: number, seed: ProfileSeed = man): Promise<string> {
    const id = await seedProfile(fx.dbs, seed);
    await seedProfile(onReplica(), { ...seed, userId: id });
    const at = northOf(...origin, km);
    await placeAt(fx.dbs, id, ...at);
    await placeAt(onReplica(), id, ...at);
    return id;
  }

  async function viewer() {
    const seed: ProfileSeed = { age: 30, gender: "WOMAN", gendersOfInterest: ["MAN"], maxDistanceKm: 10 };
    const viewerId = await seedProfile(fx.dbs, seed);
    await seedProfile(onReplica(), { ...seed, userId: viewerId });
    return { viewerId, token: await tokenFor(fx.system, viewerId) };
  }

  it("should read the viewer's own row from the primary and the candidates from the replica", async () => {
    const origin = somewhere();
    const { viewerId, token } = await viewer();
    // The viewer has just moved: the replica still has her far away, the primary at `origin`.
    await placeAt(fx.dbs, viewerId, ...origin);
    await placeAt(onReplica(), viewerId, ...northOf(...origin, 500));
    const nearby = await replicated(origin, 1);
    // Someone who has not reached the replica yet: not a candidate (candidates come from the replica).
    const notReplicated = await seedProfile(fx.dbs, man);
    await placeAt(fx.dbs, notReplicated, ...northOf(...origin, 0.5));

    const ids = (await allNearby(fx.client, token, 50)).map((edge) => edge.node.id);
    // From the replica's copy of the viewer nobody would be within 10 km: she is searched from the primary's.
    expect(ids).toEqual([nearby]);
  });

  it("should never show someone the primary already hides: blocks either way, swipes, hidden and banned profiles", async () => {
    const origin = somewhere();
    const { viewerId, token } = await viewer();
    await placeAt(fx.dbs, viewerId, ...origin);
    await placeAt(onReplica(), viewerId, ...origin);
    // Nearest first: the people written about on the primary only are the nearest, so they would
    // fill the first pages if they were shown.
    const blockedByViewer = await replicated(origin, 0.5);
    const blockingViewer = await replicated(origin, 1);
    const passed = await replicated(origin, 1.5);
    const liked = await replicated(origin, 2);
    const hidden = await replicated(origin, 2.5);
    const banned = await replicated(origin, 3);
    const shown = [await replicated(origin, 4), await replicated(origin, 5), await replicated(origin, 6)];

    // All of this happened on the primary within the replication lag.
    await fx.dbs.discovery.block.createMany({
      data: [
        { blockerId: viewerId, blockedId: blockedByViewer, eventAt: new Date() },
        { blockerId: blockingViewer, blockedId: viewerId, eventAt: new Date() },
      ],
    });
    await fx.dbs.discovery.swipe.createMany({
      data: [
        { swiperId: viewerId, targetId: passed, kind: "PASS" },
        { swiperId: viewerId, targetId: liked, kind: "LIKE" },
      ],
    });
    await fx.dbs.discovery
      .$executeRaw`UPDATE discovery_profiles SET visible = false WHERE user_id = ${hidden}::uuid`;
    await fx.dbs.discovery
      .$executeRaw`UPDATE discovery_profiles SET banned = true WHERE user_id = ${banned}::uuid`;

    // One page of everything, and pages of two (the first pages are all dropped rows: the keyset
    // must carry on past them rather than end the list or repeat anyone).
    expect((await allNearby(fx.client, token, 50)).map((edge) => edge.node.id)).toEqual(shown);
    expect((await allNearby(fx.client, token, 2)).map((edge) => edge.node.id)).toEqual(shown);
    // The replica itself still lists all nine: the exclusions above came from the primary.
    const onReplicaCount = await replica.$queryRaw<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM user_locations l
      WHERE l.shown AND l.user_id = ANY(${[blockedByViewer, blockingViewer, passed, liked, hidden, banned, ...shown]}::uuid[])`;
    expect(onReplicaCount[0]?.n).toBe(9);
  });

  it("should page exactly as without a replica when nothing is lagging", async () => {
    const origin = somewhere();
    const { viewerId, token } = await viewer();
    await placeAt(fx.dbs, viewerId, ...origin);
    await placeAt(onReplica(), viewerId, ...origin);
    const everyone: string[] = [];
    for (let i = 0; i < 7; i++) everyone.push(await replicated(origin, i + 0.2));
    const pages = await allNearby(fx.client, token, 3);
    expect(pages.map((edge) => edge.node.id)).toEqual(everyone);
    // Distances come from cell centres (≈ 500 m grid), so only their order is certain.
    const kilometres = pages.map((edge) => edge.node.distance!.kilometres);
    expect(kilometres).toEqual([...kilometres].sort((a, b) => a - b));
  });
});
