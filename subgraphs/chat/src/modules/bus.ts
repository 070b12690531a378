import { RedisPubSub } from "graphql-redis-subscriptions";
import Redis from "ioredis";
import { holdRedisWrites, redisOptions, turnWrites, type Logger, type RedisTarget } from "@hv/kit";
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
  | "CONVERSATION_CLOSED"
  | "INVITATION_RECEIVED";

/** What travels through Redis to each recipient's channel (and what `ChatEvent` resolves from). */
export interface ChatEventPayload {
  kind: ChatEventKind;
  conversationId: string;
  seq: number;
  message: MessageRow | null;
  actorId: string | null;
  /** INVITATION_RECEIVED: the invitation (published to the invitee only). */
  invitationId?: string;
  occurredAt: string;
}

/**
 * The fan-out between chat instances: one Redis channel per user (`<prefix>:chat:user:<id>`).
 * Recipients are decided when publishing (members, minus blocked pairs), so a subscriber only
 * ever gets what is theirs. Redis pub/sub is the fast path only: events are published after the
 * change committed, and a client that missed some catches up with `messages(after: seq)`.
 */
export interface ChatBus {
  /**
   * Publishes `event` to each recipient's channel. Answers the recipients whose channel had a
   * subscriber (a live feed on some Chat instance); none when the publish failed.
   */
  publish(recipients: Iterable<string>, event: ChatEventPayload): Promise<ReadonlySet<string>>;
  /** The events for one user, from now on. */
  subscribe(
    userId: string,
  ): AsyncIterableIterator<ChatEventPayload> & { return(): Promise<IteratorResult<ChatEventPayload>> };
  /** Called when either Redis connection is lost and when both are back (events may have been missed). */
  onGap(listener: () => void): void;
  close(): Promise<void>;
}

/** A body that is not JSON arrives as it was published (a string): dropped. */
const parsedOnly = (event: ChatEventPayload | string): ChatEventPayload | undefined =>
  typeof event === "string" ? undefined : event;

/**
 * ARGV: the body, then each recipient's channel. One command publishes an event to all its
 * recipients; answers each channel's count of receiving subscribers, in ARGV's order.
 */
const PUBLISH_ALL_LUA = `local received = {}
for i = 2, #ARGV do received[i - 1] = redis.call('publish', ARGV[i], ARGV[1]) end
return received`;

type BusPublisher = Redis & { hvChatPublishAll(body: string, ...channels: string[]): Promise<number[]> };

const NOBODY_LIVE: ReadonlySet<string> = new Set();

export function createChatBus(redis: RedisTarget | string, prefix: string, logger: Logger): ChatBus {
  const target = redisOptions(redis);
  // Publishing fails fast while Redis is away (the change is stored; clients catch up).
  const publisher = new Redis({
    ...target,
    connectionName: `${prefix}:chat-fanout-publisher`,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
  }) as BusPublisher;
  // The publishes of one event-loop turn (concurrent sends) leave in one write: the socket is held
  // to the turn's end (no auto-pipelining, which builds an ioredis pipeline per turn).
  const writes = turnWrites();
  publisher.defineCommand("hvChatPublishAll", { numberOfKeys: 0, lua: PUBLISH_ALL_LUA });
  const subscriber = new Redis({
    ...target,
    connectionName: `${prefix}:chat-fanout-subscriber`,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
  });
  for (const [role, client] of [
    ["chat publisher", publisher],
    ["chat subscriber", subscriber],
  ] as const) {
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
  // The fan-out is live only while both connections are: a gap opens when either closes and
  // closes (clients told to catch up once more) when both are ready again.
  let everReady = false;
  let lost = false;
  const bothReady = () => publisher.status === "ready" && subscriber.status === "ready";
  for (const client of [publisher, subscriber]) {
    client.on("ready", () => {
      if (!bothReady()) return;
      everReady = true;
      if (!lost) return;
      lost = false;
      gap(); // resubscribed (ioredis autoResubscribe) and publishing again
    });
    client.on("close", () => {
      if (!everReady || lost) return;
      lost = true;
      gap();
    });
  }
  const pubsub = new RedisPubSub({ publisher, subscriber, deserializer: eventParser() });
  const channel = (userId: string) => `${prefix}:chat:user:${userId}`;

  return {
    async publish(recipients, event) {
      const ids = [...new Set(recipients)];
      // Serialized once for every recipient (what RedisPubSub.publish would do per channel).
      const body = JSON.stringify(event);
      try {
        holdRedisWrites(writes, publisher);
        const received =
          ids.length === 1
            ? [await publisher.publish(channel(ids[0] as string), body)]
            : ids.length > 1
              ? await publisher.hvChatPublishAll(body, ...ids.map(channel))
              : [];
        return new Set(ids.filter((_id, index) => (received[index] ?? 0) > 0));
      } catch (error) {
        logger.warn(
          { err: error, kind: event.kind, conversationId: event.conversationId },
          "chat fan-out: publish failed (stored; clients catch up by seq)",
        );
        return NOBODY_LIVE;
      }
    },
    subscribe(userId) {
      const source = pubsub.asyncIterator<ChatEventPayload | string>(channel(userId));
      return mapStream(source, parsedOnly);
    },
    onGap(listener) {
      gapListeners.push(listener);
    },
    async close() {
      publisher.removeAllListeners("close");
      subscriber.removeAllListeners("close");
      for (const client of [publisher, subscriber]) {
        if (client.status === "ready") await client.quit().catch(() => client.disconnect());
        else client.disconnect();
      }
    },
  };
}

const sameBody = (a: Buffer | string, b: Buffer | string) =>
  typeof a === "string" || typeof b === "string" ? a.toString() === b.toString() : a.equals(b);

/**
 * The bus's deserializer. A published event reaches an instance once per recipient subscribed
 * there, the same body on each channel, one after the other: it is parsed and revived once and
 * every recipient gets that one object (so one execution can serve them all,
 * kit/src/shared-execution.ts). Nothing may mutate it.
 */
export function eventParser(): (body: Buffer | string) => ChatEventPayload {
  let lastBody: Buffer | string | undefined;
  let lastEvent: ChatEventPayload | undefined;
  return (body) => {
    if (lastEvent && lastBody !== undefined && sameBody(lastBody, body)) return lastEvent;
    const event = JSON.parse(typeof body === "string" ? body : body.toString("utf8")) as ChatEventPayload;
    event.message = event.message ? reviveMessageRow(event.message) : null;
    lastBody = body;
    lastEvent = event;
    return event;
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
  return new MappedStream(source, map, onEnd);
}

// Streams are classes, not closures: one is held per open subscription, for hours.
class MappedStream<S, T> implements Stream<T> {
  private ended = false;

  constructor(
    private readonly source: AsyncIterator<S>,
    private readonly map: (value: S) => T | undefined,
    private readonly onEnd: (() => void) | undefined,
  ) {}

  private async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.onEnd?.();
    await this.source.return?.();
  }

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.ended) return { done: true, value: undefined };
      const result = await this.source.next();
      if (result.done || this.ended) {
        await this.end();
        return { done: true, value: undefined };
      }
      const value = this.map(result.value);
      if (value !== undefined) return { done: false, value };
    }
  }

  async return(): Promise<IteratorResult<T>> {
    await this.end();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * How long a subscriber's stream holds a conversation's events behind a missing message `seq`
 * (published late by a stalled instance) before letting them go without it.
 */
export const ORDER_HOLD_MS = 250;

interface ConversationOrder {
  /** The MESSAGE_ADDED seq expected next (unknown until the first one). */
  next: number | undefined;
  /** Events held behind a gap, in arrival order. */
  held: ChatEventPayload[];
  timer: NodeJS.Timeout | undefined;
}

/**
 * One subscriber's events with each conversation's MESSAGE_ADDED in `seq` order. A message whose
 * seq is past the next expected one is held, with every later event of its conversation, until
 * the missing ones arrive (then all go out, messages sorted by seq) or `holdMs` passes (then they
 * go out without them: the app catches up, docs/realtime-faults.md). An event below the expected
 * seq (a duplicate, or later than the hold) passes as it is. `onEnd` runs once when it ends.
 */
export function inSeqOrder(
  source: AsyncIterator<ChatEventPayload>,
  holdMs: number,
  onEnd?: () => void,
): Stream<ChatEventPayload> {
  const stream = new SeqOrderStream(source, holdMs, onEnd);
  void stream.pump();
  return stream;
}

const isAdded = (event: ChatEventPayload) => event.kind === "MESSAGE_ADDED";

function gapClosed(order: ConversationOrder): boolean {
  let expected = order.next ?? 0;
  for (const seq of order.held
    .filter(isAdded)
    .map((e) => e.seq)
    .sort((a, b) => a - b)) {
    if (seq < expected) continue;
    if (seq !== expected) return false;
    expected += 1;
  }
  return true;
}

function releaseHeld(held: { stream: SeqOrderStream; order: ConversationOrder }): void {
  held.stream.release(held.order);
}

class SeqOrderStream implements Stream<ChatEventPayload> {
  private readonly ready: ChatEventPayload[] = [];
  // Made when the first event arrives: most subscriptions wait for hours without one.
  private orders: Map<string, ConversationOrder> | undefined;
  private waiting: ((result: IteratorResult<ChatEventPayload>) => void) | undefined;
  private done = false;

  constructor(
    private readonly source: AsyncIterator<ChatEventPayload>,
    private readonly holdMs: number,
    private readonly onEnd: (() => void) | undefined,
  ) {}

  async pump(): Promise<void> {
    try {
      for (;;) {
        const result = await this.source.next();
        if (result.done || this.done) break;
        this.accept(result.value);
      }
    } finally {
      this.finish();
    }
  }

  private emit(event: ChatEventPayload): void {
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ done: false, value: event });
    } else this.ready.push(event);
  }

  release(order: ConversationOrder): void {
    clearTimeout(order.timer);
    order.timer = undefined;
    const held = order.held;
    order.held = [];
    const added = held.filter(isAdded).sort((a, b) => a.seq - b.seq);
    let index = 0;
    for (const event of held) {
      const next = isAdded(event) ? (added[index++] as ChatEventPayload) : event;
      if (isAdded(next)) order.next = Math.max(order.next ?? 0, next.seq + 1);
      this.emit(next);
    }
  }

  private accept(event: ChatEventPayload): void {
    this.orders ??= new Map();
    let order = this.orders.get(event.conversationId);
    if (!order) {
      order = { next: undefined, held: [], timer: undefined };
      this.orders.set(event.conversationId, order);
    }
    if (order.held.length > 0) {
      order.held.push(event);
      if (isAdded(event) && gapClosed(order)) this.release(order);
      return;
    }
    if (!isAdded(event)) return this.emit(event);
    if (order.next === undefined || event.seq <= order.next) {
      order.next = Math.max(order.next ?? 0, event.seq + 1);
      return this.emit(event);
    }
    order.held.push(event);
    order.timer = setTimeout(releaseHeld, this.holdMs, { stream: this, order });
    order.timer.unref();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.onEnd?.();
    for (const order of this.orders?.values() ?? []) clearTimeout(order.timer);
    this.waiting?.({ done: true, value: undefined });
    this.waiting = undefined;
  }

  next(): Promise<IteratorResult<ChatEventPayload>> {
    const event = this.ready.shift();
    if (event) return Promise.resolve({ done: false, value: event });
    if (this.done) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  async return(): Promise<IteratorResult<ChatEventPayload>> {
    this.finish();
    await this.source.return?.();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
