import { randomUUID } from "node:crypto";
import { useSystem } from "../../support/fixture";
import { graphqlRequest, type GraphQLResponse } from "../../support/system";
import { errorCode, type SignedIn } from "../../support/users-client";

const MATCH_FIELDS = "id createdAt user { id displayName }";
const LIKE = `mutation($userId: ID!) { like(userId: $userId) { matched match { ${MATCH_FIELDS} } } }`;
const SUPER_LIKE = `mutation($userId: ID!) { superLike(userId: $userId) { matched match { ${MATCH_FIELDS} } } }`;
const PASS = `mutation($userId: ID!) { pass(userId: $userId) }`;
const MATCHES = `query($first: Int, $after: String) { matches(first: $first, after: $after) { edges { cursor node { ${MATCH_FIELDS} } } pageInfo { hasNextPage endCursor } } }`;
const UNMATCH = `mutation($matchId: ID!) { unmatch(matchId: $matchId) }`;

interface MatchNode {
  id: string;
  createdAt: string;
  user: { id: string; displayName: string };
}
interface LikeData {
  matched: boolean;
  match: MatchNode | null;
}
interface MatchesData {
  matches: {
    edges: Array<{ cursor: string; node: MatchNode }>;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

describe("likes, passes and matches through the gateway", () => {
  const fixture = useSystem();

  /**
   * Someone signed up through Users, once Discovery has learnt their profile from the
   * `user.profile_changed` event (bounded polling: a fixed number of tries, no clock threshold).
   */
  async function person(displayName: string): Promise<SignedIn> {
    const signedIn = await fixture.client.signUp({ displayName });
    for (let attempt = 0; attempt < 400; attempt += 1) {
      if (await fixture.dbs.discovery.discoveryProfile.count({ where: { userId: signedIn.userId } }))
        return signedIn;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`Discovery never learnt ${displayName}'s profile from user.profile_changed`);
  }

  const send = <T = Record<string, unknown>>(
    query: string,
    variables: Record<string, unknown>,
    who?: SignedIn,
  ) => fixture.client.request<T>(query, variables, who?.accessToken);
  const like = (who: SignedIn, target: string, query = LIKE) =>
    send<{ like?: LikeData; superLike?: LikeData }>(query, { userId: target }, who);
  const matchesOf = (who: SignedIn, variables: Record<string, unknown> = {}) =>
    send<MatchesData>(MATCHES, variables, who);

  function pairOf(one: string, other: string): [string, string] {
    return one < other ? [one, other] : [other, one];
  }

  async function outboxFor(type: string, pair: [string, string]) {
    const events = await fixture.dbs.discovery.outboxEvent.findMany({ where: { type } });
    return events.filter(
      (event) => JSON.stringify((event.payload as { userIds?: unknown }).userIds) === JSON.stringify(pair),
    );
  }

  /**
   * Everything a refused swipe or unmatch must leave as it was, for these people (other test files
   * share the database, so global counts could move under a test).
   */
  async function counts(...people: SignedIn[]) {
    const ids = people.map((who) => who.userId);
    const db = fixture.dbs.discovery;
    const involving = { OR: [{ userAId: { in: ids } }, { userBId: { in: ids } }] };
    const [swipes, matches, outbox] = await Promise.all([
      db.swipe.findMany({
        where: { OR: [{ swiperId: { in: ids } }, { targetId: { in: ids } }] },
        orderBy: [{ swiperId: "asc" }, { targetId: "asc" }],
      }),
      db.match.findMany({ where: involving, orderBy: { id: "asc" } }),
      db.outboxEvent.findMany({ orderBy: { id: "asc" } }),
    ]);
    const mentions = (payload: unknown) => ids.some((id) => JSON.stringify(payload).includes(id));
    return {
      swipes,
      matches,
      outbox: outbox.filter((event) => mentions(event.payload)).map((event) => event.id),
    };
  }

  async function matchPair(one: SignedIn, other: SignedIn): Promise<MatchNode> {
    const first = await like(one, other.userId);
    expect(first.body.data?.like).toEqual({ matched: false, match: null });
    const second = await like(other, one.userId);
    const match = second.body.data?.like?.match;
    if (!match) throw new Error(`no match: ${JSON.stringify(second.body)}`);
    return match;
  }

  it("should refuse anonymous swipes, matches and unmatch with UNAUTHENTICATED", async () => {
    const target = await person("Target");
    const before = await counts(target);
    const responses: GraphQLResponse[] = await Promise.all([
      send(LIKE, { userId: target.userId }),
      send(SUPER_LIKE, { userId: target.userId }),
      send(PASS, { userId: target.userId }),
      send(MATCHES, {}),
      send(UNMATCH, { matchId: randomUUID() }),
    ]);
    for (const response of responses) expect(errorCode(response)).toBe("UNAUTHENTICATED");
    expect(await counts(target)).toEqual(before);
  });

  it("should make one match from a mutual like, visible to both with the other's display name", async () => {
    const ada = await person("Ada");
    const bob = await person("Bob");
    const first = await like(ada, bob.userId);
    expect(first.body.errors).toBeUndefined();
    expect(first.body.data?.like).toEqual({ matched: false, match: null });

    const second = await like(bob, ada.userId, SUPER_LIKE);
    expect(second.body.errors).toBeUndefined();
    const match = second.body.data?.superLike?.match;
    expect(second.body.data?.superLike?.matched).toBe(true);
    expect(match?.user).toEqual({ id: ada.userId, displayName: "Ada" });

    const pair = pairOf(ada.userId, bob.userId);
    const rows = await fixture.dbs.discovery.match.findMany({
      where: { userAId: pair[0], userBId: pair[1] },
    });
    expect(rows.map((row) => row.id)).toEqual([match?.id]);
    const events = await outboxFor("match.created", pair);
    expect(events.map((event) => event.payload)).toEqual([{ matchId: match?.id, userIds: pair }]);

    const adaSees = await matchesOf(ada);
    expect(adaSees.body.errors).toBeUndefined();
    expect(adaSees.body.data?.matches.edges.map((edge) => edge.node)).toEqual([
      { id: match?.id, createdAt: match?.createdAt, user: { id: bob.userId, displayName: "Bob" } },
    ]);
    expect(adaSees.body.data?.matches.pageInfo.hasNextPage).toBe(false);
    const bobSees = await matchesOf(bob);
    expect(bobSees.body.data?.matches.edges.map((edge) => edge.node.user)).toEqual([
      { id: ada.userId, displayName: "Ada" },
    ]);

    // Liking again is idempotent: the same match, no second row or event.
    const again = await like(ada, bob.userId);
    expect(again.body.data?.like).toEqual({
      matched: true,
      match: { ...match, user: { id: bob.userId, displayName: "Bob" } },
    });
    expect(await fixture.dbs.discovery.match.count({ where: { userAId: pair[0], userBId: pair[1] } })).toBe(
      1,
    );
    expect(await outboxFor("match.created", pair)).toHaveLength(1);
  });

  it("should make exactly one match and one match.created event from simultaneous mutual likes", async () => {
    for (let round = 0; round < 4; round += 1) {
      const [one, other] = await Promise.all([person(`One ${round}`), person(`Other ${round}`)]);
      const [a, b] = await Promise.all([
        like(one, other.userId),
        like(other, one.userId, round % 2 === 0 ? SUPER_LIKE : LIKE),
      ]);
      const results = [a.body.data?.like, b.body.data?.like ?? b.body.data?.superLike];
      expect([a.body.errors, b.body.errors]).toEqual([undefined, undefined]);
      const matched = results.filter((result) => result?.matched);
      expect(matched).toHaveLength(1);

      const pair = pairOf(one.userId, other.userId);
      const rows = await fixture.dbs.discovery.match.findMany({
        where: { userAId: pair[0], userBId: pair[1] },
      });
      expect(rows.map((row) => row.id)).toEqual([matched[0]?.match?.id]);
      const events = await outboxFor("match.created", pair);
      expect(events.map((event) => event.payload)).toEqual([{ matchId: rows[0]?.id, userIds: pair }]);
    }
  });

  it("should refuse liking yourself or a malformed id with BAD_USER_INPUT and change nothing", async () => {
    const ada = await person("Ada");
    const before = await counts(ada);
    for (const [query, userId] of [
      [LIKE, ada.userId],
      [SUPER_LIKE, ada.userId],
      [PASS, ada.userId],
      [LIKE, "not-a-uuid"],
    ] as const) {
      const response = await send(query, { userId }, ada);
      expect(response.body.errors?.[0]?.extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "userId",
      });
    }
    expect(await counts(ada)).toEqual(before);
  });

  it("should answer NOT_FOUND for an unknown, a banned, a hidden or a blocked person and change nothing", async () => {
    const ada = await person("Ada");
    const banned = await person("Banned");
    const hidden = await person("Hidden");
    await fixture.dbs.discovery.discoveryProfile.update({
      where: { userId: hidden.userId },
      data: { visible: false },
    });
    const blockedByAda = await person("Blocked");
    const blockerOfAda = await person("Blocker");
    await fixture.dbs.discovery.discoveryProfile.update({
      where: { userId: banned.userId },
      data: { banned: true },
    });
    await fixture.dbs.discovery.block.createMany({
      data: [
        { blockerId: ada.userId, blockedId: blockedByAda.userId, eventAt: new Date() },
        { blockerId: blockerOfAda.userId, blockedId: ada.userId, eventAt: new Date() },
      ],
    });
    const before = await counts(ada, banned, blockedByAda, blockerOfAda, hidden);
    for (const target of [
      randomUUID(),
      banned.userId,
      hidden.userId,
      blockedByAda.userId,
      blockerOfAda.userId,
    ]) {
      for (const query of [LIKE, SUPER_LIKE, PASS]) {
        const response = await send(query, { userId: target }, ada);
        expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "NOT_FOUND", field: "userId" });
      }
    }
    // The blocked person gets the same answer as for someone who does not exist.
    const fromBlocked = await like(blockedByAda, ada.userId);
    expect(errorCode(fromBlocked)).toBe("NOT_FOUND");
    expect(await counts(ada, banned, blockedByAda, blockerOfAda, hidden)).toEqual(before);
  });

  it("should refuse a pass after a match with CONFLICT and change nothing", async () => {
    const ada = await person("Ada");
    const bob = await person("Bob");
    await matchPair(ada, bob);
    const before = await counts(ada, bob);
    const response = await send(PASS, { userId: bob.userId }, ada);
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "CONFLICT", field: "userId" });
    expect(await counts(ada, bob)).toEqual(before);
  });

  it("should let a pass replace a like, so a later like back makes no match until liked again", async () => {
    const ada = await person("Ada");
    const bob = await person("Bob");
    expect((await like(ada, bob.userId)).body.data?.like?.matched).toBe(false);
    expect((await send<{ pass: boolean }>(PASS, { userId: bob.userId }, ada)).body.data).toEqual({
      pass: true,
    });
    expect((await like(bob, ada.userId)).body.data?.like).toEqual({ matched: false, match: null });
    const changedMind = await like(ada, bob.userId);
    expect(changedMind.body.data?.like?.matched).toBe(true);
    expect(changedMind.body.data?.like?.match?.user).toEqual({ id: bob.userId, displayName: "Bob" });
  });

  it.each([
    ["first above the cap", { first: 51 }, "first"],
    ["first of 0", { first: 0 }, "first"],
    ["a negative first", { first: -1 }, "first"],
    ["a cursor that is not base64url", { after: "!!!" }, "after"],
    ["a cursor that is not JSON", { after: Buffer.from("hello").toString("base64url") }, "after"],
    [
      "a cursor with a bad id",
      { after: Buffer.from(JSON.stringify({ c: "2026-01-01T00:00:00.000Z", i: "x" })).toString("base64url") },
      "after",
    ],
    [
      "a cursor with a bad time",
      { after: Buffer.from(JSON.stringify({ c: "yesterday", i: randomUUID() })).toString("base64url") },
      "after",
    ],
    [
      "a cursor with extra fields",
      {
        after: Buffer.from(JSON.stringify({ c: "2026-01-01T00:00:00.000Z", i: randomUUID(), x: 1 })).toString(
          "base64url",
        ),
      },
      "after",
    ],
    [
      "a re-spaced cursor",
      {
        after: Buffer.from(
          JSON.stringify({ c: "2026-01-01T00:00:00.000Z", i: randomUUID() }, null, 1),
        ).toString("base64url"),
      },
      "after",
    ],
  ])("should refuse matches with %s as BAD_USER_INPUT", async (_name, variables, field) => {
    const ada = await person("Ada");
    const response = await matchesOf(ada, variables);
    expect(response.body.data ?? null).toBeNull();
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
  });

  it("should page through matches newest first without duplicates or gaps", async () => {
    const ada = await person("Ada");
    const others = [];
    for (let i = 0; i < 5; i += 1) others.push(await person(`Match ${i}`));
    const made: string[] = [];
    for (const other of others) made.push((await matchPair(ada, other)).id);

    const seen: MatchNode[] = [];
    const pageSizes: number[] = [];
    let after: string | null = null;
    for (;;) {
      const response: GraphQLResponse<MatchesData> = await matchesOf(ada, { first: 2, after });
      expect(response.body.errors).toBeUndefined();
      const page: MatchesData["matches"] | undefined = response.body.data?.matches;
      if (!page) throw new Error("no page");
      pageSizes.push(page.edges.length);
      seen.push(...page.edges.map((edge) => edge.node));
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(pageSizes).toEqual([2, 2, 1]);
    expect(seen.map((node) => node.id)).toEqual([...made].reverse());
    expect(seen.map((node) => node.user.displayName)).toEqual([
      "Match 4",
      "Match 3",
      "Match 2",
      "Match 1",
      "Match 0",
    ]);
    const times = seen.map((node) => Date.parse(node.createdAt));
    expect([...times].sort((x, y) => y - x)).toEqual(times);
  });

  it("should end a match for both with one match.ended event, and not re-match from the old likes", async () => {
    const ada = await person("Ada");
    const bob = await person("Bob");
    const eve = await person("Eve");
    const match = await matchPair(ada, bob);
    const pair = pairOf(ada.userId, bob.userId);

    // Someone else cannot end it, nor learn that it exists.
    const before = await counts(ada, bob, eve);
    const byEve = await send(UNMATCH, { matchId: match.id }, eve);
    expect(byEve.body.errors?.[0]?.extensions).toMatchObject({ code: "NOT_FOUND", field: "matchId" });
    const unknown = await send(UNMATCH, { matchId: randomUUID() }, ada);
    expect(errorCode(unknown)).toBe("NOT_FOUND");
    const malformed = await send(UNMATCH, { matchId: "nope" }, ada);
    expect(malformed.body.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "matchId",
    });
    expect(await counts(ada, bob, eve)).toEqual(before);

    const ended = await send<{ unmatch: boolean }>(UNMATCH, { matchId: match.id }, bob);
    expect(ended.body.errors).toBeUndefined();
    expect(ended.body.data).toEqual({ unmatch: true });
    const events = await outboxFor("match.ended", pair);
    expect(events.map((event) => event.payload)).toEqual([{ matchId: match.id, userIds: pair }]);
    expect(
      (await fixture.dbs.discovery.match.findUniqueOrThrow({ where: { id: match.id } })).endedAt,
    ).not.toBeNull();
    for (const who of [ada, bob]) {
      expect((await matchesOf(who)).body.data?.matches.edges).toEqual([]);
    }

    // Unmatching again answers true and emits nothing more.
    expect((await send(UNMATCH, { matchId: match.id }, ada)).body.data).toEqual({ unmatch: true });
    expect(await outboxFor("match.ended", pair)).toHaveLength(1);

    // Their earlier likes are now passes; liking again does not bring the match back.
    const swipes = await fixture.dbs.discovery.swipe.findMany({
      where: { OR: [{ swiperId: ada.userId }, { swiperId: bob.userId }] },
    });
    expect(swipes.map((swipe) => swipe.kind)).toEqual(["PASS", "PASS"]);
    expect((await like(ada, bob.userId)).body.data?.like).toEqual({ matched: false, match: null });
    expect((await like(bob, ada.userId)).body.data?.like).toEqual({ matched: false, match: null });
    expect(
      await fixture.dbs.discovery.match.count({
        where: { userAId: pair[0], userBId: pair[1], endedAt: null },
      }),
    ).toBe(0);
    expect(await outboxFor("match.created", pair)).toHaveLength(1);
  });

  it("should leave out of matches a person blocked either way, banned or hidden since matching", async () => {
    const ada = await person("Ada");
    const [blocked, blocker, banned, hidden, kept] = await Promise.all([
      person("Blocked"),
      person("Blocker"),
      person("Banned"),
      person("Hidden"),
      person("Kept"),
    ]);
    for (const other of [blocked, blocker, banned, hidden, kept]) await matchPair(ada, other);
    await fixture.dbs.discovery.block.createMany({
      data: [
        { blockerId: ada.userId, blockedId: blocked.userId, eventAt: new Date() },
        { blockerId: blocker.userId, blockedId: ada.userId, eventAt: new Date() },
      ],
    });
    await fixture.dbs.discovery.discoveryProfile.update({
      where: { userId: banned.userId },
      data: { banned: true },
    });
    await fixture.dbs.discovery.discoveryProfile.update({
      where: { userId: hidden.userId },
      data: { visible: false },
    });
    const response = await matchesOf(ada);
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data?.matches.edges.map((edge) => edge.node.user)).toEqual([
      { id: kept.userId, displayName: "Kept" },
    ]);
  });

  it("should resolve a Match entity only for its two members", async () => {
    const ada = await person("Ada");
    const bob = await person("Bob");
    const eve = await person("Eve");
    const match = await matchPair(ada, bob);
    const entities = `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on Match { id createdAt } } }`;
    const asking = (who?: SignedIn) =>
      graphqlRequest<{ _entities: Array<{ id: string } | null> }>(
        fixture.system.subgraphs.discovery.url,
        entities,
        { reps: [{ __typename: "Match", id: match.id }] },
        who ? { authorization: `Bearer ${who.accessToken}` } : {},
      );
    for (const member of [ada, bob]) {
      expect((await asking(member)).body.data?._entities).toEqual([
        { id: match.id, createdAt: match.createdAt },
      ]);
    }
    expect((await asking(eve)).body.data?._entities).toEqual([null]);
    expect((await asking()).body.data?._entities).toEqual([null]);
  });
});
