import { randomUUID } from "node:crypto";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { eventQueueName } from "@hv/kit";
import type { RunningMedia } from "@hv/media/src/server";
import { parseSourceKey, sourceKey } from "@hv/media/src/storage";
import type { LocalStorage } from "@hv/media/src/storage/local";
import { Queue } from "bullmq";
import { useSystem } from "../../support/fixture";
import { errorCode, type SignedIn } from "../../support/users-client";
import { CREATE_UPLOAD, COMPLETE_UPLOAD, jpegWithGps, mediaClient, png } from "./media-support";

/**
 * An upload's life after the happy path: the upload URL after processing or deletion, uploads
 * never completed (quota, sweep), serving ranges, and a user's deletion delivered as Users sends it.
 * Upload URLs live 4 s here and the grace period is 1 s, so the sweep can be watched.
 */
describe("the life of an upload", () => {
  const fixture = useSystem({
    MEDIA_UPLOAD_URL_TTL_SECONDS: "4",
    MEDIA_UPLOAD_GRACE_SECONDS: "1",
    MEDIA_MAX_PENDING_UPLOADS: "3",
    MEDIA_MAX_PENDING_BYTES: "209715200",
  });
  const media = () => mediaClient(fixture);
  const storage = () => (fixture.system.subgraphs.media as RunningMedia).services.storage as LocalStorage;

  async function until(what: string, condition: () => Promise<boolean>, tries = 400): Promise<void> {
    for (let attempt = 0; attempt < tries; attempt += 1) {
      if (await condition()) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`never: ${what}`);
  }
  const filesOf = async (owner: SignedIn) =>
    (
      await readdir(path.join(storage().options.dir, "media", owner.userId), {
        recursive: true,
        withFileTypes: true,
      }).catch(() => [])
    )
      .filter((entry) => entry.isFile())
      .map((entry) =>
        path.relative(
          path.join(storage().options.dir, "media", owner.userId),
          path.join(entry.parentPath, entry.name),
        ),
      );

  it("should refuse a PUT on the upload URL once the item is processed or deleted, storing nothing", async () => {
    const owner = await fixture.client.signUp();
    const file = await jpegWithGps(300, 200);
    const created = await media().createUpload(owner, {
      kind: "IMAGE",
      contentType: "image/jpeg",
      byteSize: file.length,
      purpose: "PROFILE_PHOTO",
    });
    expect((await media().put(created, file)).status).toBe(200);
    await media().send(COMPLETE_UPLOAD, { id: created.media.id }, owner);
    expect(await media().settled(owner, created.media.id)).toMatchObject({ status: "READY" });
    expect((await filesOf(owner)).some((name) => name.endsWith("source"))).toBe(false);

    // The URL has not expired, the original is gone: a second PUT would store GPS-carrying bytes again.
    const again = await media().put(created, file);
    expect({ status: again.status, body: await again.text() }).toMatchObject({ status: 409 });
    expect(await storage().stat(sourceKey(owner.userId, created.media.id))).toBeNull();

    // Deleted before any bytes arrived: the URL takes nothing either.
    const doomed = await media().createUpload(owner, {
      kind: "IMAGE",
      contentType: "image/png",
      byteSize: (await png()).length,
      purpose: "CHAT_ATTACHMENT",
    });
    await media().send(`mutation($id: ID!) { deleteMedia(id: $id) }`, { id: doomed.media.id }, owner);
    expect((await media().put(doomed, await png())).status).toBe(409);
    expect(await storage().stat(sourceKey(owner.userId, doomed.media.id))).toBeNull();
  });

  it("should accept an original only at the key derived from its owner and id", () => {
    const owner = randomUUID();
    const id = randomUUID();
    expect(parseSourceKey(sourceKey(owner, id))).toEqual({ ownerId: owner, mediaId: id });
    for (const key of [
      `media/${owner}/${id}/640.jpg`,
      `media/${owner}/${id}/source/extra`,
      `media/${owner}/../${id}/source`,
      `media/not-a-uuid/${id}/source`,
      `other/${owner}/${id}/source`,
      `media/${owner.toUpperCase()}/${id}/source`,
    ]) {
      expect({ key, parsed: parseSourceKey(key) }).toEqual({ key, parsed: null });
    }
  });

  it("should refuse createUpload beyond the unfinished-uploads quota with QUOTA_EXCEEDED", async () => {
    const owner = await fixture.client.signUp();
    const input = { kind: "IMAGE", contentType: "image/jpeg", byteSize: 1000, purpose: "CHAT_ATTACHMENT" };
    // Three at once, in parallel: the quota holds under concurrency (exactly three fit).
    const results = await Promise.all([1, 2, 3, 4].map(() => media().send(CREATE_UPLOAD, { input }, owner)));
    expect(results.filter((response) => response.body.data?.createUpload).length).toBe(3);
    const refused = results.find((response) => response.body.errors);
    expect(refused?.body.errors?.[0]?.extensions).toMatchObject({
      code: "QUOTA_EXCEEDED",
      maxPendingUploads: 3,
      pendingUploads: 3,
    });

    // Bytes count too: one more video byte than the allowance is refused even with items free.
    const other = await fixture.client.signUp();
    await media().createUpload(other, {
      kind: "VIDEO",
      contentType: "video/mp4",
      byteSize: 150 * 1024 * 1024,
      purpose: "CHAT_ATTACHMENT",
    });
    const tooMuch = await media().send(
      CREATE_UPLOAD,
      {
        input: {
          kind: "VIDEO",
          contentType: "video/mp4",
          byteSize: 60 * 1024 * 1024,
          purpose: "CHAT_ATTACHMENT",
        },
      },
      other,
    );
    expect(tooMuch.body.errors?.[0]?.extensions).toMatchObject({
      code: "QUOTA_EXCEEDED",
      maxPendingBytes: 209715200,
      pendingBytes: 150 * 1024 * 1024,
    });
    expect(
      errorCode(await media().send(CREATE_UPLOAD, { input: { ...input, byteSize: 1000 } }, other)),
    ).toBeUndefined();
  });

  it("should sweep uploads never completed, with their bytes, once the URL and the grace period are over", async () => {
    const owner = await fixture.client.signUp();
    const file = await png();
    const abandoned = await media().createUpload(owner, {
      kind: "IMAGE",
      contentType: "image/png",
      byteSize: file.length,
      purpose: "PROFILE_PHOTO",
    });
    expect((await media().put(abandoned, file)).status).toBe(200); // bytes sent, completeUpload never called
    const completed = await media().upload(owner, file, { kind: "IMAGE", contentType: "image/png" });
    expect(completed.status).toBe("READY");
    expect(await storage().stat(sourceKey(owner.userId, abandoned.media.id))).not.toBeNull();

    await until(
      "the sweep removes the abandoned upload",
      async () => (await fixture.dbs.media.media.count({ where: { id: abandoned.media.id } })) === 0,
    );
    expect(await storage().stat(sourceKey(owner.userId, abandoned.media.id))).toBeNull();
    expect(await fixture.dbs.media.media.findUnique({ where: { id: completed.id } })).toMatchObject({
      status: "READY",
    });
    // The quota is free again.
    expect((await filesOf(owner)).filter((name) => name.startsWith(abandoned.media.id))).toEqual([]);
  });

  it("should serve byte ranges and HEAD on the local file endpoint, as video players ask", async () => {
    const owner = await fixture.client.signUp();
    const ready = await media().upload(owner, await jpegWithGps(400, 300), {
      kind: "IMAGE",
      contentType: "image/jpeg",
      purpose: "CHAT_ATTACHMENT",
    });
    const url = ready.url ?? "";
    const whole = Buffer.from(await (await fetch(url)).arrayBuffer());

    const head = await fetch(url, { method: "HEAD" });
    expect({
      status: head.status,
      length: head.headers.get("content-length"),
      ranges: head.headers.get("accept-ranges"),
    }).toEqual({
      status: 200,
      length: String(whole.length),
      ranges: "bytes",
    });
    expect((await head.arrayBuffer()).byteLength).toBe(0);

    const part = await fetch(url, { headers: { range: "bytes=10-19" } });
    expect({
      status: part.status,
      range: part.headers.get("content-range"),
      length: part.headers.get("content-length"),
    }).toEqual({
      status: 206,
      range: `bytes 10-19/${whole.length}`,
      length: "10",
    });
    expect(Buffer.from(await part.arrayBuffer())).toEqual(whole.subarray(10, 20));
    const tail = await fetch(url, { headers: { range: "bytes=-5" } });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(whole.subarray(whole.length - 5));
    const beyond = await fetch(url, { headers: { range: `bytes=${whole.length + 10}-` } });
    expect({ status: beyond.status, range: beyond.headers.get("content-range") }).toEqual({
      status: 416,
      range: `bytes */${whole.length}`,
    });
    const garbage = await fetch(url, { headers: { range: "pages=1-2" } });
    expect(garbage.status).toBe(200);
    // Signatures still apply to HEAD.
    const unsigned = new URL(url);
    unsigned.searchParams.delete("sig");
    expect((await fetch(unsigned, { method: "HEAD" })).status).toBe(403);
  });

  it("should purge a deleted user's media when user.deleted arrives on Media's event queue", async () => {
    const owner = await fixture.client.signUp();
    const ready = await media().upload(owner, await jpegWithGps(200, 200), {
      kind: "IMAGE",
      contentType: "image/jpeg",
    });
    const waiting = await media().createUpload(owner, {
      kind: "IMAGE",
      contentType: "image/png",
      byteSize: (await png()).length,
      purpose: "PROFILE_PHOTO",
    });
    expect((await media().put(waiting, await png())).status).toBe(200);
    expect((await filesOf(owner)).length).toBe(7);

    const queue = new Queue(eventQueueName("media"), {
      connection: { url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" },
      prefix: process.env.EVENTS_PREFIX ?? "hv",
    });
    try {
      const jobId = randomUUID();
      await queue.add(
        "user.deleted",
        { type: "user.deleted", payload: { userId: owner.userId }, occurredAt: new Date().toISOString() },
        { jobId },
      );
      await until("the event is handled", async () => (await queue.getJobState(jobId)) === "completed");
    } finally {
      await queue.close();
    }
    expect(await filesOf(owner)).toEqual([]);
    expect(await fixture.dbs.media.media.count({ where: { ownerId: owner.userId } })).toBe(0);
    expect((await fetch(ready.url ?? "")).status).toBe(404);
  });
});
