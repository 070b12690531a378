import {
  addressBudgetKey,
  holdRedisWrites,
  revocationKeys,
  SPEND_BUDGET_LUA,
  turnWrites,
  type Redis,
  type Viewer,
} from "@hv/kit";
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

/** A budget of the request's operation, spent in the same round trip once the caller is admitted. */
export interface OperationBudgetSpend {
  /** The counter's full Redis key (rate-limiter-flexible's `<prefix>:<name>:<key>`). */
  key: string;
  /** The limit's name in RATE_LIMITED errors. */
  name: string;
  points: number;
  durationSeconds: number;
  /** Points this request spends (one per occurrence of the field). */
  amount: number;
}

/**
 * What one request's admission found: admitted (with, when one of its operation's budgets was over,
 * that one: the caller's own budgets were spent), over a budget (with its wait), or a revoked token.
 */
export type AdmissionVerdict =
  | { kind: "admitted"; operationOver?: { limit: string; msBeforeNext: number } }
  | { kind: "revoked" }
  | { kind: "over-budget"; limit: string; retryAfterSeconds: number };

/**
 * One script, one round trip: spends the address budget; then, for a signed-in caller, asks about
 * revocation and spends the user budget; then spends the operation's budgets (KEYS[5..], ARGV
 * triplets points, duration, amount from ARGV[6]) in order, stopping at the first over. Counting
 * is rate-limiter-flexible's (SET NX EX, INCRBY, PTTL) on its keys, so the budgets stay the same
 * ones the library reads. Returns {verdict, msBeforeNext, address used, address ms left, user used,
 * user ms left, over operation budget}: 0 admitted, 1 address over, 2 revoked, 3 user over, 4 an
 * operation budget over (1-based index last); the use figures only with 0 and 4 (user: -1 when anonymous).
 */
const ADMISSION_SCRIPT = `
${SPEND_BUDGET_LUA}
local over = spend_budget(KEYS[1], ARGV[1], ARGV[2])
if over >= 0 then return {1, over} end
local address_used = tonumber(redis.call('get', KEYS[1]))
local address_ttl = redis.call('pttl', KEYS[1])
local user_used = -1
local user_ttl = -1
if ARGV[3] ~= '' then
  if redis.call('exists', KEYS[3]) == 1 then return {2, 0} end
  local revokedAt = tonumber(redis.call('get', KEYS[4]) or '')
  if revokedAt ~= nil and tonumber(ARGV[3]) <= revokedAt then return {2, 0} end
  over = spend_budget(KEYS[2], ARGV[4], ARGV[5])
  if over >= 0 then return {3, over} end
  user_used = tonumber(redis.call('get', KEYS[2]))
  user_ttl = redis.call('pttl', KEYS[2])
end
for i = 5, #KEYS do
  local at = 6 + (i - 5) * 3
  over = spend_budget(KEYS[i], ARGV[at], ARGV[at + 1], ARGV[at + 2])
  if over >= 0 then return {4, over, address_used, address_ttl, user_used, user_ttl, i - 4} end
end
return {0, 0, address_used, address_ttl, user_used, user_ttl}
`;

type AdmissionRedis = Redis & {
  /** numberOfKeys, then KEYS (address, user, session revoked, user revoked, operation budgets), then ARGV. */
  hvEdgeAdmit(...args: Array<string | number>): Promise<number[]>;
};

/** Budget keys kept by one replica's headroom (each a few dozen bytes). */
const MAX_HEADROOM_KEYS = 100_000;

/** The per-request checks of the HTTP path in one Redis round trip (ioredis `defineCommand`, EVALSHA). */
export class EdgeAdmission {
  private readonly redis: AdmissionRedis;
  /** Budgets' use as the last admissions counted it: what `mayRunEarly` decides on. */
  private readonly headroom = new BudgetHeadroom(MAX_HEADROOM_KEYS);
  /** The admissions of one event-loop turn (concurrent requests) leave in one write. */
  private readonly writes = turnWrites();
  /** Admissions sent and not yet answered. */
  private inFlight = 0;

  constructor(
    redis: Redis,
    private readonly address: AdmissionBudget,
    private readonly user: AdmissionBudget,
  ) {
    if (!("hvEdgeAdmit" in redis)) redis.defineCommand("hvEdgeAdmit", { lua: ADMISSION_SCRIPT });
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

  /**
   * The address's budget; with a caller (its token's signature already checked), revocation and the
   * user's budget; once those admit, `operation`'s budgets (none by default).
   */
  async admit(
    ip: string,
    caller: { viewer: Viewer; issuedAt: number } | null,
    operation: ReadonlyArray<OperationBudgetSpend> = [],
  ): Promise<AdmissionVerdict> {
    const revocation = caller ? revocationKeys(caller.viewer) : { session: "", user: "" };
    const keys = this.keysOf(ip, caller);
    // With none in flight the script leaves at once, so Redis runs it while this request runs;
    // behind another, it joins this turn's single write (Redis answers in order anyway).
    if (this.inFlight > 0) holdRedisWrites(this.writes, this.redis);
    this.inFlight += 1;
    const sent = this.redis.hvEdgeAdmit(
      4 + operation.length,
      keys.address,
      keys.user,
      revocation.session,
      revocation.user,
      ...operation.map((spend) => spend.key),
      this.address.points,
      this.address.durationSeconds,
      caller ? String(caller.issuedAt) : "",
      this.user.points,
      this.user.durationSeconds,
      ...operation.flatMap((spend) => [spend.points, spend.durationSeconds, spend.amount]),
    );
    let answer: number[];
    try {
      answer = await sent;
    } finally {
      this.inFlight -= 1;
    }
    const [verdict, ms = 0, addressUsed, addressTtl, userUsed, userTtl, overAt = 0] = answer;
    const retryAfterSeconds = Math.max(1, Math.ceil(ms / 1000));
    const now = Date.now();
    switch (verdict) {
      case 0:
      case 4: {
        if (addressUsed !== undefined && addressTtl !== undefined)
          this.headroom.learn(keys.address, this.address.points, addressUsed, addressTtl, now);
        if (caller && userUsed !== undefined && userTtl !== undefined)
          this.headroom.learn(keys.user, this.user.points, userUsed, userTtl, now);
        const over = operation[overAt - 1];
        if (verdict === 0) return { kind: "admitted" };
        if (over === undefined) throw new Error(`the admission script named no operation budget (${overAt})`);
        return { kind: "admitted", operationOver: { limit: over.name, msBeforeNext: ms } };
      }
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
