import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { appError, ErrorCode } from "./errors";
import type { Redis } from "./redis";

/** A budget: `points` actions per `durationSeconds`, counted in Redis so every replica shares it. */
export interface RateLimitRule {
  name: string;
  points: number;
  durationSeconds: number;
}

export interface RateLimiter {
  /** Counts one action for `key`; throws RATE_LIMITED (with retryAfterSeconds) once over budget. */
  consume(key: string): Promise<void>;
  /** Forgets `key`'s count (e.g. after a successful login). */
  reset(key: string): Promise<void>;
}

export function createRateLimiter(redis: Redis, rule: RateLimitRule, keyPrefix = "hv:rl"): RateLimiter {
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `${keyPrefix}:${rule.name}`,
    points: rule.points,
    duration: rule.durationSeconds,
  });
  return {
    async consume(key) {
      try {
        await limiter.consume(key);
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection; // Redis trouble: fail closed.
        const retryAfterSeconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        throw appError(ErrorCode.RATE_LIMITED, `Too many attempts: try again in ${retryAfterSeconds} s`, {
          details: { retryAfterSeconds, limit: rule.name },
        });
      }
    },
    async reset(key) {
      await limiter.delete(key);
    },
  };
}
