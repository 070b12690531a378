import { snapToGrid } from "@hv/discovery/src/modules/geo";
import { useSystem } from "../../support/fixture";
import { errorCode, type SignedIn } from "../../support/users-client";
import {
  eventually,
  NEARBY,
  placeAt,
  seedProfile,
  tokenFor,
  UPDATE_LOCATION,
  type NearbyPage,
} from "./nearby-support";

describe("updateLocation and distance through the gateway", () => {
  const fx = useSystem();

  async function storedPoint(userId: string) {
    const [row] = await fx.dbs.discovery.$queryRaw<
      Array<{ latitude: number; longitude: number; updatedAt: Date }>
    >`
      SELECT ST_Y(location::geometry) AS latitude, ST_X(location::geometry) AS longitude, updated_at AS "updatedAt"
      FROM user_locations WHERE user_id = ${userId}::uuid`;
    return row ?? null;
  }

  it("should store only the snapped cell centre and make the person discoverable", async () => {
    const ada = await fx.client.signUp();
    const response = await fx.client.request<{ updateLocation: { updatedAt: string } }>(
      UPDATE_LOCATION,
      { lat: 48.858_370_1, lng: 2.294_481_3 },
      ada.accessToken,
    );
    expect(response.body.errors).toBeUndefined();
    const stored = await storedPoint(ada.userId);
    const snapped = snapToGrid({ latitude: 48.858_370_1, longitude: 2.294_481_3 });
    expect(stored?.latitude).toBeCloseTo(snapped.latitude, 9);
    expect(stored?.longitude).toBeCloseTo(snapped.longitude, 9);
    expect(stored?.latitude).not.toBeCloseTo(48.858_370_1, 5);
    expect(new Date(response.body.data!.updateLocation.updatedAt)).toEqual(stored?.updatedAt);
    const seen = await fx.client.request(
      `query($id: ID!) { user(id: $id) { isDiscoverable } }`,
      { id: ada.userId },
      ada.accessToken,
    );
    expect(seen.body.data).toEqual({ user: { isDiscoverable: true } });
  });

  it.each([
    ["a latitude above 90", { lat: 90.000_1, lng: 0 }, "latitude"],
    ["a latitude below -90", { lat: -91, lng: 0 }, "latitude"],
    ["a huge latitude", { lat: 1e308, lng: 0 }, "latitude"],
    ["a longitude above 180", { lat: 0, lng: 180.5 }, "longitude"],
    ["a huge negative longitude", { lat: 0, lng: -1e308 }, "longitude"],
  ])("should refuse %s with BAD_USER_INPUT and change nothing", async (_name, variables, field) => {
    const ada = await fx.client.signUp();
    await fx.client.request(UPDATE_LOCATION, { lat: 10, lng: 10 }, ada.accessToken);
    const before = await storedPoint(ada.userId);
    const response = await fx.client.request(UPDATE_LOCATION, variables, ada.accessToken);
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
    expect(await storedPoint(ada.userId)).toEqual(before);
  });

  it("should refuse an anonymous update", async () => {
    const response = await fx.client.request(UPDATE_LOCATION, { lat: 1, lng: 1 });
    expect(errorCode(response)).toBe("UNAUTHENTICATED");
  });

  it("should refuse updates over the per-user budget with RATE_LIMITED", async () => {
    const ada = await fx.client.signUp();
    const codes: Array<string | undefined> = [];
    for (let i = 0; i < 31; i++)
      codes.push(
        errorCode(await fx.client.request(UPDATE_LOCATION, { lat: 1, lng: 1 + i / 1000 }, ada.accessToken)),
      );
    expect(codes.slice(0, 30)).toEqual(Array(30).fill(undefined));
    expect(codes[30]).toBe("RATE_LIMITED");
  });

  it("should show a rounded distance only between two fresh, unblocked, visible people", async () => {
    const [ada, bob, cy, hidden, stale] = await Promise.all([1, 2, 3, 4, 5].map(() => seedProfile(fx.dbs)));
    await fx.dbs.discovery.discoveryProfile.update({ where: { userId: hidden! }, data: { visible: false } });
    await placeAt(fx.dbs, ada!, -33.86, 151.2);
    await placeAt(fx.dbs, bob!, -33.86 + 7.3 / 111.2, 151.2); // ~7.3 km north
    await placeAt(fx.dbs, cy!, -33.86, 151.2);
    await placeAt(fx.dbs, hidden!, -33.86, 151.2);
    await placeAt(fx.dbs, stale!, -33.86, 151.2, 24 * 60 + 1);
    await fx.dbs.discovery.block.create({ data: { blockerId: cy!, blockedId: ada!, eventAt: new Date() } });
    const token = await tokenFor(fx.system, ada!);
    const discovery = fx.system.subgraphs.discovery.url;
    const entities = await fetch(discovery, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: `query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id distance { kilometres lessThanOneKilometre } } } }`,
        variables: { r: [bob, cy, hidden, stale, ada].map((id) => ({ __typename: "User", id })) },
      }),
    });
    const body = (await entities.json()) as { data: { _entities: Array<{ id: string; distance: unknown }> } };
    expect(body.data._entities.map((entity) => entity.distance)).toEqual([
      { kilometres: 7, lessThanOneKilometre: false },
      null, // blocked the viewer
      null, // hidden
      null, // stale
      { kilometres: 0, lessThanOneKilometre: true }, // the viewer herself
    ]);
    // Nearby's nodes carry their distance; a representation's does not count (only its id does).
    const forged = await fetch(discovery, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: `query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id distance { kilometres lessThanOneKilometre } } } }`,
        variables: { r: [bob, cy, hidden, stale, ada].map((id) => ({ __typename: "User", id, metres: 1 })) },
      }),
    });
    expect(((await forged.json()) as typeof body).data._entities).toEqual(body.data._entities);
    const anonymous = await fetch(discovery, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: `{ _entities(representations: [{ __typename: "User", id: "${bob}" }]) { ... on User { distance { kilometres } } } }`,
      }),
    });
    expect(((await anonymous.json()) as { data: unknown }).data).toEqual({ _entities: [{ distance: null }] });
  });

  describe("fed by the Users events", () => {
    let ada: SignedIn;
    let bob: SignedIn;
    const UPDATE_PROFILE = `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }`;

    it("should copy profiles from user.profile_changed and show two matching people to each other", async () => {
      ada = await fx.client.signUp({ birthDate: "1994-01-10" });
      bob = await fx.client.signUp({ birthDate: "1992-03-02" });
      for (const [who, gender, wants] of [
        [ada, "WOMAN", "MAN"],
        [bob, "MAN", "WOMAN"],
      ] as const) {
        const updated = await fx.client.request(
          UPDATE_PROFILE,
          {
            input: {
              gender,
              gendersOfInterest: [wants],
              discoveryPreferences: { ageMin: 25, ageMax: 45, maxDistanceKm: 20 },
            },
          },
          who.accessToken,
        );
        expect(updated.body.errors).toBeUndefined();
        expect(
          (
            await fx.client.request(
              UPDATE_LOCATION,
              { lat: gender === "WOMAN" ? 64.1466 : 64.1466 + 0.018, lng: -21.9426 },
              who.accessToken,
            )
          ).body.errors,
        ).toBeUndefined();
      }
      await eventually(async () => {
        const rows = await fx.dbs.discovery.discoveryProfile.findMany({
          where: { userId: { in: [ada.userId, bob.userId] }, gender: { not: null } },
        });
        return rows.length === 2;
      });
      const seen = await fx.client.request<NearbyPage>(NEARBY, {}, ada.accessToken);
      expect(seen.body.data?.nearby.edges.map((edge) => edge.node)).toEqual([
        { id: bob.userId, distance: { kilometres: 2, lessThanOneKilometre: false } },
      ]);
      const back = await fx.client.request<NearbyPage>(NEARBY, {}, bob.accessToken);
      expect(back.body.data?.nearby.edges.map((edge) => edge.node.id)).toEqual([ada.userId]);
    });

    it("should hide both people from each other once one blocks the other (user.blocked), and show them again after unblocking", async () => {
      expect(
        (
          await fx.client.request(
            `mutation($id: ID!) { blockUser(userId: $id) }`,
            { id: ada.userId },
            bob.accessToken,
          )
        ).body.errors,
      ).toBeUndefined();
      await eventually(() =>
        fx.dbs.discovery.block.findUnique({
          where: { blockerId_blockedId: { blockerId: bob.userId, blockedId: ada.userId } },
        }),
      );
      for (const viewer of [ada, bob]) {
        const page = await fx.client.request<NearbyPage>(NEARBY, {}, viewer.accessToken);
        expect(page.body.data?.nearby.edges).toEqual([]);
      }
      expect(
        (
          await fx.client.request(
            `mutation($id: ID!) { unblockUser(userId: $id) }`,
            { id: ada.userId },
            bob.accessToken,
          )
        ).body.errors,
      ).toBeUndefined();
      await eventually(
        async () => (await fx.dbs.discovery.block.count({ where: { blockerId: bob.userId } })) === 0,
      );
      const page = await fx.client.request<NearbyPage>(NEARBY, {}, ada.accessToken);
      expect(page.body.data?.nearby.edges.map((edge) => edge.node.id)).toEqual([bob.userId]);
    });
  });
});
