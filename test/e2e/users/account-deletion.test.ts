import { randomUUID } from "node:crypto";
import type { EventMeta } from "@hv/kit";
import { chatEventHandlers } from "@hv/chat/src/events";
import { discoveryEventHandlers } from "@hv/discovery/src/events";
import { mediaEventHandlers } from "@hv/media/src/events";
import { useSystem } from "../../support/fixture";
import { capturingLogger } from "../../support/log-capture";
import type { TestDatabases } from "../../support/seed";

/** A person's rows in Discovery, Media and Chat: a location, two media, a direct and a group conversation. */
async function seedFootprint(dbs: TestDatabases, userId: string) {
  await dbs.discovery.$executeRaw`
    INSERT INTO user_locations (user_id, location, updated_at)
    VALUES (${userId}::uuid, ST_SetSRID(ST_MakePoint(13.405, 52.52), 4326)::geography, now())`;
  await dbs.media.media.createMany({
    data: [
      { ownerId: userId, kind: "IMAGE", status: "READY", purpose: "PROFILE_PHOTO", position: 0 },
      { ownerId: userId, kind: "VIDEO", purpose: "CHAT_ATTACHMENT" },
    ],
  });
  const partnerId = randomUUID();
  const direct = await dbs.chat.conversation.create({
    data: { kind: "DIRECT", members: { create: [{ userId }, { userId: partnerId }] } },
  });
  const groupMemberIds = [randomUUID(), randomUUID()];
  const group = await dbs.chat.conversation.create({
    data: {
      kind: "GROUP",
      members: { create: [{ userId }, ...groupMemberIds.map((id) => ({ userId: id }))] },
    },
  });
  return { partnerId, direct, group, groupMemberIds };
}

async function footprint(dbs: TestDatabases, userId: string) {
  const [locations, media, memberships] = await Promise.all([
    dbs.discovery.userLocation.count({ where: { userId } }),
    dbs.media.media.count({ where: { ownerId: userId } }),
    dbs.chat.conversationMember.count({ where: { userId } }),
  ]);
  return { locations, media, memberships };
}

const SEEDED = { locations: 1, media: 2, memberships: 2 };
const PURGED = { locations: 0, media: 0, memberships: 0 };

/** Polls (every 100 ms, for at most `timeoutMs`) until `condition` holds. */
async function waitUntil(what: string, condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The state of the person's and the others' chat rows after the person is purged. */
async function expectChatPurged(dbs: TestDatabases, seeded: Awaited<ReturnType<typeof seedFootprint>>) {
  // The direct conversation stays with the partner, closed because the account was deleted.
  expect(await dbs.chat.conversation.findUnique({ where: { id: seeded.direct.id } })).toMatchObject({
    closedReason: "ACCOUNT_DELETED",
    closedAt: expect.any(Date),
  });
  const direct = await dbs.chat.conversationMember.findMany({ where: { conversationId: seeded.direct.id } });
  expect(direct.map((member) => member.userId)).toEqual([seeded.partnerId]);
  // The group goes on with the others.
  const group = await dbs.chat.conversationMember.findMany({ where: { conversationId: seeded.group.id } });
  expect(group.map((member) => member.userId).sort()).toEqual([...seeded.groupMemberIds].sort());
}

describe("deleting an account purges the person's data in every subgraph", () => {
  const fixture = useSystem();

  it("should delete the location, media and conversation memberships through user.deleted", async () => {
    const { dbs, client } = fixture;
    const user = await client.signUp();
    const bystander = await client.signUp();
    const seeded = await seedFootprint(dbs, user.userId);
    const bystanderSeeded = await seedFootprint(dbs, bystander.userId);
    expect(await footprint(dbs, user.userId)).toEqual(SEEDED);

    const deleted = await client.request(
      `mutation($p: String!) { deleteAccount(password: $p) }`,
      { p: user.password },
      user.accessToken,
    );
    expect(deleted.body).toEqual({ data: { deleteAccount: true } });

    await waitUntil("the user's rows to be purged in discovery, media and chat", async () => {
      const left = await footprint(dbs, user.userId);
      return left.locations + left.media + left.memberships === 0;
    });
    expect(await footprint(dbs, user.userId)).toEqual(PURGED);
    await expectChatPurged(dbs, seeded);

    // Someone else's rows are untouched.
    expect(await footprint(dbs, bystander.userId)).toEqual(SEEDED);
    expect(
      await dbs.chat.conversationMember.count({ where: { conversationId: bystanderSeeded.direct.id } }),
    ).toBe(2);
    expect(
      await dbs.chat.conversationMember.count({ where: { conversationId: bystanderSeeded.group.id } }),
    ).toBe(3);
  });

  it("should be harmless to deliver the same user.deleted twice, or for someone unknown", async () => {
    const { dbs } = fixture;
    const { logger } = capturingLogger("account-deletion-test");
    const handlers = [
      discoveryEventHandlers(dbs.discovery, logger)["user.deleted"],
      chatEventHandlers(dbs.chat, logger)["user.deleted"],
      mediaEventHandlers(dbs.media, logger)["user.deleted"],
    ];
    const userId = randomUUID();
    const bystanderId = randomUUID();
    const seeded = await seedFootprint(dbs, userId);
    await seedFootprint(dbs, bystanderId);
    const meta: EventMeta<"user.deleted"> = {
      eventId: randomUUID(),
      type: "user.deleted",
      occurredAt: new Date(),
      attempt: 1,
    };

    for (const attempt of [1, 2]) {
      for (const handle of handlers) await handle({ userId }, { ...meta, attempt });
      expect({ attempt, left: await footprint(dbs, userId) }).toEqual({ attempt, left: PURGED });
      await expectChatPurged(dbs, seeded);
      expect(await footprint(dbs, bystanderId)).toEqual(SEEDED);
    }

    for (const handle of handlers) await handle({ userId: randomUUID() }, { ...meta, eventId: randomUUID() });
    expect(await footprint(dbs, bystanderId)).toEqual(SEEDED);
  });
});
