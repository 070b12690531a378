import { createHmac, hash, timingSafeEqual } from "node:crypto";
import { CLOCK_TOLERANCE_SECONDS } from "./revocations";

/**
 * The header on the gateway's fetch to a subgraph saying that this request's admission found the
 * fetch's access token not revoked (docs/gateway.md, "Revocation vouched for by the gateway").
 */
export const REVOCATION_ASSERTION_HEADER = "x-hv-revocation-checked";

/** An assertion is believed at most this long after the check it vouches for. */
export const REVOCATION_ASSERTION_MAX_AGE_MS = 10_000;

/** How far ahead of a subgraph's clock an assertion's stamp may be (the gateway's clock may run ahead). */
const AHEAD_TOLERANCE_MS = CLOCK_TOLERANCE_SECONDS * 1000;

const VERSION = "r1";
/** Far above a real assertion (~60 characters); longer input is refused before any work. */
const MAX_ASSERTION_LENGTH = 128;

/** What an assertion names an access token by: its SHA-256, base64url (as the verifier's memory keys it). */
export function accessTokenDigest(token: string): string {
  return hash("sha256", token, "base64url");
}

/**
 * HMAC-SHA256 assertions, with a secret the gateway and the subgraphs share
 * (AUTH_REVOCATION_ASSERTION_SECRET), that one access token was found not revoked at a time: bound
 * to the token's digest and short-lived, so one copied to another token, or kept, is useless.
 */
export interface RevocationAssertions {
  /** The header value vouching that the token with `tokenDigest` was not revoked at `checkedAt` (epoch ms). */
  sign(tokenDigest: string, checkedAt: number): string;
  /** Whether `header` vouches for `tokenDigest`, signed with this secret, within the max age of `now` (epoch ms). */
  holds(header: string | undefined, tokenDigest: string, now: number): boolean;
}

export function revocationAssertions(secret: string): RevocationAssertions {
  const key = Buffer.from(secret, "utf8");
  const mac = (checkedAt: string, tokenDigest: string): Buffer =>
    createHmac("sha256", key).update(`${VERSION}.${checkedAt}.${tokenDigest}`).digest();
  return {
    sign(tokenDigest, checkedAt) {
      const stamp = String(Math.floor(checkedAt));
      return `${VERSION}.${stamp}.${mac(stamp, tokenDigest).toString("base64url")}`;
    },
    holds(header, tokenDigest, now) {
      if (header === undefined || header.length > MAX_ASSERTION_LENGTH) return false;
      const parts = header.split(".");
      if (parts.length !== 3 || parts[0] !== VERSION) return false;
      const [, stamp = "", signature = ""] = parts;
      if (!/^\d{1,15}$/.test(stamp)) return false;
      const age = now - Number(stamp);
      if (age > REVOCATION_ASSERTION_MAX_AGE_MS || age < -AHEAD_TOLERANCE_MS) return false;
      const given = Buffer.from(signature, "base64url");
      const expected = mac(stamp, tokenDigest);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}
