import type { MediaStorage } from "../storage";

/** Signed download URLs kept at most (the oldest is forgotten first): ~0.5 KB each. */
const MAX_URLS = 20_000;

export interface ReusableDownload {
  url: string;
  /** Seconds the URL still works: the TTL asked for when fresh, what is left when reused. */
  lifeSeconds: number;
}

/**
 * Signed download URLs reused while at least half their life is left, per (key, content type,
 * TTL asked for). Signing is most of what a page of photos costs: ~0.6 CPU-ms per URL with S3's
 * presigner, ~0.1 with the local driver's HMAC (bench/media-subgraph.ts). Only ever asked for
 * after the read rule has allowed the viewer (modules/access.ts), so a reused URL goes to someone
 * who may read it, and it never works longer than it would have if signed now: the TTL asked
 * for (a Chat grant's remaining time, say) is part of the key and bounds its expiry.
 */
export class ReusedDownloadUrls {
  private readonly entries = new Map<string, { url: string; expiresAtMs: number }>();

  constructor(
    private readonly storage: Pick<MediaStorage, "signDownload">,
    private readonly now: () => number = Date.now,
  ) {}

  async sign(key: string, contentType: string, ttlSeconds: number): Promise<ReusableDownload> {
    const cacheKey = `${key}\0${contentType}\0${ttlSeconds}`;
    const now = this.now();
    const known = this.entries.get(cacheKey);
    if (known) {
      const lifeSeconds = Math.floor((known.expiresAtMs - now) / 1000);
      if (lifeSeconds * 2 >= ttlSeconds) return { url: known.url, lifeSeconds };
      this.entries.delete(cacheKey);
    }
    const signed = await this.storage.signDownload(key, { contentType, ttlSeconds });
    if (ttlSeconds > 0) {
      if (this.entries.size >= MAX_URLS) {
        const oldest = this.entries.keys().next().value;
        if (oldest !== undefined) this.entries.delete(oldest);
      }
      this.entries.set(cacheKey, {
        url: signed.url,
        expiresAtMs: Math.min(signed.expiresAt.getTime(), now + ttlSeconds * 1000),
      });
    }
    return { url: signed.url, lifeSeconds: ttlSeconds };
  }
}
