import type { EventHandlers, Logger } from "@hv/kit";
import type { Queue } from "bullmq";
import type { MediaDb } from "./db";
import { keysOf, purgeSourceLater } from "./keys";
import type { PhotoCache } from "./modules/photo-cache";
import type { MaintenanceJobData } from "./queue";
import type { MediaStorage } from "./storage";

/**
 * What Media does with the events it subscribes to (see SUBSCRIPTIONS in @hv/kit). Delivery is at
 * least once and in no guaranteed order, so each handler is idempotent and ordered by the event's
 * `occurredAt` where order matters (as Discovery does):
 *
 * - `user.blocked` upserts the pair keeping the newest `event_at`; `user.unblocked` deletes it
 *   unless the stored block is newer (an unblock handled before an older block is not remembered:
 *   that late block wins, and the person can unblock again).
 * - `user.profile_changed` carries `banned` as it is after the change: applied only when not older
 *   than the stored state. `user.banned` sets `banned` (bans are final in Users; a later
 *   profile_changed with `banned: false` lifts it).
 * - `user.deleted` deletes the user's files (the derived original keys too), then their rows, their
 *   blocks and state.
 *
 * `storage` absent: rows only (tests of other subgraphs that seed rows without files). `photos`:
 * the profile photo cache, emptied for a deleted user once their rows are gone.
 */
export function mediaEventHandlers(
  db: MediaDb,
  logger: Logger,
  storage?: MediaStorage,
  maintenance?: { queue: Queue<MaintenanceJobData>; graceSeconds: number },
  photos?: Pick<PhotoCache, "invalidate">,
): EventHandlers<"media"> {
  return {
    async "user.deleted"({ userId }, { eventId }) {
      // Files first, then rows: a retry after a crash in between still finds the keys to delete.
      const rows = await db.media.findMany({
        where: { ownerId: userId },
        select: { id: true, ownerId: true, sourceKey: true, variants: true, uploadExpiresAt: true },
      });
      const keys = rows.flatMap((row) => keysOf(row));
      if (storage) await storage.delete(keys);
      if (maintenance)
        for (const row of rows) await purgeSourceLater(maintenance.queue, row, maintenance.graceSeconds);
      const { count } = await db.media.deleteMany({ where: { ownerId: userId } });
      await db.block.deleteMany({ where: { OR: [{ blockerId: userId }, { blockedId: userId }] } });
      await db.userState.deleteMany({ where: { userId } });
      await photos?.invalidate(userId);
      logger.info({ eventId, userId, media: count, objects: keys.length }, "user.deleted: media purged");
    },
    async "user.blocked"({ blockerId, blockedId }, { occurredAt }) {
      await db.$executeRaw`
        INSERT INTO blocks (blocker_id, blocked_id, event_at)
        VALUES (${blockerId}::uuid, ${blockedId}::uuid, ${occurredAt})
        ON CONFLICT (blocker_id, blocked_id) DO UPDATE SET event_at = GREATEST(blocks.event_at, EXCLUDED.event_at)`;
    },
    async "user.unblocked"({ blockerId, blockedId }, { occurredAt }) {
      await db.block.deleteMany({ where: { blockerId, blockedId, eventAt: { lte: occurredAt } } });
    },
    async "user.banned"({ userId }, { occurredAt }) {
      // Its time counts like a profile_changed's: an older profile_changed cannot lift the ban.
      await db.$executeRaw`
        INSERT INTO user_states (user_id, banned, event_at) VALUES (${userId}::uuid, true, ${occurredAt})
        ON CONFLICT (user_id) DO UPDATE SET banned = true, event_at = GREATEST(user_states.event_at, EXCLUDED.event_at)`;
    },
    /**
     * REMOVE_MEDIA: the item's files go, then its row (and its place on the profile), so reads and
     * signed URLs answer not found. A redelivery finds no row: nothing to do.
     */
    async "moderation.action_taken"({ action, targetKind, targetId, caseId }, { eventId }) {
      if (action !== "REMOVE_MEDIA" || targetKind !== "MEDIA") return;
      const media = await db.media.findUnique({
        where: { id: targetId },
        select: {
          id: true,
          ownerId: true,
          position: true,
          sourceKey: true,
          variants: true,
          uploadExpiresAt: true,
        },
      });
      if (!media) return;
      if (storage) await storage.delete(keysOf(media));
      await db.$transaction(async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${media.ownerId}))`;
        await tx.media.deleteMany({ where: { id: media.id } });
        if (media.position !== null) {
          await tx.media.updateMany({
            where: { ownerId: media.ownerId, purpose: "PROFILE_PHOTO", position: { gt: media.position } },
            data: { position: { decrement: 1 } },
          });
        }
      });
      if (maintenance) await purgeSourceLater(maintenance.queue, media, maintenance.graceSeconds);
      await photos?.invalidate(media.ownerId);
      logger.info({ eventId, caseId, mediaId: media.id }, "moderation.action_taken: media removed");
    },
    async "user.profile_changed"({ userId, banned }, { occurredAt }) {
      await db.$executeRaw`
        INSERT INTO user_states (user_id, banned, event_at) VALUES (${userId}::uuid, ${banned}, ${occurredAt})
        ON CONFLICT (user_id) DO UPDATE SET banned = EXCLUDED.banned, event_at = EXCLUDED.event_at
        WHERE user_states.event_at IS NULL OR user_states.event_at <= EXCLUDED.event_at`;
    },
  };
}
