import { useSystem } from "../../support/fixture";
import { errorCode, type SignedIn } from "../../support/users-client";
import { jpegWithGps, mediaClient } from "./media-support";

const PHOTOS = `query($id: ID!) { user(id: $id) { photos { id status } } }`;
const ADD = `mutation($id: ID!) { addProfilePhoto(mediaId: $id) { id } }`;
const REMOVE = `mutation($id: ID!) { removeProfilePhoto(mediaId: $id) { id } }`;
const REORDER = `mutation($ids: [ID!]!) { reorderProfilePhotos(mediaIds: $ids) { id } }`;

describe("ordered profile photos", () => {
  const fixture = useSystem({ MEDIA_MAX_PROFILE_PHOTOS: "3" });
  const media = () => mediaClient(fixture);

  /** READY profile photos made through the real upload flow (one file, reused). */
  async function readyPhotos(owner: SignedIn, count: number): Promise<string[]> {
    const file = await jpegWithGps(200, 150);
    const ids: string[] = [];
    for (let index = 0; index < count; index += 1)
      ids.push((await media().upload(owner, file, { kind: "IMAGE", contentType: "image/jpeg" })).id);
    return ids;
  }
  const ids = (response: { body: { data?: Record<string, Array<{ id: string }>> | null } }, field: string) =>
    response.body.data?.[field]?.map((m) => m.id);
  const profile = async (owner: SignedIn, viewer: SignedIn) => {
    const response = await media().send<{ user: { photos: Array<{ id: string }> } }>(
      PHOTOS,
      { id: owner.userId },
      viewer,
    );
    return response.body.data?.user.photos.map((photo) => photo.id);
  };

  it("should add, reorder and remove photos, everyone seeing the owner's order", async () => {
    const owner = await fixture.client.signUp();
    const viewer = await fixture.client.signUp();
    const [a, b, c, d] = await readyPhotos(owner, 4);
    expect(await profile(owner, viewer)).toEqual([]); // uploaded is not yet on the profile

    expect(ids(await media().send(ADD, { id: a }, owner), "addProfilePhoto")).toEqual([a]);
    expect(ids(await media().send(ADD, { id: b }, owner), "addProfilePhoto")).toEqual([a, b]);
    expect(ids(await media().send(ADD, { id: b }, owner), "addProfilePhoto")).toEqual([a, b]); // again: no change
    expect(ids(await media().send(ADD, { id: c }, owner), "addProfilePhoto")).toEqual([a, b, c]);
    const full = await media().send(ADD, { id: d }, owner);
    expect(full.body.errors?.[0]?.extensions).toMatchObject({ code: "CONFLICT", maxPhotos: 3 });

    expect(ids(await media().send(REORDER, { ids: [c, a, b] }, owner), "reorderProfilePhotos")).toEqual([
      c,
      a,
      b,
    ]);
    expect(await profile(owner, viewer)).toEqual([c, a, b]);
    expect(ids(await media().send(REMOVE, { id: a }, owner), "removeProfilePhoto")).toEqual([c, b]);
    expect(ids(await media().send(ADD, { id: d }, owner), "addProfilePhoto")).toEqual([c, b, d]);
    expect(await profile(owner, viewer)).toEqual([c, b, d]);

    // Deleting a photo takes it off the profile and closes the gap.
    expect(
      (await media().send(`mutation($id: ID!) { deleteMedia(id: $id) }`, { id: b }, owner)).body.data,
    ).toEqual({ deleteMedia: true });
    expect(await profile(owner, viewer)).toEqual([c, d]);
    expect(ids(await media().send(REORDER, { ids: [d, c] }, owner), "reorderProfilePhotos")).toEqual([d, c]);
  });

  it("should refuse what is not a ready photo of the viewer's own", async () => {
    const owner = await fixture.client.signUp();
    const other = await fixture.client.signUp();
    const [mine] = await readyPhotos(owner, 1);
    const [theirs] = await readyPhotos(other, 1);
    const pending = await media().createUpload(owner, {
      kind: "IMAGE",
      contentType: "image/jpeg",
      byteSize: 100,
      purpose: "PROFILE_PHOTO",
    });
    const attachment = await media().upload(owner, await jpegWithGps(100, 100), {
      kind: "IMAGE",
      contentType: "image/jpeg",
      purpose: "CHAT_ATTACHMENT",
    });

    expect(errorCode(await media().send(ADD, { id: theirs }, owner))).toBe("NOT_FOUND");
    expect(
      (await media().send(ADD, { id: pending.media.id }, owner)).body.errors?.[0]?.extensions,
    ).toMatchObject({ code: "CONFLICT", status: "PENDING" });
    expect(
      (await media().send(ADD, { id: attachment.id }, owner)).body.errors?.[0]?.extensions,
    ).toMatchObject({ code: "BAD_USER_INPUT", field: "mediaId" });
    expect((await media().send(ADD, { id: "not-a-uuid" }, owner)).body.errors?.[0]?.extensions).toMatchObject(
      { code: "BAD_USER_INPUT", field: "mediaId" },
    );
    expect(errorCode(await media().send(ADD, { id: mine }))).toBe("UNAUTHENTICATED");
    expect(errorCode(await media().send(REMOVE, { id: theirs }, owner))).toBe("NOT_FOUND");

    await media().send(ADD, { id: mine }, owner);
    for (const [name, list, field] of [
      ["someone else's photo", [theirs], "mediaIds"],
      ["a photo twice", [mine, mine], "mediaIds"],
      ["a missing photo", [], "mediaIds"],
      ["a bad id", ["x"], "mediaIds[0]"],
      ["too many ids", Array.from({ length: 1000 }, () => mine), "mediaIds"],
    ] as const) {
      const response = await media().send(REORDER, { ids: list }, owner);
      expect({ name, error: response.body.errors?.[0]?.extensions }).toMatchObject({
        name,
        error: { code: "BAD_USER_INPUT", field },
      });
    }
    expect(await profile(owner, other)).toEqual([mine]);
  });
});
