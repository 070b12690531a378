import { createHash } from "node:crypto";
import { appError, ErrorCode, outboxEventData, type EventPayload, type Viewer } from "@hv/kit";
import { Prisma } from "../generated/prisma/client";
import type { ChatServices } from "./context";

/** Spam signals and holds (docs/spam-signals.md): counters in Redis, holds in Postgres. */
export type SpamSignal = EventPayload<"safety.signal_raised">["signal"];

const KEY = "hv:chat:spam";
/** Invisible characters that change nothing a reader sees (format characters, ZWSP, BOM, …). */
const INVISIBLE = /[\p{Cf}\u115F\u1160\u3164\uFFA0]/gu;
const MARKS = /\p{M}/gu;
const SPACES = /[\s\p{Z}]+/gu;
/** A scheme, `www.`, or a host ending in a common top-level domain. */
const LINK =
  /(?:[a-z][a-z0-9+.-]*:\/\/|\bwww\.|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|me|co|ly|gg|app|xyz|info|biz|link|site|online|ru|cn|tk|top|club|live|shop|store|click|to|be|us|uk|de)\b)/u;

/** The text as the repeated-text signal compares it: case, accents, spacing and invisible characters ignored. */
export function normalizeText(text: string): string {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .normalize("NFKD")
    .replace(MARKS, "")
    .replace(INVISIBLE, "")
    .replace(SPACES, " ")
    .trim();
}

export function textFingerprint(text: string): string {
  return createHash("sha256").update(normalizeText(text)).digest("base64url").slice(0, 22);
}

export function containsLink(text: string): boolean {
  return LINK.test(normalizeText(text));
}

/** Seconds until the account stops being new; 0 when it is not new (or its age is unknown). */
export function newAccountSecondsLeft(services: ChatServices, viewer: Viewer, now: number): number {
  const hours = services.config.spam.newAccountHours;
  if (viewer.accountCreatedAt === undefined || hours === 0) return 0;
  return Math.max(0, Math.ceil(viewer.accountCreatedAt + hours * 3600 - now / 1000));
}

function throttled(limit: string, retryAfterSeconds: number) {
  return appError(ErrorCode.RATE_LIMITED, `New accounts are limited: try again in ${retryAfterSeconds} s`, {
    details: { retryAfterSeconds, limit },
  });
}

/**
 * Raises a signal: at most once per user and signal within `windowSeconds` (a Redis marker), and
 * puts the account on hold, with the `safety.signal_raised` event, in one transaction.
 */
export async function raiseSignal(
  services: ChatServices,
  userId: string,
  signal: SpamSignal,
  detail: string,
  windowSeconds: number,
): Promise<boolean> {
  const first = await services.redis.set(
    `${KEY}:raised:${signal}:${userId}`,
    "1",
    "EX",
    Math.max(60, windowSeconds),
    "NX",
  );
  if (first === null) return false;
  const event = outboxEventData("safety.signal_raised", {
    userId,
    signal,
    detail,
    at: new Date().toISOString(),
  });
  await services.sql.query(Prisma.sql`
    WITH hold AS (
      INSERT INTO held_senders (user_id, signal) VALUES (${userId}::uuid, ${signal}) ON CONFLICT (user_id) DO NOTHING
    )
    INSERT INTO outbox_events (id, type, payload, created_at)
    VALUES (${event.id}::uuid, ${event.type}, ${JSON.stringify(event.payload)}::jsonb, now())`);
  services.flushEvents();
  return true;
}

/** The Redis counters one message moves; a null key is not counted (an old account, no text). */
export interface MessageCounting {
  /** Seconds until the sender's account stops being new; 0 when it is not new. */
  newFor: number;
  /** The new account's message counter (INCR, expiring when the account stops being new). */
  messagesKey: string | null;
  /** The conversations this text went to (SADD, expiring with the repeated-text window, then SCARD). */
  textKey: string | null;
}

/** Which counters a message from `viewer` moves (send-admission.ts moves them with the send budgets). */
export function countingFor(
  services: ChatServices,
  viewer: Viewer,
  text: string | null,
  now: number,
): MessageCounting {
  const newFor = newAccountSecondsLeft(services, viewer, now);
  const userId = viewer.userId;
  return {
    newFor,
    messagesKey: newFor > 0 ? `${KEY}:new-messages:${userId}` : null,
    textKey: text === null ? null : `${KEY}:text:${userId}:${textFingerprint(text)}`,
  };
}

/**
 * What the counters answered for one message: raises what fires. Throws RATE_LIMITED over the
 * new-account message throttle. Returns whether a signal fired now.
 */
export async function judgeMessage(
  services: ChatServices,
  viewer: Viewer,
  conversationId: string,
  text: string | null,
  counting: MessageCounting,
  counts: { sent: number; conversations: number },
): Promise<boolean> {
  const { spam } = services.config;
  const { newFor, textKey } = counting;
  const { sent, conversations } = counts;
  const userId = viewer.userId;

  if (newFor > 0 && sent > spam.newAccountMaxMessages) {
    await raiseSignal(
      services,
      userId,
      "NEW_ACCOUNT_BURST",
      `more than ${spam.newAccountMaxMessages} messages in the account's first ${spam.newAccountHours} h`,
      newFor,
    );
    throw throttled("chat-new-account-messages", newFor);
  }
  let fired = false;
  if (textKey && conversations >= spam.repeatedTextConversations) {
    fired =
      (await raiseSignal(
        services,
        userId,
        "REPEATED_TEXT",
        `the same text in ${conversations} conversations within ${spam.repeatedTextWindowSeconds} s`,
        spam.repeatedTextWindowSeconds,
      )) || fired;
  }
  if (
    newFor > 0 &&
    text !== null &&
    containsLink(text) &&
    (await hasStranger(services, conversationId, userId))
  ) {
    fired =
      (await raiseSignal(
        services,
        userId,
        "LINKS_FROM_NEW_ACCOUNT",
        "a link from an account in its first hours",
        newFor,
      )) || fired;
  }
  return fired;
}

/** Counts a conversation a new account opens; RATE_LIMITED (and NEW_ACCOUNT_BURST) over the throttle. */
export async function checkConversationOpened(services: ChatServices, viewer: Viewer): Promise<void> {
  const { spam } = services.config;
  const newFor = newAccountSecondsLeft(services, viewer, Date.now());
  if (newFor === 0) return;
  const key = `${KEY}:new-conversations:${viewer.userId}`;
  const replies = (await services.redis.multi().incr(key).expire(key, newFor).exec()) ?? [];
  for (const [error] of replies) if (error) throw error;
  if (Number(replies[0]?.[1]) > spam.newAccountMaxConversations) {
    await raiseSignal(
      services,
      viewer.userId,
      "NEW_ACCOUNT_BURST",
      `more than ${spam.newAccountMaxConversations} conversations opened in the account's first ${spam.newAccountHours} h`,
      newFor,
    );
    throw throttled("chat-new-account-conversations", newFor);
  }
}

/**
 * Whether a held sender's message to this conversation is withheld: some other member is a
 * stranger (not matched with the sender, and has sent nothing in this conversation).
 */
export async function hasStranger(
  services: ChatServices,
  conversationId: string,
  senderId: string,
): Promise<boolean> {
  const rows = await services.sql.query<{ stranger: boolean }>(Prisma.sql`
    SELECT EXISTS (
      SELECT 1 FROM conversation_members o
       WHERE o.conversation_id = ${conversationId}::uuid AND o.user_id <> ${senderId}::uuid
         AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = o.conversation_id AND m.sender_id = o.user_id)
         AND NOT EXISTS (
           SELECT 1 FROM conversations d
            WHERE d.kind = 'DIRECT' AND d.match_id IS NOT NULL AND d.closed_at IS NULL
              AND d.direct_key = LEAST(${senderId}::text COLLATE "C", o.user_id::text COLLATE "C")
                                 || ':' || GREATEST(${senderId}::text COLLATE "C", o.user_id::text COLLATE "C"))
    ) AS stranger`);
  return rows[0]?.stranger === true;
}
