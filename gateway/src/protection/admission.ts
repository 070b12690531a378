import { addressBudgetKey, revocationKeys, SPEND_BUDGET_LUA, type Redis, type Viewer } from "@hv/kit";
import { BudgetHeadroom } from "./headroom";

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
 * {verdict, msBeforeNext}: 0 admitted, 1 address over, 2 revoked, 3 user over; when admitted, then
 * each spent budget's points used and ms left in its window (address, then user).
 */
const ADMISSION_SCRIPT = `
${SPEND_BUDGET_LUA}
local over = spend_budget(KEYS[1], ARGV[1], ARGV[2])
if over >= 0 then return {1, over} end
local address_used = tonumber(redis.call('get', KEYS[1]))
local address_ttl = redis.call('pttl', KEYS[1])
if ARGV[3] == '' then return {0, 0, address_used, address_ttl} end
if redis.call('exists', KEYS[3]) == 1 then return {2, 0} end
local revokedAt = tonumber(redis.call('get', KEYS[4]) or '')
if revokedAt ~= nil and tonumber(ARGV[3]) <= revokedAt then return {2, 0} end
over = spend_budget(KEYS[2], ARGV[4], ARGV[5])
if over >= 0 then return {3, over} end
return {0, 0, address_used, address_ttl, tonumber(redis.call('get', KEYS[2])), redis.call('pttl', KEYS[2])}
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
  ): Promise<number[]>;
};

/** Budget keys kept by one replica's headroom (each a few dozen bytes). */
const MAX_HEADROOM_KEYS = 100_000;

/** The per-request checks of the HTTP path in one Redis round trip (ioredis `defineCommand`, EVALSHA). */
export class EdgeAdmission {
  private readonly redis: AdmissionRedis;
  /** Budgets' use as the last admissions counted it: what `mayRunEarly` decides on. */
  private readonly headroom = new BudgetHeadroom(MAX_HEADROOM_KEYS);

  constructor(
    redis: Redis,
    private readonly address: AdmissionBudget,
    private readonly user: AdmissionBudget,
  ) {
    if (!("hvEdgeAdmit" in redis))
      redis.defineCommand("hvEdgeAdmit", { numberOfKeys: 4, lua: ADMISSION_SCRIPT });
    this.redis = redis as AdmissionRedis;
  }

  private keysOf(ip: string, caller: { viewer: Viewer } | null): { address: string; user: string } {
    return {
      address: `${this.address.keyPrefix}:${addressBudgetKey(ip)}`,
      user: caller ? `${this.user.keyPrefix}:${caller.viewer.userId}` : "",
    };
  }

  /**
   * Whether this request may run before its admission answers: only when the last admissions on
   * this replica left the address's budget (and the caller's, when signed in) at least half
   * unspent, in the same window. Takes a point from each locally when it says yes.
   */
  mayRunEarly(ip: string, caller: { viewer: Viewer } | null, now = Date.now()): boolean {
    const keys = this.keysOf(ip, caller);
    const wanted = [{ key: keys.address, margin: Math.ceil(this.address.points / 2) }];
    if (caller) wanted.push({ key: keys.user, margin: Math.ceil(this.user.points / 2) });
    return this.headroom.take(wanted, now);
  }

  /** The address's budget; with a caller (its token's signature already checked), revocation and the user's budget. */
  async admit(ip: string, caller: { viewer: Viewer; issuedAt: number } | null): Promise<AdmissionVerdict> {
    const revocation = caller ? revocationKeys(caller.viewer) : { session: "", user: "" };
    const keys = this.keysOf(ip, caller);
    const [verdict, ms = 0, addressUsed, addressTtl, userUsed, userTtl] = await this.redis.hvEdgeAdmit(
      keys.address,
      keys.user,
      revocation.session,
      revocation.user,
      this.address.points,
      this.address.durationSeconds,
      caller ? String(caller.issuedAt) : "",
      this.user.points,
      this.user.durationSeconds,
    );
    const retryAfterSeconds = Math.max(1, Math.ceil(ms / 1000));
    const now = Date.now();
    switch (verdict) {
      case 0:
        if (addressUsed !== undefined && addressTtl !== undefined)
          this.headroom.learn(keys.address, this.address.points, addressUsed, addressTtl, now);
        if (caller && userUsed !== undefined && userTtl !== undefined)
          this.headroom.learn(keys.user, this.user.points, userUsed, userTtl, now);
        return { kind: "admitted" };
      case 1:
        this.headroom.forget(keys.address);
        return { kind: "over-budget", limit: this.address.name, retryAfterSeconds };
      case 2:
        this.headroom.forget(keys.user);
        return { kind: "revoked" };
      case 3:
        this.headroom.forget(keys.user);
        return { kind: "over-budget", limit: this.user.name, retryAfterSeconds };
      default:
        throw new Error(`the admission script answered an unknown verdict ${String(verdict)}`);
    }
  }
}
