import { appError, checkMediaGrant, ErrorCode } from "@hv/kit";
import type { MediaContext } from "../context";
import type { MediaRow } from "../loaders";
import { DEFAULT_VARIANT, variantsOf } from "../variants";

/**
 * Who may see a media item (its metadata, and with a signed-in viewer its bytes):
 *
 * - its owner, always; a moderator (role MODERATOR in the access token), always (to review reports);
 * - nobody else while the owner is banned or the viewer and the owner blocked each other (either
 *   way), as Media learnt from Users' events (`blocks`, `user_states`);
 * - a profile photo that is on the owner's profile now (READY, with a position): anyone Users
 *   shows the profile to. A removed or never-added profile upload is the owner's only;
 * - anything else (chat attachments) only for a viewer Chat vouches for with a grant for this
 *   media, this viewer and this owner (kit/src/media-grants.ts); a URL read on a grant expires no
 *   later than the grant.
 *
 * `url` additionally needs a signed-in viewer: anonymous readers of a public profile see its
 * photos' metadata (blurhash, size) but get no bytes.
 */
export type ReadAccess =
  | { allowed: false }
  /** `untilSeconds`: Unix seconds after which a URL must not work (a grant's end), or null. */
  | { allowed: true; untilSeconds: number | null };

const DENIED: ReadAccess = { allowed: false };

export function isOnProfile(media: Pick<MediaRow, "purpose" | "status" | "position">): boolean {
  return media.purpose === "PROFILE_PHOTO" && media.status === "READY" && media.position !== null;
}

/** The expiry a grant carries (checked already): Unix seconds. */
function grantExpiry(readGrant: string): number | null {
  const value = Number(readGrant.split(".")[4]);
  return Number.isSafeInteger(value) ? value : null;
}

async function decide(media: MediaRow, readGrant: unknown, context: MediaContext): Promise<ReadAccess> {
  const viewerId = context.viewer?.userId ?? null;
  if (viewerId !== null && viewerId === media.ownerId) return { allowed: true, untilSeconds: null };
  if (context.viewer?.role === "MODERATOR") return { allowed: true, untilSeconds: null };
  if (await context.loaders.ownerHiddenFromViewer.load(media.ownerId)) return DENIED;
  if (isOnProfile(media)) return { allowed: true, untilSeconds: null };
  if (viewerId === null) return DENIED;
  const check = checkMediaGrant(
    readGrant,
    { mediaId: media.id, viewerId, ownerId: media.ownerId },
    context.services.config.grantSecret,
  );
  if (!check.ok) {
    if (readGrant !== null && readGrant !== undefined)
      context.logger.info({ mediaId: media.id, reason: check.reason }, "media read grant refused");
    return DENIED;
  }
  return { allowed: true, untilSeconds: grantExpiry(readGrant as string) };
}

const ALLOWED: ReadAccess = { allowed: true, untilSeconds: null };
const decisionKey = (mediaId: string, readGrant: unknown) =>
  `${mediaId}|${typeof readGrant === "string" ? readGrant : ""}`;

/** Decided once per request for each (media, grant): the decision itself once known, else its promise. */
function decision(
  media: MediaRow,
  readGrant: unknown,
  context: MediaContext,
): ReadAccess | Promise<ReadAccess> {
  // What `decide` concludes for a photo on the profile of an owner known not to be hidden.
  if (isOnProfile(media) && context.loaders.ownersShown.has(media.ownerId)) return ALLOWED;
  const key = decisionKey(media.id, readGrant);
  let made = context.loaders.readAccess.get(key);
  if (!made) {
    const pending = decide(media, readGrant, context);
    context.loaders.readAccess.set(key, pending);
    void pending.then(
      (decided) => context.loaders.readAccess.set(key, decided),
      () => undefined,
    );
    made = pending;
  }
  return made;
}

export async function readAccess(
  media: MediaRow,
  readGrant: unknown,
  context: MediaContext,
): Promise<ReadAccess> {
  return decision(media, readGrant, context);
}

/**
 * Records that no ban or block hides this owner's media from the viewer in this request, as
 * `User.photos` has just established: their photos on the profile are then readable without a
 * grant, decided synchronously.
 */
export function ownerShown(ownerId: string, context: MediaContext): void {
  context.loaders.ownersShown.add(ownerId);
}

/** A metadata field: its value for a viewer who may see the item, else `hidden` (synchronously once decided). */
export function visible<T, H>(
  media: MediaRow & { readGrant?: unknown },
  context: MediaContext,
  value: () => T,
  hidden: H,
): T | H | Promise<T | H> {
  const made = decision(media, media.readGrant, context);
  if (made instanceof Promise) return made.then((access) => (access.allowed ? value() : hidden));
  return made.allowed ? value() : hidden;
}

/** `onSigned` learns how long the URL stays valid (the response must not be cached longer). */
export async function signedUrl(
  media: MediaRow,
  variantName: unknown,
  readGrant: unknown,
  context: MediaContext,
  onSigned?: (ttlSeconds: number) => void,
): Promise<string | null> {
  if (
    variantName !== undefined &&
    variantName !== null &&
    (typeof variantName !== "string" || variantName.length > 40)
  ) {
    throw appError(ErrorCode.BAD_USER_INPUT, "variant must be a variant name such as 640.jpg", {
      field: "variant",
    });
  }
  if (media.status !== "READY" || !context.viewer) return null;
  const access = await readAccess(media, readGrant, context);
  if (!access.allowed) return null;
  const variants = variantsOf(media);
  if (variants.length === 0) return null;
  const wanted = variantName ?? DEFAULT_VARIANT[media.kind];
  const variant =
    variants.find((candidate) => candidate.name === wanted) ??
    (variantName == null ? variants[0] : undefined);
  if (!variant) {
    throw appError(
      ErrorCode.BAD_USER_INPUT,
      `No variant ${JSON.stringify(wanted)}: one of ${variants.map((v) => v.name).join(", ")}`,
      { field: "variant" },
    );
  }
  let ttlSeconds = context.services.config.downloadUrlTtlSeconds;
  if (access.untilSeconds !== null) {
    // A URL read on Chat's grant lasts no longer than the grant: leaving the conversation ends it.
    ttlSeconds = Math.min(ttlSeconds, access.untilSeconds - Math.floor(Date.now() / 1000));
    if (ttlSeconds <= 0) return null;
  }
  const signed = await context.services.downloadUrls.sign(variant.key, variant.contentType, ttlSeconds);
  onSigned?.(signed.lifeSeconds);
  return signed.url;
}
