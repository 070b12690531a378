import { addressBudgetKey, revocationKeys, SPEND_BUDGET_LUA, type Redis, type Viewer } from "@hv/kit";

/** A budget as the admission script spends it: rate-limiter-flexible's key and counting. */
export interface AdmissionBudget {
  /** rate-limiter-flexible's key prefix of this budget (`<prefix>:<name>`). */
  keyPrefix: string;
  /** The limit's name in RATE_LIMITED errors (`extensions.limit`). */
  name: string;
  points: number;
  durationSeconds: number;
}

/** What one request's admission found: admitted, over a budget (with its wait), or a revoked token. */
export type AdmissionVerdict =
  | { kind: "admitted" }
  | { kind: "revoked" }
  | { kind: "over-budget"; limit: string; retryAfterSeconds: number };

/**
 * One script, one round trip: spends the address budget; then, for a signed-in caller, asks about
 * revocation and spends the user budget. Counting is rate-limiter-flexible's (SET NX EX, INCRBY,
 * PTTL) on its keys, so the budgets stay the same ones the library reads. Returns
 * {verdict, msBeforeNext}: 0 admitted, 1 address over, 2 revoked, 3 user over.
 */
const ADMISSION_SCRIPT = `
${SPEND_BUDGET_LUA}
local over = spend_budget(KEYS[1], ARGV[1], ARGV[2])
if over >= 0 then return {1, over} end
if ARGV[3] == '' then return {0, 0} end
if redis.call('exists', KEYS[3]) == 1 then return {2, 0} end
local revokedAt = tonumber(redis.call('get', KEYS[4]) or '')
if revokedAt ~= nil and tonumber(ARGV[3]) <= revokedAt then return {2, 0} end
over = spend_budget(KEYS[2], ARGV[4], ARGV[5])
if over >= 0 then return {3, over} end
return {0, 0}
`;

type AdmissionRedis = Redis & {
  hvEdgeAdmit(
    addressKey: string,
    userKey: string,
    sessionRevokedKey: string,
    userRevokedKey: string,
    addressPoints: number,
    addressDuration: number,
    issuedAt: string,
    userPoints: number,
    userDuration: number,
  ): Promise<[number, number]>;
};

/** The per-request checks of the HTTP path in one Redis round trip (ioredis `defineCommand`, EVALSHA). */
export class EdgeAdmission {
  private readonly redis: AdmissionRedis;

  constructor(
    redis: Redis,
    private readonly address: AdmissionBudget,
    private readonly user: AdmissionBudget,
  ) {
    if (!("hvEdgeAdmit" in redis))
      redis.defineCommand("hvEdgeAdmit", { numberOfKeys: 4, lua: ADMISSION_SCRIPT });
    this.redis = redis as AdmissionRedis;
  }

  /** The address's budget; with a caller (its token's signature already checked), revocation and the user's budget. */
  async admit(ip: string, caller: { viewer: Viewer; issuedAt: number } | null): Promise<AdmissionVerdict> {
    const revocation = caller ? revocationKeys(caller.viewer) : { session: "", user: "" };
    const [verdict, ms] = await this.redis.hvEdgeAdmit(
      `${this.address.keyPrefix}:${addressBudgetKey(ip)}`,
      caller ? `${this.user.keyPrefix}:${caller.viewer.userId}` : "",
      revocation.session,
      revocation.user,
      this.address.points,
      this.address.durationSeconds,
      caller ? String(caller.issuedAt) : "",
      this.user.points,
      this.user.durationSeconds,
    );
    const retryAfterSeconds = Math.max(1, Math.ceil(ms / 1000));
    switch (verdict) {
      case 0:
        return { kind: "admitted" };
      case 1:
        return { kind: "over-budget", limit: this.address.name, retryAfterSeconds };
      case 2:
        return { kind: "revoked" };
      case 3:
        return { kind: "over-budget", limit: this.user.name, retryAfterSeconds };
      default:
        throw new Error(`the admission script answered an unknown verdict ${String(verdict)}`);
    }
  }
}
