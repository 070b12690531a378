import { appError, checkMediaGrant, ErrorCode } from "@hv/kit";
import type { MediaContext } from "../context";
import type { MediaRow } from "../loaders";
import { DEFAULT_VARIANT, variantsOf } from "../variants";

/**
 * Who may read a media item's bytes: its owner always; any signed-in viewer for a profile photo
 * (Users decides who sees a profile: if it returned the person, their photos are visible); for a
 * chat attachment, only a viewer Chat vouches for with a grant for this media, this viewer and
 * this owner (kit/src/media-grants.ts).
 */
export function mayRead(media: MediaRow, readGrant: unknown, context: MediaContext): boolean {
  const viewer = context.viewer;
  if (!viewer) return false;
  if (viewer.userId === media.ownerId) return true;
  if (media.purpose === "PROFILE_PHOTO") return true;
  const check = checkMediaGrant(readGrant, { mediaId: media.id, viewerId: viewer.userId, ownerId: media.ownerId }, context.services.config.grantSecret);
  if (!check.ok && readGrant !== null && readGrant !== undefined) {
    context.logger.info({ mediaId: media.id, reason: check.reason }, "media read grant refused");
  }
  return check.ok;
}

export async function signedUrl(media: MediaRow, variantName: unknown, readGrant: unknown, context: MediaContext): Promise<string | null> {
  if (variantName !== undefined && variantName !== null && (typeof variantName !== "string" || variantName.length > 40)) {
    throw appError(ErrorCode.BAD_USER_INPUT, "variant must be a variant name such as 640.jpg", { field: "variant" });
  }
  if (media.status !== "READY" || !mayRead(media, readGrant, context)) return null;
  const variants = variantsOf(media);
  if (variants.length === 0) return null;
  const wanted = variantName ?? DEFAULT_VARIANT[media.kind];
  const variant = variants.find((candidate) => candidate.name === wanted) ?? (variantName == null ? variants[0] : undefined);
  if (!variant) {
    throw appError(ErrorCode.BAD_USER_INPUT, `No variant ${JSON.stringify(wanted)}: one of ${variants.map((v) => v.name).join(", ")}`, { field: "variant" });
  }
  const signed = await context.services.storage.signDownload(variant.key, {
    contentType: variant.contentType,
    ttlSeconds: context.services.config.downloadUrlTtlSeconds,
  });
  return signed.url;
}
