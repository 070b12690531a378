import type { EventHandlers, Logger } from "@hv/kit";
import type { MediaDb } from "./db";

/** What Media does with the events it subscribes to (see SUBSCRIPTIONS in @hv/kit). */
export function mediaEventHandlers(db: MediaDb, logger: Logger): EventHandlers<"media"> {
  return {
    async "user.deleted"({ userId }, { eventId }) {
      // Rows only: no files are stored yet. Uploads bring them, and must delete them here too.
      const { count } = await db.media.deleteMany({ where: { ownerId: userId } });
      logger.info({ eventId, userId, media: count }, "user.deleted: media purged");
    },
  };
}
