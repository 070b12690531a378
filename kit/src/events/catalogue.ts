import { z } from "zod";

/**
 * The one catalogue of events between subgraphs: each type, the shape of its payload, and which
 * consumers receive it. Payloads are plain JSON (ids are UUIDs, dates are ISO strings) because
 * they travel through Postgres (`outbox_events.payload`) and Redis.
 *
 * Evolving a payload: add optional fields only; consumers ignore fields they do not know (zod
 * strips them). A breaking change is a new event type.
 */

const id = z.uuid();
const gender = z.enum(["WOMAN", "MAN", "NONBINARY"]);
const pair = z.object({ blockerId: id, blockedId: id });
const match = z.object({ matchId: id, userIds: z.tuple([id, id]) });

export const EVENT_SCHEMAS = {
  /** The account is gone: every subgraph purges what it holds about the user. */
  "user.deleted": z.object({ userId: id }),
  "user.blocked": pair,
  "user.unblocked": pair,
  /**
   * Everything Discovery needs to decide who may see whom, as it is after the change (the whole
   * state, not a diff: apply the latest by `occurredAt`, see consumer.ts).
   */
  "user.profile_changed": z.object({
    userId: id,
    /** `YYYY-MM-DD`. */
    birthDate: z.iso.date(),
    gender: gender.nullable(),
    gendersOfInterest: z.array(gender),
    ageMin: z.number().int(),
    ageMax: z.number().int(),
    maxDistanceKm: z.number().int(),
    visibility: z.enum(["VISIBLE", "HIDDEN"]),
    banned: z.boolean(),
  }),
  "user.banned": z.object({ userId: id }),
  "match.created": match,
  "match.ended": match,
  /**
   * A message was stored (Chat). `recipients` are the members who should be notified, as Chat
   * decided at send time: not the sender, not muted, not blocking or blocked by the sender. Each
   * carries their unread count after this message (the badge). `preview` is null when the
   * message has no text (attachments only); Push decides whether to show it.
   */
  "message.created": z.object({
    messageId: id,
    conversationId: id,
    conversationKind: z.enum(["DIRECT", "GROUP"]),
    senderId: id,
    seq: z.number().int().positive(),
    sentAt: z.iso.datetime(),
    preview: z.string().max(200).nullable(),
    recipients: z.array(
      z.object({
        userId: id,
        /** Unread in this conversation after this message. */
        unreadCount: z.number().int().min(0),
        /**
         * Unread in all the recipient's conversations that they have not muted (this one included):
         * the app badge. Optional (added later): older events lack it, consumers fall back to unreadCount.
         */
        totalUnreadCount: z.number().int().min(0).optional(),
      }),
    ),
  }),
  /**
   * A chat message was reported (Chat), with a snapshot of it as it was when reported: Users files
   * it into the moderation queue. `reason`: Chat's MessageReportReason.
   */
  "message.reported": z.object({
    reportId: id,
    messageId: id,
    conversationId: id,
    senderId: id,
    text: z.string().nullable(),
    sentAt: z.iso.datetime(),
    reporterId: id,
    reason: z.enum(["SPAM", "HARASSMENT", "INAPPROPRIATE", "SCAM", "OTHER"]),
    note: z.string().nullable(),
  }),
  /**
   * A media item was reported (Media), with a snapshot: its owner, kind and the variants' storage
   * keys (moderators read them through Media's signed URLs while the item exists).
   */
  "media.reported": z.object({
    reportId: id,
    mediaId: id,
    ownerId: id,
    kind: z.enum(["IMAGE", "VIDEO"]),
    variantKeys: z.array(z.string()),
    reporterId: id,
    reason: z.enum([
      "SPAM",
      "HARASSMENT",
      "INAPPROPRIATE_CONTENT",
      "FAKE_PROFILE",
      "UNDERAGE",
      "SCAM",
      "OTHER",
    ]),
    note: z.string().nullable(),
  }),
  /**
   * Chat saw a spam signal about a user (docs/spam-signals.md): raised at most once per user and
   * signal per window; the account's messages to strangers are held back until a moderator acts.
   * Users opens or joins a moderation case for them.
   */
  "safety.signal_raised": z.object({
    userId: id,
    signal: z.enum(["NEW_ACCOUNT_BURST", "REPEATED_TEXT", "LINKS_FROM_NEW_ACCOUNT"]),
    detail: z.string(),
    at: z.iso.datetime(),
  }),
  /**
   * A moderator resolved a case (Users). `until`: the end of a SUSPEND (ISO). Discovery hides a
   * suspended or banned user, Chat deletes a removed message (and releases a held-back user on
   * DISMISS), Media stops serving removed media.
   */
  "moderation.action_taken": z.object({
    caseId: id,
    targetKind: z.enum(["USER", "MESSAGE", "MEDIA"]),
    targetId: id,
    targetUserId: id,
    action: z.enum(["DISMISS", "REMOVE_MESSAGE", "REMOVE_MEDIA", "WARN", "SUSPEND", "BAN"]),
    until: z.iso.datetime().optional(),
    moderatorId: id,
    at: z.iso.datetime(),
  }),
} as const;

export type EventType = keyof typeof EVENT_SCHEMAS;

/** The payload of one event type, e.g. `EventPayload<"user.blocked">`. */
export type EventPayload<T extends EventType> = z.infer<(typeof EVENT_SCHEMAS)[T]>;

/** Who subscribes to what. Each consumer has one BullMQ queue, `events.<consumer>`. */
export const SUBSCRIPTIONS = {
  discovery: [
    "user.deleted",
    "user.blocked",
    "user.unblocked",
    "user.profile_changed",
    "user.banned",
    "moderation.action_taken",
  ],
  chat: [
    "user.deleted",
    "user.blocked",
    "user.unblocked",
    "user.banned",
    "user.profile_changed",
    "match.created",
    "match.ended",
    "moderation.action_taken",
  ],
  media: [
    "user.deleted",
    "user.blocked",
    "user.unblocked",
    "user.banned",
    "user.profile_changed",
    "moderation.action_taken",
  ],
  /** The moderation queue (Users). */
  users: ["message.reported", "media.reported", "safety.signal_raised"],
  push: ["match.created", "message.created"],
} as const satisfies Record<string, readonly EventType[]>;

export type EventConsumer = keyof typeof SUBSCRIPTIONS;
export const EVENT_CONSUMERS = Object.keys(SUBSCRIPTIONS) as EventConsumer[];

/** The event types one consumer receives. */
export type SubscribedEvent<C extends EventConsumer> = (typeof SUBSCRIPTIONS)[C][number];

/** The consumers of one event type (none for a type nobody subscribes to). */
export function subscribersOf(type: string): EventConsumer[] {
  return EVENT_CONSUMERS.filter((consumer) => (SUBSCRIPTIONS[consumer] as readonly string[]).includes(type));
}

export function isEventType(type: unknown): type is EventType {
  return typeof type === "string" && Object.hasOwn(EVENT_SCHEMAS, type);
}

/** The BullMQ queue of a consumer. */
export function eventQueueName(consumer: EventConsumer): string {
  return `events.${consumer}`;
}

/** BullMQ key prefix used when none is given: every process must use the same one. */
export const DEFAULT_EVENTS_PREFIX = "hv";

export class InvalidEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidEventError";
  }
}

/** Checks a payload against its type's schema; returns it without unknown fields. */
export function parseEventPayload<T extends EventType>(type: T, payload: unknown): EventPayload<T> {
  const result = EVENT_SCHEMAS[type].safeParse(payload);
  if (!result.success) {
    throw new InvalidEventError(`invalid ${type} payload: ${z.prettifyError(result.error)}`);
  }
  return result.data as EventPayload<T>;
}
