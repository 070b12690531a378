import { appError, ErrorCode, requireViewer } from "@hv/kit";
import type { UsersContext } from "../context";
import type { NotificationSettings } from "../generated/prisma/client";
import type { MutationUpdateNotificationSettingsArgs } from "../generated/resolvers-types";

/**
 * What a person wants to be notified about, and when not: per kind (messages, matches, likes),
 * whether message text shows on the lock screen, and quiet hours in their own IANA time zone.
 * The push worker reads the same row (src/push) when it decides whether to notify.
 */

/** The settings of someone who never changed them. */
export const DEFAULT_NOTIFICATION_SETTINGS = {
  messages: true,
  matches: true,
  likes: true,
  messagePreviews: true,
  timeZone: "UTC",
  quietStart: null,
  quietEnd: null,
} as const satisfies Omit<NotificationSettings, "userId" | "updatedAt">;

export type NotificationPreferences = Pick<
  NotificationSettings,
  "messages" | "matches" | "likes" | "messagePreviews" | "timeZone" | "quietStart" | "quietEnd"
>;

/** `input.quietHours`: null turns quiet hours off; omitted leaves them as they are. */
type UpdateNotificationSettingsArgs = MutationUpdateNotificationSettingsArgs;

function bad(field: string, message: string): never {
  throw appError(ErrorCode.BAD_USER_INPUT, message, { field });
}

const TIME_ZONE = /^[A-Za-z][A-Za-z0-9_+\-/]*$/;
const TIME_ZONE_MAX = 64;

/** IANA's fixed-offset zones (`Etc/GMT-2` is UTC+2, sign inverted): no daylight saving, ever. */
const FIXED_OFFSET_ZONE = /^Etc\/GMT[+-]\d{1,2}$/;

/**
 * The canonical IANA name of a time zone (`europe/berlin` → `Europe/Berlin`), or BAD_USER_INPUT.
 * Offsets (`+02:00`, and IANA's fixed-offset `Etc/GMT±N` zones) and abbreviations Intl does not
 * know are refused: quiet hours must follow the zone's daylight-saving changes. (`UTC`, `GMT` and
 * `Etc/GMT+0` are accepted and stored as `UTC`.)
 */
export function canonicalTimeZone(value: string, field = "input.timeZone"): string {
  const text = value.trim();
  if (text.length === 0) bad(field, `${field} must not be empty`);
  if (text.length > TIME_ZONE_MAX) bad(field, `${field} must be at most ${TIME_ZONE_MAX} characters`);
  if (!TIME_ZONE.test(text)) bad(field, `${field} must be an IANA time zone such as Europe/Berlin`);
  let canonical: string;
  try {
    canonical = new Intl.DateTimeFormat("en-US", { timeZone: text }).resolvedOptions().timeZone;
  } catch {
    bad(field, `${field} is not a known IANA time zone`);
  }
  if (FIXED_OFFSET_ZONE.test(canonical))
    bad(field, `${field} must be a place's time zone such as Europe/Berlin, not a fixed offset`);
  return canonical;
}

const CLOCK_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** `HH:MM` (24-hour) → minutes after midnight, or BAD_USER_INPUT. */
export function parseClockTime(value: string, field: string): number {
  const match = CLOCK_TIME.exec(value);
  if (!match) bad(field, `${field} must be a 24-hour time HH:MM, e.g. 22:30`);
  return Number(match[1]) * 60 + Number(match[2]);
}

export function formatClockTime(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Minutes after local midnight at `at` in `timeZone` (a canonical IANA name). */
export function localMinutes(timeZone: string, at: Date): number {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    if (formatters.size > 1000) formatters.clear();
    formatters.set(timeZone, formatter);
  }
  let hour = 0;
  let minute = 0;
  for (const part of formatter.formatToParts(at)) {
    if (part.type === "hour") hour = Number(part.value) % 24;
    if (part.type === "minute") minute = Number(part.value);
  }
  return hour * 60 + minute;
}

/**
 * Whether `at` falls in the person's quiet hours: from start (inclusive) to end (exclusive), local
 * time; a start after the end spans midnight (22:00–07:00). An unknown stored zone counts as UTC.
 */
export function inQuietHours(
  settings: Pick<NotificationPreferences, "timeZone" | "quietStart" | "quietEnd">,
  at: Date,
): boolean {
  const { quietStart: start, quietEnd: end } = settings;
  if (start === null || end === null || start === end) return false;
  let now: number;
  try {
    now = localMinutes(settings.timeZone, at);
  } catch {
    now = localMinutes("UTC", at);
  }
  return start < end ? now >= start && now < end : now >= start || now < end;
}

function toGraphQL(settings: NotificationPreferences) {
  return {
    messages: settings.messages,
    matches: settings.matches,
    likes: settings.likes,
    messagePreviews: settings.messagePreviews,
    timeZone: settings.timeZone,
    quietHours:
      settings.quietStart === null || settings.quietEnd === null
        ? null
        : { start: formatClockTime(settings.quietStart), end: formatClockTime(settings.quietEnd) },
  };
}

export const notificationSettingsResolvers = {
  Query: {
    async myNotificationSettings(_: unknown, __: unknown, context: UsersContext) {
      const viewer = requireViewer(context);
      const row = await context.services.db.notificationSettings.findUnique({
        where: { userId: viewer.userId },
      });
      return toGraphQL(row ?? DEFAULT_NOTIFICATION_SETTINGS);
    },
  },
  Mutation: {
    /** Changes only what the input names; `quietHours: null` turns quiet hours off. */
    async updateNotificationSettings(
      _: unknown,
      { input }: UpdateNotificationSettingsArgs,
      context: UsersContext,
    ) {
      const viewer = requireViewer(context);
      const data: Partial<NotificationPreferences> = {};
      for (const kind of ["messages", "matches", "likes", "messagePreviews"] as const) {
        const value = input[kind];
        if (value != null) data[kind] = value;
      }
      if (input.timeZone != null) data.timeZone = canonicalTimeZone(input.timeZone);
      if (input.quietHours === null) {
        data.quietStart = null;
        data.quietEnd = null;
      } else if (input.quietHours !== undefined) {
        const start = parseClockTime(input.quietHours.start, "input.quietHours.start");
        const end = parseClockTime(input.quietHours.end, "input.quietHours.end");
        if (start === end)
          bad("input.quietHours", "input.quietHours must not start and end at the same time");
        data.quietStart = start;
        data.quietEnd = end;
      }
      const row = await context.services.db.notificationSettings.upsert({
        where: { userId: viewer.userId },
        create: { userId: viewer.userId, ...data },
        update: data,
      });
      return toGraphQL(row);
    },
  },
};
