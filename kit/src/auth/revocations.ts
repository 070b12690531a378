import type { Redis } from "../redis";
import type { Viewer } from "./viewer";

/** No access token lives longer than this (AUTH_ACCESS_TOKEN_TTL_SECONDS is capped at it). */
export const MAX_ACCESS_TOKEN_TTL_SECONDS = 900;

/** Verifiers accept this much clock difference between issuer and verifier. */
export const CLOCK_TOLERANCE_SECONDS = 5;

/** A revocation only has to outlive every token it refuses. */
const REVOCATION_TTL_SECONDS = MAX_ACCESS_TOKEN_TTL_SECONDS + CLOCK_TOLERANCE_SECONDS + 60;

const KEY_PREFIX = "hv:auth:revoked";

/**
 * The Redis keys a revocation of this viewer lives under: `session` exists when the session is
 * revoked; `user` holds the epoch second up to which the user's tokens (by `iat`) are revoked.
 */
export function revocationKeys(viewer: Pick<Viewer, "userId" | "sessionId">): { session: string; user: string } {
  return { session: `${KEY_PREFIX}:session:${viewer.sessionId}`, user: `${KEY_PREFIX}:user:${viewer.userId}` };
}

/** What a verifier asks on every request. */
export interface RevocationCheck {
  /** `issuedAt` is the token's `iat` (epoch seconds). */
  isRevoked(viewer: Viewer, issuedAt: number): Promise<boolean>;
}

/**
 * Makes logout, password change and bans take effect at once instead of at the access token's
 * expiry. Redis keys, each expiring when the last token it could refuse has expired anyway:
 * a revoked session refuses all its tokens; a revoked user refuses every token issued up to the
 * revocation (compared with `iat`, whole seconds: a token issued in the same second is refused too).
 */
export class SessionRevocations implements RevocationCheck {
  constructor(
    private readonly redis: Redis,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  private sessionKey(sessionId: string): string {
    return revocationKeys({ sessionId, userId: "" }).session;
  }

  private userKey(userId: string): string {
    return revocationKeys({ sessionId: "", userId }).user;
  }

  /** Every access token of this session is refused from now on. */
  async revokeSession(sessionId: string): Promise<void> {
    await this.redis.set(this.sessionKey(sessionId), "1", "EX", REVOCATION_TTL_SECONDS);
  }

  /**
   * Every access token of this user issued until now is refused — including one issued later in
   * the same second (`iat` has whole seconds); tokens issued from the next second on are accepted.
   */
  async revokeUser(userId: string): Promise<void> {
    const revokedAt = Math.floor(this.clock().getTime() / 1000);
    // A later revocation supersedes an earlier one; never move the mark backwards.
    await this.redis.eval(
      `local current = tonumber(redis.call("GET", KEYS[1]) or "0")
       local next = math.max(current, tonumber(ARGV[1]))
       redis.call("SET", KEYS[1], tostring(next), "EX", ARGV[2])
       return next`,
      1,
      this.userKey(userId),
      String(revokedAt),
      String(REVOCATION_TTL_SECONDS),
    );
  }

  /** One round trip: is the session revoked, or the user revoked at or after `issuedAt` (epoch seconds)? */
  async isRevoked(viewer: Viewer, issuedAt: number): Promise<boolean> {
    const [session, user] = await this.redis.mget(
      this.sessionKey(viewer.sessionId),
      this.userKey(viewer.userId),
    );
    if (session !== null && session !== undefined) return true;
    if (user === null || user === undefined) return false;
    const revokedAt = Number(user);
    return Number.isFinite(revokedAt) && issuedAt <= revokedAt;
  }
}
