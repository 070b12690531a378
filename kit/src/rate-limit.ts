import type { GraphQLError } from "graphql";
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

/** Where the budgets' counters live in Redis (`<prefix>:<rule name>:<key>`). */
export const RATE_LIMIT_KEY_PREFIX = "hv:rl";

/** The Redis key that counts `key`'s actions against `rule` (rate-limiter-flexible's key). */
export function rateLimitKey(rule: RateLimitRule, key: string, keyPrefix = RATE_LIMIT_KEY_PREFIX): string {
  return `${keyPrefix}:${rule.name}:${key}`;
}

/**
 * A Lua function `spend_budget(key, points, durationSeconds[, amount])` for scripts that spend a
 * budget together with other work in one round trip: rate-limiter-flexible's counting on its key
 * (SET NX EX, INCRBY amount (default 1), PTTL), so `createRateLimiter` reads the same counter.
 * Returns the ms until the budget refills when these actions went over it, else -1.
 */
export const SPEND_BUDGET_LUA = `
local function spend_budget(key, points, duration, amount)
  redis.call('set', key, 0, 'EX', duration, 'NX')
  local consumed = redis.call('incrby', key, amount or 1)
  local ttl = redis.call('pttl', key)
  if ttl == -1 then
    redis.call('expire', key, duration)
    ttl = 1000 * duration
  end
  if consumed > tonumber(points) then return ttl end
  return -1
end
`;

/** RATE_LIMITED for `rule`, with `retryAfterSeconds` (at least 1) from the ms until it refills. */
export function overBudget(rule: Pick<RateLimitRule, "name">, msBeforeNext: number): GraphQLError {
  const retryAfterSeconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return appError(ErrorCode.RATE_LIMITED, `Too many attempts: try again in ${retryAfterSeconds} s`, {
    details: { retryAfterSeconds, limit: rule.name },
  });
}

export function createRateLimiter(
  redis: Redis,
  rule: RateLimitRule,
  keyPrefix = RATE_LIMIT_KEY_PREFIX,
): RateLimiter {
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
        throw overBudget(rule, rejection.msBeforeNext);
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
