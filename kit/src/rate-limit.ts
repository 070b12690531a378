import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { appError, ErrorCode } from "./errors";
import { unmapIpv4 } from "./ip";
import type { Redis } from "./redis";

/** A budget: `points` actions per `durationSeconds`, counted in Redis so every replica shares it. */
export interface RateLimitRule {
  name: string;
  points: number;
  durationSeconds: number;
}

export interface RateLimiter {
  /**
   * Counts one action (or `points` actions at once, e.g. one per aliased field) for `key`; throws
   * RATE_LIMITED (with retryAfterSeconds) once over budget.
   */
  consume(key: string, points?: number): Promise<void>;
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
    async consume(key, points = 1) {
      try {
        await limiter.consume(key, points);
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

function expandIpv6(address: string): string[] {
  const [head = "", tail] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(missing).fill("0"), ...right].map((group) =>
    group.padStart(4, "0").toLowerCase(),
  );
}

/**
 * The part of a client address that one subscriber controls, for per-address budgets: an IPv4
 * address as it is, an IPv6 address by its /64 (a home or phone network hands out a whole /64,
 * so counting single IPv6 addresses would give an attacker billions of budgets).
 */
export function addressBudgetKey(ip: string): string {
  const unmapped = unmapIpv4(ip);
  if (!unmapped.includes(":")) return unmapped;
  return `${expandIpv6(ip.split("%")[0] ?? ip)
    .slice(0, 4)
    .join(":")}::/64`;
}
