import { execFile } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import sharp from "sharp";
import type { SystemFixture } from "../../support/fixture";
import type { GraphQLResponse } from "../../support/system";
import type { SignedIn } from "../../support/users-client";

const run = promisify(execFile);

export const MEDIA_FIELDS =
  "id kind status purpose failureReason width height durationMs blurhash variants { name contentType width height }";

export interface MediaData {
  id: string;
  kind: "IMAGE" | "VIDEO";
  status: "PENDING" | "PROCESSING" | "READY" | "FAILED";
  purpose: string;
  failureReason: string | null;
  width: number | null;
  height: number | null;
  durationMs: number | null;
  blurhash: string | null;
  variants: Array<{ name: string; contentType: string; width: number; height: number }>;
}

export interface UploadData {
  media: MediaData;
  uploadUrl: string;
  uploadMethod: string;
  uploadHeaders: Array<{ name: string; value: string }>;
  expiresAt: string;
}

export const CREATE_UPLOAD = `mutation($input: CreateUploadInput!) { createUpload(input: $input) { media { ${MEDIA_FIELDS} } uploadUrl uploadMethod uploadHeaders { name value } expiresAt } }`;
export const COMPLETE_UPLOAD = `mutation($id: ID!) { completeUpload(id: $id) { ${MEDIA_FIELDS} } }`;
export const MY_MEDIA = `query($id: ID!) { myMedia(id: $id) { ${MEDIA_FIELDS} url } }`;

/** A phone's media calls through the gateway. */
export function mediaClient(fixture: SystemFixture) {
  const send = <T = Record<string, unknown>>(
    query: string,
    variables: Record<string, unknown>,
    who?: SignedIn,
  ): Promise<GraphQLResponse<T>> => fixture.client.request<T>(query, variables, who?.accessToken);

  async function createUpload(who: SignedIn, input: Record<string, unknown>): Promise<UploadData> {
    const response = await send<{ createUpload: UploadData }>(CREATE_UPLOAD, { input }, who);
    const data = response.body.data?.createUpload;
    if (!data) throw new Error(`createUpload failed: ${JSON.stringify(response.body.errors)}`);
    return data;
  }

  /** Sends the bytes as a phone would: PUT with exactly the headers createUpload named. */
  function put(upload: UploadData, body: Buffer, headers: Record<string, string> = {}): Promise<Response> {
    const signed = Object.fromEntries(
      upload.uploadHeaders.filter((h) => h.name !== "content-length").map((h) => [h.name, h.value]),
    );
    return fetch(upload.uploadUrl, { method: upload.uploadMethod, body, headers: { ...signed, ...headers } });
  }

  async function myMedia(who: SignedIn, id: string): Promise<(MediaData & { url: string | null }) | null> {
    const response = await send<{ myMedia: (MediaData & { url: string | null }) | null }>(
      MY_MEDIA,
      { id },
      who,
    );
    if (response.body.errors) throw new Error(`myMedia failed: ${JSON.stringify(response.body.errors)}`);
    return response.body.data?.myMedia ?? null;
  }

  /** Polls (bounded number of tries, no clock threshold) until the media is READY or FAILED. */
  async function settled(
    who: SignedIn,
    id: string,
    tries = 600,
  ): Promise<MediaData & { url: string | null }> {
    for (let attempt = 0; attempt < tries; attempt += 1) {
      const media = await myMedia(who, id);
      if (media && (media.status === "READY" || media.status === "FAILED")) return media;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`media ${id} never finished processing`);
  }

  /** createUpload, PUT, completeUpload, wait: the whole flow of one file. */
  async function upload(
    who: SignedIn,
    file: Buffer,
    input: { kind: string; contentType: string; purpose?: string },
  ) {
    const created = await createUpload(who, { purpose: "PROFILE_PHOTO", ...input, byteSize: file.length });
    const stored = await put(created, file);
    if (stored.status !== 200) throw new Error(`upload refused: ${stored.status} ${await stored.text()}`);
    const completed = await send<{ completeUpload: MediaData }>(
      COMPLETE_UPLOAD,
      { id: created.media.id },
      who,
    );
    if (!completed.body.data)
      throw new Error(`completeUpload failed: ${JSON.stringify(completed.body.errors)}`);
    return settled(who, created.media.id);
  }

  return { send, createUpload, put, myMedia, settled, upload };
}

export const GPS_MARKER = "hv-test-camera-serial-4711";

/** A JPEG from a "phone camera": EXIF with a serial number and GPS coordinates, rotated by EXIF orientation. */
export async function jpegWithGps(width = 1200, height = 800): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 80, b: 40 } } })
    .composite([
      {
        input: {
          create: {
            width: Math.floor(width / 2),
            height: Math.floor(height / 2),
            channels: 3,
            background: { r: 20, g: 120, b: 220 },
          },
        },
        left: 0,
        top: 0,
      },
    ])
    .jpeg({ quality: 85 })
    .withExif({
      IFD0: { Make: "HvTestPhone", Model: "X1", Copyright: GPS_MARKER },
      IFD3: {
        GPSLatitudeRef: "N",
        GPSLatitude: "52/1 31/1 1234/100",
        GPSLongitudeRef: "E",
        GPSLongitude: "13/1 24/1 1800/100",
      },
    })
    .toBuffer();
}

export async function png(width = 300, height = 200): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 4, background: { r: 0, g: 200, b: 100, alpha: 1 } } })
    .png()
    .toBuffer();
}

/** A short MP4 made by ffmpeg from its test source (with a tone), 1280x720 unless told. */
export async function shortVideo(seconds = 2, size = "640x360"): Promise<Buffer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "hv-video-"));
  const file = path.join(dir, "clip.mp4");
  await run("ffmpeg", [
    "-hide_banner",
    "-loglevel",
    "error",
    "-f",
    "lavfi",
    "-i",
    `testsrc=duration=${seconds}:size=${size}:rate=25`,
    "-f",
    "lavfi",
    "-i",
    `sine=frequency=440:duration=${seconds}`,
    "-c:v",
    "libx264",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-shortest",
    "-y",
    file,
  ]);
  return readFile(file);
}

/** Reads the metadata of bytes served by a signed URL. */
export async function fetchImage(url: string) {
  const response = await fetch(url);
  const body = Buffer.from(await response.arrayBuffer());
  return { response, body, metadata: response.ok ? await sharp(body).metadata() : null };
}
