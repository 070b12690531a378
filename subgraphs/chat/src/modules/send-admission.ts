import {
  holdRedisWrites,
  overBudget,
  rateLimitKey,
  SPEND_BUDGET_LUA,
  turnWrites,
  type RateLimitRule,
  type Redis,
  type Viewer,
} from "@hv/kit";
import type { ChatServices } from "./context";
import * as spam from "./spam-signals";

/**
 * Spends both send budgets and moves the message's spam counters (spam-signals.ts) in one script:
 * KEYS burst, sustained, new-account messages ('' = not counted), repeated text ('' = not counted);
 * ARGV burst points and seconds, sustained points and seconds, the new account's seconds left, the
 * repeated-text window, the conversation id. Answers {burst ms, sustained ms, messages, conversations}
 * (ms -1 = within budget).
 */
const SEND_ADMISSION_LUA = `${SPEND_BUDGET_LUA}
local burst = spend_budget(KEYS[1], ARGV[1], ARGV[2])
local sustained = spend_budget(KEYS[2], ARGV[3], ARGV[4])
local sent = 0
if KEYS[3] ~= '' then
  sent = redis.call('incr', KEYS[3])
  redis.call('expire', KEYS[3], ARGV[5])
end
local conversations = 0
if KEYS[4] ~= '' then
  redis.call('sadd', KEYS[4], ARGV[7])
  redis.call('expire', KEYS[4], ARGV[6], 'NX')
  conversations = redis.call('scard', KEYS[4])
end
return {burst, sustained, sent, conversations}
`;

type AdmissionRedis = Redis & {
  hvChatSendAdmit(
    burstKey: string,
    sustainedKey: string,
    messagesKey: string,
    textKey: string,
    burstPoints: number,
    burstSeconds: number,
    sustainedPoints: number,
    sustainedSeconds: number,
    newForSeconds: number,
    textWindowSeconds: number,
    conversationId: string,
  ): Promise<[number, number, number, number]>;
};

/** The per-user send budgets (`chat-send-burst` per 10 s, `chat-send-sustained` per hour). */
export interface SendBudgets {
  burst: RateLimitRule;
  sustained: RateLimitRule;
}

/** A send's checks in Redis: both budgets and the spam counters, one round trip (EVALSHA). */
export class SendAdmission {
  private readonly redis: AdmissionRedis;
  /** The admissions of one event-loop turn (concurrent sends) leave in one write. */
  private readonly writes = turnWrites();

  constructor(
    redis: Redis,
    readonly budgets: SendBudgets,
  ) {
    if (!("hvChatSendAdmit" in redis))
      redis.defineCommand("hvChatSendAdmit", { numberOfKeys: 4, lua: SEND_ADMISSION_LUA });
    this.redis = redis as AdmissionRedis;
  }

  /**
   * Counts one message of `viewer` to `conversationId`; throws RATE_LIMITED over a budget (burst
   * first, then sustained, then the new-account throttle). Whatever the verdict, the message counts
   * against both budgets and the spam counters, and a signal that fires is raised. Returns whether
   * a signal fired now.
   */
  async admit(
    services: ChatServices,
    viewer: Viewer,
    conversationId: string,
    text: string | null,
  ): Promise<boolean> {
    const { burst, sustained } = this.budgets;
    const counting = spam.countingFor(services, viewer, text, Date.now());
    holdRedisWrites(this.writes, this.redis);
    const [burstMs, sustainedMs, sent, conversations] = await this.redis.hvChatSendAdmit(
      rateLimitKey(burst, viewer.userId),
      rateLimitKey(sustained, viewer.userId),
      counting.messagesKey ?? "",
      counting.textKey ?? "",
      burst.points,
      burst.durationSeconds,
      sustained.points,
      sustained.durationSeconds,
      counting.newFor,
      services.config.spam.repeatedTextWindowSeconds,
      conversationId,
    );
    let judged: boolean | Error;
    try {
      judged = await spam.judgeMessage(services, viewer, conversationId, text, counting, {
        sent,
        conversations,
      });
    } catch (error) {
      judged = error instanceof Error ? error : new Error(String(error));
    }
    if (burstMs >= 0) throw overBudget(burst, burstMs);
    if (sustainedMs >= 0) throw overBudget(sustained, sustainedMs);
    if (judged instanceof Error) throw judged;
    return judged;
  }
}
