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

export async function publishMediaUpdate(redis: Redis, prefix: string, update: MediaUpdate, logger: Logger): Promise<void> {
  try {
    await redis.publish(mediaUpdatesChannel(prefix), JSON.stringify(update));
  } catch (error) {
    logger.warn({ err: error, mediaId: update.mediaId }, "could not publish a media update");
  }
}

export function parseMediaUpdate(message: string): MediaUpdate | null {
  try {
    const value = JSON.parse(message) as Partial<MediaUpdate>;
    return typeof value.mediaId === "string" && typeof value.ownerId === "string" ? { mediaId: value.mediaId, ownerId: value.ownerId } : null;
  } catch {
    return null;
  }
}
