import { signMediaGrant } from "@hv/kit";
import { useSystem } from "../../support/fixture";
import { graphqlRequest } from "../../support/system";
import type { SignedIn } from "../../support/users-client";
import { jpegWithGps, mediaClient } from "./media-support";

const DEVELOPMENT_GRANT_SECRET = "development-only-media-grant-secret-not-for-production";

/**
 * Who may read a media item's bytes, asked of the media subgraph itself the way the gateway asks
 * it (an `_entities` fetch carrying Chat's `readGrant`), with the caller's own access token: the
 * subgraph verifies the token again, so this is what any route to it would get.
 */
describe("who may read a media item", () => {
  // Chat lets anyone open a direct conversation here (no match needed) for the gateway test.
  const fixture = useSystem({ CHAT_REQUIRE_MATCH: "false" });
  const media = () => mediaClient(fixture);

  async function urlAs(
    token: string | null,
    mediaId: string,
    readGrant: string | null,
  ): Promise<string | null> {
    const response = await graphqlRequest<{ _entities: Array<{ url: string | null } | null> }>(
      fixture.system.subgraphs.media.url,
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Media { url } } }`,
      { r: [{ __typename: "Media", id: mediaId, readGrant }] },
      token ? { authorization: `Bearer ${token}` } : {},
    );
    if (response.body.errors) throw new Error(JSON.stringify(response.body.errors));
    return response.body.data?._entities[0]?.url ?? null;
  }
  const grant = (
    mediaId: string,
    viewerId: string,
    ownerId: string,
    expiresAt = Math.floor(Date.now() / 1000) + 300,
  ) => signMediaGrant({ mediaId, viewerId, ownerId, expiresAt }, DEVELOPMENT_GRANT_SECRET);

  it("should serve another user's chat attachment only with Chat's grant for that viewer and that media", async () => {
    const sender = await fixture.client.signUp();
    const member = await fixture.client.signUp();
    const stranger = await fixture.client.signUp();
    const attachment = await media().upload(sender, await jpegWithGps(300, 200), {
      kind: "IMAGE",
      contentType: "image/jpeg",
      purpose: "CHAT_ATTACHMENT",
    });
    const other = await media().upload(sender, await jpegWithGps(300, 200), {
      kind: "IMAGE",
      contentType: "image/jpeg",
      purpose: "CHAT_ATTACHMENT",
    });

    // The owner reads their own, grant or not.
    expect(await urlAs(sender.accessToken, attachment.id, null)).toMatch(/^http/);
    // A member with a grant reads it, and the URL works.
    const granted = await urlAs(
      member.accessToken,
      attachment.id,
      grant(attachment.id, member.userId, sender.userId),
    );
    expect(granted).toMatch(/^http/);
    expect((await fetch(granted ?? "")).status).toBe(200);

    // Everyone else, and every grant that is not exactly for this read, gets nothing.
    expect(await urlAs(stranger.accessToken, attachment.id, null)).toBeNull();
    expect(
      await urlAs(stranger.accessToken, attachment.id, grant(attachment.id, member.userId, sender.userId)),
    ).toBeNull(); // someone else's grant
    expect(
      await urlAs(member.accessToken, attachment.id, grant(other.id, member.userId, sender.userId)),
    ).toBeNull(); // another media's grant
    expect(
      await urlAs(member.accessToken, attachment.id, grant(attachment.id, member.userId, member.userId)),
    ).toBeNull(); // wrong sender
    expect(
      await urlAs(
        member.accessToken,
        attachment.id,
        grant(attachment.id, member.userId, sender.userId, Math.floor(Date.now() / 1000) - 1),
      ),
    ).toBeNull(); // expired
    const forged = signMediaGrant(
      {
        mediaId: attachment.id,
        viewerId: member.userId,
        ownerId: sender.userId,
        expiresAt: Math.floor(Date.now() / 1000) + 300,
      },
      "x".repeat(40),
    );
    expect(await urlAs(member.accessToken, attachment.id, forged)).toBeNull();
    expect(await urlAs(member.accessToken, attachment.id, "g2.garbage")).toBeNull();
    expect(await urlAs(null, attachment.id, grant(attachment.id, member.userId, sender.userId))).toBeNull(); // anonymous
  });

  const PROFILE = `query($id: ID!) { user(id: $id) { photos { id status width blurhash url } } }`;
  const ADD = `mutation($id: ID!) { addProfilePhoto(mediaId: $id) { id } }`;
  const ENTITY = `query($r: [_Any!]!) { _entities(representations: $r) { ... on Media { status width height blurhash variants { name } url } } }`;

  async function entityAs(token: string | null, mediaId: string, readGrant: string | null = null) {
    const response = await graphqlRequest<{ _entities: Array<Record<string, unknown> | null> }>(
      fixture.system.subgraphs.media.url,
      ENTITY,
      { r: [{ __typename: "Media", id: mediaId, readGrant }] },
      token ? { authorization: `Bearer ${token}` } : {},
    );
    if (response.body.errors) throw new Error(JSON.stringify(response.body.errors));
    return response.body.data?._entities[0] ?? null;
  }
  const HIDDEN = { status: null, width: null, height: null, blurhash: null, variants: [], url: null };

  async function photosSeenBy(viewer: SignedIn | null, ownerId: string) {
    const response = await media().send<{
      user: { photos: Array<{ id: string; url: string | null }> } | null;
    }>(PROFILE, { id: ownerId }, viewer ?? undefined);
    return response.body.data?.user?.photos ?? null;
  }

  async function until(what: string, condition: () => Promise<boolean>, tries = 300): Promise<void> {
    for (let attempt = 0; attempt < tries; attempt += 1) {
      if (await condition()) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`never: ${what}`);
  }

  it("should show a profile photo to others only while it is on the profile, and its bytes only to signed-in viewers", async () => {
    const owner = await fixture.client.signUp();
    const viewer = await fixture.client.signUp();
    const photo = await media().upload(owner, await jpegWithGps(300, 200), {
      kind: "IMAGE",
      contentType: "image/jpeg",
    });

    // Uploaded but never added: the owner's only, metadata included.
    expect(await entityAs(viewer.accessToken, photo.id)).toEqual(HIDDEN);
    expect(await entityAs(owner.accessToken, photo.id)).toMatchObject({
      status: "READY",
      width: 300,
      url: expect.stringMatching(/^http/),
    });

    expect((await media().send(ADD, { id: photo.id }, owner)).body.errors).toBeUndefined();
    const shown = await entityAs(viewer.accessToken, photo.id);
    expect(shown).toMatchObject({
      status: "READY",
      width: 300,
      height: 200,
      blurhash: expect.any(String),
      url: expect.stringMatching(/^http/),
    });
    expect((await fetch(String(shown?.url))).status).toBe(200);
    // Anonymous: the public profile's photo metadata, but no bytes.
    expect(await entityAs(null, photo.id)).toMatchObject({ status: "READY", width: 300, url: null });

    // Removed from the profile: hidden again (the item stays the owner's).
    await media().send(
      `mutation($id: ID!) { removeProfilePhoto(mediaId: $id) { id } }`,
      { id: photo.id },
      owner,
    );
    expect(await entityAs(viewer.accessToken, photo.id)).toEqual(HIDDEN);
    expect(await entityAs(null, photo.id)).toEqual({ ...HIDDEN });

    // An unknown variant is a clear error, not a null.
    const response = await graphqlRequest(
      fixture.system.subgraphs.media.url,
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Media { url(variant: "9999.gif") } } }`,
      { r: [{ __typename: "Media", id: photo.id }] },
      { authorization: `Bearer ${owner.accessToken}` },
    );
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "variant" });
  });

  it("should hide a user's photos and media from people they blocked or who blocked them, and all of them once banned (Users' events)", async () => {
    const owner = await fixture.client.signUp();
    const blocker = await fixture.client.signUp();
    const blocked = await fixture.client.signUp();
    const bystander = await fixture.client.signUp();
    const photo = await media().upload(owner, await jpegWithGps(200, 200), {
      kind: "IMAGE",
      contentType: "image/jpeg",
    });
    const attachment = await media().upload(owner, await jpegWithGps(200, 200), {
      kind: "IMAGE",
      contentType: "image/jpeg",
      purpose: "CHAT_ATTACHMENT",
    });
    await media().send(ADD, { id: photo.id }, owner);
    for (const who of [blocker, blocked, bystander])
      expect((await photosSeenBy(who, owner.userId))?.map((p) => p.id)).toEqual([photo.id]);

    // Through Users, as the apps do: each block reaches Media as an event on its queue.
    const block = (who: SignedIn, userId: string, verb = "blockUser") =>
      fixture.client.request(`mutation($u: ID!) { ${verb}(userId: $u) }`, { u: userId }, who.accessToken);
    expect((await block(blocker, owner.userId)).body.errors).toBeUndefined(); // the viewer blocked the owner
    expect((await block(owner, blocked.userId)).body.errors).toBeUndefined(); // the owner blocked the viewer
    await until(
      "Media learns both blocks",
      async () =>
        (await fixture.dbs.media.block.count({
          where: { OR: [{ blockedId: owner.userId }, { blockerId: owner.userId }] },
        })) === 2,
    );

    for (const who of [blocker, blocked]) {
      expect(await photosSeenBy(who, owner.userId)).toEqual([]);
      expect(await entityAs(who.accessToken, photo.id)).toEqual(HIDDEN);
      // Not even with Chat's grant.
      expect(
        await entityAs(who.accessToken, attachment.id, grant(attachment.id, who.userId, owner.userId)),
      ).toEqual(HIDDEN);
    }
    expect((await photosSeenBy(bystander, owner.userId))?.map((p) => p.id)).toEqual([photo.id]);
    expect(
      await entityAs(
        bystander.accessToken,
        attachment.id,
        grant(attachment.id, bystander.userId, owner.userId),
      ),
    ).toMatchObject({ status: "READY" });
    // The owner still sees their own.
    expect((await photosSeenBy(owner, owner.userId))?.map((p) => p.id)).toEqual([photo.id]);

    expect((await block(blocker, owner.userId, "unblockUser")).body.errors).toBeUndefined();
    await until(
      "Media learns the unblock",
      async () => (await fixture.dbs.media.block.count({ where: { blockerId: blocker.userId } })) === 0,
    );
    expect((await photosSeenBy(blocker, owner.userId))?.map((p) => p.id)).toEqual([photo.id]);

    // A moderator bans the owner: nobody else sees anything of theirs.
    const moderator = await fixture.client.signUp();
    await fixture.dbs.users.user.update({ where: { id: moderator.userId }, data: { role: "MODERATOR" } });
    const modSession = (await fixture.client.logIn(moderator.email, moderator.password)).body.data?.logIn;
    const banned = await fixture.client.request(
      `mutation($id: ID!) { banUser(userId: $id) }`,
      { id: owner.userId },
      modSession?.accessToken,
    );
    expect(banned.body.errors).toBeUndefined();
    await until(
      "Media learns the ban",
      async () =>
        (await fixture.dbs.media.userState.findUnique({ where: { userId: owner.userId } }))?.banned === true,
    );
    expect(await entityAs(bystander.accessToken, photo.id)).toEqual(HIDDEN);
    expect(
      await entityAs(
        bystander.accessToken,
        attachment.id,
        grant(attachment.id, bystander.userId, owner.userId),
      ),
    ).toEqual(HIDDEN);
  });

  it("should make a URL read on Chat's grant expire no later than the grant", async () => {
    const sender = await fixture.client.signUp();
    const member = await fixture.client.signUp();
    const attachment = await media().upload(sender, await jpegWithGps(200, 100), {
      kind: "IMAGE",
      contentType: "image/jpeg",
      purpose: "CHAT_ATTACHMENT",
    });
    const grantEnds = Math.floor(Date.now() / 1000) + 30;
    const url = new URL(
      (await urlAs(
        member.accessToken,
        attachment.id,
        grant(attachment.id, member.userId, sender.userId, grantEnds),
      )) ?? "",
    );
    expect(Number(url.searchParams.get("exp"))).toBeLessThanOrEqual(grantEnds);
    // The owner's own URL has the full lifetime (MEDIA_DOWNLOAD_URL_TTL_SECONDS, 3600 by default).
    const own = new URL((await urlAs(sender.accessToken, attachment.id, null)) ?? "");
    expect(Number(own.searchParams.get("exp"))).toBeGreaterThan(grantEnds + 3000);
  });

  it("should serve chat attachments through the gateway to the conversation's members only", async () => {
    const sender = await fixture.client.signUp();
    const member = await fixture.client.signUp();
    const outsider = await fixture.client.signUp();
    const attachment = await media().upload(sender, await jpegWithGps(320, 240), {
      kind: "IMAGE",
      contentType: "image/jpeg",
      purpose: "CHAT_ATTACHMENT",
    });
    const opened = await fixture.client.request<{ openDirectConversation: { id: string } }>(
      `mutation($u: ID!) { openDirectConversation(userId: $u) { id } }`,
      { u: member.userId },
      sender.accessToken,
    );
    const conversationId = opened.body.data?.openDirectConversation.id ?? "";
    const sent = await fixture.client.request(
      `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`,
      { input: { conversationId, clientMessageId: "m-1", attachmentIds: [attachment.id] } },
      sender.accessToken,
    );
    expect(sent.body.errors).toBeUndefined();
    const MESSAGES = `query($c: ID!) { messages(conversationId: $c) { messages { attachments { id width url(variant: "160.webp") } } } }`;
    const read = await fixture.client.request<{
      messages: {
        messages: Array<{ attachments: Array<{ id: string; width: number | null; url: string | null }> }>;
      };
    }>(MESSAGES, { c: conversationId }, member.accessToken);
    expect(read.body.errors).toBeUndefined();
    const seen = read.body.data?.messages.messages[0]?.attachments[0];
    expect(seen).toMatchObject({ id: attachment.id, width: 320, url: expect.stringMatching(/160\.webp\?/) });
    const bytes = await fetch(seen?.url ?? "");
    expect({ status: bytes.status, type: bytes.headers.get("content-type") }).toEqual({
      status: 200,
      type: "image/webp",
    });

    // Someone outside the conversation gets no messages, hence no attachment and no URL.
    const outside = await fixture.client.request(MESSAGES, { c: conversationId }, outsider.accessToken);
    expect(JSON.stringify(outside.body.data ?? null)).not.toContain("http");
    expect(outside.body.errors?.[0]?.extensions?.code).toMatch(/NOT_FOUND|FORBIDDEN/);
  });
});
