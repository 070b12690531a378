import { randomUUID } from "node:crypto";
import { discoveryEventHandlers } from "@hv/discovery/src/events";
import type { EventMeta, EventType } from "@hv/kit";
import { capturingLogger } from "../../support/log-capture";
import { testDatabases, type TestDatabases } from "../../support/seed";
import { placeAt, seedProfile } from "./nearby-support";

describe("Discovery's event handlers on its own tables", () => {
  let dbs: TestDatabases;
  let handlers: ReturnType<typeof discoveryEventHandlers>;
  beforeAll(() => {
    dbs = testDatabases();
    handlers = discoveryEventHandlers(dbs.discovery, capturingLogger("discovery").logger);
  });
  afterAll(() => dbs.close());

  const meta = <T extends EventType>(type: T, occurredAt: Date): EventMeta<T> => ({
    eventId: randomUUID(),
    type,
    occurredAt,
    attempt: 1,
  });
  const profile = (userId: string, overrides: Record<string, unknown> = {}) => ({
    userId,
    birthDate: "1990-05-05",
    gender: "WOMAN" as const,
    gendersOfInterest: ["MAN" as const],
    ageMin: 25,
    ageMax: 40,
    maxDistanceKm: 30,
    visibility: "VISIBLE" as const,
    banned: false,
    ...overrides,
  });

  it("should apply user.profile_changed in event order, ignoring older events and redeliveries", async () => {
    const userId = randomUUID();
    const t1 = new Date("2026-01-01T10:00:00Z");
    const t2 = new Date("2026-01-01T11:00:00Z");
    await handlers["user.profile_changed"](
      profile(userId, { maxDistanceKm: 10, visibility: "HIDDEN" }),
      meta("user.profile_changed", t2),
    );
    await handlers["user.profile_changed"](
      profile(userId, { maxDistanceKm: 99 }),
      meta("user.profile_changed", t1),
    ); // older: ignored
    await handlers["user.profile_changed"](
      profile(userId, { maxDistanceKm: 10, visibility: "HIDDEN" }),
      meta("user.profile_changed", t2),
    ); // redelivery
    expect(await dbs.discovery.discoveryProfile.findUnique({ where: { userId } })).toEqual({
      userId,
      birthDate: new Date("1990-05-05"),
      gender: "WOMAN",
      gendersOfInterest: ["MAN"],
      ageMin: 25,
      ageMax: 40,
      maxDistanceKm: 10,
      visible: false,
      banned: false,
      eventAt: t2,
    });
    await handlers["user.profile_changed"](
      profile(userId, { gender: null, gendersOfInterest: [] }),
      meta("user.profile_changed", new Date("2026-01-02T00:00:00Z")),
    );
    expect(await dbs.discovery.discoveryProfile.findUnique({ where: { userId } })).toMatchObject({
      gender: null,
      gendersOfInterest: [],
      visible: true,
    });
  });

  it("should store and remove blocks idempotently, keeping a block newer than the unblock", async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const pair = { blockerId: a, blockedId: b };
    await handlers["user.blocked"](pair, meta("user.blocked", new Date("2026-01-01T10:00:00Z")));
    await handlers["user.blocked"](pair, meta("user.blocked", new Date("2026-01-01T10:00:00Z")));
    expect(await dbs.discovery.block.count({ where: pair })).toBe(1);
    await handlers["user.unblocked"](pair, meta("user.unblocked", new Date("2026-01-01T11:00:00Z")));
    await handlers["user.unblocked"](pair, meta("user.unblocked", new Date("2026-01-01T11:00:00Z")));
    expect(await dbs.discovery.block.count({ where: pair })).toBe(0);
    await handlers["user.blocked"](pair, meta("user.blocked", new Date("2026-01-01T12:00:00Z")));
    await handlers["user.unblocked"](pair, meta("user.unblocked", new Date("2026-01-01T11:30:00Z"))); // older than the block
    expect(await dbs.discovery.block.count({ where: pair })).toBe(1);
  });

  it("should end the pair's match on user.blocked, once, with a match.ended event, forget the pair's swipes and match, and leave other matches alone", async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const ordered = (x: string, y: string) =>
      x < y ? { userAId: x, userBId: y } : { userAId: y, userBId: x };
    const ab = await dbs.discovery.match.create({ data: ordered(a, b) });
    const ac = await dbs.discovery.match.create({ data: ordered(a, c) });
    await dbs.discovery.swipe.createMany({
      data: [
        { swiperId: a, targetId: b, kind: "LIKE" },
        { swiperId: b, targetId: a, kind: "SUPER_LIKE" },
      ],
    });
    const endedEvents = async (matchId: string) =>
      (await dbs.discovery.outboxEvent.findMany({ where: { type: "match.ended" } })).filter(
        (event) => (event.payload as { matchId: string }).matchId === matchId,
      );

    await handlers["user.blocked"]({ blockerId: b, blockedId: a }, meta("user.blocked", new Date()));
    await handlers["user.blocked"]({ blockerId: b, blockedId: a }, meta("user.blocked", new Date())); // redelivery

    // The pair's match is gone (ended for Chat by the event): after an unblock a new one can form.
    expect(await dbs.discovery.match.findUnique({ where: { id: ab.id } })).toBeNull();
    expect((await dbs.discovery.match.findUnique({ where: { id: ac.id } }))?.endedAt).toBeNull();
    const events = await endedEvents(ab.id);
    expect(events).toHaveLength(1);
    expect(events[0]?.payload).toEqual({
      matchId: ab.id,
      userIds: [ordered(a, b).userAId, ordered(a, b).userBId],
    });
    expect(await endedEvents(ac.id)).toHaveLength(0);
    // The old likes are gone: an unblock cannot bring the match back from them, only new likes can.
    expect(
      await dbs.discovery.swipe.count({
        where: {
          OR: [
            { swiperId: a, targetId: b },
            { swiperId: b, targetId: a },
          ],
        },
      }),
    ).toBe(0);
  });

  it("should mark a banned profile", async () => {
    const userId = await seedProfile(dbs);
    await handlers["user.banned"]({ userId }, meta("user.banned", new Date()));
    expect(await dbs.discovery.discoveryProfile.findUnique({ where: { userId } })).toMatchObject({
      banned: true,
    });
    await handlers["user.banned"]({ userId: randomUUID() }, meta("user.banned", new Date())); // no profile yet: nothing to do
  });

  it("should purge a deleted user's profile, location, blocks, swipes and matches both ways, and nobody else's", async () => {
    const gone = await seedProfile(dbs);
    const other = await seedProfile(dbs);
    const third = await seedProfile(dbs);
    await placeAt(dbs, gone, 1, 1);
    await placeAt(dbs, other, 1, 1);
    await dbs.discovery.block.createMany({
      data: [
        { blockerId: gone, blockedId: other, eventAt: new Date() },
        { blockerId: third, blockedId: gone, eventAt: new Date() },
        { blockerId: other, blockedId: third, eventAt: new Date() },
      ],
    });
    await dbs.discovery.swipe.createMany({
      data: [
        { swiperId: gone, targetId: other, kind: "LIKE" },
        { swiperId: other, targetId: gone, kind: "LIKE" },
        { swiperId: other, targetId: third, kind: "PASS" },
      ],
    });
    const [userAId, userBId] = [gone, other].sort() as [string, string];
    await dbs.discovery.match.create({ data: { userAId, userBId } });

    for (let i = 0; i < 2; i++)
      await handlers["user.deleted"]({ userId: gone }, meta("user.deleted", new Date()));

    const about = { OR: [{ userId: gone }] };
    expect(await dbs.discovery.discoveryProfile.count({ where: about })).toBe(0);
    expect(await dbs.discovery.userLocation.count({ where: about })).toBe(0);
    expect(
      await dbs.discovery.block.count({ where: { OR: [{ blockerId: gone }, { blockedId: gone }] } }),
    ).toBe(0);
    expect(await dbs.discovery.swipe.count({ where: { OR: [{ swiperId: gone }, { targetId: gone }] } })).toBe(
      0,
    );
    expect(await dbs.discovery.match.count({ where: { OR: [{ userAId: gone }, { userBId: gone }] } })).toBe(
      0,
    );
    expect(await dbs.discovery.discoveryProfile.count({ where: { userId: { in: [other, third] } } })).toBe(2);
    expect(await dbs.discovery.userLocation.count({ where: { userId: other } })).toBe(1);
    expect(await dbs.discovery.block.count({ where: { blockerId: other, blockedId: third } })).toBe(1);
    expect(await dbs.discovery.swipe.count({ where: { swiperId: other, targetId: third } })).toBe(1);
  });
  it("should write match.ended to the outbox for each active match a user.deleted removes, once", async () => {
    const gone = await seedProfile(dbs);
    const [one, two, three] = [await seedProfile(dbs), await seedProfile(dbs), await seedProfile(dbs)];
    const pair = (a: string, b: string) => {
      const [userAId, userBId] = [a, b].sort() as [string, string];
      return { userAId, userBId };
    };
    const active1 = await dbs.discovery.match.create({ data: pair(gone, one) });
    const active2 = await dbs.discovery.match.create({ data: pair(two, gone) });
    const ended = await dbs.discovery.match.create({ data: { ...pair(gone, three), endedAt: new Date() } });

    for (let i = 0; i < 2; i++)
      await handlers["user.deleted"]({ userId: gone }, meta("user.deleted", new Date()));

    const events = await dbs.discovery.outboxEvent.findMany({ where: { type: "match.ended" } });
    const mine = events.filter((event) =>
      [active1.id, active2.id, ended.id].includes((event.payload as { matchId: string }).matchId),
    );
    expect(
      mine
        .map((event) => event.payload)
        .sort((a, b) => ((a as { matchId: string }).matchId < (b as { matchId: string }).matchId ? -1 : 1)),
    ).toEqual(
      [
        { matchId: active1.id, userIds: [active1.userAId, active1.userBId] },
        { matchId: active2.id, userIds: [active2.userAId, active2.userBId] },
      ].sort((a, b) => (a.matchId < b.matchId ? -1 : 1)),
    );
    expect(await dbs.discovery.match.count({ where: { OR: [{ userAId: gone }, { userBId: gone }] } })).toBe(
      0,
    );
  });

  it("should keep the nearby copy of a profile on the location row in step with discovery_profiles", async () => {
    const userId = await seedProfile(dbs);
    await placeAt(dbs, userId, 1, 1);
    const copy = () =>
      dbs.discovery.userLocation.findUnique({
        where: { userId },
        select: { shown: true, gender: true, ageMin: true },
      });
    expect(await copy()).toMatchObject({ shown: true });
    await dbs.discovery.discoveryProfile.update({ where: { userId }, data: { visible: false, ageMin: 33 } });
    expect(await copy()).toMatchObject({ shown: false, ageMin: 33 });
    await dbs.discovery.discoveryProfile.update({ where: { userId }, data: { visible: true, banned: true } });
    expect(await copy()).toMatchObject({ shown: false });
    await dbs.discovery.discoveryProfile.delete({ where: { userId } });
    expect(await copy()).toEqual({ shown: false, gender: null, ageMin: null });
  });
});
