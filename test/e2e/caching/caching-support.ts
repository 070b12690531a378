import { randomUUID } from "node:crypto";
import type { TestDatabases } from "../../support/seed";

/** A processed photo's stored variants, as the worker records them (no file behind them: `url` only signs). */
export function seededVariants(ownerId: string, mediaId: string) {
  return [
    {
      name: "640.jpg",
      contentType: "image/jpeg",
      width: 640,
      height: 800,
      byteSize: 1000,
      key: `media/${ownerId}/${mediaId}/640.jpg`,
    },
    {
      name: "640.webp",
      contentType: "image/webp",
      width: 640,
      height: 800,
      byteSize: 800,
      key: `media/${ownerId}/${mediaId}/640.webp`,
    },
  ];
}

/** A visible person written straight into Users' database, with a fresh location in Discovery. */
export async function seedPerson(dbs: TestDatabases, displayName: string) {
  const user = await dbs.users.user.create({
    data: {
      email: `${randomUUID()}@example.test`,
      passwordHash: "!seeded",
      displayName,
      birthDate: new Date("1992-03-04"),
    },
  });
  await dbs.discovery.$executeRaw`
    INSERT INTO user_locations (user_id, location, updated_at)
    VALUES (${user.id}::uuid, ST_SetSRID(ST_MakePoint(13.405, 52.52), 4326)::geography, now())`;
  return user;
}

/** READY profile photos on the owner's profile, in this order (positions 0…n-1), written straight into Media's database. */
export async function seedProfilePhotos(
  dbs: TestDatabases,
  ownerId: string,
  count: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (let position = 0; position < count; position += 1) {
    const id = randomUUID();
    await dbs.media.media.create({
      data: {
        id,
        ownerId,
        kind: "IMAGE",
        status: "READY",
        purpose: "PROFILE_PHOTO",
        position,
        width: 640,
        height: 800,
        blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        variants: seededVariants(ownerId, id),
      },
    });
    ids.push(id);
  }
  return ids;
}

/** A READY profile photo that is not on the profile yet (addProfilePhoto puts it there). */
export async function seedReadyUpload(dbs: TestDatabases, ownerId: string): Promise<string> {
  const id = randomUUID();
  await dbs.media.media.create({
    data: {
      id,
      ownerId,
      kind: "IMAGE",
      status: "READY",
      purpose: "PROFILE_PHOTO",
      width: 640,
      height: 800,
      variants: seededVariants(ownerId, id),
    },
  });
  return id;
}

/** An active match between two people (the pair stored ordered, as Discovery does). */
export async function seedMatch(dbs: TestDatabases, one: string, other: string): Promise<string> {
  const [userAId, userBId] = one < other ? [one, other] : [other, one];
  const match = await dbs.discovery.match.create({ data: { userAId, userBId } });
  return match.id;
}

/** SQL statements that read or write Media's `media` table. */
export const mediaTableStatements = (queries: string[]) =>
  queries.filter((sql) => /"public"\."media"|FROM media\b/.test(sql));
/** SQL statements that read Users' `users` table. */
export const usersTableStatements = (queries: string[]) =>
  queries.filter((sql) => /FROM (?:"public"\.)?(?:"users"|users\b)/.test(sql));

/** Polls a condition a bounded number of times (no wall-clock threshold): for effects of durable events. */
export async function eventually(check: () => Promise<boolean>, tries = 200): Promise<void> {
  for (let attempt = 0; attempt < tries; attempt += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("the condition never held");
}
