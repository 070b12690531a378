import { canonicalTimeZone, inQuietHours, localMinutes } from "@hv/users/src/modules/notification-settings";

/**
 * Quiet hours at fixed instants with the expected answers written out, so that a time-zone bug
 * (a fixed offset, the server's zone, UTC) fails: every "quiet" below has a neighbour a fixed
 * offset would get wrong.
 */
const at = (iso: string) => new Date(iso);
const NIGHT = { quietStart: 22 * 60, quietEnd: 7 * 60 }; // 22:00–07:00, spans midnight
const hhmm = (minutes: number) =>
  `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;

describe("quiet hours: local time", () => {
  it.each([
    // Europe/Berlin: CET (UTC+1) until 2026-03-29 01:00 UTC, then CEST (UTC+2) until 2026-10-25 01:00 UTC.
    ["Europe/Berlin", "2026-03-29T00:59:00Z", "01:59"],
    ["Europe/Berlin", "2026-03-29T01:00:00Z", "03:00"], // 02:00–02:59 does not exist that night
    ["Europe/Berlin", "2026-10-25T00:59:00Z", "02:59"], // CEST
    ["Europe/Berlin", "2026-10-25T01:00:00Z", "02:00"], // CET: 02:00–02:59 happens twice
    ["Europe/Berlin", "2026-01-15T22:30:00Z", "23:30"],
    ["America/New_York", "2026-03-08T06:59:00Z", "01:59"], // EST (UTC−5)
    ["America/New_York", "2026-03-08T07:00:00Z", "03:00"], // EDT (UTC−4)
    ["America/New_York", "2026-11-01T05:30:00Z", "01:30"], // EDT, the first 01:30
    ["America/New_York", "2026-11-01T06:30:00Z", "01:30"], // EST, the second 01:30
    ["Asia/Kolkata", "2026-06-01T18:30:00Z", "00:00"], // UTC+5:30, next day
    ["UTC", "2026-06-01T23:59:00Z", "23:59"],
  ])("should read %s at %s as %s", (timeZone, instant, local) => {
    expect(hhmm(localMinutes(timeZone, at(instant)))).toBe(local);
  });
});

describe("quiet hours 22:00–07:00", () => {
  it.each([
    // Winter in Berlin (CET, UTC+1).
    ["Europe/Berlin", "2026-01-15T20:59:00Z", false], // 21:59
    ["Europe/Berlin", "2026-01-15T21:00:00Z", true], // 22:00: the start is quiet
    ["Europe/Berlin", "2026-01-15T22:30:00Z", true], // 23:30
    ["Europe/Berlin", "2026-01-15T23:00:00Z", true], // 00:00
    ["Europe/Berlin", "2026-01-16T05:59:00Z", true], // 06:59
    ["Europe/Berlin", "2026-01-16T06:00:00Z", false], // 07:00: the end is not
    ["Europe/Berlin", "2026-01-16T11:00:00Z", false], // 12:00
    // The night the clocks go forward (2026-03-29, 02:00 CET → 03:00 CEST).
    ["Europe/Berlin", "2026-03-28T20:59:00Z", false], // 21:59 CET
    ["Europe/Berlin", "2026-03-28T21:30:00Z", true], // 22:30 CET
    ["Europe/Berlin", "2026-03-29T04:59:00Z", true], // 06:59 CEST
    ["Europe/Berlin", "2026-03-29T05:00:00Z", false], // 07:00 CEST (06:00 if CET were kept)
    ["Europe/Berlin", "2026-03-29T05:30:00Z", false], // 07:30 CEST
    // The night they go back (2026-10-25, 03:00 CEST → 02:00 CET).
    ["Europe/Berlin", "2026-10-24T19:59:00Z", false], // 21:59 CEST
    ["Europe/Berlin", "2026-10-24T20:00:00Z", true], // 22:00 CEST (21:00 if CET were used)
    ["Europe/Berlin", "2026-10-24T21:30:00Z", true], // 23:30 CEST
    ["Europe/Berlin", "2026-10-25T05:59:00Z", true], // 06:59 CET (07:59 if CEST were kept)
    ["Europe/Berlin", "2026-10-25T06:00:00Z", false], // 07:00 CET
    // Summer: 06:59 and 07:00 CEST.
    ["Europe/Berlin", "2026-07-01T04:59:00Z", true],
    ["Europe/Berlin", "2026-07-01T05:00:00Z", false],
    // New York in summer (EDT, UTC−4) and winter (EST, UTC−5).
    ["America/New_York", "2026-07-01T03:30:00Z", true], // 23:30 EDT (June 30)
    ["America/New_York", "2026-07-01T10:59:00Z", true], // 06:59 EDT
    ["America/New_York", "2026-07-01T11:00:00Z", false], // 07:00 EDT
    ["America/New_York", "2026-01-15T11:59:00Z", true], // 06:59 EST
    ["America/New_York", "2026-01-15T12:00:00Z", false], // 07:00 EST
    ["America/New_York", "2026-01-15T02:59:00Z", false], // 21:59 EST
    ["America/New_York", "2026-01-15T03:00:00Z", true], // 22:00 EST
    // The morning the clocks go forward (2026-03-08, 02:00 EST → 03:00 EDT).
    ["America/New_York", "2026-03-08T10:59:00Z", true], // 06:59 EDT
    ["America/New_York", "2026-03-08T11:30:00Z", false], // 07:30 EDT (06:30 if EST were kept)
  ])("in %s at %s: %s", (timeZone, instant, quiet) => {
    expect(inQuietHours({ timeZone, ...NIGHT }, at(instant))).toBe(quiet);
  });

  it("should treat a window within one day (09:00–17:00) without wrapping", () => {
    const office = { timeZone: "Europe/Berlin", quietStart: 9 * 60, quietEnd: 17 * 60 };
    expect(inQuietHours(office, at("2026-07-01T06:59:00Z"))).toBe(false); // 08:59 CEST
    expect(inQuietHours(office, at("2026-07-01T07:00:00Z"))).toBe(true); // 09:00
    expect(inQuietHours(office, at("2026-07-01T14:59:00Z"))).toBe(true); // 16:59
    expect(inQuietHours(office, at("2026-07-01T15:00:00Z"))).toBe(false); // 17:00
    expect(inQuietHours(office, at("2026-07-01T22:30:00Z"))).toBe(false); // 00:30
  });

  it("should have no quiet hours when none are set, and read an unknown stored zone as UTC", () => {
    expect(
      inQuietHours(
        { timeZone: "Europe/Berlin", quietStart: null, quietEnd: null },
        at("2026-01-15T23:00:00Z"),
      ),
    ).toBe(false);
    expect(inQuietHours({ timeZone: "Mars/Olympus_Mons", ...NIGHT }, at("2026-01-15T22:30:00Z"))).toBe(true); // 22:30 UTC
    expect(inQuietHours({ timeZone: "Mars/Olympus_Mons", ...NIGHT }, at("2026-01-15T07:30:00Z"))).toBe(false); // 07:30 UTC
  });
});

describe("time zones people may choose", () => {
  it.each([
    ["europe/berlin", "Europe/Berlin"],
    [" America/New_York ", "America/New_York"],
    ["US/Eastern", "America/New_York"],
    ["UTC", "UTC"],
    ["Etc/GMT+0", "UTC"],
  ])("should store %j as %s", (input, stored) => {
    expect(canonicalTimeZone(input)).toBe(stored);
  });

  it.each(["Etc/GMT-2", "etc/gmt+5", "Etc/GMT-14", "+02:00", "UTC+2", "CEST"])(
    "should refuse the fixed offset or abbreviation %j: quiet hours must follow daylight saving",
    (input) => {
      expect(() => canonicalTimeZone(input)).toThrow(
        expect.objectContaining({
          extensions: expect.objectContaining({ code: "BAD_USER_INPUT", field: "input.timeZone" }),
        }),
      );
    },
  );
});
