import { DateScalar, DateTimeScalar } from "@hv/kit";
import type { CompleteResolvers } from "./generated/resolvers-types";
import { accountResolvers } from "./modules/accounts";
import { deviceResolvers } from "./modules/devices";
import { notificationSettingsResolvers } from "./modules/notification-settings";
import { profileResolvers } from "./modules/profile";
import { moderationResolvers } from "./modules/moderation";
import { safetyResolvers } from "./modules/safety";

export type { UsersContext } from "./context";

export const resolvers: CompleteResolvers = {
  DateTime: DateTimeScalar,
  Date: DateScalar,
  Query: {
    ...profileResolvers.Query,
    ...deviceResolvers.Query,
    ...safetyResolvers.Query,
    ...notificationSettingsResolvers.Query,
    ...moderationResolvers.Query,
  },
  Mutation: {
    ...accountResolvers.Mutation,
    ...profileResolvers.Mutation,
    ...deviceResolvers.Mutation,
    ...notificationSettingsResolvers.Mutation,
    ...safetyResolvers.Mutation,
    ...moderationResolvers.Mutation,
  },
  ModerationCase: moderationResolvers.ModerationCase,
  ModerationReport: moderationResolvers.ModerationReport,
  User: profileResolvers.User,
  AuthSession: accountResolvers.AuthSession,
};
