// Catalogue only (no other imports): start-prod and the docs read it without loading the process.
import { redisUrl, spec } from "@hv/kit/config";
import { z } from "zod";

/** The chat subgraph's own variables (docs/configuration.md is generated from them). */
export const CHAT_ENV = {
  CHAT_REQUIRE_MATCH: spec(
    z
      .enum(["true", "false"])
      .default("true")
      .transform((value) => value === "true"),
    "Chat: `true`: a one-to-one conversation exists only between matched people (opened on `match.created`, closed on `match.ended`); `false`: anyone may open one with `openDirectConversation`.",
  ),
  CHAT_MESSAGE_MAX_LENGTH: spec(
    z.coerce.number().int().min(1).max(20_000).default(4_000),
    "Chat: longest message text, in characters (Unicode code points).",
  ),
  CHAT_MAX_ATTACHMENTS: spec(
    z.coerce.number().int().min(0).max(50).default(10),
    "Chat: most media attachments on one message.",
  ),
  CHAT_GROUP_MAX_MEMBERS: spec(
    z.coerce.number().int().min(2).max(10_000).default(256),
    "Chat: most members of a group conversation.",
  ),
  CHAT_INVITATIONS_PER_DAY: spec(
    z.coerce.number().int().min(1).max(100_000).default(100),
    "Chat: group invitations one user may send within 24 hours (each id in createGroupConversation / addGroupMembers that is not a match counts, refused ones too) before `RATE_LIMITED`.",
  ),
  CHAT_PENDING_INVITATIONS_MAX: spec(
    z.coerce.number().int().min(1).max(100_000).default(50),
    "Chat: group invitations one user may have waiting for an answer at once, over all groups, before `QUOTA_EXCEEDED`.",
  ),
  CHAT_SEND_BURST: spec(
    z.coerce.number().int().min(1).max(10_000).default(20),
    "Chat: messages one user may send within 10 seconds (burst budget) before `RATE_LIMITED`.",
  ),
  CHAT_SEND_SUSTAINED: spec(
    z.coerce.number().int().min(1).max(1_000_000).default(600),
    "Chat: messages one user may send within an hour (sustained budget) before `RATE_LIMITED`.",
  ),
  CHAT_NEW_ACCOUNT_HOURS: spec(
    z.coerce
      .number()
      .int()
      .min(0)
      .max(24 * 30)
      .default(24),
    "Chat: an account younger than this (the access token's `created` claim) is new: the new-account throttles and the links signal apply (docs/spam-signals.md). 0 turns them off.",
  ),
  CHAT_NEW_ACCOUNT_MAX_MESSAGES: spec(
    z.coerce.number().int().min(1).max(1_000_000).default(100),
    "Chat: messages a new account may send while it is new before `RATE_LIMITED` (and the NEW_ACCOUNT_BURST signal).",
  ),
  CHAT_NEW_ACCOUNT_MAX_CONVERSATIONS: spec(
    z.coerce.number().int().min(1).max(100_000).default(10),
    "Chat: conversations (groups created, one-to-ones opened) a new account may open while it is new before `RATE_LIMITED` (and the NEW_ACCOUNT_BURST signal).",
  ),
  CHAT_REPEATED_TEXT_CONVERSATIONS: spec(
    z.coerce.number().int().min(2).max(10_000).default(5),
    "Chat: the same text (normalized: case, whitespace, invisible characters) sent by one person into this many different conversations within `CHAT_REPEATED_TEXT_WINDOW_SECONDS` raises the REPEATED_TEXT signal.",
  ),
  CHAT_REPEATED_TEXT_WINDOW_SECONDS: spec(
    z.coerce
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .default(3600),
    "Chat: the window of the REPEATED_TEXT signal, and how long one signal is raised at most once per person.",
  ),
  CHAT_PUBSUB_REDIS_URL: spec(
    redisUrl.optional(),
    "Chat: Redis for the real-time fan-out between chat instances (pub/sub); default `REDIS_URL`. A separate one keeps pub/sub traffic off the queues' Redis.",
    { defaultText: "`REDIS_URL` (and its sentinels)" },
  ),
  CHAT_STORE_GROUP_MAX: spec(
    z.coerce.number().int().min(1).max(100).default(16),
    "Chat: most messages stored in one transaction (group commit: sends that wait for `CHAT_STORE_RUNNING` stores under way commit together). 1 stores each alone.",
  ),
  CHAT_STORE_RUNNING: spec(
    z.coerce.number().int().min(1).max(50).default(2),
    "Chat: most stores (transactions of one or more messages) under way at once; sends beyond wait and are stored together, up to `CHAT_STORE_GROUP_MAX` in one commit.",
  ),
  CHAT_PUSH_SKIP_LIVE: spec(
    z
      .enum(["true", "false"])
      .default("false")
      .transform((value) => value === "true"),
    "Chat: `true`: a message's push leaves out recipients with a live `myChatEvents` feed when it is sent (no push job at all when every recipient has one); `false`: every recipient not muted or blocked gets the push. docs/push.md.",
  ),
  CHAT_PUSH_BATCH_MS: spec(
    z.coerce.number().int().min(0).max(100).default(20),
    "Chat: a sent message's push event waits at most this long (milliseconds) for other sends' events, then all leave for the push worker in one job (a lone event in its own). 0: the events of one event-loop turn. A push may come this much later. docs/push.md.",
  ),
  CHAT_PRESENCE_TTL_SECONDS: spec(
    z.coerce.number().int().min(5).max(3_600).default(60),
    "Chat: a user counts as online this long after their last heartbeat (an open `myChatEvents` subscription beats every third of it).",
  ),
};
