import { createHash } from "node:crypto";

/**
 * A short key for a long identity (operation text, variables, the subscriber's token): held once
 * per subscription for hours, a 43-character SHA-256 instead of the ~1 KB JSON it stands for.
 */
export function digestKey(parts: readonly unknown[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("base64url");
}
