import { randomUUID } from "node:crypto";
import { subgraphEntry, type SubgraphName } from "@hv/kit";
import { createChatDb } from "@hv/chat/src/db";
import { createDiscoveryDb } from "@hv/discovery/src/db";
import { createMediaDb } from "@hv/media/src/db";
import { createUsersDb } from "@hv/users/src/db";

function url(name: SubgraphName): string {
  const key = subgraphEntry(name).databaseUrlVar;
  const value = process.env[key];
  if (!value) throw new Error(`${key} is not set: is jest's global setup running?`);
  return value;
}

/** Clients on this run's databases, for arranging test data each subgraph owns. */
export function testDatabases() {
  const dbs = {
    users: createUsersDb(url("users")),
    discovery: createDiscoveryDb(url("discovery")),
    chat: createChatDb(url("chat")),
    media: createMediaDb(url("media")),
  };
  return {
    ...dbs,
    close: () => Promise.all(Object.values(dbs).map((db) => db.$disconnect())).then(() => undefined),
  };
}
export type TestDatabases = ReturnType<typeof testDatabases>;

/** One person with a fresh location, a ready profile photo and a conversation with someone else. */
export async function seedPerson(dbs: TestDatabases, displayName = "Ada") {
  const user = await dbs.users.user.create({
    data: {
      email: `${randomUUID()}@example.test`,
      // Nobody logs in as a seeded person; tests that need a login sign up through the API.
      passwordHash: "!seeded",
      displayName,
      bio: "likes long walks",
      birthDate: new Date("1990-06-15"),
    },
  });
  await dbs.discovery.$executeRaw`
    INSERT INTO user_locations (user_id, location, updated_at)
    VALUES (${user.id}::uuid, ST_SetSRID(ST_MakePoint(13.405, 52.52), 4326)::geography, now())`;
  const photo = await dbs.media.media.create({
    data: {
      ownerId: user.id,
      kind: "IMAGE",
      status: "READY",
      purpose: "PROFILE_PHOTO",
      position: 0,
      width: 640,
      height: 800,
    },
  });
  const conversation = await dbs.chat.conversation.create({
    data: { kind: "DIRECT", members: { create: [{ userId: user.id }, { userId: randomUUID() }] } },
  });
  return { user, photo, conversation };
}
