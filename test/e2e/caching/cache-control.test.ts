import { useSystem } from "../../support/fixture";
import { graphqlRequest } from "../../support/system";
import type { SignedIn } from "../../support/users-client";
import { seedProfilePhotos } from "./caching-support";

/**
 * The gateway's Cache-Control is the most restrictive of the subgraphs' (each computed from the
 * schema's @cacheControl hints); per-user data is never `public`.
 */
describe("Cache-Control from cache hints, through the gateway", () => {
  // Signed URLs valid for 40 s: a response holding one may be kept for at most 20 s.
  const fixture = useSystem({ MEDIA_DOWNLOAD_URL_TTL_SECONDS: "40" });
  let owner: SignedIn;
  let viewer: SignedIn;

  beforeAll(async () => {
    owner = await fixture.client.signUp({ displayName: "Public Person" });
    viewer = await fixture.client.signUp({ displayName: "Viewer" });
    await seedProfilePhotos(fixture.dbs, owner.userId, 2);
  });

  async function cacheControl(
    query: string,
    variables: Record<string, unknown>,
    who?: SignedIn,
  ): Promise<string | null> {
    const response = await fixture.client.request(query, variables, who?.accessToken);
    return response.headers.get("cache-control");
  }
  const PROFILE = `query($id: ID!) { user(id: $id) { id displayName age interests isDiscoverable photos { id blurhash width height variants { name } } } }`;

  it("should let shared caches keep an anonymous read of public profile data", async () => {
    expect(await cacheControl(PROFILE, { id: owner.userId })).toBe("max-age=30, public");
  });

  it("should never make a signed-in response public", async () => {
    expect(await cacheControl(PROFILE, { id: owner.userId }, viewer)).toBe("max-age=30, private");
    // The owner reading their own profile: private as well.
    expect(await cacheControl(PROFILE, { id: owner.userId }, owner)).toBe("max-age=30, private");
  });

  it("should make owner-only and viewer-relative fields private even when anonymous", async () => {
    expect(
      await cacheControl(`query($id: ID!) { user(id: $id) { displayName email } }`, { id: owner.userId }),
    ).toBe("max-age=30, private");
    expect(
      await cacheControl(`query($id: ID!) { user(id: $id) { displayName distance { kilometres } } }`, {
        id: owner.userId,
      }),
    ).toBe("max-age=30, private");
  });

  it("should not let anything keep me, mutations, searches, uploads' status or errors", async () => {
    expect(await cacheControl(`{ me { id displayName } }`, {}, viewer)).toBe("no-store");
    expect(await cacheControl(`{ nearby(first: 5) { edges { node { id } } } }`, {}, viewer)).toBe("no-store");
    expect(await cacheControl(`{ matches(first: 5) { edges { node { id } } } }`, {}, viewer)).toBe(
      "no-store",
    );
    expect(
      await cacheControl(`query($id: ID!) { myMedia(id: $id) { id status } }`, { id: owner.userId }, viewer),
    ).toBe("no-store");
    expect(
      await cacheControl(
        `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }`,
        { input: { bio: "hi" } },
        viewer,
      ),
    ).toBe("no-store");
    // An error anywhere: nothing may keep it.
    expect(await cacheControl(`query($id: ID!) { user(id: $id) { id } }`, { id: "not-a-uuid" })).toBe(
      "no-store",
    );
  });

  it("should give no cacheable policy when a subgraph without hints takes part (Chat)", async () => {
    expect(
      await cacheControl(
        `query($id: ID!) { user(id: $id) { displayName presence { online } } }`,
        { id: owner.userId },
        viewer,
      ),
    ).toBe("no-store");
  });

  it("should bound a response holding signed URLs by half their life, privately", async () => {
    const response = await graphqlRequest(
      fixture.system.subgraphs.media.url,
      `query($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { photos { id url } } } }`,
      { representations: [{ __typename: "User", id: owner.userId }] },
      { authorization: `Bearer ${viewer.accessToken}` },
    );
    expect(response.body.errors).toBeUndefined();
    expect(JSON.stringify(response.body.data)).toMatch(/"url":"http/);
    expect(response.headers.get("cache-control")).toBe("max-age=20, private");
  });

  it("should make every subgraph's own response private for a signed-in caller", async () => {
    const query = `query($id: ID!) { user(id: $id) { id displayName } }`;
    const anonymous = await graphqlRequest(fixture.system.subgraphs.users.url, query, { id: owner.userId });
    expect(anonymous.headers.get("cache-control")).toBe("max-age=30, public");
    const signedIn = await graphqlRequest(
      fixture.system.subgraphs.users.url,
      query,
      { id: owner.userId },
      { authorization: `Bearer ${viewer.accessToken}` },
    );
    expect(signedIn.headers.get("cache-control")).toBe("max-age=30, private");
  });
});
