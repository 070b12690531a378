import { createHash, randomBytes } from "node:crypto";
import { appError, ErrorCode } from "@hv/kit";
import type { Prisma } from "../generated/prisma/client";
import { TOKEN_TTL_MINUTES } from "../mail/render";

/** What an emailed token is for; a token works only for its own purpose. */
export type AccountTokenPurpose = keyof typeof TOKEN_TTL_MINUTES;

/** A sign-up waiting for its link: written to the account when the link is opened. */
export interface PendingSignUp {
  passwordHash: string;
  displayName: string;
  /** `YYYY-MM-DD`. */
  birthDate: string;
}

const PREFIX = "at_";
/** `at_` and 32 random bytes in base64url. */
const TOKEN_SHAPE = /^at_[A-Za-z0-9_-]{43}$/;
/** Longer than any token we issue: refused as input before any lookup. */
export const MAX_TOKEN_LENGTH = 128;

export function hashAccountToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

type Tx = Prisma.TransactionClient;

/** Stores a new token (hashed) and returns it, to be mailed; it expires after its purpose's TTL. */
export async function issueAccountToken(
  tx: Tx,
  input: { userId: string; purpose: AccountTokenPurpose; email: string; pending?: PendingSignUp; now?: Date },
): Promise<string> {
  const now = input.now ?? new Date();
  const token = `${PREFIX}${randomBytes(32).toString("base64url")}`;
  await tx.accountToken.create({
    data: {
      userId: input.userId,
      purpose: input.purpose,
      email: input.email,
      tokenHash: hashAccountToken(token),
      expiresAt: new Date(now.getTime() + TOKEN_TTL_MINUTES[input.purpose] * 60_000),
      ...(input.pending ? { pending: input.pending as unknown as Prisma.InputJsonValue } : {}),
    },
  });
  return token;
}

const invalidToken = (reason: "invalid" | "used" | "expired", message: string) =>
  appError(ErrorCode.INVALID_TOKEN, message, { details: { reason } });

/** Input checks: an empty or oversized token is a client bug (BAD_USER_INPUT); a wrong one is INVALID_TOKEN. */
export function checkTokenInput(token: string, field: string): string {
  if (token.length === 0) throw appError(ErrorCode.BAD_USER_INPUT, `${field} must not be empty`, { field });
  if (token.length > MAX_TOKEN_LENGTH)
    throw appError(ErrorCode.BAD_USER_INPUT, `${field} must be at most ${MAX_TOKEN_LENGTH} characters`, {
      field,
    });
  return token;
}

export interface SpentToken {
  id: string;
  userId: string;
  email: string;
  pending: PendingSignUp | null;
}

/**
 * Spends a token inside the caller's transaction: the row is locked, so two requests with the same
 * token never both succeed. `forUserId`: only that account's tokens count (others are `invalid`).
 */
export async function spendAccountToken(
  tx: Tx,
  token: string,
  purpose: AccountTokenPurpose,
  options: { forUserId?: string; now?: Date } = {},
): Promise<SpentToken> {
  const now = options.now ?? new Date();
  const unknown = () => invalidToken("invalid", "This link is not valid: ask for a new mail");
  if (!TOKEN_SHAPE.test(token)) throw unknown();
  const [row] = await tx.$queryRaw<
    Array<{
      id: string;
      user_id: string;
      purpose: string;
      email: string;
      pending: unknown;
      expires_at: Date;
      used_at: Date | null;
    }>
  >`SELECT id, user_id, purpose::text AS purpose, email, pending, expires_at, used_at FROM account_tokens WHERE token_hash = ${hashAccountToken(token)} FOR UPDATE`;
  if (
    !row ||
    row.purpose !== purpose ||
    (options.forUserId !== undefined && row.user_id !== options.forUserId)
  )
    throw unknown();
  if (row.used_at) throw invalidToken("used", "This link was already used");
  if (row.expires_at <= now) throw invalidToken("expired", "This link has expired: ask for a new mail");
  await tx.accountToken.update({ where: { id: row.id }, data: { usedAt: now } });
  return {
    id: row.id,
    userId: row.user_id,
    email: row.email,
    pending: (row.pending as PendingSignUp | null) ?? null,
  };
}

/** Ends a user's other open tokens of these purposes (after a reset or an email change they must not work). */
export async function spendOtherTokens(
  tx: Tx,
  userId: string,
  purposes: AccountTokenPurpose[],
  now = new Date(),
): Promise<void> {
  await tx.accountToken.updateMany({
    where: { userId, purpose: { in: purposes }, usedAt: null },
    data: { usedAt: now },
  });
}
