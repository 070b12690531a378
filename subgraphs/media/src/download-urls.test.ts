import os from "node:os";
import path from "node:path";
import { ReusedDownloadUrls } from "./modules/download-urls";
import { LocalStorage } from "./storage/local";

describe("ReusedDownloadUrls", () => {
  const storage = new LocalStorage({
    dir: path.join(os.tmpdir(), "hv-download-urls-test"),
    secret: "x".repeat(40),
    publicUrl: () => "http://127.0.0.1:1",
  });
  /** The real local storage, counting how often it is asked to sign. */
  function counted() {
    const calls: Array<{ key: string; ttlSeconds: number }> = [];
    return {
      calls,
      signDownload: (key: string, options: { contentType: string; ttlSeconds: number }) => {
        calls.push({ key, ttlSeconds: options.ttlSeconds });
        return storage.signDownload(key, options);
      },
    };
  }

  it("should reuse a URL while at least half its life is left, then sign afresh", async () => {
    let now = Date.now();
    const signer = counted();
    const urls = new ReusedDownloadUrls(signer, () => now);
    const first = await urls.sign("media/a/640.jpg", "image/jpeg", 60);
    expect(first.lifeSeconds).toBe(60);
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:1\/files\/media\/a\/640\.jpg\?/);

    now += 25_000;
    const reused = await urls.sign("media/a/640.jpg", "image/jpeg", 60);
    expect(reused.url).toBe(first.url);
    // What is left, never more (the local driver's expiry is in whole seconds: 34 or 35).
    expect(reused.lifeSeconds).toBeGreaterThanOrEqual(34);
    expect(reused.lifeSeconds).toBeLessThanOrEqual(35);
    expect(signer.calls).toHaveLength(1);

    now += 6_000; // under half of 60 s left: signed again
    const fresh = await urls.sign("media/a/640.jpg", "image/jpeg", 60);
    expect(fresh.lifeSeconds).toBe(60);
    expect(signer.calls).toHaveLength(2);
  });

  it("should never hand a URL signed for one TTL to a request for another, nor keep one that has no life", async () => {
    const signer = counted();
    const urls = new ReusedDownloadUrls(signer);
    await urls.sign("media/b/640.jpg", "image/jpeg", 60);
    // A Chat grant's remaining time: its own URL, expiring no later than the grant.
    const short = await urls.sign("media/b/640.jpg", "image/jpeg", 10);
    expect(short.lifeSeconds).toBe(10);
    await urls.sign("media/b/160.webp", "image/webp", 60);
    await urls.sign("media/b/640.jpg", "image/jpeg", 0);
    await urls.sign("media/b/640.jpg", "image/jpeg", 0);
    expect(signer.calls).toEqual([
      { key: "media/b/640.jpg", ttlSeconds: 60 },
      { key: "media/b/640.jpg", ttlSeconds: 10 },
      { key: "media/b/160.webp", ttlSeconds: 60 },
      { key: "media/b/640.jpg", ttlSeconds: 0 },
      { key: "media/b/640.jpg", ttlSeconds: 0 },
    ]);
  });
});
