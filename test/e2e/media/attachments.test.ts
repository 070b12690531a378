import { signMediaGrant } from "@hv/kit";
import { useSystem } from "../../support/fixture";
import { graphqlRequest } from "../../support/system";
import { jpegWithGps, mediaClient } from "./media-support";

const DEVELOPMENT_GRANT_SECRET = "development-only-media-grant-secret-not-for-production";

/**
 * Who may read a media item's bytes, asked of the media subgraph itself the way the gateway asks
 * it (an `_entities` fetch carrying Chat's `readGrant`), with the caller's own access token: the
 * subgraph verifies the token again, so this is what any route to it would get.
 */
describe("who may read a media item", () => {
  const fixture = useSystem();
  const media = () => mediaClient(fixture);

  async function urlAs(token: string | null, mediaId: string, readGrant: string | null): Promise<string | null> {
    const response = await graphqlRequest<{ _entities: Array<{ url: string | null } | null> }>(
      fixture.system.subgraphs.media.url,
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Media { url } } }`,
      { r: [{ __typename: "Media", id: mediaId, readGrant }] },
      token ? { authorization: `Bearer ${token}` } : {},
    );
    if (response.body.errors) throw new Error(JSON.stringify(response.body.errors));
    return response.body.data?._entities[0]?.url ?? null;
  }
  const grant = (mediaId: string, viewerId: string, ownerId: string, expiresAt = Math.floor(Date.now() / 1000) + 300) =>
    signMediaGrant({ mediaId, viewerId, ownerId, expiresAt }, DEVELOPMENT_GRANT_SECRET);

  it("should serve another user's chat attachment only with Chat's grant for that viewer and that media", async () => {
    const sender = await fixture.client.signUp();
    const member = await fixture.client.signUp();
    const stranger = await fixture.client.signUp();
    const attachment = await media().upload(sender, await jpegWithGps(300, 200), { kind: "IMAGE", contentType: "image/jpeg", purpose: "CHAT_ATTACHMENT" });
    const other = await media().upload(sender, await jpegWithGps(300, 200), { kind: "IMAGE", contentType: "image/jpeg", purpose: "CHAT_ATTACHMENT" });

    // The owner reads their own, grant or not.
    expect(await urlAs(sender.accessToken, attachment.id, null)).toMatch(/^http/);
    // A member with a grant reads it, and the URL works.
    const granted = await urlAs(member.accessToken, attachment.id, grant(attachment.id, member.userId, sender.userId));
    expect(granted).toMatch(/^http/);
    expect((await fetch(granted ?? "")).status).toBe(200);

    // Everyone else, and every grant that is not exactly for this read, gets nothing.
    expect(await urlAs(stranger.accessToken, attachment.id, null)).toBeNull();
    expect(await urlAs(stranger.accessToken, attachment.id, grant(attachment.id, member.userId, sender.userId))).toBeNull(); // someone else's grant
    expect(await urlAs(member.accessToken, attachment.id, grant(other.id, member.userId, sender.userId))).toBeNull(); // another media's grant
    expect(await urlAs(member.accessToken, attachment.id, grant(attachment.id, member.userId, member.userId))).toBeNull(); // wrong sender
    expect(await urlAs(member.accessToken, attachment.id, grant(attachment.id, member.userId, sender.userId, Math.floor(Date.now() / 1000) - 1))).toBeNull(); // expired
    const forged = signMediaGrant({ mediaId: attachment.id, viewerId: member.userId, ownerId: sender.userId, expiresAt: Math.floor(Date.now() / 1000) + 300 }, "x".repeat(40));
    expect(await urlAs(member.accessToken, attachment.id, forged)).toBeNull();
    expect(await urlAs(member.accessToken, attachment.id, "g2.garbage")).toBeNull();
    expect(await urlAs(null, attachment.id, grant(attachment.id, member.userId, sender.userId))).toBeNull(); // anonymous
  });

  it("should show profile photos to signed-in viewers only", async () => {
    const owner = await fixture.client.signUp();
    const viewer = await fixture.client.signUp();
    const photo = await media().upload(owner, await jpegWithGps(300, 200), { kind: "IMAGE", contentType: "image/jpeg" });
    expect(await urlAs(viewer.accessToken, photo.id, null)).toMatch(/^http/);
    expect(await urlAs(null, photo.id, null)).toBeNull();
    // An unknown variant is a clear error, not a null.
    const response = await graphqlRequest(
      fixture.system.subgraphs.media.url,
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Media { url(variant: "9999.gif") } } }`,
      { r: [{ __typename: "Media", id: photo.id }] },
      { authorization: `Bearer ${viewer.accessToken}` },
    );
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "variant" });
  });
});
