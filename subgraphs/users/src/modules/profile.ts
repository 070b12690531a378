import {
  appError,
  ErrorCode,
  isUuid,
  requireUuid,
  requireViewer,
  outboxEventData,
  type Viewer,
} from "@hv/kit";
import type { UsersContext } from "../context";
import type { MutationUpdateProfileArgs } from "../generated/resolvers-types";
import type { UserRow } from "../loaders";
import { ageOn, checkIntRange, cleanText } from "./input";

const MAX_INTERESTS = 10;
const MAX_DISTANCE_KM = 500;

/** What Discovery keeps of a profile (see the event catalogue). */
/** `banned` is also true while a suspension lasts (Discovery, Chat and Media hide the account alike). */
export function profileChangedPayload(
  user: Pick<
    UserRow,
    | "id"
    | "birthDate"
    | "gender"
    | "gendersOfInterest"
    | "ageMin"
    | "ageMax"
    | "maxDistanceKm"
    | "visibility"
    | "bannedAt"
  > &
    Partial<Pick<UserRow, "suspendedUntil">>,
  now: Date = new Date(),
) {
  return {
    userId: user.id,
    birthDate: user.birthDate.toISOString().slice(0, 10),
    gender: user.gender,
    gendersOfInterest: user.gendersOfInterest,
    ageMin: user.ageMin,
    ageMax: user.ageMax,
    maxDistanceKm: user.maxDistanceKm,
    visibility: user.visibility,
    banned: user.bannedAt !== null || (user.suspendedUntil != null && user.suspendedUntil > now),
  };
}

/** Banned profiles are gone for everyone; hidden ones for everyone but their owner. */
export function visibleTo(user: UserRow | null, viewer: Viewer | null): UserRow | null {
  if (!user || user.bannedAt) return null;
  if (user.visibility === "HIDDEN" && viewer?.userId !== user.id) return null;
  return user;
}

const ownerOnly =
  <T>(read: (user: UserRow) => T) =>
  (user: UserRow, _: unknown, context: UsersContext): T | null =>
    context.viewer?.userId === user.id ? read(user) : null;

function cleanInterests(values: string[]): string[] {
  if (values.length > MAX_INTERESTS) {
    throw appError(ErrorCode.BAD_USER_INPUT, `input.interests may hold at most ${MAX_INTERESTS} entries`, {
      field: "input.interests",
    });
  }
  const cleaned = values.map((value, index) =>
    cleanText(value, `input.interests[${index}]`, { min: 1, max: 30 }),
  );
  return [...new Set(cleaned.map((value) => value.toLowerCase()))];
}

export const profileResolvers = {
  Query: {
    async user(_: unknown, args: { id: string }, context: UsersContext) {
      return visibleTo(await context.loaders.userById.load(requireUuid(args.id, "id")), context.viewer);
    },
    async me(_: unknown, __: unknown, context: UsersContext) {
      const viewer = requireViewer(context);
      return context.loaders.userById.load(viewer.userId);
    },
  },
  Mutation: {
    async updateProfile(_: unknown, { input }: MutationUpdateProfileArgs, context: UsersContext) {
      const viewer = requireViewer(context);
      const data: Record<string, unknown> = {};
      if (input.displayName != null)
        data.displayName = cleanText(input.displayName, "input.displayName", { min: 1, max: 50 });
      if (input.bio !== undefined) {
        data.bio =
          input.bio === null
            ? null
            : cleanText(input.bio, "input.bio", { min: 0, max: 500, multiline: true }) || null;
      }
      if (input.pronouns !== undefined) {
        data.pronouns =
          input.pronouns === null
            ? null
            : cleanText(input.pronouns, "input.pronouns", { min: 0, max: 40 }) || null;
      }
      if (input.gender !== undefined) data.gender = input.gender;
      if (input.gendersOfInterest != null) data.gendersOfInterest = [...new Set(input.gendersOfInterest)];
      if (input.interests != null) data.interests = cleanInterests(input.interests);
      if (input.visibility != null) data.visibility = input.visibility;
      const preferences = input.discoveryPreferences;
      if (preferences != null) {
        data.ageMin = checkIntRange(preferences.ageMin, "input.discoveryPreferences.ageMin", 18, 99);
        data.ageMax = checkIntRange(preferences.ageMax, "input.discoveryPreferences.ageMax", 18, 99);
        data.maxDistanceKm = checkIntRange(
          preferences.maxDistanceKm,
          "input.discoveryPreferences.maxDistanceKm",
          1,
          MAX_DISTANCE_KM,
        );
        if (preferences.ageMin > preferences.ageMax) {
          throw appError(ErrorCode.BAD_USER_INPUT, "ageMin must not be above ageMax", {
            field: "input.discoveryPreferences",
          });
        }
      }
      const { services } = context;
      const updated = await services.db.$transaction(async (tx) => {
        const user = await tx.user.update({
          where: { id: viewer.userId },
          data,
          omit: { passwordHash: true, email: true },
        });
        await tx.outboxEvent.create({
          data: outboxEventData("user.profile_changed", profileChangedPayload(user)),
        });
        return user;
      });
      services.flushEvents();
      await services.profiles.invalidate(viewer.userId);
      context.loaders.userById.clear(viewer.userId).prime(viewer.userId, updated);
      return updated;
    },
  },
  User: {
    async __resolveReference(reference: { id: string }, context: UsersContext) {
      if (!isUuid(reference.id)) return null;
      return visibleTo(await context.loaders.userById.load(reference.id.toLowerCase()), context.viewer);
    },
    age: (user: UserRow) => ageOn(user.birthDate),
    async email(user: UserRow, _: unknown, context: UsersContext) {
      if (context.viewer?.userId !== user.id) return null;
      const row = await context.services.db.user.findUnique({
        where: { id: user.id },
        select: { email: true },
      });
      return row?.email ?? null;
    },
    birthDate: ownerOnly((user) => user.birthDate),
    visibility: ownerOnly((user) => user.visibility),
    role: ownerOnly((user) => user.role),
    discoveryPreferences: ownerOnly((user) => ({
      ageMin: user.ageMin,
      ageMax: user.ageMax,
      maxDistanceKm: user.maxDistanceKm,
    })),
  },
};
