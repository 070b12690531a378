import { randomUUID } from "node:crypto";
import { startSystem, type RunningSystem } from "../../support/system";
import { testDatabases, type TestDatabases } from "../../support/seed";
import { errorCode, randomClientIp, UsersClient } from "../../support/users-client";

describe("accounts and sessions through the gateway", () => {
  let system: RunningSystem;
  let dbs: TestDatabases;
  let client: UsersClient;

  beforeAll(async () => {
    dbs = testDatabases();
    system = await startSystem();
    client = new UsersClient(system.gatewayUrl);
  });
  afterAll(async () => {
    await system?.stop();
    await dbs?.close();
  });

  const userCount = () => dbs.users.user.count();

  it("should sign up, then read the own profile with owner-only fields", async () => {
    const me = await client.signUp({ email: "  Mixed.Case@Example.TEST ", displayName: "Zoë" });
    const response = await client.request(
      `{ me { id displayName age email birthDate role visibility discoveryPreferences { ageMin ageMax maxDistanceKm } } }`,
      {},
      me.accessToken,
    );
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data).toEqual({
      me: {
        id: me.userId,
        displayName: "Zoë",
        age: expect.any(Number),
        email: "mixed.case@example.test",
        birthDate: "1995-04-01",
        role: "USER",
        visibility: "VISIBLE",
        discoveryPreferences: { ageMin: 18, ageMax: 99, maxDistanceKm: 50 },
      },
    });
  });

  it("should hide email and birth date from everyone but the owner", async () => {
    const owner = await client.signUp();
    const stranger = await client.signUp();
    const query = `query($id: ID!) { user(id: $id) { id age email birthDate discoveryPreferences { ageMin } } }`;
    const asStranger = await client.request(query, { id: owner.userId }, stranger.accessToken);
    expect(asStranger.body.data).toEqual({
      user: {
        id: owner.userId,
        age: expect.any(Number),
        email: null,
        birthDate: null,
        discoveryPreferences: null,
      },
    });
    const anonymous = await client.request(query, { id: owner.userId });
    expect(anonymous.body.data).toEqual(asStranger.body.data);
  });

  describe("bad sign-up input gets a typed error and creates nothing", () => {
    const cases: Array<[string, Record<string, string>, string, string]> = [
      ["a weak password", { password: "password123" }, "BAD_USER_INPUT", "input.password"],
      ["a short password", { password: "short" }, "BAD_USER_INPUT", "input.password"],
      ["a keyboard-walk password", { password: "QWERTYUIOP" }, "BAD_USER_INPUT", "input.password"],
      ["a one-character password", { password: "zzzzzzzzzzzz" }, "BAD_USER_INPUT", "input.password"],
      ["an oversized password", { password: "x".repeat(129) + "y" }, "BAD_USER_INPUT", "input.password"],
      ["an invalid email", { email: "not-an-email" }, "BAD_USER_INPUT", "input.email"],
      ["an oversized email", { email: `${"a".repeat(250)}@example.test` }, "BAD_USER_INPUT", "input.email"],
      [
        "someone under 18",
        { birthDate: `${new Date().getUTCFullYear() - 17}-01-01` },
        "BAD_USER_INPUT",
        "input.birthDate",
      ],
      ["an oversized display name", { displayName: "n".repeat(51) }, "BAD_USER_INPUT", "input.displayName"],
      ["an empty display name", { displayName: "   " }, "BAD_USER_INPUT", "input.displayName"],
      [
        "a display name with a bidi override",
        { displayName: "Bob\u202Egnp.exe" },
        "BAD_USER_INPUT",
        "input.displayName",
      ],
      [
        "a display name with a zero-width joiner",
        { displayName: "Ad\u200Dmin" },
        "BAD_USER_INPUT",
        "input.displayName",
      ],
      [
        "a display name with a control character",
        { displayName: "Ann\u0000" },
        "BAD_USER_INPUT",
        "input.displayName",
      ],
      [
        "a blank display name of Hangul fillers",
        { displayName: "\u3164\u3164" },
        "BAD_USER_INPUT",
        "input.displayName",
      ],
      [
        "a display name with an Arabic letter mark",
        { displayName: "Sam\u061C" },
        "BAD_USER_INPUT",
        "input.displayName",
      ],
      [
        "a display name with a tag character",
        { displayName: "Sam\u{E0041}" },
        "BAD_USER_INPUT",
        "input.displayName",
      ],
      [
        "a display name with a lone surrogate",
        { displayName: "Sam\uD800" },
        "BAD_USER_INPUT",
        "input.displayName",
      ],
      [
        "a display name with a line separator",
        { displayName: "Sam\u2028Admin" },
        "BAD_USER_INPUT",
        "input.displayName",
      ],
    ];
    it.each(cases)("should refuse %s", async (_name, overrides, code, field) => {
      const before = await userCount();
      const input = {
        email: `${randomUUID()}@example.test`,
        password: "correct horse battery staple",
        displayName: "Sam",
        birthDate: "1990-01-01",
        ...overrides,
      };
      const response = await client.request(
        `mutation($input: SignUpInput!) { signUp(input: $input) { status } }`,
        { input },
        undefined,
        randomClientIp(),
      );
      expect(response.body.data ?? null).toBeNull();
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code, field });
      expect(await userCount()).toBe(before);
    });

    it("should refuse an impossible or malformed birth date", async () => {
      for (const birthDate of ["2001-02-30", "01/02/1990", "1990-1-1", ""]) {
        const response = await client.request(
          `mutation($input: SignUpInput!) { signUp(input: $input) { status } }`,
          {
            input: {
              email: `${randomUUID()}@example.test`,
              password: "correct horse battery staple",
              displayName: "Sam",
              birthDate,
            },
          },
          undefined,
          randomClientIp(),
        );
        expect({ birthDate, code: errorCode(response) }).toEqual({ birthDate, code: "BAD_USER_INPUT" });
      }
    });

    it("should refuse missing fields before any resolver runs", async () => {
      const response = await client.request(`mutation { signUp(input: { email: "a@b.co" }) { status } }`);
      expect(errorCode(response)).toBe("GRAPHQL_VALIDATION_FAILED");
    });

    it("should accept emoji and accents, counting characters rather than UTF-16 units", async () => {
      const fifty = "🙂".repeat(50);
      const ok = await client.signUp({ displayName: fifty });
      expect((await client.me(ok.accessToken)).body.data).toEqual({ me: { id: ok.userId } });
      const tooLong = await client.request(
        `mutation($input: SignUpInput!) { signUp(input: $input) { status } }`,
        {
          input: {
            email: `${randomUUID()}@example.test`,
            password: "correct horse battery staple",
            displayName: `${fifty}🙂`,
            birthDate: "1990-01-01",
          },
        },
        undefined,
        randomClientIp(),
      );
      expect(tooLong.body.errors?.[0]?.extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "input.displayName",
      });
    });

    it("should treat composed and decomposed forms of an email and a password as the same", async () => {
      const composed = `jos\u00e9.${randomUUID()}@example.test`;
      const user = await client.signUp({ email: composed, password: "caf\u00e9 au lait bitte" });
      const decomposedEmail = composed.normalize("NFD");
      expect(decomposedEmail).not.toBe(composed);
      const login = await client.logIn(decomposedEmail, "cafe\u0301 au lait bitte");
      expect(login.body.data?.logIn.user.id).toBe(user.userId);
    });

    it("should accept someone who turns 18 today and refuse someone who turns 18 tomorrow", async () => {
      const today = new Date();
      const iso = (date: Date) => date.toISOString().slice(0, 10);
      const eighteenToday = new Date(
        Date.UTC(today.getUTCFullYear() - 18, today.getUTCMonth(), today.getUTCDate()),
      );
      const eighteenTomorrow = new Date(eighteenToday.getTime() + 86_400_000);
      await expect(client.signUp({ birthDate: iso(eighteenToday) })).resolves.toMatchObject({
        userId: expect.any(String),
      });
      const young = await client.request(
        `mutation($input: SignUpInput!) { signUp(input: $input) { status } }`,
        {
          input: {
            email: `${randomUUID()}@example.test`,
            password: "correct horse battery staple",
            displayName: "Kid",
            birthDate: iso(eighteenTomorrow),
          },
        },
        undefined,
        randomClientIp(),
      );
      expect(young.body.errors?.[0]?.extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "input.birthDate",
      });
    });
  });

  it("should limit sign-ups per address", async () => {
    const address = randomClientIp();
    const codes: Array<string | undefined> = [];
    for (let i = 0; i < 11; i += 1) {
      const response = await client.request(
        `mutation($input: SignUpInput!) { signUp(input: $input) { status } }`,
        {
          input: {
            email: `${randomUUID()}@example.test`,
            password: "correct horse battery staple",
            displayName: "Sam",
            birthDate: "1990-01-01",
          },
        },
        undefined,
        address,
      );
      codes.push(errorCode(response));
    }
    expect(codes.slice(0, 10)).toEqual(Array(10).fill(undefined));
    expect(codes[10]).toBe("RATE_LIMITED");
  });

  it("should give the same error for an unknown email and a wrong password", async () => {
    const user = await client.signUp();
    const wrongPassword = await client.logIn(user.email, "not the password at all");
    const unknownEmail = await client.logIn(`${randomUUID()}@example.test`, "not the password at all");
    expect(wrongPassword.body.errors?.[0]).toMatchObject({
      message: "Email or password is wrong, or the email address is not confirmed yet (see the mail we sent)",
      extensions: { code: "INVALID_CREDENTIALS" },
    });
    expect(unknownEmail.body.errors?.[0]?.message).toBe(wrongPassword.body.errors?.[0]?.message);
    expect(errorCode(unknownEmail)).toBe(errorCode(wrongPassword));
  });

  it("should spend the per-account login budget per attempt, however attempts are aliased", async () => {
    const user = await client.signUp();
    const sessionsBefore = await dbs.users.session.count({ where: { userId: user.userId } });
    const aliased = Array.from(
      { length: 20 },
      (_, i) => `a${i}: logIn(input: { email: $email, password: "guess-${i}-xxxx" }) { accessToken }`,
    );
    const batch = `mutation($email: String!) { ${aliased.join("\n")} }`;
    // Mutation fields run one after another and a failed (non-null) login stops the rest: one
    // request tries one password, and that attempt costs one point of the account's budget for
    // unknown phones (10 an hour), from whichever address it comes.
    for (let attempt = 1; attempt <= 10; attempt += 1) {
      const response = await client.request(batch, { email: user.email }, undefined, randomClientIp());
      expect({ attempt, codes: response.body.errors?.map((error) => error.extensions?.code) }).toEqual({
        attempt,
        codes: ["INVALID_CREDENTIALS"],
      });
    }
    const limited = await client.request(batch, { email: user.email }, undefined, randomClientIp());
    expect(errorCode(limited)).toBe("RATE_LIMITED");
    expect(limited.body.errors?.[0]?.extensions?.retryAfterSeconds).toBeGreaterThan(0);
    // The right password from an unknown phone waits too...
    expect(errorCode(await client.logIn(user.email, user.password, undefined, randomClientIp()))).toBe(
      "RATE_LIMITED",
    );
    expect(await dbs.users.session.count({ where: { userId: user.userId } })).toBe(sessionsBefore);
    // ...but the owner's phone, which signed in before, is not locked out.
    const owner = await client.logIn(user.email, user.password, user.knownDeviceToken, randomClientIp());
    expect(owner.body.errors).toBeUndefined();
    expect(owner.body.data?.logIn.knownDeviceToken).toBe(user.knownDeviceToken);
    expect(await dbs.users.session.count({ where: { userId: user.userId } })).toBe(sessionsBefore + 1);
  });

  it("should count every address of one IPv6 /64 as one for the per-address login budget", async () => {
    const network = randomClientIp().split(":").slice(0, 4).join(":");
    const codes: Array<string | undefined> = [];
    // 50 attempts per address in 15 minutes, at any accounts (unknown ones here).
    for (let i = 1; i <= 51; i += 1) {
      const response = await client.logIn(
        `${randomUUID()}@example.test`,
        `wrong guess number ${i}`,
        undefined,
        `${network}::${i.toString(16)}`,
      );
      codes.push(errorCode(response));
    }
    expect(codes).toEqual([...Array(50).fill("INVALID_CREDENTIALS"), "RATE_LIMITED"]);
  });

  it("should refuse batched HTTP requests (an array of operations)", async () => {
    const response = await fetch(system.gatewayUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([{ query: "{ __typename }" }, { query: "{ __typename }" }]),
    });
    expect(response.status).toBe(400);
  });

  it("should rotate refresh tokens and end the whole session when a spent one is reused", async () => {
    const user = await client.signUp();
    const first = await client.refresh(user.refreshToken);
    const second = first.body.data!.refreshSession;
    expect(second.refreshToken).not.toBe(user.refreshToken);

    // Long after the grace window (simulated by back-dating the spend), the old token comes back.
    await dbs.users.refreshToken.updateMany({
      where: { spentAt: { not: null }, session: { userId: user.userId } },
      data: { spentAt: new Date(Date.now() - 60_000) },
    });
    const reuse = await client.refresh(user.refreshToken);
    expect(reuse.body.errors?.[0]?.extensions).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "refresh_token_reused",
    });

    // The whole family is dead: the newest refresh token and its access token too.
    const newest = await client.refresh(second.refreshToken);
    expect(newest.body.errors?.[0]?.extensions).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "session_ended",
    });
    const me = await client.me(second.accessToken);
    expect(me.status).toBe(401);
    expect(errorCode(me)).toBe("UNAUTHENTICATED");
  });

  it("should give two concurrent refreshes of one token the same new pair", async () => {
    const user = await client.signUp();
    const [a, b] = await Promise.all([client.refresh(user.refreshToken), client.refresh(user.refreshToken)]);
    expect(a.body.errors).toBeUndefined();
    expect(b.body.errors).toBeUndefined();
    expect(a.body.data!.refreshSession.refreshToken).toBe(b.body.data!.refreshSession.refreshToken);
    const next = await client.refresh(a.body.data!.refreshSession.refreshToken);
    expect(next.body.errors).toBeUndefined();
  });

  it("should not replay a just-spent refresh token to another address: the session ends", async () => {
    const user = await client.signUp();
    const rotated = await client.refresh(user.refreshToken);
    expect(rotated.body.errors).toBeUndefined();
    const stolen = await client.request(
      `mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }`,
      { t: user.refreshToken },
      undefined,
      randomClientIp(),
    );
    expect(stolen.body.errors?.[0]?.extensions).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "refresh_token_reused",
    });
    expect(errorCode(await client.refresh(rotated.body.data!.refreshSession.refreshToken))).toBe(
      "UNAUTHENTICATED",
    );
  });

  it("should not replay a spent refresh token once its successor was spent: the session ends", async () => {
    const user = await client.signUp();
    const second = (await client.refresh(user.refreshToken)).body.data!.refreshSession;
    const third = await client.refresh(second.refreshToken);
    expect(third.body.errors).toBeUndefined();
    const replay = await client.refresh(user.refreshToken);
    expect(replay.body.errors?.[0]?.extensions).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "refresh_token_reused",
    });
    expect(errorCode(await client.refresh(third.body.data!.refreshSession.refreshToken))).toBe(
      "UNAUTHENTICATED",
    );
  });

  it("should refuse garbage refresh tokens and access tokens used as refresh tokens", async () => {
    const user = await client.signUp();
    for (const token of ["", "rt_nope", user.accessToken, "x".repeat(10_000)]) {
      const response = await client.refresh(token);
      expect(response.body.errors?.[0]?.extensions).toMatchObject({
        code: "UNAUTHENTICATED",
        reason: "invalid_refresh_token",
      });
    }
  });

  it("should end this session on logOut and every session on logOutEverywhere", async () => {
    const user = await client.signUp();
    const second = (await client.logIn(user.email, user.password)).body.data!.logIn;
    expect((await client.request(`mutation { logOut }`, {}, user.accessToken)).body.data).toEqual({
      logOut: true,
    });
    expect((await client.me(user.accessToken)).status).toBe(401);
    expect((await client.me(second.accessToken)).body.data).toEqual({ me: { id: user.userId } });

    expect((await client.request(`mutation { logOutEverywhere }`, {}, second.accessToken)).body.data).toEqual(
      { logOutEverywhere: true },
    );
    expect((await client.me(second.accessToken)).status).toBe(401);
    expect(errorCode(await client.refresh(second.refreshToken))).toBe("UNAUTHENTICATED");
  });

  it("should end every other session when the password changes", async () => {
    const user = await client.signUp();
    const other = (await client.logIn(user.email, user.password)).body.data!.logIn;
    const wrong = await client.request(
      `mutation { changePassword(input: { currentPassword: "not my password", newPassword: "a brand new passphrase" }) }`,
      {},
      user.accessToken,
    );
    expect(errorCode(wrong)).toBe("INVALID_CREDENTIALS");
    const changed = await client.request(
      `mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`,
      { input: { currentPassword: user.password, newPassword: "a brand new passphrase" } },
      user.accessToken,
    );
    expect(changed.body.data).toEqual({ changePassword: true });
    expect((await client.me(user.accessToken)).body.data).toEqual({ me: { id: user.userId } });
    expect((await client.me(other.accessToken)).status).toBe(401);
    expect(errorCode(await client.logIn(user.email, user.password))).toBe("INVALID_CREDENTIALS");
    expect((await client.logIn(user.email, "a brand new passphrase")).body.data?.logIn.user.id).toBe(
      user.userId,
    );
  });

  it("should refuse mutations that need a session when there is none", async () => {
    for (const mutation of [
      `mutation { logOut }`,
      `mutation { logOutEverywhere }`,
      `mutation { deleteAccount(password: "x") }`,
    ]) {
      expect(errorCode(await client.request(mutation))).toBe("UNAUTHENTICATED");
    }
    expect(errorCode(await client.request(`{ me { id } }`))).toBe("UNAUTHENTICATED");
  });

  it("should let a moderator ban a user: sessions end and the profile disappears", async () => {
    const moderator = await client.signUp();
    await dbs.users.user.update({ where: { id: moderator.userId }, data: { role: "MODERATOR" } });
    const modSession = (await client.logIn(moderator.email, moderator.password)).body.data!.logIn;
    const target = await client.signUp();
    const bystander = await client.signUp();

    const notAllowed = await client.request(
      `mutation($id: ID!) { banUser(userId: $id) }`,
      { id: target.userId },
      bystander.accessToken,
    );
    expect(errorCode(notAllowed)).toBe("FORBIDDEN");

    const banned = await client.request(
      `mutation($id: ID!) { banUser(userId: $id) }`,
      { id: target.userId },
      modSession.accessToken,
    );
    expect(banned.body.data).toEqual({ banUser: true });
    expect((await client.me(target.accessToken)).status).toBe(401);
    expect(errorCode(await client.refresh(target.refreshToken))).toBe("UNAUTHENTICATED");
    expect(errorCode(await client.logIn(target.email, target.password))).toBe("FORBIDDEN");
    const profile = await client.request(
      `query($id: ID!) { user(id: $id) { id } }`,
      { id: target.userId },
      bystander.accessToken,
    );
    expect(profile.body.data).toEqual({ user: null });
  });

  it("should delete an account with its password and emit user.deleted", async () => {
    const user = await client.signUp();
    expect(
      errorCode(
        await client.request(`mutation { deleteAccount(password: "wrong password!") }`, {}, user.accessToken),
      ),
    ).toBe("INVALID_CREDENTIALS");
    expect(await dbs.users.user.count({ where: { id: user.userId } })).toBe(1);
    const deleted = await client.request(
      `mutation($p: String!) { deleteAccount(password: $p) }`,
      { p: user.password },
      user.accessToken,
    );
    expect(deleted.body.data).toEqual({ deleteAccount: true });
    expect(await dbs.users.user.count({ where: { id: user.userId } })).toBe(0);
    const events = await dbs.users.outboxEvent.findMany({ where: { type: "user.deleted" } });
    expect(events.map((event) => event.payload)).toContainEqual({ userId: user.userId });
    expect((await client.me(user.accessToken)).status).toBe(401);
  });

  it("should return the session fields the app stores", async () => {
    const user = await client.signUp();
    const response = await client.logIn(user.email, user.password);
    expect(response.body.data?.logIn).toEqual({
      accessToken: expect.stringMatching(/^ey/),
      accessTokenExpiresAt: expect.any(String),
      refreshToken: expect.stringMatching(/^rt_/),
      refreshTokenExpiresAt: expect.any(String),
      knownDeviceToken: expect.stringMatching(/^kd_/),
      user: { id: user.userId, displayName: "Sam" },
    });
  });
});
