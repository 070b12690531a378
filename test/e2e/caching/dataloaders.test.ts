import { graphqlRequest } from "../../support/system";
import { useSystem } from "../../support/fixture";
import type { SignedIn } from "../../support/users-client";
import {
  eventually,
  mediaTableStatements,
  seedMatch,
  seedPerson,
  seedProfilePhotos,
  usersTableStatements,
} from "./caching-support";

/**
 * Every entity reference and list field batches: a page of N matches with each person's profile
 * (Users), location facts (Discovery) and photos (Media) costs the same SQL statements per
 * subgraph whatever N is. Counted on cold caches (the worst case), then warm.
 */
describe("DataLoader per request in every subgraph", () => {
  const fixture = useSystem();
  let viewer: SignedIn;
  const matched: string[] = [];

  // `url` needs Chat's read grant (@requires), so the plan goes Media → Chat → Media again for it.
  const page = (withUrl: boolean) => `query($first: Int!) {
    matches(first: $first) {
      edges { node { id createdAt user { id displayName age isDiscoverable distance { kilometres lessThanOneKilometre } photos { id blurhash width ${withUrl ? "url" : ""} } } } }
    }
  }`;

  beforeAll(async () => {
    const { dbs, client } = fixture;
    viewer = await client.signUp({ displayName: "Viewer" });
    await client.request(
      `mutation { updateLocation(latitude: 52.52, longitude: 13.405) { updatedAt } }`,
      {},
      viewer.accessToken,
    );
    for (let index = 0; index < 12; index += 1) {
      const person = await seedPerson(dbs, `Match ${index}`);
      await seedProfilePhotos(dbs, person.id, 1 + (index % 3));
      await seedMatch(dbs, viewer.userId, person.id);
      matched.push(person.id);
    }
    // The viewer's sign-up event reaches Discovery and Media through their consumers, on the same
    // pools this test counts: let it land before counting.
    await eventually(
      async () => (await dbs.discovery.discoveryProfile.count({ where: { userId: viewer.userId } })) === 1,
    );
    await eventually(
      async () => (await dbs.media.userState.count({ where: { userId: viewer.userId } })) === 1,
    );
  });

  /** The statements each subgraph sent for one page of `first` matches, with every cache emptied first. */
  async function coldPage(first: number, withUrl = true) {
    const { system } = fixture;
    await system.subgraphs.users.redis.del(...matched.map((id) => `hv:users:profile:${id}`));
    await system.subgraphs.media.redis.del(...matched.map((id) => `hv:media:profile-photos:${id}`));
    return countedPage(first, withUrl);
  }

  async function countedPage(first: number, withUrl = true) {
    const { system, client } = fixture;
    system.usersQueries.length = 0;
    system.discoveryQueries.length = 0;
    system.mediaQueries.length = 0;
    const response = await client.request<{
      matches: {
        edges: Array<{ node: { user: { id: string; photos: Array<{ id: string; url: string | null }> } } }>;
      };
    }>(page(withUrl), { first }, viewer.accessToken);
    expect(response.body.errors).toBeUndefined();
    const edges = response.body.data?.matches.edges ?? [];
    expect(edges).toHaveLength(first);
    for (const edge of edges) {
      expect(edge.node.user.photos.length).toBeGreaterThan(0);
      if (withUrl) for (const photo of edge.node.user.photos) expect(photo.url).toMatch(/^http/);
    }
    return {
      users: usersTableStatements(system.usersQueries).length,
      // The outbox relay shares Discovery's pool: its polls are not this request's, nor is the
      // COMMIT of a relay pass that began before the count was reset (the page reads no transaction).
      discovery: system.discoveryQueries.filter(
        (sql) => !/outbox_events/.test(sql) && !/^\s*(BEGIN|COMMIT|ROLLBACK)\b/.test(sql),
      ).length,
      // Media's outbox relay (media.reported) polls on the same pool, as Discovery's does.
      media: system.mediaQueries.filter(
        (sql) => !/outbox_events/.test(sql) && !/^\s*(BEGIN|COMMIT|ROLLBACK)\b/.test(sql),
      ).length,
      mediaTable: mediaTableStatements(system.mediaQueries).length,
    };
  }

  it("should cost the same statements per subgraph for 3 and for 12 people", async () => {
    const three = await coldPage(3);
    const twelve = await coldPage(12);
    expect(twelve).toEqual(three);
    // One read of the users table (the profile cache's misses); of media, one for the photo
    // cache's misses and one for the Media references `url` is resolved on.
    expect(twelve.users).toBe(1);
    expect(twelve.mediaTable).toBe(2);
    // Discovery: the page, then the people's fresh locations and distances, one statement each.
    expect(twelve.discovery).toBe(3);
  });

  it("should read neither profiles nor photo lists from Postgres once they are cached", async () => {
    await coldPage(12, false);
    const warm = await countedPage(12, false);
    expect(warm.users).toBe(0);
    expect(warm.mediaTable).toBe(0);
    // What stays per request is the viewer-dependent part: bans and blocks either way, in one statement.
    expect(warm.media).toBe(1);
  });

  it("should resolve many Match references in one statement", async () => {
    const { system, dbs } = fixture;
    const matchIds = (
      await dbs.discovery.match.findMany({
        where: { OR: [{ userAId: viewer.userId }, { userBId: viewer.userId }] },
        select: { id: true },
      })
    ).map((row) => row.id);
    expect(matchIds.length).toBe(12);
    const entities = `query($representations: [_Any!]!) { _entities(representations: $representations) { ... on Match { id user { id } } } }`;
    const counted = async (ids: string[]) => {
      system.discoveryQueries.length = 0;
      const response = await graphqlRequest<{ _entities: Array<{ id: string } | null> }>(
        system.subgraphs.discovery.url,
        entities,
        { representations: ids.map((id) => ({ __typename: "Match", id })) },
        { authorization: `Bearer ${viewer.accessToken}` },
      );
      expect(response.body.errors).toBeUndefined();
      expect(response.body.data?._entities.map((entity) => entity?.id)).toEqual(ids);
      return system.discoveryQueries.filter((sql) => /"public"\."matches"/.test(sql)).length;
    };
    expect(await counted(matchIds.slice(0, 2))).toBe(1);
    expect(await counted(matchIds)).toBe(1);
  });
});
