import {
  loadMediaGrantSecret,
  loadSubgraphConfig,
  readVar,
  type Env,
  type RedisTarget,
  type SubgraphConfig,
} from "@hv/kit";
import { CHAT_ENV } from "./env";

export { CHAT_ENV };

function read<K extends keyof typeof CHAT_ENV>(env: Env, key: K) {
  return readVar(CHAT_ENV, env, key);
}

export interface SpamSignalConfig {
  newAccountHours: number;
  newAccountMaxMessages: number;
  newAccountMaxConversations: number;
  repeatedTextConversations: number;
  repeatedTextWindowSeconds: number;
}

export interface ChatConfig extends SubgraphConfig {
  requireMatch: boolean;
  messageMaxLength: number;
  maxAttachments: number;
  groupMaxMembers: number;
  /** Invitations one user may send per 24 hours (CHAT_INVITATIONS_PER_DAY). */
  invitationsPerDay: number;
  /** Invitations one user may have pending at once (CHAT_PENDING_INVITATIONS_MAX). */
  pendingInvitationsMax: number;
  sendBurst: number;
  sendSustained: number;
  presenceTtlSeconds: number;
  /** CHAT_PUSH_SKIP_LIVE: no push for a recipient with a live feed when the message is published. */
  pushSkipLive: boolean;
  /** CHAT_PUSH_BATCH_MS: how long a send's push event waits for others to leave in one job. */
  pushBatchMs: number;
  /** Group commit of STORE: CHAT_STORE_GROUP_MAX messages a transaction, CHAT_STORE_RUNNING under way. */
  store: { groupMax: number; running: number };
  /** Spam signals (docs/spam-signals.md): CHAT_NEW_ACCOUNT_* and CHAT_REPEATED_TEXT_*. */
  spam: SpamSignalConfig;
  /** Redis of the fan-out: CHAT_PUBSUB_REDIS_URL (one server, no sentinels), else the common `redis`. */
  pubsubRedis: RedisTarget;
  /** MEDIA_GRANT_SECRET: signs attachment read grants. */
  mediaGrantSecret: string;
}

function pubsubRedisTarget(env: Env, common: RedisTarget): RedisTarget {
  const url = read(env, "CHAT_PUBSUB_REDIS_URL");
  return url === undefined ? common : { url, sentinel: null };
}

export function loadChatConfig(env: Env): ChatConfig {
  const base = loadSubgraphConfig("chat", env);
  return {
    ...base,
    pubsubRedis: pubsubRedisTarget(env, base.redis),
    requireMatch: read(env, "CHAT_REQUIRE_MATCH"),
    messageMaxLength: read(env, "CHAT_MESSAGE_MAX_LENGTH"),
    maxAttachments: read(env, "CHAT_MAX_ATTACHMENTS"),
    groupMaxMembers: read(env, "CHAT_GROUP_MAX_MEMBERS"),
    invitationsPerDay: read(env, "CHAT_INVITATIONS_PER_DAY"),
    pendingInvitationsMax: read(env, "CHAT_PENDING_INVITATIONS_MAX"),
    sendBurst: read(env, "CHAT_SEND_BURST"),
    sendSustained: read(env, "CHAT_SEND_SUSTAINED"),
    presenceTtlSeconds: read(env, "CHAT_PRESENCE_TTL_SECONDS"),
    pushSkipLive: read(env, "CHAT_PUSH_SKIP_LIVE"),
    pushBatchMs: read(env, "CHAT_PUSH_BATCH_MS"),
    store: { groupMax: read(env, "CHAT_STORE_GROUP_MAX"), running: read(env, "CHAT_STORE_RUNNING") },
    spam: {
      newAccountHours: read(env, "CHAT_NEW_ACCOUNT_HOURS"),
      newAccountMaxMessages: read(env, "CHAT_NEW_ACCOUNT_MAX_MESSAGES"),
      newAccountMaxConversations: read(env, "CHAT_NEW_ACCOUNT_MAX_CONVERSATIONS"),
      repeatedTextConversations: read(env, "CHAT_REPEATED_TEXT_CONVERSATIONS"),
      repeatedTextWindowSeconds: read(env, "CHAT_REPEATED_TEXT_WINDOW_SECONDS"),
    },
    mediaGrantSecret: loadMediaGrantSecret(env),
  };
}
