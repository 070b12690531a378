import { RedisPubSub } from "graphql-redis-subscriptions";
import Redis from "ioredis";
import { redisOptions, type Logger, type RedisTarget } from "@hv/kit";
import { reviveMessageRow, type MessageRow } from "./rows";

export type ChatEventKind =
  | "MESSAGE_ADDED"
  | "MESSAGE_EDITED"
  | "MESSAGE_DELETED"
  | "REACTION_CHANGED"
  | "READ"
  | "DELIVERED"
  | "TYPING"
  | "MEMBERS_CHANGED"
  | "CONVERSATION_CLOSED";

/** What travels through Redis to each recipient's channel (and what `ChatEvent` resolves from). */
export interface ChatEventPayload {
  kind: ChatEventKind;
  conversationId: string;
  seq: number;
  message: MessageRow | null;
  actorId: string | null;
  occurredAt: string;
}

/**
 * The fan-out between chat instances: one Redis channel per user (`<prefix>:chat:user:<id>`).
 * Recipients are decided when publishing (members, minus blocked pairs), so a subscriber only
 * ever gets what is theirs. Redis pub/sub is the fast path only: events are published after the
 * change committed, and a client that missed some catches up with `messages(after: seq)`.
 */
export interface ChatBus {
  publish(recipients: Iterable<string>, event: ChatEventPayload): Promise<void>;
  /** The events for one user, from now on. */
  subscribe(userId: string): AsyncIterableIterator<ChatEventPayload> & { return(): Promise<IteratorResult<ChatEventPayload>> };
  /** Called when the subscriber connection is lost and when it is back (events may have been missed). */
  onGap(listener: () => void): void;
  close(): Promise<void>;
}

export function createChatBus(redis: RedisTarget | string, prefix: string, logger: Logger): ChatBus {
  const target = redisOptions(redis);
  // Publishing fails fast while Redis is away (the change is stored; clients catch up).
  // Auto-pipelining: the publishes of one tick (a message's recipients, concurrent sends) leave in one write.
  const publisher = new Redis({ ...target, enableOfflineQueue: false, maxRetriesPerRequest: 1, enableAutoPipelining: true });
  const subscriber = new Redis({ ...target, retryStrategy: (times) => Math.min(times * 100, 2_000) });
  for (const [role, client] of [["chat publisher", publisher], ["chat subscriber", subscriber]] as const) {
    let down = false;
    client.on("error", (error: Error) => {
      if (!down) logger.warn({ err: error, role }, "chat fan-out: redis connection error");
      down = true;
    });
    client.on("ready", () => {
      if (down) logger.info({ role }, "chat fan-out: redis connection restored");
      down = false;
    });
  }
  const gapListeners: Array<() => void> = [];
  const gap = () => {
    for (const listener of gapListeners) listener();
  };
  let everReady = false;
  let lost = false;
  subscriber.on("ready", () => {
    everReady = true;
    if (!lost) return;
    lost = false;
    gap(); // resubscribed (ioredis autoResubscribe): clients should catch up once more
  });
  subscriber.on("close", () => {
    if (!everReady || lost) return;
    lost = true;
    gap();
  });
  const pubsub = new RedisPubSub({ publisher, subscriber });
  const channel = (userId: string) => `${prefix}:chat:user:${userId}`;

  return {
    async publish(recipients, event) {
      const ids = [...new Set(recipients)];
      try {
        await Promise.all(ids.map((id) => pubsub.publish(channel(id), event)));
      } catch (error) {
        logger.warn({ err: error, kind: event.kind, conversationId: event.conversationId }, "chat fan-out: publish failed (stored; clients catch up by seq)");
      }
    },
    subscribe(userId) {
      const source = pubsub.asyncIterator<ChatEventPayload>(channel(userId));
      return mapStream(source, (event) => ({ ...event, message: event.message ? reviveMessageRow(event.message) : null }));
    },
    onGap(listener) {
      gapListeners.push(listener);
    },
    async close() {
      subscriber.removeAllListeners("close");
      for (const client of [publisher, subscriber]) {
        if (client.status === "ready") await client.quit().catch(() => client.disconnect());
        else client.disconnect();
      }
    },
  };
}

type Stream<T> = AsyncIterableIterator<T> & { return(): Promise<IteratorResult<T>> };

/**
 * `source` transformed and filtered, ended by `return()` at once even while a `next()` waits, with
 * `onEnd` run once when it ends.
 */
export function mapStream<S, T>(
  source: AsyncIterator<S>,
  map: (value: S) => T | undefined,
  onEnd?: () => void,
): Stream<T> {
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    onEnd?.();
    await source.return?.();
  };
  const stream: Stream<T> = {
    async next() {
      for (;;) {
        if (ended) return { done: true, value: undefined };
        const result = await source.next();
        if (result.done || ended) {
          await end();
          return { done: true, value: undefined };
        }
        const value = map(result.value);
        if (value !== undefined) return { done: false, value };
      }
    },
    async return() {
      await end();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return stream;
    },
  };
  return stream;
}
