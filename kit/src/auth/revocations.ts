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
export function revocationKeys(viewer: Pick<Viewer, "userId" | "sessionId">): {
  session: string;
  user: string;
} {
  return {
    session: `${KEY_PREFIX}:session:${viewer.sessionId}`,
    user: `${KEY_PREFIX}:user:${viewer.userId}`,
  };
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

  /** Checks asked in this turn of the event loop, answered together by one MGET. */
  private pending: Array<{
    keys: [string, string];
    issuedAt: number;
    settle: (revoked: boolean) => void;
    fail: (error: unknown) => void;
  }> = [];

  /**
   * Is the session revoked, or the user revoked at or after `issuedAt` (epoch seconds)? Every check
   * asked in the same event-loop turn shares one MGET (a timer turn re-checking hundreds of sockets).
   */
  isRevoked(viewer: Viewer, issuedAt: number): Promise<boolean> {
    return new Promise<boolean>((settle, fail) => {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push({
        keys: [this.sessionKey(viewer.sessionId), this.userKey(viewer.userId)],
        issuedAt,
        settle,
        fail,
      });
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.redis.mget(batch.flatMap((check) => check.keys)).then(
      (values) => {
        batch.forEach((check, index) => {
          const session = values[2 * index];
          const user = values[2 * index + 1];
          if (session !== null && session !== undefined) return check.settle(true);
          if (user === null || user === undefined) return check.settle(false);
          const revokedAt = Number(user);
          check.settle(Number.isFinite(revokedAt) && check.issuedAt <= revokedAt);
        });
      },
      (error: unknown) => {
        for (const check of batch) check.fail(error);
      },
    );
  }
}
