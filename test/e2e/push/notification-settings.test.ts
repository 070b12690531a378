import { useSystem } from "../../support/fixture";
import { errorCode, type SignedIn } from "../../support/users-client";

const FIELDS = "messages matches likes messagePreviews timeZone quietHours { start end }";
const READ = `{ myNotificationSettings { ${FIELDS} } }`;
const UPDATE = `mutation($input: UpdateNotificationSettingsInput!) { updateNotificationSettings(input: $input) { ${FIELDS} } }`;
const DEFAULTS = {
  messages: true,
  matches: true,
  likes: true,
  messagePreviews: true,
  timeZone: "UTC",
  quietHours: null,
};

describe("notification settings through the gateway", () => {
  const fixture = useSystem();
  let ada: SignedIn;

  beforeAll(async () => {
    ada = await fixture.client.signUp({ displayName: "Ada" });
  });

  it("should start from the defaults, change only what is given, and keep it", async () => {
    const person = await fixture.client.signUp();
    const read = async () =>
      (await fixture.client.request(READ, {}, person.accessToken)).body.data?.myNotificationSettings;
    expect(await read()).toEqual(DEFAULTS);

    const first = await fixture.client.request(
      UPDATE,
      {
        input: { messages: false, timeZone: " europe/berlin ", quietHours: { start: "22:30", end: "07:00" } },
      },
      person.accessToken,
    );
    expect(first.body.errors).toBeUndefined();
    const changed = {
      ...DEFAULTS,
      messages: false,
      timeZone: "Europe/Berlin",
      quietHours: { start: "22:30", end: "07:00" },
    };
    expect(first.body.data?.updateNotificationSettings).toEqual(changed);
    expect(await read()).toEqual(changed);
    const row = await fixture.dbs.users.notificationSettings.findUniqueOrThrow({
      where: { userId: person.userId },
    });
    expect(row).toMatchObject({ timeZone: "Europe/Berlin", quietStart: 22 * 60 + 30, quietEnd: 7 * 60 });

    // Omitted fields stay; explicit null turns quiet hours off.
    const second = await fixture.client.request(
      UPDATE,
      { input: { messagePreviews: false } },
      person.accessToken,
    );
    expect(second.body.data?.updateNotificationSettings).toEqual({ ...changed, messagePreviews: false });
    const third = await fixture.client.request(UPDATE, { input: { quietHours: null } }, person.accessToken);
    expect(third.body.data?.updateNotificationSettings).toEqual({
      ...changed,
      messagePreviews: false,
      quietHours: null,
    });
  });

  it("should need a signed-in user", async () => {
    expect(errorCode(await fixture.client.request(READ))).toBe("UNAUTHENTICATED");
    expect(errorCode(await fixture.client.request(UPDATE, { input: { messages: false } }))).toBe(
      "UNAUTHENTICATED",
    );
  });

  it.each([
    ["an unknown time zone", { timeZone: "Mars/Olympus_Mons" }, "input.timeZone"],
    ["an offset instead of a zone", { timeZone: "+02:00" }, "input.timeZone"],
    ["a fixed-offset IANA zone", { timeZone: "Etc/GMT-2" }, "input.timeZone"],
    ["an empty time zone", { timeZone: "   " }, "input.timeZone"],
    ["an oversized time zone", { timeZone: `Europe/${"x".repeat(100)}` }, "input.timeZone"],
    ["a path as a time zone", { timeZone: "../../etc/passwd" }, "input.timeZone"],
    ["a time zone with a NUL byte", { timeZone: "Europe/Berlin\u0000" }, "input.timeZone"],
    ["markup as a time zone", { timeZone: "<script>alert(1)</script>" }, "input.timeZone"],
    ["an hour past 23", { quietHours: { start: "24:00", end: "07:00" } }, "input.quietHours.start"],
    ["a time without leading zero", { quietHours: { start: "22:00", end: "7:00" } }, "input.quietHours.end"],
    ["a time with seconds", { quietHours: { start: "22:00:00", end: "07:00" } }, "input.quietHours.start"],
    [
      "an oversized time",
      { quietHours: { start: "2".repeat(10_000), end: "07:00" } },
      "input.quietHours.start",
    ],
    [
      "quiet hours that start when they end",
      { quietHours: { start: "07:00", end: "07:00" } },
      "input.quietHours",
    ],
  ])(
    "should refuse %s with BAD_USER_INPUT naming the field, and change nothing",
    async (_name, input, field) => {
      const before = await fixture.client.request(READ, {}, ada.accessToken);
      const response = await fixture.client.request(UPDATE, { input }, ada.accessToken);
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
      expect(response.body.data).toBeNull();
      expect((await fixture.client.request(READ, {}, ada.accessToken)).body).toEqual(before.body);
    },
  );

  it.each([
    ["a missing end", { quietHours: { start: "22:00" } }],
    ["a string for a flag", { messages: "yes" }],
    ["an unknown field", { everything: false }],
    ["a number as a time zone", { timeZone: 2 }],
  ])("should refuse %s before any resolver runs", async (_name, input) => {
    const response = await fixture.client.request(UPDATE, { input }, ada.accessToken);
    expect(["BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"]).toContain(errorCode(response));
    expect(response.body.data ?? null).toBeNull();
  });

  it("should refuse a missing input argument", async () => {
    const response = await fixture.client.request(
      `mutation { updateNotificationSettings { timeZone } }`,
      {},
      ada.accessToken,
    );
    expect(errorCode(response)).toBe("GRAPHQL_VALIDATION_FAILED");
  });
});
