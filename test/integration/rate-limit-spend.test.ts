import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { createRateLimiter, ErrorCode, rateLimitKey, SPEND_BUDGET_LUA, type RateLimitRule } from "@hv/kit";

// The admission scripts spend budgets on keys they build themselves; rate-limiter-flexible reads
// and writes the same counters. These tests hold the two to one key and one count, both ways.
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const prefix = `hvtest-rl-${randomBytes(4).toString("hex")}`;
const SPEND = `${SPEND_BUDGET_LUA}\nreturn spend_budget(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]))`;

let redis: Redis;

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

function rule(points: number): RateLimitRule {
  return { name: `budget-${randomBytes(3).toString("hex")}`, points, durationSeconds: 60 };
}

/** The script's answer: ms until the budget refills when over it, else -1. */
function spendByScript(budget: RateLimitRule, subject: string, amount = 1): Promise<number> {
  const key = rateLimitKey(budget, subject, prefix);
  return redis.eval(SPEND, 1, key, budget.points, budget.durationSeconds, amount) as Promise<number>;
}

async function limitedCode(spend: Promise<void>): Promise<unknown> {
  try {
    await spend;
    return "admitted";
  } catch (error) {
    return (error as { extensions?: { code?: unknown } }).extensions?.code;
  }
}

describe("one budget spent by the library and by the admission scripts", () => {
  it("should let the script see what the library spent", async () => {
    const budget = rule(3);
    const limiter = createRateLimiter(redis, budget, prefix);
    await limiter.consume("user:a");
    await limiter.consume("user:a", 2);
    const over = await spendByScript(budget, "user:a");
    expect(over).toBeGreaterThan(0);
    expect(over).toBeLessThanOrEqual(60_000);
    // Another subject's count is its own.
    expect(await spendByScript(budget, "user:b")).toBe(-1);
  });

  it("should let the library see what the script spent", async () => {
    const budget = rule(4);
    const limiter = createRateLimiter(redis, budget, prefix);
    expect(await spendByScript(budget, "address:10.0.0.1", 3)).toBe(-1);
    expect(await limitedCode(limiter.consume("address:10.0.0.1"))).toBe("admitted");
    expect(await limitedCode(limiter.consume("address:10.0.0.1"))).toBe(ErrorCode.RATE_LIMITED);
  });

  it("should give the counter the budget's life whichever side created it", async () => {
    const byScript = rule(5);
    await spendByScript(byScript, "user:c");
    const scriptTtl = await redis.pttl(rateLimitKey(byScript, "user:c", prefix));
    const byLibrary = rule(5);
    await createRateLimiter(redis, byLibrary, prefix).consume("user:c");
    const libraryTtl = await redis.pttl(rateLimitKey(byLibrary, "user:c", prefix));
    for (const ttl of [scriptTtl, libraryTtl]) {
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    }
  });
});
