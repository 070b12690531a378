import { createHash, randomBytes } from "node:crypto";
import { addressBudgetKey, appError, ErrorCode, type Logger, type Redis } from "@hv/kit";
import type { UsersDb } from "../db";

/** What the session service needs from the access-token machinery (kit/src/auth). */
export interface AccessTokenIssuing {
  issue(claims: {
    userId: string;
    sessionId: string;
    role: "USER" | "MODERATOR";
    accountCreatedAt?: number;
  }): Promise<{ token: string; expiresAt: Date }>;
}
export interface SessionRevoking {
  revokeSession(sessionId: string): Promise<void>;
  revokeUser(userId: string): Promise<void>;
}

export interface SessionPolicy {
  refreshTokenTtlDays: number;
  /** A spent refresh token presented again within this many seconds gets the same new pair. */
  reuseGraceSeconds: number;
}

export interface IssuedSession {
  userId: string;
  sessionId: string;
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
  /** logIn, verifyEmail, resetPassword: the phone's known-device token (see known-devices.ts). */
  knownDeviceToken?: string;
}

export type SessionEndReason =
  | "logout"
  | "logout_all"
  | "password_changed"
  | "password_reset"
  | "refresh_token_reuse"
  | "banned"
  | "suspended"
  | "account_deleted";

/** The account a session is opened for; its age goes into the access token (`created`). */
export interface SessionUser {
  id: string;
  role: "USER" | "MODERATOR";
  createdAt: Date;
  emailVerifiedAt: Date | null;
}

/** An account exists from its verification (a pending sign-up cannot act): epoch seconds. */
export function accountCreatedAt(user: Pick<SessionUser, "createdAt" | "emailVerifiedAt">): number {
  return Math.floor((user.emailVerifiedAt ?? user.createdAt).getTime() / 1000);
}

const REFRESH_TOKEN_PREFIX = "rt_";
const MAX_REFRESH_TOKEN_LENGTH = 128;

function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function newRefreshToken(): { token: string; hash: string } {
  const token = `${REFRESH_TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
  return { token, hash: hashToken(token) };
}

const unauthenticated = (reason: string, message: string) =>
  appError(ErrorCode.UNAUTHENTICATED, message, { details: { reason } });

interface SerializedSession extends Omit<IssuedSession, "accessTokenExpiresAt" | "refreshTokenExpiresAt"> {
  accessTokenExpiresAt: string;
  refreshTokenExpiresAt: string;
}

/** What a spent token's grace entry holds: the pair it was exchanged for, and who exchanged it. */
interface GraceEntry {
  issued: SerializedSession;
  /** addressBudgetKey of the refresher: only the same phone network may replay. */
  address: string;
}

/**
 * Sessions and their refresh-token families. Refresh tokens are opaque, stored hashed and spent
 * once: each refresh returns a new one. Presenting a spent token again means it leaked (or the app
 * misbehaves): the whole session ends — except within a few seconds of its spending, when a mobile
 * app racing itself gets the same new pair (kept in Redis for that window only), and only from the
 * same address and while that new refresh token is still unspent.
 */
export class SessionService {
  constructor(
    private readonly db: UsersDb,
    private readonly redis: Redis,
    private readonly tokens: AccessTokenIssuing,
    private readonly revocations: SessionRevoking,
    private readonly policy: SessionPolicy,
    private readonly logger: Logger,
  ) {}

  private refreshExpiry(now: Date): Date {
    return new Date(now.getTime() + this.policy.refreshTokenTtlDays * 86_400_000);
  }

  async open(user: SessionUser, userAgent: string | undefined): Promise<IssuedSession> {
    const now = new Date();
    const refresh = newRefreshToken();
    const session = await this.db.session.create({
      data: {
        userId: user.id,
        expiresAt: this.refreshExpiry(now),
        userAgent: userAgent?.slice(0, 256) ?? null,
        refreshTokens: { create: { tokenHash: refresh.hash } },
      },
    });
    const access = await this.tokens.issue({
      userId: user.id,
      sessionId: session.id,
      role: user.role,
      accountCreatedAt: accountCreatedAt(user),
    });
    return {
      userId: user.id,
      sessionId: session.id,
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt,
      refreshToken: refresh.token,
      refreshTokenExpiresAt: session.expiresAt,
    };
  }

  async refresh(presented: string, clientIp: string): Promise<IssuedSession> {
    const address = addressBudgetKey(clientIp);
    if (!presented.startsWith(REFRESH_TOKEN_PREFIX) || presented.length > MAX_REFRESH_TOKEN_LENGTH) {
      throw unauthenticated("invalid_refresh_token", "This refresh token is not valid: sign in again");
    }
    const tokenHash = hashToken(presented);
    const graceKey = `hv:users:refresh-grace:${tokenHash}`;
    const outcome = await this.db.$transaction(async (tx) => {
      // Row lock: a concurrent refresh of the same token waits here until this one commits.
      const [row] = await tx.$queryRaw<
        Array<{ id: string; session_id: string; spent_at: Date | null; replaced_by_id: string | null }>
      >`SELECT id, session_id, spent_at, replaced_by_id FROM refresh_tokens WHERE token_hash = ${tokenHash} FOR UPDATE`;
      if (!row)
        throw unauthenticated("invalid_refresh_token", "This refresh token is not valid: sign in again");
      const session = await tx.session.findUnique({
        where: { id: row.session_id },
        include: {
          user: { select: { id: true, role: true, bannedAt: true, createdAt: true, emailVerifiedAt: true } },
        },
      });
      const now = new Date();
      if (!session || session.revokedAt || session.expiresAt <= now || session.user.bannedAt) {
        throw unauthenticated("session_ended", "This session has ended: sign in again");
      }
      if (row.spent_at) {
        const withinGrace = now.getTime() - row.spent_at.getTime() <= this.policy.reuseGraceSeconds * 1000;
        const cached = withinGrace ? await this.redis.get(graceKey) : null;
        const entry = cached ? (JSON.parse(cached) as GraceEntry) : null;
        const successor = row.replaced_by_id
          ? await tx.refreshToken.findUnique({ where: { id: row.replaced_by_id }, select: { spentAt: true } })
          : null;
        if (entry && entry.address === address && successor && successor.spentAt === null) {
          return { kind: "replayed" as const, issued: deserialize(entry.issued) };
        }
        return { kind: "reused" as const, sessionId: session.id };
      }
      const next = newRefreshToken();
      const successor = await tx.refreshToken.create({
        data: { sessionId: session.id, tokenHash: next.hash },
      });
      await tx.refreshToken.update({
        where: { id: row.id },
        data: { spentAt: now, replacedById: successor.id },
      });
      const updated = await tx.session.update({
        where: { id: session.id },
        data: { lastUsedAt: now, expiresAt: this.refreshExpiry(now) },
      });
      const access = await this.tokens.issue({
        userId: session.user.id,
        sessionId: session.id,
        role: session.user.role,
        accountCreatedAt: accountCreatedAt(session.user),
      });
      const issued: IssuedSession = {
        userId: session.user.id,
        sessionId: session.id,
        accessToken: access.token,
        accessTokenExpiresAt: access.expiresAt,
        refreshToken: next.token,
        refreshTokenExpiresAt: updated.expiresAt,
      };
      // Written before commit, so a racing refresh released by the row lock always finds it.
      const entry: GraceEntry = { issued: JSON.parse(JSON.stringify(issued)) as SerializedSession, address };
      await this.redis.set(graceKey, JSON.stringify(entry), "EX", Math.max(1, this.policy.reuseGraceSeconds));
      return { kind: "rotated" as const, issued };
    });
    if (outcome.kind === "reused") {
      this.logger.warn({ sessionId: outcome.sessionId }, "spent refresh token reused: ending the session");
      await this.end(outcome.sessionId, "refresh_token_reuse");
      throw unauthenticated(
        "refresh_token_reused",
        "This refresh token was already used: the session has ended, sign in again",
      );
    }
    return outcome.issued;
  }

  /** Ends one session now: its refresh tokens stop working, its access tokens are refused, its devices go. */
  async end(sessionId: string, reason: SessionEndReason): Promise<void> {
    await this.db.$transaction([
      this.db.session.updateMany({
        where: { id: sessionId, revokedAt: null },
        data: { revokedAt: new Date(), revokedReason: reason },
      }),
      this.db.device.deleteMany({ where: { sessionId } }),
    ]);
    await this.revocations.revokeSession(sessionId);
  }

  /** Ends every session of a user, or every one but `keepSessionId`. */
  async endAll(userId: string, reason: SessionEndReason, keepSessionId?: string): Promise<void> {
    const sessions = await this.db.session.findMany({
      where: { userId, revokedAt: null, ...(keepSessionId ? { id: { not: keepSessionId } } : {}) },
      select: { id: true },
    });
    const ids = sessions.map((session) => session.id);
    await this.db.$transaction([
      this.db.session.updateMany({
        where: { id: { in: ids } },
        data: { revokedAt: new Date(), revokedReason: reason },
      }),
      this.db.device.deleteMany({ where: { sessionId: { in: ids } } }),
    ]);
    // Each session by id (exact, whatever the clocks say), and without exceptions also the user:
    // that covers a session a racing login opens after the list above was read.
    await Promise.all(ids.map((id) => this.revocations.revokeSession(id)));
    if (!keepSessionId) await this.revocations.revokeUser(userId);
  }
}

function deserialize(parsed: SerializedSession): IssuedSession {
  return {
    ...parsed,
    accessTokenExpiresAt: new Date(parsed.accessTokenExpiresAt),
    refreshTokenExpiresAt: new Date(parsed.refreshTokenExpiresAt),
  };
}
