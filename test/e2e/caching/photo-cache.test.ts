import { useSystem } from "../../support/fixture";
import type { SignedIn } from "../../support/users-client";
import { png, mediaClient } from "../media/media-support";
import {
  eventually,
  mediaTableStatements,
  seedProfilePhotos,
  seedReadyUpload,
  usersTableStatements,
} from "./caching-support";

const PHOTOS = `query($id: ID!) { user(id: $id) { photos { id blurhash url } } }`;
const ADD = `mutation($id: ID!) { addProfilePhoto(mediaId: $id) { id } }`;
const REMOVE = `mutation($id: ID!) { removeProfilePhoto(mediaId: $id) { id } }`;
const REORDER = `mutation($ids: [ID!]!) { reorderProfilePhotos(mediaIds: $ids) { id } }`;
const DELETE = `mutation($id: ID!) { deleteMedia(id: $id) }`;

describe("Redis caches with invalidation, through the gateway", () => {
  const fixture = useSystem();
  const cacheKey = (ownerId: string) => `hv:media:profile-photos:${ownerId}`;

  /** The owner's photo ids as `viewer` sees them, and how many statements touched Media's `media` table for it. */
  async function photosSeenBy(owner: SignedIn, viewer: SignedIn) {
    fixture.system.mediaQueries.length = 0;
    const response = await fixture.client.request<{
      user: { photos: Array<{ id: string; blurhash: string | null; url: string | null }> } | null;
    }>(PHOTOS, { id: owner.userId }, viewer.accessToken);
    expect(response.body.errors).toBeUndefined();
    const photos = response.body.data?.user?.photos ?? [];
    return {
      ids: photos.map((photo) => photo.id),
      urls: photos.map((photo) => photo.url),
      mediaReads: mediaTableStatements(fixture.system.mediaQueries).length,
    };
  }
  /** Reads the list until it is cached (the first read fills the cache); returns the warm read. */
  async function warm(owner: SignedIn, viewer: SignedIn) {
    await photosSeenBy(owner, viewer);
    expect(await fixture.system.subgraphs.media.redis.exists(cacheKey(owner.userId))).toBe(1);
    return photosSeenBy(owner, viewer);
  }

  it("should serve a profile's photo list from Redis and show every change on the very next read", async () => {
    const { client, dbs } = fixture;
    const owner = await client.signUp({ displayName: "Owner" });
    const viewer = await client.signUp({ displayName: "Viewer" });
    const [a, b, c] = await seedProfilePhotos(dbs, owner.userId, 3);
    const media = mediaClient(fixture);

    // Cold: the list comes from Postgres (one statement for the list, one for the Media `url` is
    // resolved on). Warm: only the latter; the list itself costs no SQL.
    const cold = await photosSeenBy(owner, viewer);
    expect(cold.ids).toEqual([a, b, c]);
    const cached = await warm(owner, viewer);
    expect(cached.ids).toEqual([a, b, c]);
    expect(cached.mediaReads).toBe(cold.mediaReads - 1);
    // What is cached holds no signed URL (whether a viewer gets one is decided per request).
    const stored = (await fixture.system.subgraphs.media.redis.get(cacheKey(owner.userId))) ?? "";
    for (const url of cached.urls) expect(stored).not.toContain(String(url));
    expect(stored).not.toMatch(/signature|expires=/i);

    expect((await media.send(REORDER, { ids: [c, a, b] }, owner)).body.errors).toBeUndefined();
    expect((await photosSeenBy(owner, viewer)).ids).toEqual([c, a, b]);

    await warm(owner, viewer);
    expect((await media.send(REMOVE, { id: a }, owner)).body.errors).toBeUndefined();
    expect((await photosSeenBy(owner, viewer)).ids).toEqual([c, b]);

    await warm(owner, viewer);
    const added = await seedReadyUpload(dbs, owner.userId);
    expect((await media.send(ADD, { id: added }, owner)).body.errors).toBeUndefined();
    expect((await photosSeenBy(owner, viewer)).ids).toEqual([c, b, added]);

    await warm(owner, viewer);
    expect((await media.send(DELETE, { id: b }, owner)).body.data).toEqual({ deleteMedia: true });
    expect((await photosSeenBy(owner, viewer)).ids).toEqual([c, added]);
  });

  it("should answer from the list Redis holds now, however often Media parsed an older one", async () => {
    const { client, dbs } = fixture;
    const owner = await client.signUp({ displayName: "Reparsed" });
    const viewer = await client.signUp({ displayName: "Reader" });
    const [a, b, c] = await seedProfilePhotos(dbs, owner.userId, 3);
    const warmRead = await warm(owner, viewer);
    expect(warmRead.ids).toEqual([a, b, c]);
    expect((await photosSeenBy(owner, viewer)).ids).toEqual([a, b, c]);
    // Another replica's write after a change (here: a shorter list in a new order): Media keeps
    // the lists it parsed, and must not answer from one whose text Redis no longer holds.
    const redis = fixture.system.subgraphs.media.redis;
    const stored = JSON.parse((await redis.get(cacheKey(owner.userId))) ?? "[]") as Array<{ id: string }>;
    await redis.set(cacheKey(owner.userId), JSON.stringify([stored[2], stored[0]]), "EX", 300);
    expect(await photosSeenBy(owner, viewer)).toMatchObject({ ids: [c, a], mediaReads: warmRead.mediaReads });
    expect((await photosSeenBy(owner, viewer)).ids).toEqual([c, a]);
    await redis.set(cacheKey(owner.userId), JSON.stringify(stored), "EX", 300);
    expect((await photosSeenBy(owner, viewer)).ids).toEqual([a, b, c]);
  });

  it("should cache an owner without photos too, and drop it when processing finishes", async () => {
    const { client } = fixture;
    const owner = await client.signUp({ displayName: "Uploader" });
    const viewer = await client.signUp({ displayName: "Looker" });
    const cached = await warm(owner, viewer);
    expect(cached).toEqual({ ids: [], urls: [], mediaReads: 0 });
    // A real upload through the worker: when it finishes, the owner's cached list is gone.
    const uploaded = await mediaClient(fixture).upload(owner, await png(120, 90), {
      kind: "IMAGE",
      contentType: "image/png",
    });
    expect(uploaded.status).toBe("READY");
    await eventually(
      async () => (await fixture.system.subgraphs.media.redis.exists(cacheKey(owner.userId))) === 0,
    );
    expect((await mediaClient(fixture).send(ADD, { id: uploaded.id }, owner)).body.errors).toBeUndefined();
    expect((await photosSeenBy(owner, viewer)).ids).toEqual([uploaded.id]);
  });

  it("should keep blocks per viewer on top of the shared list", async () => {
    const { client, dbs } = fixture;
    const owner = await client.signUp({ displayName: "Blocker" });
    const blocked = await client.signUp({ displayName: "Blocked" });
    const bystander = await client.signUp({ displayName: "Bystander" });
    const ids = await seedProfilePhotos(dbs, owner.userId, 2);
    expect((await warm(owner, blocked)).ids).toEqual(ids);

    expect(
      (
        await client.request(
          `mutation($id: ID!) { blockUser(userId: $id) }`,
          { id: blocked.userId },
          owner.accessToken,
        )
      ).body.errors,
    ).toBeUndefined();
    // Media learns of the block from Users' durable event.
    await eventually(
      async () =>
        (await dbs.media.block.count({ where: { blockerId: owner.userId, blockedId: blocked.userId } })) ===
        1,
    );
    expect((await photosSeenBy(owner, blocked)).ids).toEqual([]);
    // Everyone else still gets the cached list, without a read of the media table for it.
    const seen = await photosSeenBy(owner, bystander);
    expect(seen.ids).toEqual(ids);
    expect(await fixture.system.subgraphs.media.redis.exists(cacheKey(owner.userId))).toBe(1);
  });

  it("should drop a deleted user's cached photos when Media handles user.deleted", async () => {
    const { client, dbs } = fixture;
    const owner = await client.signUp({ displayName: "Leaver", password: "a long passphrase 42" });
    const viewer = await client.signUp({ displayName: "Stayer" });
    await seedProfilePhotos(dbs, owner.userId, 2);
    await warm(owner, viewer);
    const deleted = await client.request(
      `mutation($p: String!) { deleteAccount(password: $p) }`,
      { p: "a long passphrase 42" },
      owner.accessToken,
    );
    expect(deleted.body.data).toEqual({ deleteAccount: true });
    await eventually(async () => (await dbs.media.media.count({ where: { ownerId: owner.userId } })) === 0);
    await eventually(
      async () => (await fixture.system.subgraphs.media.redis.exists(cacheKey(owner.userId))) === 0,
    );
  });

  it("should show a profile edit on the next read after serving the profile from Redis", async () => {
    const { client, system } = fixture;
    const owner = await client.signUp({ displayName: "Before" });
    const reader = await client.signUp({ displayName: "Reader" });
    const read = async () => {
      system.usersQueries.length = 0;
      const response = await client.request<{ user: { displayName: string; bio: string | null } | null }>(
        `query($id: ID!) { user(id: $id) { displayName bio } }`,
        { id: owner.userId },
        reader.accessToken,
      );
      return { user: response.body.data?.user, usersReads: usersTableStatements(system.usersQueries).length };
    };
    await read();
    expect(await read()).toEqual({ user: { displayName: "Before", bio: null }, usersReads: 0 });
    const edit = await client.request(
      `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { displayName } }`,
      { input: { displayName: "After", bio: "new here" } },
      owner.accessToken,
    );
    expect(edit.body.errors).toBeUndefined();
    expect((await read()).user).toEqual({ displayName: "After", bio: "new here" });
    expect(await read()).toEqual({ user: { displayName: "After", bio: "new here" }, usersReads: 0 });
  });
});
