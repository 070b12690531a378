import { readdir } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import sharp from "sharp";
import type { RunningMedia } from "@hv/media/src/server";
import { sourceKey } from "@hv/media/src/storage";
import type { LocalStorage } from "@hv/media/src/storage/local";
import { useSystem } from "../../support/fixture";
import { errorCode } from "../../support/users-client";
import {
  COMPLETE_UPLOAD,
  CREATE_UPLOAD,
  GPS_MARKER,
  fetchImage,
  jpegWithGps,
  mediaClient,
  png,
  shortVideo,
} from "./media-support";

const IMAGE_VARIANTS = ["160.webp", "160.jpg", "640.webp", "640.jpg", "1280.webp", "1280.jpg"];

describe("uploading photos and videos through the gateway (local storage)", () => {
  const fixture = useSystem();
  const media = () => mediaClient(fixture);
  const mediaService = () => fixture.system.subgraphs.media as RunningMedia;
  const storage = () => mediaService().services.storage as LocalStorage;

  async function filesUnder(dir: string): Promise<string[]> {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
  }

  it("should turn a phone JPEG carrying EXIF GPS into variants that carry no metadata at all", async () => {
    const owner = await fixture.client.signUp();
    const original = await jpegWithGps(1200, 800);
    const exif = (await sharp(original).metadata()).exif;
    expect(exif?.includes(GPS_MARKER)).toBe(true); // the test file really carries it

    const ready = await media().upload(owner, original, { kind: "IMAGE", contentType: "image/jpeg" });

    expect(ready).toMatchObject({
      status: "READY",
      kind: "IMAGE",
      width: 1200,
      height: 800,
      failureReason: null,
      durationMs: null,
    });
    expect(ready.blurhash).toMatch(/^[0-9A-Za-z#$%*+,\-.:;=?@[\]^_{|}~]{6,}$/);
    expect(ready.variants.map((variant) => variant.name).sort()).toEqual([...IMAGE_VARIANTS].sort());
    expect(ready.variants.find((variant) => variant.name === "640.jpg")).toMatchObject({
      width: 640,
      height: 427,
      contentType: "image/jpeg",
    });
    for (const variant of ready.variants) {
      const url = await media().send<{ myMedia: { url: string } }>(
        `query($id: ID!, $v: String) { myMedia(id: $id) { url(variant: $v) } }`,
        { id: ready.id, v: variant.name },
        owner,
      );
      const served = await fetchImage(url.body.data?.myMedia.url ?? "");
      expect({
        variant: variant.name,
        status: served.response.status,
        type: served.response.headers.get("content-type"),
      }).toEqual({
        variant: variant.name,
        status: 200,
        type: variant.contentType,
      });
      expect({
        variant: variant.name,
        exif: served.metadata?.exif,
        xmp: served.metadata?.xmp,
        marker: served.body.includes(GPS_MARKER),
      }).toEqual({
        variant: variant.name,
        exif: undefined,
        xmp: undefined,
        marker: false,
      });
    }
    // The original (with its GPS) is not kept once the clean variants exist.
    const stored = await filesUnder(path.join(storage().options.dir, "media", owner.userId));
    expect(stored.sort()).toEqual(IMAGE_VARIANTS.map((name) => path.join(ready.id, name)).sort());
  });

  it("should refuse a PNG sent as a JPEG, a truncated JPEG and an empty file, each with its reason", async () => {
    const owner = await fixture.client.signUp();
    const pngAsJpeg = await media().upload(owner, await png(), { kind: "IMAGE", contentType: "image/jpeg" });
    expect(pngAsJpeg).toMatchObject({
      status: "FAILED",
      failureReason: "TYPE_MISMATCH",
      variants: [],
      url: null,
    });

    const whole = await jpegWithGps(800, 600);
    const truncated = await media().upload(owner, whole.subarray(0, Math.floor(whole.length * 0.6)), {
      kind: "IMAGE",
      contentType: "image/jpeg",
    });
    expect(truncated).toMatchObject({ status: "FAILED", failureReason: "TRUNCATED", variants: [] });

    // An empty file cannot come through a signed URL (sizes start at 1), but a storage that holds one
    // anyway (written by hand here) still ends in EMPTY, not in a crash or a retry loop.
    const empty = await media().createUpload(owner, {
      kind: "IMAGE",
      contentType: "image/jpeg",
      byteSize: 10,
      purpose: "PROFILE_PHOTO",
    });
    const emptyPut = await media().put(empty, Buffer.alloc(0));
    expect(emptyPut.status).toBe(400);
    const file = storage().pathOf(sourceKey(owner.userId, empty.media.id));
    await import("node:fs/promises").then(async (fs) => {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, Buffer.alloc(0));
    });
    await media().send(COMPLETE_UPLOAD, { id: empty.media.id }, owner);
    expect(await media().settled(owner, empty.media.id)).toMatchObject({
      status: "FAILED",
      failureReason: "EMPTY",
    });
    // Another user never sees why someone's upload failed.
    const stranger = await fixture.client.signUp();
    expect(await media().myMedia(stranger, empty.media.id)).toBeNull();
  });

  it("should refuse an upload bigger or smaller than declared, and one with another content type", async () => {
    const owner = await fixture.client.signUp();
    const file = await jpegWithGps(400, 300);
    const created = await media().createUpload(owner, {
      kind: "IMAGE",
      contentType: "image/jpeg",
      byteSize: file.length,
      purpose: "CHAT_ATTACHMENT",
    });

    const bigger = await media().put(created, Buffer.concat([file, Buffer.alloc(1)]));
    expect(bigger.status).toBe(413);
    const smaller = await media().put(created, file.subarray(1));
    expect(smaller.status).toBe(400);
    const otherType = await media().put(created, file, { "content-type": "image/png" });
    expect(otherType.status).toBe(403);
    // A body streamed without a length is counted as it arrives: one byte over and it is cut off.
    const chunked = await fetch(created.uploadUrl, {
      method: "PUT",
      headers: { "content-type": "image/jpeg" },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(file);
          controller.enqueue(new Uint8Array(4096));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit).then(
      (response) => response.status,
      () => "connection cut",
    );
    expect([413, "connection cut"]).toContain(chunked);
    expect(await storage().stat(sourceKey(owner.userId, created.media.id))).toBeNull();
    const early = await media().send(COMPLETE_UPLOAD, { id: created.media.id }, owner);
    expect(errorCode(early)).toBe("CONFLICT");

    // The exact bytes go through once, and the URL cannot replace them afterwards.
    expect((await media().put(created, file)).status).toBe(200);
    expect((await media().put(created, file)).status).toBe(409);
    const completed = await media().send(COMPLETE_UPLOAD, { id: created.media.id }, owner);
    expect(completed.body.errors).toBeUndefined();
    expect(await media().settled(owner, created.media.id)).toMatchObject({
      status: "READY",
      purpose: "CHAT_ATTACHMENT",
    });
    // Completing again is harmless.
    const again = await media().send<{ completeUpload: { status: string } }>(
      COMPLETE_UPLOAD,
      { id: created.media.id },
      owner,
    );
    expect(again.body.data?.completeUpload.status).toBe("READY");
  });

  it("should transcode a short video to an MP4 with a poster frame and its duration", async () => {
    const owner = await fixture.client.signUp();
    const clip = await shortVideo(2, "640x360");
    const ready = await media().upload(owner, clip, {
      kind: "VIDEO",
      contentType: "video/mp4",
      purpose: "CHAT_ATTACHMENT",
    });

    expect(ready).toMatchObject({ status: "READY", kind: "VIDEO", width: 640, height: 360 });
    expect(ready.durationMs).toBeGreaterThanOrEqual(1900);
    expect(ready.durationMs).toBeLessThanOrEqual(2100);
    expect(ready.variants.map((variant) => [variant.name, variant.contentType]).sort()).toEqual([
      ["poster.jpg", "image/jpeg"],
      ["video.mp4", "video/mp4"],
    ]);
    const video = await fetch(ready.url ?? "");
    expect(video.status).toBe(200);
    expect(video.headers.get("content-type")).toBe("video/mp4");
    const bytes = Buffer.from(await video.arrayBuffer());
    expect(bytes.subarray(4, 8).toString("latin1")).toBe("ftyp");
    // Fast start: the index (moov) comes before the media data (mdat).
    expect(bytes.indexOf("moov")).toBeLessThan(bytes.indexOf("mdat"));
    const poster = await media().send<{ myMedia: { url: string } }>(
      `query($id: ID!) { myMedia(id: $id) { url(variant: "poster.jpg") } }`,
      { id: ready.id },
      owner,
    );
    const posterImage = await fetchImage(poster.body.data?.myMedia.url ?? "");
    expect(posterImage.metadata).toMatchObject({ format: "jpeg", width: 640, height: 360 });
  });

  it("should refuse expired and tampered URLs", async () => {
    const owner = await fixture.client.signUp();
    const ready = await media().upload(owner, await jpegWithGps(320, 240), {
      kind: "IMAGE",
      contentType: "image/jpeg",
    });
    const url = new URL(ready.url ?? "");
    expect((await fetch(url)).status).toBe(200);

    const tampered = (change: (url: URL) => void) => {
      const copy = new URL(url);
      change(copy);
      return fetch(copy).then((response) => response.status);
    };
    const sig = url.searchParams.get("sig") ?? "";
    expect(
      await tampered((u) =>
        u.searchParams.set("sig", `${sig.slice(0, -2)}${sig.endsWith("A") ? "BB" : "AA"}`),
      ),
    ).toBe(403);
    expect(
      await tampered((u) => u.searchParams.set("exp", String(Number(u.searchParams.get("exp")) + 3600))),
    ).toBe(403);
    expect(await tampered((u) => u.searchParams.set("ct", "text/html"))).toBe(403);
    expect(await tampered((u) => (u.pathname = u.pathname.replace("640.jpg", "1280.jpg")))).toBe(403);
    // Dot segments sent as is (fetch would normalise them away) that climb to another object.
    const dotted = await new Promise<number>((resolve, reject) => {
      const rawPath = `${url.pathname.replace(`${ready.id}/640.jpg`, `${ready.id}/640.jpg/../../${ready.id}-other/640.jpg`)}${url.search}`;
      http
        .get({ host: url.hostname, port: url.port, path: rawPath }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        })
        .on("error", reject);
    });
    expect(dotted).toBe(403);
    expect(await tampered((u) => u.searchParams.delete("sig"))).toBe(403);

    // Signed correctly but already expired: refused, for downloads and uploads alike.
    const key = `media/${owner.userId}/${ready.id}/640.jpg`;
    const expired = await storage().signDownload(key, { contentType: "image/jpeg", ttlSeconds: -1 });
    expect((await fetch(expired.url)).status).toBe(403);
    const expiredUpload = await storage().signUpload(`media/${owner.userId}/expired/source`, {
      contentType: "image/jpeg",
      byteSize: 3,
      ttlSeconds: -1,
    });
    const refused = await fetch(expiredUpload.url, {
      method: "PUT",
      body: Buffer.from("abc"),
      headers: { "content-type": "image/jpeg" },
    });
    expect(refused.status).toBe(403);
  });

  describe("hostile input", () => {
    const valid = { kind: "IMAGE", contentType: "image/jpeg", byteSize: 1000, purpose: "PROFILE_PHOTO" };

    it.each([
      ["a zero byteSize", { byteSize: 0 }, "BAD_USER_INPUT", "input.byteSize"],
      ["a negative byteSize", { byteSize: -5 }, "BAD_USER_INPUT", "input.byteSize"],
      [
        "a byteSize over the image limit",
        { byteSize: 25 * 1024 * 1024 + 1 },
        "BAD_USER_INPUT",
        "input.byteSize",
      ],
      [
        "an unknown content type",
        { contentType: "application/x-msdownload" },
        "BAD_USER_INPUT",
        "input.contentType",
      ],
      ["a video type for an image", { contentType: "video/mp4" }, "BAD_USER_INPUT", "input.contentType"],
      [
        "a script as content type",
        { contentType: "image/jpeg\r\nx-evil: 1" },
        "BAD_USER_INPUT",
        "input.contentType",
      ],
      [
        "a huge content type",
        { contentType: "image/jpeg".padEnd(100_000, "x") },
        "BAD_USER_INPUT",
        "input.contentType",
      ],
      [
        "a video as a profile photo",
        { kind: "VIDEO", contentType: "video/mp4" },
        "BAD_USER_INPUT",
        "input.kind",
      ],
    ])("should refuse createUpload with %s", async (_name, change, code, field) => {
      const owner = await fixture.client.signUp();
      const before = await fixture.dbs.media.media.count({ where: { ownerId: owner.userId } });
      const response = await media().send(CREATE_UPLOAD, { input: { ...valid, ...change } }, owner);
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code, field });
      expect(await fixture.dbs.media.media.count({ where: { ownerId: owner.userId } })).toBe(before);
    });

    it.each([
      ["a byteSize beyond 32 bits", { byteSize: 2 ** 40 }],
      ["a fractional byteSize", { byteSize: 10.5 }],
      ["a wrong kind", { kind: "PDF" }],
      ["a wrong purpose", { purpose: "AVATAR_OF_SOMEONE_ELSE" }],
      ["a missing byteSize", { byteSize: undefined }],
      ["a missing content type", { contentType: null }],
    ])("should refuse createUpload with %s before it runs", async (_name, change) => {
      const owner = await fixture.client.signUp();
      const response = await media().send(CREATE_UPLOAD, { input: { ...valid, ...change } }, owner);
      expect(response.body.data ?? null).toBeNull();
      expect(errorCode(response)).toBe("BAD_USER_INPUT");
    });

    it("should ask for a sign-in before any media mutation", async () => {
      const anonymous = await media().send(CREATE_UPLOAD, { input: valid });
      expect(errorCode(anonymous)).toBe("UNAUTHENTICATED");
      for (const mutation of [COMPLETE_UPLOAD, `mutation($id: ID!) { deleteMedia(id: $id) }`]) {
        const response = await media().send(mutation, { id: "00000000-0000-4000-8000-000000000000" });
        expect(errorCode(response)).toBe("UNAUTHENTICATED");
      }
    });

    it.each([
      ["not a UUID", "../../etc/passwd", "BAD_USER_INPUT"],
      ["an unknown id", "00000000-0000-4000-8000-000000000000", "NOT_FOUND"],
      ["an SQL-ish id", "1' OR '1'='1", "BAD_USER_INPUT"],
    ])("should refuse completeUpload and deleteMedia with %s", async (_name, id, code) => {
      const owner = await fixture.client.signUp();
      for (const mutation of [COMPLETE_UPLOAD, `mutation($id: ID!) { deleteMedia(id: $id) }`]) {
        const response = await media().send(mutation, { id }, owner);
        expect(response.body.errors?.[0]?.extensions).toMatchObject({ code, field: "id" });
      }
    });

    it("should not let anyone complete or delete someone else's upload", async () => {
      const owner = await fixture.client.signUp();
      const intruder = await fixture.client.signUp();
      const created = await media().createUpload(owner, valid);
      for (const mutation of [COMPLETE_UPLOAD, `mutation($id: ID!) { deleteMedia(id: $id) }`]) {
        const response = await media().send(mutation, { id: created.media.id }, intruder);
        expect(errorCode(response)).toBe("NOT_FOUND");
      }
      expect(await fixture.dbs.media.media.findUnique({ where: { id: created.media.id } })).toMatchObject({
        status: "PENDING",
        uploadedAt: null,
      });
    });
  });
});
