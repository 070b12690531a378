import { appError, ErrorCode, requireUuid, requireViewer } from "@hv/kit";
import type { UsersContext } from "../context";
import type { MutationRegisterDeviceArgs } from "../generated/resolvers-types";
import { cleanText } from "./input";

type RegisterDeviceArgs = MutationRegisterDeviceArgs;

const PUSH_TOKEN = /^[A-Za-z0-9_:\-.]+$/;
const APP_VERSION = /^\d{1,4}(\.\d{1,4}){0,3}([-+][0-9A-Za-z.-]{1,20})?$/;
const MAX_DEVICES_PER_USER = 20;

export const deviceResolvers = {
  Query: {
    myDevices(_: unknown, __: unknown, context: UsersContext) {
      const viewer = requireViewer(context);
      return context.services.db.device.findMany({
        where: { userId: viewer.userId },
        orderBy: { createdAt: "asc" },
      });
    },
  },
  Mutation: {
    /** Binds a push token to this session; the same token registered again moves here (one install, one owner). */
    async registerDevice(_: unknown, { input }: RegisterDeviceArgs, context: UsersContext) {
      const viewer = requireViewer(context);
      const pushToken = cleanText(input.pushToken, "input.pushToken", { min: 1, max: 4096 });
      if (!PUSH_TOKEN.test(pushToken)) {
        throw appError(ErrorCode.BAD_USER_INPUT, "input.pushToken is not a push token", {
          field: "input.pushToken",
        });
      }
      const appVersion = cleanText(input.appVersion, "input.appVersion", { min: 1, max: 32 });
      if (!APP_VERSION.test(appVersion)) {
        throw appError(ErrorCode.BAD_USER_INPUT, "input.appVersion must look like 1.2.3", {
          field: "input.appVersion",
        });
      }
      const { db } = context.services;
      const count = await db.device.count({ where: { userId: viewer.userId, NOT: { pushToken } } });
      if (count >= MAX_DEVICES_PER_USER) {
        throw appError(ErrorCode.BAD_USER_INPUT, `At most ${MAX_DEVICES_PER_USER} devices per account`, {
          field: "input",
        });
      }
      const binding = {
        userId: viewer.userId,
        sessionId: viewer.sessionId,
        platform: input.platform,
        appVersion,
      };
      return db.device.upsert({ where: { pushToken }, create: { ...binding, pushToken }, update: binding });
    },
    async removeDevice(_: unknown, args: { id: string }, context: UsersContext) {
      const viewer = requireViewer(context);
      const removed = await context.services.db.device.deleteMany({
        where: { id: requireUuid(args.id, "id"), userId: viewer.userId },
      });
      if (removed.count === 0) throw appError(ErrorCode.NOT_FOUND, "No such device", { field: "id" });
      return true;
    },
  },
};
