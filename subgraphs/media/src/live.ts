import type { Logger, Redis } from "@hv/kit";

/**
 * "Your media changed" travels from the worker to the media subgraph instances over Redis
 * pub/sub. It is only a nudge for live screens: the row in the database is the truth, and a
 * client that missed the nudge reads it with a query.
 */
export interface MediaUpdate {
  mediaId: string;
  ownerId: string;
}

export function mediaUpdatesChannel(prefix: string): string {
  return `${prefix}:media.updates`;
}

export async function publishMediaUpdate(
  redis: Redis,
  prefix: string,
  update: MediaUpdate,
  logger: Logger,
): Promise<void> {
  try {
    await redis.publish(mediaUpdatesChannel(prefix), JSON.stringify(update));
  } catch (error) {
    logger.warn({ err: error, mediaId: update.mediaId }, "could not publish a media update");
  }
}

export function parseMediaUpdate(message: string): MediaUpdate | null {
  try {
    const value = JSON.parse(message) as Partial<MediaUpdate>;
    return typeof value.mediaId === "string" && typeof value.ownerId === "string"
      ? { mediaId: value.mediaId, ownerId: value.ownerId }
      : null;
  } catch {
    return null;
  }
}

/**
 * One Redis subscription per media process, fanned out in memory to the owners' open
 * `myMediaUpdates` streams.
 */
export interface MediaUpdateHub {
  /** The updates of one owner's media, until `signal` aborts. */
  updatesOf(ownerId: string, signal: AbortSignal): AsyncIterableIterator<MediaUpdate>;
  stop(): Promise<void>;
}

export async function startMediaUpdateHub(
  subscriber: Redis,
  prefix: string,
  logger: Logger,
): Promise<MediaUpdateHub> {
  const listeners = new Map<string, Set<(update: MediaUpdate) => void>>();
  subscriber.on("message", (_channel: string, message: string) => {
    const update = parseMediaUpdate(message);
    if (!update) return;
    for (const listener of listeners.get(update.ownerId) ?? []) listener(update);
  });
  await subscriber.subscribe(mediaUpdatesChannel(prefix));
  logger.debug({ channel: mediaUpdatesChannel(prefix) }, "listening for media updates");
  return {
    updatesOf(ownerId, signal) {
      const queued: MediaUpdate[] = [];
      let wake: (() => void) | null = null;
      const listener = (update: MediaUpdate) => {
        queued.push(update);
        wake?.();
      };
      const set = listeners.get(ownerId) ?? new Set();
      set.add(listener);
      listeners.set(ownerId, set);
      const detach = () => {
        set.delete(listener);
        if (set.size === 0) listeners.delete(ownerId);
        wake?.();
      };
      signal.addEventListener("abort", detach, { once: true });
      const iterator: AsyncIterableIterator<MediaUpdate> = {
        async next() {
          while (queued.length === 0 && !signal.aborted)
            await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
          const update = queued.shift();
          return update && !signal.aborted
            ? { done: false, value: update }
            : { done: true, value: undefined };
        },
        async return() {
          detach();
          return { done: true, value: undefined };
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },
    async stop() {
      listeners.clear();
      await subscriber.unsubscribe().catch(() => undefined);
    },
  };
}
