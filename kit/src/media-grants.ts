import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Chat attachments are readable only by that conversation's members, but membership lives in
 * Chat and the bytes' URLs in Media. Chat vouches for a reader with a grant: through federation
 * (`Media.readGrant` resolved by Chat, `url` in Media `@requires` it), Chat signs "user V may read
 * media M until T", and Media checks the signature, the media id, the viewer and the expiry.
 *
 * The grant also names who sent the attachment (`ownerId`: the message's sender), and Media
 * checks that the media really is theirs: attaching someone else's media id to a message gets its
 * members nothing.
 *
 * Grants are HMAC-SHA256 with a secret that Chat and Media share (MEDIA_GRANT_SECRET), bound to
 * one media id and one viewer, and short-lived: copied to another user or kept, they are useless.
 */
export interface MediaGrant {
  mediaId: string;
  viewerId: string;
  /** Who Chat says attached it (the message's sender); Media requires it to be the media's owner. */
  ownerId: string;
  /** Unix seconds. */
  expiresAt: number;
}

const VERSION = "g2";

function mac(secret: string, body: string): string {
  return createHmac("sha256", secret).update(body).digest("base64url");
}

export function signMediaGrant(grant: MediaGrant, secret: string): string {
  const body = `${VERSION}.${grant.mediaId}.${grant.viewerId}.${grant.ownerId}.${grant.expiresAt}`;
  return `${body}.${mac(secret, body)}`;
}

export type MediaGrantCheck =
  | { ok: true }
  | {
      ok: false;
      reason: "malformed" | "signature" | "expired" | "other-media" | "other-viewer" | "other-owner";
    };

/** Whether `token` lets `viewerId` read `mediaId` at `nowSeconds`. */
export function checkMediaGrant(
  token: unknown,
  expected: { mediaId: string; viewerId: string; ownerId: string },
  secret: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): MediaGrantCheck {
  if (typeof token !== "string" || token.length > 512) return { ok: false, reason: "malformed" };
  const parts = token.split(".");
  if (parts.length !== 6 || parts[0] !== VERSION) return { ok: false, reason: "malformed" };
  const [, mediaId, viewerId, ownerId, expiresText, signature] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!/^\d{1,12}$/.test(expiresText)) return { ok: false, reason: "malformed" };
  const expectedSignature = Buffer.from(
    mac(secret, `${VERSION}.${mediaId}.${viewerId}.${ownerId}.${expiresText}`),
  );
  const given = Buffer.from(signature);
  if (given.length !== expectedSignature.length || !timingSafeEqual(given, expectedSignature)) {
    return { ok: false, reason: "signature" };
  }
  if (mediaId !== expected.mediaId) return { ok: false, reason: "other-media" };
  if (viewerId !== expected.viewerId) return { ok: false, reason: "other-viewer" };
  if (ownerId !== expected.ownerId) return { ok: false, reason: "other-owner" };
  if (Number(expiresText) <= nowSeconds) return { ok: false, reason: "expired" };
  return { ok: true };
}
