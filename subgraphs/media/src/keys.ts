import type { Queue } from "bullmq";
import type { MediaRow } from "./loaders";
import { schedulePurge, type MaintenanceJobData } from "./queue";
import { sourceKey } from "./storage";
import { variantsOf } from "./variants";

type Keyed = Pick<MediaRow, "id" | "ownerId" | "variants" | "sourceKey">;

/**
 * Every storage key a media item may have written: its variants, the original's key in the row,
 * and the original's key derived from owner and id whatever the row says (the row's is cleared
 * once processed, but a late PUT on a still-valid upload URL writes there again).
 */
export function keysOf(media: Keyed): string[] {
  const keys = new Set(variantsOf(media).map((variant) => variant.key));
  if (media.sourceKey) keys.add(media.sourceKey);
  keys.add(sourceKey(media.ownerId, media.id));
  return [...keys];
}

/**
 * While the item's upload URL still works, someone may PUT the original again: delete that key
 * once more after the URL has expired (plus the grace period). Nothing to do once it has.
 */
export async function purgeSourceLater(
  queue: Queue<MaintenanceJobData>,
  media: Pick<MediaRow, "id" | "ownerId" | "uploadExpiresAt">,
  graceSeconds: number,
): Promise<void> {
  if (!media.uploadExpiresAt) return;
  const at = new Date(media.uploadExpiresAt.getTime() + graceSeconds * 1000);
  if (at.getTime() <= Date.now()) return;
  await schedulePurge(queue, [sourceKey(media.ownerId, media.id)], at);
}
