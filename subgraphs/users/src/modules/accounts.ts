import { addressBudgetKey, appError, ErrorCode, outboxEventData, requireViewer } from "@hv/kit";
import type { UsersContext } from "../context";
import type {
  MutationChangePasswordArgs,
  MutationLogInArgs,
  MutationRequestEmailChangeArgs,
  MutationResetPasswordArgs,
  MutationSignUpArgs,
} from "../generated/resolvers-types";
import type { MailJob } from "../mail/jobs";
import {
  checkTokenInput,
  issueAccountToken,
  spendAccountToken,
  spendOtherTokens,
  type PendingSignUp,
} from "./account-tokens";
import { checkBirthDate, checkPassword, cleanText, normalizeEmail } from "./input";
import { hashPassword, verifyPassword } from "./passwords";
import { profileChangedPayload } from "./profile";
import type { IssuedSession, SessionUser } from "./sessions";

type SignUpArgs = MutationSignUpArgs;
type LogInArgs = MutationLogInArgs;
type ChangePasswordArgs = MutationChangePasswordArgs;
type ResetPasswordArgs = MutationResetPasswordArgs;
type RequestEmailChangeArgs = MutationRequestEmailChangeArgs;

/** What signUp answers, the same for a new address and a taken one. */
interface SignUpResult {
  status: "VERIFICATION_PENDING";
  email: string;
}

const WRONG_CREDENTIALS =
  "Email or password is wrong, or the email address is not confirmed yet (see the mail we sent)";
/** The password of an account whose sign-up waits for its link: matches nothing (the sign-ups' passwords wait on their tokens). */
const PENDING_PASSWORD_HASH = "!pending";
const MAX_DEVICE_TOKEN_LENGTH = 128;

function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "P2002";
}

/** Checks the signed-in user's password for a sensitive change; rate-limited per user. */
async function confirmPassword(
  context: UsersContext,
  userId: string,
  password: string,
  field: string,
): Promise<void> {
  await context.services.limits.passwordCheckPerUser.consume(userId);
  const user = await context.services.db.user.findUnique({
    where: { id: userId },
    select: { passwordHash: true },
  });
  if (!(await verifyPassword(user?.passwordHash, password))) {
    throw appError(ErrorCode.INVALID_CREDENTIALS, "The password is wrong", { field });
  }
  await context.services.limits.passwordCheckPerUser.reset(userId);
}

/** Queues a mail; a queue failure is logged, never the caller's failure (the person can ask again). */
async function sendMail(context: UsersContext, job: MailJob): Promise<void> {
  try {
    await context.services.mail.send(job);
  } catch (error) {
    context.logger.error({ err: error, kind: job.kind }, "mail could not be queued");
  }
}

/** A session for a phone that just proved itself, with a known-device token for its later logins. */
function suspended(until: Date) {
  return appError(ErrorCode.ACCOUNT_SUSPENDED, "This account is suspended", {
    details: { until: until.toISOString() },
  });
}

/** A live suspension refuses the login; a past one is cleared and the account shown again (profile_changed). */
async function endSuspension(context: UsersContext, userId: string, until: Date): Promise<void> {
  if (until > new Date()) throw suspended(until);
  const { db, profiles } = context.services;
  await db.$transaction(async (tx) => {
    const cleared = await tx.user.updateManyAndReturn({
      where: { id: userId, suspendedUntil: until },
      data: { suspendedUntil: null },
      omit: { passwordHash: true, email: true },
    });
    const user = cleared[0];
    if (user)
      await tx.outboxEvent.create({
        data: outboxEventData("user.profile_changed", profileChangedPayload(user)),
      });
  });
  context.services.flushEvents();
  await profiles.invalidate(userId);
}

async function openSession(
  context: UsersContext,
  user: SessionUser,
  knownDeviceToken?: string,
): Promise<IssuedSession> {
  const session = await context.services.sessions.open(user, undefined);
  return {
    ...session,
    knownDeviceToken: knownDeviceToken ?? (await context.services.knownDevices.remember(user.id)),
  };
}

/**
 * Writes a sign-up, after signUp answered. A new address gets a pending account (hidden, no
 * usable password); every sign-up of a pending address gets its own link carrying its own
 * password; a verified address gets "you already have an account".
 */
async function recordSignUp(context: UsersContext, email: string, pending: PendingSignUp): Promise<void> {
  const { db } = context.services;
  const mail = await db.$transaction(async (tx): Promise<MailJob> => {
    const existing = await tx.user.findUnique({
      where: { email },
      select: { id: true, emailVerifiedAt: true },
    });
    if (existing?.emailVerifiedAt) return { kind: "already_registered", to: email };
    // No event yet: other subgraphs learn of the account when its link is opened (verifyEmail).
    const userId =
      existing?.id ??
      (
        await tx.user.create({
          data: {
            email,
            passwordHash: PENDING_PASSWORD_HASH,
            displayName: pending.displayName,
            birthDate: new Date(pending.birthDate),
            visibility: "HIDDEN",
          },
          select: { id: true },
        })
      ).id;
    const token = await issueAccountToken(tx, { userId, purpose: "VERIFY_EMAIL", email, pending });
    return { kind: "verify_email", to: email, token };
  });
  await sendMail(context, mail);
}

export const accountResolvers = {
  Mutation: {
    async signUp(_: unknown, { input }: SignUpArgs, context: UsersContext): Promise<SignUpResult> {
      await context.services.limits.signupPerAddress.consume(addressBudgetKey(context.clientIp));
      const email = normalizeEmail(input.email, "input.email");
      const password = checkPassword(input.password, "input.password");
      const displayName = cleanText(input.displayName, "input.displayName", { min: 1, max: 50 });
      const birthDate = checkBirthDate(input.birthDate, "input.birthDate");
      const pending: PendingSignUp = {
        passwordHash: await hashPassword(password),
        displayName,
        birthDate: birthDate.toISOString().slice(0, 10),
      };
      context.services.afterResponse.run("sign-up", async () => {
        try {
          await recordSignUp(context, email, pending);
        } catch (error) {
          // Two sign-ups of a new address at once: the other one created the account; retry as the second.
          if (!isUniqueViolation(error)) throw error;
          await recordSignUp(context, email, pending);
        }
      });
      return { status: "VERIFICATION_PENDING", email };
    },

    async verifyEmail(
      _: unknown,
      { token }: { token: string },
      context: UsersContext,
    ): Promise<IssuedSession> {
      checkTokenInput(token, "token");
      const { db } = context.services;
      const user = await db.$transaction(async (tx) => {
        const spent = await spendAccountToken(tx, token, "VERIFY_EMAIL");
        const account = await tx.user.findUnique({
          where: { id: spent.userId },
          select: { emailVerifiedAt: true, email: true },
        });
        // Another link of the same address was opened first, or the address moved on: this one is dead.
        if (!account || account.emailVerifiedAt || account.email !== spent.email || !spent.pending) {
          throw appError(ErrorCode.INVALID_TOKEN, "This link was already used", {
            details: { reason: "used" },
          });
        }
        await spendOtherTokens(tx, spent.userId, ["VERIFY_EMAIL"]);
        const verified = await tx.user.update({
          where: { id: spent.userId },
          data: {
            emailVerifiedAt: new Date(),
            passwordHash: spent.pending.passwordHash,
            displayName: spent.pending.displayName,
            birthDate: new Date(spent.pending.birthDate),
            visibility: "VISIBLE",
          },
        });
        await tx.outboxEvent.create({
          data: outboxEventData("user.profile_changed", profileChangedPayload(verified)),
        });
        return verified;
      });
      context.services.flushEvents();
      await context.services.profiles.invalidate(user.id);
      return openSession(context, user);
    },

    async logIn(_: unknown, { input }: LogInArgs, context: UsersContext): Promise<IssuedSession> {
      // Shape problems first, without spending budget; then one point per attempt before the
      // password is even looked at: the known phone's own budget, or the account's for strangers.
      const email = normalizeEmail(input.email, "input.email");
      if (input.password.length > 1024) throw appError(ErrorCode.INVALID_CREDENTIALS, WRONG_CREDENTIALS);
      const presentedDevice = input.knownDeviceToken ?? null;
      if (presentedDevice !== null && presentedDevice.length > MAX_DEVICE_TOKEN_LENGTH) {
        throw appError(
          ErrorCode.BAD_USER_INPUT,
          `input.knownDeviceToken must be at most ${MAX_DEVICE_TOKEN_LENGTH} characters`,
          { field: "input.knownDeviceToken" },
        );
      }
      const { limits, db, knownDevices } = context.services;
      const user = await db.user.findUnique({
        where: { email },
        select: {
          id: true,
          role: true,
          passwordHash: true,
          bannedAt: true,
          suspendedUntil: true,
          emailVerifiedAt: true,
          createdAt: true,
        },
      });
      const knownDeviceId = user ? await knownDevices.recognise(user.id, presentedDevice) : null;
      if (knownDeviceId) {
        await limits.loginPerKnownDevice.consume(knownDeviceId);
      } else {
        await limits.loginPerAddress.consume(addressBudgetKey(context.clientIp));
        await limits.loginPerAccount.consume(email);
      }
      // Same error, same work, whether the email is unknown, pending or the password wrong.
      if (!(await verifyPassword(user?.passwordHash, input.password)) || !user || !user.emailVerifiedAt) {
        throw appError(ErrorCode.INVALID_CREDENTIALS, WRONG_CREDENTIALS);
      }
      if (user.bannedAt)
        throw appError(ErrorCode.FORBIDDEN, "This account has been banned", {
          details: { reason: "banned" },
        });
      if (user.suspendedUntil) await endSuspension(context, user.id, user.suspendedUntil);
      if (knownDeviceId) {
        await knownDevices.touch(knownDeviceId);
        await limits.loginPerKnownDevice.reset(knownDeviceId);
      }
      return openSession(context, user, knownDeviceId && presentedDevice ? presentedDevice : undefined);
    },

    async requestPasswordReset(
      _: unknown,
      { email: rawEmail }: { email: string },
      context: UsersContext,
    ): Promise<boolean> {
      await context.services.limits.recoveryPerAddress.consume(addressBudgetKey(context.clientIp));
      const email = normalizeEmail(rawEmail, "email");
      context.services.afterResponse.run("password reset request", async () => {
        const { db } = context.services;
        const token = await db.$transaction(async (tx) => {
          const user = await tx.user.findUnique({ where: { email }, select: { id: true, bannedAt: true } });
          if (!user || user.bannedAt) return null;
          return issueAccountToken(tx, { userId: user.id, purpose: "RESET_PASSWORD", email });
        });
        if (token) await sendMail(context, { kind: "reset_password", to: email, token });
      });
      return true;
    },

    async resetPassword(
      _: unknown,
      { input }: ResetPasswordArgs,
      context: UsersContext,
    ): Promise<IssuedSession> {
      checkTokenInput(input.token, "input.token");
      const newPassword = checkPassword(input.newPassword, "input.newPassword");
      const passwordHash = await hashPassword(newPassword);
      const { db, sessions, knownDevices, limits } = context.services;
      const user = await db.$transaction(async (tx) => {
        const spent = await spendAccountToken(tx, input.token, "RESET_PASSWORD");
        const account = await tx.user.findUnique({
          where: { id: spent.userId },
          select: { email: true, bannedAt: true, suspendedUntil: true },
        });
        // The address changed since the mail was sent: the link went to the old one.
        if (!account || account.email !== spent.email)
          throw appError(ErrorCode.INVALID_TOKEN, "This link is not valid: ask for a new mail", {
            details: { reason: "invalid" },
          });
        if (account.bannedAt)
          throw appError(ErrorCode.FORBIDDEN, "This account has been banned", {
            details: { reason: "banned" },
          });
        if (account.suspendedUntil && account.suspendedUntil > new Date())
          throw suspended(account.suspendedUntil);
        await spendOtherTokens(tx, spent.userId, ["RESET_PASSWORD", "VERIFY_EMAIL"]);
        // Opening the link proves the address: a pending sign-up becomes a verified account.
        const pendingBefore = await tx.user.findUnique({
          where: { id: spent.userId },
          select: { emailVerifiedAt: true },
        });
        const updated = await tx.user.update({
          where: { id: spent.userId },
          data: {
            passwordHash,
            ...(pendingBefore?.emailVerifiedAt
              ? {}
              : { emailVerifiedAt: new Date(), visibility: "VISIBLE" as const }),
          },
        });
        if (!pendingBefore?.emailVerifiedAt) {
          await tx.outboxEvent.create({
            data: outboxEventData("user.profile_changed", profileChangedPayload(updated)),
          });
        }
        return updated;
      });
      context.services.flushEvents();
      await knownDevices.forgetAll(user.id);
      // This phone's session first, then every other one ends (as changePassword does: a whole-user
      // revocation would also refuse this session's access token, issued within the same second).
      const session = await openSession(context, user);
      await sessions.endAll(user.id, "password_reset", session.sessionId);
      await limits.loginPerAccount.reset(user.email);
      await context.services.profiles.invalidate(user.id);
      return session;
    },

    async requestEmailChange(
      _: unknown,
      { input }: RequestEmailChangeArgs,
      context: UsersContext,
    ): Promise<boolean> {
      const viewer = requireViewer(context);
      const newEmail = normalizeEmail(input.newEmail, "input.newEmail");
      await confirmPassword(context, viewer.userId, input.password, "input.password");
      const { db } = context.services;
      const current = await db.user.findUnique({ where: { id: viewer.userId }, select: { email: true } });
      if (current?.email === newEmail)
        throw appError(ErrorCode.BAD_USER_INPUT, "input.newEmail is already your email address", {
          field: "input.newEmail",
        });
      context.services.afterResponse.run("email change request", async () => {
        const mail = await db.$transaction(async (tx): Promise<MailJob> => {
          const taken = await tx.user.findUnique({ where: { email: newEmail }, select: { id: true } });
          if (taken) return { kind: "email_change_address_taken", to: newEmail };
          const token = await issueAccountToken(tx, {
            userId: viewer.userId,
            purpose: "CHANGE_EMAIL",
            email: newEmail,
          });
          return { kind: "confirm_email_change", to: newEmail, token };
        });
        await sendMail(context, mail);
      });
      return true;
    },

    async confirmEmailChange(
      _: unknown,
      { token }: { token: string },
      context: UsersContext,
    ): Promise<boolean> {
      const viewer = requireViewer(context);
      checkTokenInput(token, "token");
      const { db } = context.services;
      let change: { oldEmail: string; newEmail: string };
      try {
        change = await db.$transaction(async (tx) => {
          const spent = await spendAccountToken(tx, token, "CHANGE_EMAIL", { forUserId: viewer.userId });
          const before = await tx.user.findUniqueOrThrow({
            where: { id: viewer.userId },
            select: { email: true },
          });
          await spendOtherTokens(tx, viewer.userId, ["CHANGE_EMAIL", "RESET_PASSWORD"]);
          await tx.user.update({
            where: { id: viewer.userId },
            data: { email: spent.email, emailVerifiedAt: new Date() },
          });
          return { oldEmail: before.email, newEmail: spent.email };
        });
      } catch (error) {
        if (isUniqueViolation(error))
          throw appError(ErrorCode.CONFLICT, "This address has meanwhile been taken by another account", {
            field: "token",
          });
        throw error;
      }
      await context.services.profiles.invalidate(viewer.userId);
      await sendMail(context, { kind: "email_changed", to: change.oldEmail, newEmail: change.newEmail });
      return true;
    },

    refreshSession(
      _: unknown,
      { refreshToken }: { refreshToken: string },
      context: UsersContext,
    ): Promise<IssuedSession> {
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
      await confirmPassword(context, viewer.userId, input.currentPassword, "input.currentPassword");
      await context.services.db.user.update({
        where: { id: viewer.userId },
        data: { passwordHash: await hashPassword(newPassword) },
      });
      await context.services.sessions.endAll(viewer.userId, "password_changed", viewer.sessionId);
      return true;
    },

    async deleteAccount(
      _: unknown,
      { password }: { password: string },
      context: UsersContext,
    ): Promise<boolean> {
      const viewer = requireViewer(context);
      await confirmPassword(context, viewer.userId, password, "password");
      await context.services.db.$transaction([
        context.services.db.user.delete({ where: { id: viewer.userId } }),
        context.services.db.outboxEvent.create({
          data: outboxEventData("user.deleted", { userId: viewer.userId }),
        }),
      ]);
      context.services.flushEvents();
      await context.services.sessions.endAll(viewer.userId, "account_deleted");
      await context.services.profiles.invalidate(viewer.userId);
      return true;
    },
  },

  AuthSession: {
    async user(session: IssuedSession, _: unknown, context: UsersContext) {
      const user = await context.loaders.userById.load(session.userId);
      if (!user) throw appError(ErrorCode.NOT_FOUND, "The session's account no longer exists");
      return user;
    },
    knownDeviceToken: (session: IssuedSession) => session.knownDeviceToken ?? null,
  },
};
