import type { EventHandlers, Logger } from "@hv/kit";
import type { MediaDb } from "./db";
import type { MediaStorage } from "./storage";
import { variantsOf } from "./variants";

/**
 * What Media does with the events it subscribes to (see SUBSCRIPTIONS in @hv/kit).
 * `storage` absent: rows only (tests of other subgraphs that seed rows without files).
 */
export function mediaEventHandlers(db: MediaDb, logger: Logger, storage?: MediaStorage): EventHandlers<"media"> {
  return {
    async "user.deleted"({ userId }, { eventId }) {
      // Files first, then rows: a retry after a crash in between still finds the keys to delete.
      const rows = await db.media.findMany({ where: { ownerId: userId }, select: { sourceKey: true, variants: true } });
      const keys = rows.flatMap((row) => [...variantsOf(row).map((variant) => variant.key), ...(row.sourceKey ? [row.sourceKey] : [])]);
      if (storage) await storage.delete(keys);
      const { count } = await db.media.deleteMany({ where: { ownerId: userId } });
      logger.info({ eventId, userId, media: count, objects: keys.length }, "user.deleted: media purged");
    },
  };
}
