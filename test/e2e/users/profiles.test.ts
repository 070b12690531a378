import { randomUUID } from "node:crypto";
import { startSystem, type RunningSystem } from "../../support/system";
import { testDatabases, type TestDatabases } from "../../support/seed";
import { errorCode, UsersClient, type SignedIn } from "../../support/users-client";

describe("profiles, devices, blocks and reports through the gateway", () => {
  let system: RunningSystem;
  let dbs: TestDatabases;
  let client: UsersClient;
  let ada: SignedIn;
  let bob: SignedIn;

  beforeAll(async () => {
    dbs = testDatabases();
    system = await startSystem();
    client = new UsersClient(system.gatewayUrl);
    ada = await client.signUp({ displayName: "Ada" });
    bob = await client.signUp({ displayName: "Bob" });
  });
  afterAll(async () => {
    await system?.stop();
    await dbs?.close();
  });

  const UPDATE = `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { displayName bio interests gender gendersOfInterest discoveryPreferences { ageMin ageMax maxDistanceKm } } }`;

  it("should update a profile, show the change on the next read and emit user.profile_changed", async () => {
    const response = await client.request(
      UPDATE,
      {
        input: {
          displayName: "Ada L.",
          bio: "Engines,\nmostly analytical",
          interests: ["Chess", "chess", "Hiking"],
          gender: "WOMAN",
          gendersOfInterest: ["MAN", "NONBINARY"],
          discoveryPreferences: { ageMin: 25, ageMax: 40, maxDistanceKm: 30 },
        },
      },
      ada.accessToken,
    );
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data?.updateProfile).toEqual({
      displayName: "Ada L.",
      bio: "Engines,\nmostly analytical",
      interests: ["chess", "hiking"],
      gender: "WOMAN",
      gendersOfInterest: ["MAN", "NONBINARY"],
      discoveryPreferences: { ageMin: 25, ageMax: 40, maxDistanceKm: 30 },
    });
    // Another reader (through the Redis cache) sees the edit at once.
    const seen = await client.request(
      `query($id: ID!) { user(id: $id) { displayName } }`,
      { id: ada.userId },
      bob.accessToken,
    );
    expect(seen.body.data).toEqual({ user: { displayName: "Ada L." } });
    const events = await dbs.users.outboxEvent.findMany({
      where: { type: "user.profile_changed" },
      orderBy: { createdAt: "desc" },
    });
    expect(
      events.find((event) => (event.payload as { userId?: string }).userId === ada.userId)?.payload,
    ).toMatchObject({
      userId: ada.userId,
      gender: "WOMAN",
      ageMin: 25,
      ageMax: 40,
      maxDistanceKm: 30,
      banned: false,
    });
  });

  it.each([
    [
      "ageMin above ageMax",
      { discoveryPreferences: { ageMin: 40, ageMax: 30, maxDistanceKm: 10 } },
      "input.discoveryPreferences",
    ],
    [
      "an under-age preference",
      { discoveryPreferences: { ageMin: 16, ageMax: 30, maxDistanceKm: 10 } },
      "input.discoveryPreferences.ageMin",
    ],
    [
      "a huge distance",
      { discoveryPreferences: { ageMin: 18, ageMax: 30, maxDistanceKm: 100000 } },
      "input.discoveryPreferences.maxDistanceKm",
    ],
    ["an oversized bio", { bio: "b".repeat(501) }, "input.bio"],
    ["oversized pronouns", { pronouns: "p".repeat(41) }, "input.pronouns"],
    ["pronouns over two lines", { pronouns: "she/\nher" }, "input.pronouns"],
    ["pronouns with a zero-width space", { pronouns: "they\u200B/them" }, "input.pronouns"],
    ["too many interests", { interests: Array.from({ length: 11 }, (_, i) => `i${i}`) }, "input.interests"],
    ["an oversized interest", { interests: ["x".repeat(31)] }, "input.interests[0]"],
    ["a name with a right-to-left override", { displayName: "\u202Eevil" }, "input.displayName"],
  ])("should refuse %s and change nothing", async (_name, input, field) => {
    const before = await dbs.users.user.findUniqueOrThrow({ where: { id: bob.userId } });
    const response = await client.request(UPDATE, { input }, bob.accessToken);
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
    expect(await dbs.users.user.findUniqueOrThrow({ where: { id: bob.userId } })).toEqual(before);
  });

  it("should set, show and clear pronouns", async () => {
    const dana = await client.signUp({ displayName: "Dana" });
    const set = await client.request(
      `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { pronouns } }`,
      { input: { pronouns: "  she/they " } },
      dana.accessToken,
    );
    expect(set.body.data).toEqual({ updateProfile: { pronouns: "she/they" } });
    const query = `query($id: ID!) { user(id: $id) { pronouns } }`;
    // Others read them through the profile cache, and the cache keeps them as the database does.
    expect((await client.request(query, { id: dana.userId }, bob.accessToken)).body.data).toEqual({
      user: { pronouns: "she/they" },
    });
    expect((await client.request(query, { id: dana.userId }, bob.accessToken)).body.data).toEqual({
      user: { pronouns: "she/they" },
    });
    const cleared = await client.request(
      `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { pronouns } }`,
      { input: { pronouns: "" } },
      dana.accessToken,
    );
    expect(cleared.body.data).toEqual({ updateProfile: { pronouns: null } });
    expect(
      await dbs.users.user.findUniqueOrThrow({ where: { id: dana.userId }, select: { pronouns: true } }),
    ).toEqual({ pronouns: null });
    expect((await client.request(query, { id: dana.userId }, bob.accessToken)).body.data).toEqual({
      user: { pronouns: null },
    });
  });

  it("should refuse pronouns of the wrong type", async () => {
    const response = await client.request(UPDATE, { input: { pronouns: ["she", "her"] } }, bob.accessToken);
    expect(response.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("should hide a hidden profile from everyone but its owner", async () => {
    const carol = await client.signUp({ displayName: "Carol" });
    await client.request(
      UPDATE.replace("displayName bio", "displayName"),
      { input: { visibility: "HIDDEN" } },
      carol.accessToken,
    );
    const query = `query($id: ID!) { user(id: $id) { displayName } }`;
    expect((await client.request(query, { id: carol.userId }, bob.accessToken)).body.data).toEqual({
      user: null,
    });
    expect((await client.request(query, { id: carol.userId }, carol.accessToken)).body.data).toEqual({
      user: { displayName: "Carol" },
    });
  });

  it("should resolve fifty users in one request with one SQL query", async () => {
    // Five at a time: fifty sign-ups with their verification at once overrun the gateway's upstream
    // timeout on a loaded 2-core machine, and how they are made is not what this test is about.
    const people: Awaited<ReturnType<typeof client.signUp>>[] = [];
    for (let batch = 0; batch < 10; batch += 1) {
      people.push(
        ...(await Promise.all(
          Array.from({ length: 5 }, (_, i) => client.signUp({ displayName: `P${batch * 5 + i}` })),
        )),
      );
    }
    // A cold cache: every profile has to come from Postgres.
    await system.subgraphs.users.redis.del(...people.map((person) => `hv:users:profile:${person.userId}`));
    system.usersQueries.length = 0;
    const fields = people
      .map((person, i) => `u${i}: user(id: "${person.userId}") { id displayName }`)
      .join("\n");
    const response = await client.request(`{ ${fields} }`, {}, ada.accessToken);
    expect(response.body.errors).toBeUndefined();
    expect(Object.keys(response.body.data ?? {})).toHaveLength(50);
    const userSelects = system.usersQueries.filter((sql) =>
      /FROM (?:"public"\.)?(?:"users"|users\b)/.test(sql),
    );
    expect(userSelects).toHaveLength(1);
  });

  describe("devices", () => {
    const REGISTER = `mutation($input: RegisterDeviceInput!) { registerDevice(input: $input) { id platform appVersion } }`;

    it("should register a device on this session, move a re-registered token, and drop it at logout", async () => {
      const session = (await client.logIn(ada.email, ada.password)).body.data!.logIn;
      const pushToken = `fcm:${randomUUID()}`;
      const first = await client.request(
        REGISTER,
        { input: { platform: "ANDROID", pushToken, appVersion: "1.4.2" } },
        session.accessToken,
      );
      expect(first.body.data?.registerDevice).toMatchObject({ platform: "ANDROID", appVersion: "1.4.2" });
      const again = await client.request(
        REGISTER,
        { input: { platform: "ANDROID", pushToken, appVersion: "1.5.0" } },
        session.accessToken,
      );
      expect(await dbs.users.device.count({ where: { pushToken } })).toBe(1);
      expect(again.body.data?.registerDevice).toMatchObject({ appVersion: "1.5.0" });

      await client.request(`mutation { logOut }`, {}, session.accessToken);
      expect(await dbs.users.device.count({ where: { pushToken } })).toBe(0);
    });

    it.each([
      ["an empty push token", { platform: "IOS", pushToken: "", appVersion: "1.0.0" }, "input.pushToken"],
      [
        "an oversized push token",
        { platform: "IOS", pushToken: "a".repeat(4097), appVersion: "1.0.0" },
        "input.pushToken",
      ],
      [
        "a push token with spaces and quotes",
        { platform: "IOS", pushToken: "abc' OR '1'='1", appVersion: "1.0.0" },
        "input.pushToken",
      ],
      [
        "a nonsense app version",
        { platform: "IOS", pushToken: "tok123", appVersion: "<script>" },
        "input.appVersion",
      ],
    ])("should refuse %s", async (_name, input, field) => {
      const before = await dbs.users.device.count();
      const response = await client.request(REGISTER, { input }, bob.accessToken);
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
      expect(await dbs.users.device.count()).toBe(before);
    });

    it("should refuse an unknown platform and removing someone else's device", async () => {
      const bad = await client.request(
        REGISTER,
        { input: { platform: "WINDOWS_PHONE", pushToken: "t1234", appVersion: "1.0" } },
        bob.accessToken,
      );
      expect(errorCode(bad)).toBe("BAD_USER_INPUT");
      const own = await client.request(
        REGISTER,
        { input: { platform: "IOS", pushToken: `apns${Date.now()}`, appVersion: "2.0" } },
        bob.accessToken,
      );
      const deviceId = (own.body.data?.registerDevice as { id: string }).id;
      const stolen = await client.request(
        `mutation($id: ID!) { removeDevice(id: $id) }`,
        { id: deviceId },
        ada.accessToken,
      );
      expect(errorCode(stolen)).toBe("NOT_FOUND");
      expect(await dbs.users.device.count({ where: { id: deviceId } })).toBe(1);
    });
  });

  describe("blocks and reports", () => {
    it("should block once (idempotently) with a durable event, and unblock", async () => {
      const dan = await client.signUp({ displayName: "Dan" });
      const block = `mutation($id: ID!) { blockUser(userId: $id) }`;
      expect((await client.request(block, { id: dan.userId }, ada.accessToken)).body.data).toEqual({
        blockUser: true,
      });
      expect((await client.request(block, { id: dan.userId }, ada.accessToken)).body.data).toEqual({
        blockUser: true,
      });
      expect((await client.request(`{ myBlockedUserIds }`, {}, ada.accessToken)).body.data).toEqual({
        myBlockedUserIds: [dan.userId],
      });
      const blockedEvents = await dbs.users.outboxEvent.findMany({ where: { type: "user.blocked" } });
      expect(
        blockedEvents.filter((event) => (event.payload as { blockedId?: string }).blockedId === dan.userId),
      ).toHaveLength(1);

      expect(
        (
          await client.request(
            `mutation($id: ID!) { unblockUser(userId: $id) }`,
            { id: dan.userId },
            ada.accessToken,
          )
        ).body.data,
      ).toEqual({ unblockUser: true });
      expect((await client.request(`{ myBlockedUserIds }`, {}, ada.accessToken)).body.data).toEqual({
        myBlockedUserIds: [],
      });
      const unblocked = await dbs.users.outboxEvent.findMany({ where: { type: "user.unblocked" } });
      expect(unblocked.map((event) => event.payload)).toContainEqual({
        blockerId: ada.userId,
        blockedId: dan.userId,
      });
    });

    it("should refuse blocking yourself, an unknown user and a malformed id", async () => {
      const block = `mutation($id: ID!) { blockUser(userId: $id) }`;
      expect(errorCode(await client.request(block, { id: ada.userId }, ada.accessToken))).toBe(
        "BAD_USER_INPUT",
      );
      expect(errorCode(await client.request(block, { id: randomUUID() }, ada.accessToken))).toBe("NOT_FOUND");
      expect(
        errorCode(await client.request(block, { id: "'; DROP TABLE blocks; --" }, ada.accessToken)),
      ).toBe("BAD_USER_INPUT");
      expect(errorCode(await client.request(block, { id: bob.userId }))).toBe("UNAUTHENTICATED");
    });

    it("should file a report and refuse bad ones", async () => {
      const report = `mutation($input: ReportUserInput!) { reportUser(input: $input) { id createdAt } }`;
      const filed = await client.request(
        report,
        { input: { userId: bob.userId, reason: "HARASSMENT", details: "sent threats" } },
        ada.accessToken,
      );
      expect(filed.body.errors).toBeUndefined();
      const stored = await dbs.users.report.findUniqueOrThrow({
        where: { id: (filed.body.data?.reportUser as { id: string }).id },
      });
      expect(stored).toMatchObject({
        reporterId: ada.userId,
        reportedId: bob.userId,
        reason: "HARASSMENT",
        details: "sent threats",
      });

      const before = await dbs.users.report.count();
      expect(
        errorCode(
          await client.request(report, { input: { userId: bob.userId, reason: "BORING" } }, ada.accessToken),
        ),
      ).toBe("BAD_USER_INPUT");
      expect(
        errorCode(
          await client.request(
            report,
            { input: { userId: bob.userId, reason: "SPAM", details: "d".repeat(1001) } },
            ada.accessToken,
          ),
        ),
      ).toBe("BAD_USER_INPUT");
      expect(
        errorCode(
          await client.request(report, { input: { userId: ada.userId, reason: "SPAM" } }, ada.accessToken),
        ),
      ).toBe("BAD_USER_INPUT");
      expect(
        errorCode(
          await client.request(report, { input: { userId: randomUUID(), reason: "SPAM" } }, ada.accessToken),
        ),
      ).toBe("NOT_FOUND");
      expect(await dbs.users.report.count()).toBe(before);
    });
  });
});
