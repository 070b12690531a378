import { addressBudgetKey, appError, ErrorCode, requireViewer } from "@hv/kit";
import { outboxEventData } from "@hv/kit";
import type { UsersContext } from "../context";
import { checkBirthDate, checkPassword, cleanText, normalizeEmail } from "./input";
import { hashPassword, verifyPassword } from "./passwords";
import type { IssuedSession } from "./sessions";
import { profileChangedPayload } from "./profile";

interface SignUpArgs {
  input: { email: string; password: string; displayName: string; birthDate: Date };
}
interface LogInArgs {
  input: { email: string; password: string };
}
interface ChangePasswordArgs {
  input: { currentPassword: string; newPassword: string };
}

const WRONG_CREDENTIALS = "Email or password is wrong";

function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "P2002";
}

/** Checks the signed-in user's password for a sensitive change; rate-limited per user. */
async function confirmPassword(context: UsersContext, userId: string, password: string): Promise<void> {
  await context.services.limits.passwordCheckPerUser.consume(userId);
  const user = await context.services.db.user.findUnique({ where: { id: userId }, select: { passwordHash: true } });
  if (!(await verifyPassword(user?.passwordHash, password))) {
    throw appError(ErrorCode.INVALID_CREDENTIALS, "The password is wrong", { field: "password" });
  }
  await context.services.limits.passwordCheckPerUser.reset(userId);
}

export const accountResolvers = {
  Mutation: {
    async signUp(_: unknown, { input }: SignUpArgs, context: UsersContext): Promise<IssuedSession> {
      await context.services.limits.signupPerAddress.consume(addressBudgetKey(context.clientIp));
      const email = normalizeEmail(input.email, "input.email");
      const password = checkPassword(input.password, "input.password");
      const displayName = cleanText(input.displayName, "input.displayName", { min: 1, max: 50 });
      const birthDate = checkBirthDate(input.birthDate, "input.birthDate");
      const passwordHash = await hashPassword(password);
      let user;
      try {
        user = await context.services.db.$transaction(async (tx) => {
          const created = await tx.user.create({ data: { email, passwordHash, displayName, birthDate } });
          await tx.outboxEvent.create({ data: outboxEventData("user.profile_changed", profileChangedPayload(created)) });
          return created;
        });
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw appError(ErrorCode.CONFLICT, "An account with this email already exists", { field: "input.email" });
        }
        throw error;
      }
      context.services.flushEvents();
      return context.services.sessions.open(user, undefined);
    },

    async logIn(_: unknown, { input }: LogInArgs, context: UsersContext): Promise<IssuedSession> {
      // Shape problems first, without spending budget; then one point per attempt, per account
      // and per address, before the password is even looked at.
      const email = normalizeEmail(input.email, "input.email");
      if (input.password.length > 1024) throw appError(ErrorCode.INVALID_CREDENTIALS, WRONG_CREDENTIALS);
      const address = addressBudgetKey(context.clientIp);
      const accountAtAddress = `${email}|${address}`;
      const { limits } = context.services;
      await limits.loginPerAddress.consume(address);
      await limits.loginPerAccountAndAddress.consume(accountAtAddress);
      await limits.loginPerAccount.consume(email);
      const user = await context.services.db.user.findUnique({
        where: { email },
        select: { id: true, role: true, passwordHash: true, bannedAt: true },
      });
      // Same error, same work, whether the email is unknown or the password wrong.
      if (!(await verifyPassword(user?.passwordHash, input.password)) || !user) {
        throw appError(ErrorCode.INVALID_CREDENTIALS, WRONG_CREDENTIALS);
      }
      if (user.bannedAt) throw appError(ErrorCode.FORBIDDEN, "This account has been banned", { details: { reason: "banned" } });
      await limits.loginPerAccountAndAddress.reset(accountAtAddress);
      return context.services.sessions.open(user, undefined);
    },

    refreshSession(_: unknown, { refreshToken }: { refreshToken: string }, context: UsersContext): Promise<IssuedSession> {
      return context.services.sessions.refresh(refreshToken, context.clientIp);
    },

    async logOut(_: unknown, __: unknown, context: UsersContext): Promise<boolean> {
      const viewer = requireViewer(context);
      await context.services.sessions.end(viewer.sessionId, "logout");
      return true;
    },

    async logOutEverywhere(_: unknown, __: unknown, context: UsersContext): Promise<boolean> {
      const viewer = requireViewer(context);
      await context.services.sessions.endAll(viewer.userId, "logout_all");
      return true;
    },

    async changePassword(_: unknown, { input }: ChangePasswordArgs, context: UsersContext): Promise<boolean> {
      const viewer = requireViewer(context);
      const newPassword = checkPassword(input.newPassword, "input.newPassword");
      await confirmPassword(context, viewer.userId, input.currentPassword);
      await context.services.db.user.update({ where: { id: viewer.userId }, data: { passwordHash: await hashPassword(newPassword) } });
      await context.services.sessions.endAll(viewer.userId, "password_changed", viewer.sessionId);
      return true;
    },

    async deleteAccount(_: unknown, { password }: { password: string }, context: UsersContext): Promise<boolean> {
      const viewer = requireViewer(context);
      await confirmPassword(context, viewer.userId, password);
      await context.services.db.$transaction([
        context.services.db.user.delete({ where: { id: viewer.userId } }),
        context.services.db.outboxEvent.create({ data: outboxEventData("user.deleted", { userId: viewer.userId }) }),
      ]);
      context.services.flushEvents();
      await context.services.sessions.endAll(viewer.userId, "account_deleted");
      await context.services.profiles.invalidate(viewer.userId);
      return true;
    },
  },

  AuthSession: {
    user: (session: IssuedSession, _: unknown, context: UsersContext) => context.loaders.userById.load(session.userId),
  },
};
