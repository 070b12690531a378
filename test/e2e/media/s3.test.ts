import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { S3Storage } from "@hv/media/src/storage/s3";
import { testDatabases, type TestDatabases } from "../../support/seed";
import { startSystem, type RunningSystem } from "../../support/system";
import { UsersClient } from "../../support/users-client";
import { fetchImage, jpegWithGps, mediaClient } from "./media-support";

// An S3-compatible server from npm that verifies SigV4 (including presigned URLs' signed headers), in this process.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require("@20minutes/s3rver") as new (options: Record<string, unknown>) => {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
};

const BUCKET = "hv-media-test";
const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

describe("S3-compatible storage (AWS SDK v3 against a local S3 server)", () => {
  let server: InstanceType<typeof S3rver>;
  let dir: string;
  let endpoint: string;
  let storage: S3Storage;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "hv-s3rver-"));
    server = new S3rver({
      address: "127.0.0.1",
      port: 0,
      silent: true,
      directory: dir,
      configureBuckets: [{ name: BUCKET, configs: [] }],
    });
    endpoint = `http://127.0.0.1:${(await server.run()).port}`;
    storage = new S3Storage({
      bucket: BUCKET,
      region: "us-east-1",
      endpoint,
      forcePathStyle: true,
      credentials: CREDENTIALS,
    });
  });
  afterAll(async () => {
    await storage?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("should take exactly the signed size and content type through a presigned PUT, and nothing else", async () => {
    const key = `media/test/${Date.now()}/source`;
    const body = Buffer.from("0123456789");
    const signed = await storage.signUpload(key, {
      contentType: "image/jpeg",
      byteSize: body.length,
      ttlSeconds: 60,
    });
    expect(new URL(signed.url).searchParams.get("X-Amz-SignedHeaders")).toBe(
      "content-length;content-type;host;if-none-match",
    );
    expect(signed.headers["if-none-match"]).toBe("*");
    const put = (bytes: Buffer, contentType = "image/jpeg") =>
      fetch(signed.url, {
        method: "PUT",
        body: bytes,
        headers: { "content-type": contentType, "if-none-match": "*" },
      });
    // Without the signed If-None-Match (a replace-anything PUT) the signature does not match.
    expect(
      (await fetch(signed.url, { method: "PUT", body, headers: { "content-type": "image/jpeg" } })).status,
    ).toBe(403);

    expect((await put(Buffer.concat([body, Buffer.from("!")]))).status).toBe(403); // bigger than declared
    expect((await put(body.subarray(1))).status).toBe(403); // smaller
    expect((await put(body, "image/png")).status).toBe(403); // another type
    expect(await storage.stat(key)).toBeNull();
    const tampered = new URL(signed.url);
    tampered.searchParams.set("X-Amz-Signature", "0".repeat(64));
    expect(
      (
        await fetch(tampered, {
          method: "PUT",
          body,
          headers: { "content-type": "image/jpeg", "if-none-match": "*" },
        })
      ).status,
    ).toBe(403);

    expect((await put(body)).status).toBe(200);
    expect(await storage.stat(key)).toEqual({ byteSize: body.length });
    const expired = await storage.signUpload(`${key}-late`, {
      contentType: "image/jpeg",
      byteSize: body.length,
      ttlSeconds: 1,
    });
    const late = new URL(expired.url);
    late.searchParams.set("X-Amz-Date", "20200101T000000Z"); // re-dating breaks the signature, so S3 refuses either way
    expect(
      (
        await fetch(late, {
          method: "PUT",
          body,
          headers: { "content-type": "image/jpeg", "if-none-match": "*" },
        })
      ).status,
    ).toBe(403);

    const local = path.join(dir, "copy");
    await storage.download(key, local);
    expect(await readFile(local)).toEqual(body);
    const download = await storage.signDownload(key, { contentType: "image/jpeg", ttlSeconds: 60 });
    const fetched = await fetch(download.url);
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get("content-type")).toBe("image/jpeg");
    expect(Buffer.from(await fetched.arrayBuffer())).toEqual(body);

    await writeFile(path.join(dir, "variant"), "variant bytes");
    await storage.upload(`${key}-variant`, path.join(dir, "variant"), "image/webp");
    expect(await storage.stat(`${key}-variant`)).toEqual({ byteSize: 13 });
    await storage.delete([key, `${key}-variant`, `${key}-never-existed`]);
    expect(await storage.stat(key)).toBeNull();
    expect(await storage.stat(`${key}-variant`)).toBeNull();
  });

  describe("the whole upload flow with MEDIA_STORAGE_DRIVER=s3", () => {
    let system: RunningSystem;
    let dbs: TestDatabases;
    beforeAll(async () => {
      dbs = testDatabases();
      system = await startSystem({
        MEDIA_STORAGE_DRIVER: "s3",
        MEDIA_S3_BUCKET: BUCKET,
        MEDIA_S3_ENDPOINT: endpoint,
        MEDIA_S3_FORCE_PATH_STYLE: "true",
        MEDIA_S3_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
        MEDIA_S3_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      });
    });
    afterAll(async () => {
      await system?.stop();
      await dbs?.close();
    });

    it("should upload straight to S3, process, and serve clean variants from S3", async () => {
      const client = new UsersClient(system.gatewayUrl);
      const media = mediaClient({ system, dbs, client });
      const owner = await client.signUp();
      const file = await jpegWithGps(640, 480);
      const created = await media.createUpload(owner, {
        kind: "IMAGE",
        contentType: "image/jpeg",
        byteSize: file.length,
        purpose: "PROFILE_PHOTO",
      });
      expect(created.uploadUrl.startsWith(`${endpoint}/${BUCKET}/`)).toBe(true);
      expect((await media.put(created, Buffer.concat([file, Buffer.alloc(10)]))).status).toBe(403);

      const ready = await media.upload(owner, file, { kind: "IMAGE", contentType: "image/jpeg" });
      expect(ready).toMatchObject({ status: "READY", width: 640, height: 480 });
      expect(ready.url?.startsWith(`${endpoint}/${BUCKET}/media/${owner.userId}/${ready.id}/640.jpg?`)).toBe(
        true,
      );
      const served = await fetchImage(ready.url ?? "");
      expect(served.metadata).toMatchObject({ format: "jpeg", width: 640, height: 480 });
      expect(served.metadata?.exif).toBeUndefined();
      const storage2 = new S3Storage({
        bucket: BUCKET,
        region: "us-east-1",
        endpoint,
        forcePathStyle: true,
        credentials: CREDENTIALS,
      });
      expect(await storage2.stat(`media/${owner.userId}/${ready.id}/source`)).toBeNull(); // the original (with GPS) is gone
      expect(await storage2.stat(`media/${owner.userId}/${ready.id}/160.webp`)).not.toBeNull();

      // S3 takes a PUT again while the URL lives (the test server ignores If-None-Match, and the
      // original is gone anyway): deleteMedia deletes the original's derived key whatever the row says.
      const second = await media.createUpload(owner, {
        kind: "IMAGE",
        contentType: "image/jpeg",
        byteSize: file.length,
        purpose: "CHAT_ATTACHMENT",
      });
      expect((await media.put(second, file)).status).toBe(200);
      await media.send(
        `mutation($id: ID!) { completeUpload(id: $id) { id } }`,
        { id: second.media.id },
        owner,
      );
      expect(await media.settled(owner, second.media.id)).toMatchObject({ status: "READY" });
      expect(await dbs.media.media.findUnique({ where: { id: second.media.id } })).toMatchObject({
        sourceKey: null,
      });
      expect((await media.put(second, file)).status).toBe(200);
      expect(await storage2.stat(`media/${owner.userId}/${second.media.id}/source`)).not.toBeNull();
      await media.send(`mutation($id: ID!) { deleteMedia(id: $id) }`, { id: second.media.id }, owner);
      expect(await storage2.stat(`media/${owner.userId}/${second.media.id}/source`)).toBeNull();

      // Deleting the media deletes its objects.
      const deleted = await media.send(
        `mutation($id: ID!) { deleteMedia(id: $id) }`,
        { id: ready.id },
        owner,
      );
      expect(deleted.body.data).toEqual({ deleteMedia: true });
      expect(await storage2.stat(`media/${owner.userId}/${ready.id}/160.webp`)).toBeNull();
      expect((await fetch(ready.url ?? "")).status).toBe(404);
      await storage2.close();
    });
  });
});
