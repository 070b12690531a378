import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import sharp from "sharp";
import {
  checkMediaTools,
  MediaToolError,
  processMedia,
  VIDEO_VARIANT_NAMES,
  type MediaLimits,
  type ProcessInput,
  type ProcessOptions,
  type ProcessResult,
} from "../src/processing";
import { parseProbe, targetSize } from "../src/processing/video";

const run = promisify(execFile);
const tools = {
  ffmpegPath: process.env.FFMPEG_PATH ?? "ffmpeg",
  ffprobePath: process.env.FFPROBE_PATH ?? "ffprobe",
};
const limits: MediaLimits = { maxBytes: 50 * 1024 * 1024, maxPixels: 40_000_000, maxVideoSeconds: 30 };

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hv-test-video-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let counter = 0;
async function workspace(): Promise<{ dir: string; workDir: string }> {
  const dir = join(root, String(++counter));
  const workDir = join(dir, "out");
  await mkdir(workDir, { recursive: true });
  return { dir, workDir };
}

/** Makes a clip with ffmpeg's test sources (lavfi testsrc + sine), then any extra output options. */
async function makeClip(
  name: string,
  options: { size: string; seconds: number; audio: boolean; output: string[] },
): Promise<string> {
  const path = join(root, name);
  await run(tools.ffmpegPath, [
    "-nostdin",
    "-hide_banner",
    "-loglevel",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
    `testsrc=size=${options.size}:rate=25:duration=${options.seconds}`,
    ...(options.audio ? ["-f", "lavfi", "-i", `sine=frequency=440:duration=${options.seconds}`] : []),
    ...options.output,
    path,
  ]);
  return path;
}

async function processFile(
  sourcePath: string,
  declaredContentType: string,
  overrides: Partial<Omit<ProcessInput, "sourcePath" | "workDir">> = {},
  options: Partial<ProcessOptions> = {},
): Promise<{ result: ProcessResult; workDir: string }> {
  const { workDir } = await workspace();
  const { size } = await stat(sourcePath);
  const result = await processMedia(
    { kind: "VIDEO", declaredContentType, declaredByteSize: size, sourcePath, workDir, limits, ...overrides },
    { ...tools, ...options },
  );
  return { result, workDir };
}

async function processBytes(
  bytes: Buffer,
  declaredContentType: string,
  overrides: Partial<Omit<ProcessInput, "sourcePath" | "workDir">> = {},
) {
  const { dir } = await workspace();
  const path = join(dir, "upload");
  await writeFile(path, bytes);
  return processFile(path, declaredContentType, overrides);
}

function expectOk(result: ProcessResult): Extract<ProcessResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected success, got ${result.reason}: ${result.detail}`);
  return result;
}

interface FfprobeOutput {
  format: { format_name: string; duration: string; tags?: Record<string, string> };
  streams: Array<{
    codec_type: string;
    codec_name: string;
    profile?: string;
    width?: number;
    height?: number;
    pix_fmt?: string;
    tags?: Record<string, string>;
  }>;
}

async function ffprobe(path: string): Promise<FfprobeOutput> {
  const { stdout } = await run(tools.ffprobePath, [
    "-v",
    "error",
    "-print_format",
    "json",
    "-show_format",
    "-show_streams",
    path,
  ]);
  return JSON.parse(stdout) as FfprobeOutput;
}

/** Offset of a top-level MP4 box by type, walking the box headers. */
function topLevelBoxes(bytes: Buffer): string[] {
  const boxes: string[] = [];
  let offset = 0;
  while (offset + 8 <= bytes.length) {
    let size = bytes.readUInt32BE(offset);
    const type = bytes.toString("latin1", offset + 4, offset + 8);
    if (size === 1) size = Number(bytes.readBigUInt64BE(offset + 8));
    if (size === 0) size = bytes.length - offset;
    if (size < 8) break;
    boxes.push(type);
    offset += size;
  }
  return boxes;
}

describe("processMedia: videos", () => {
  it("should transcode a 1080p QuickTime clip with GPS to a 720p MP4 (H.264/AAC, fast start, no metadata) with a poster", async () => {
    const source = await makeClip("gps.mov", {
      size: "1920x1080",
      seconds: 2,
      audio: true,
      output: [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-metadata",
        "location=+48.8584+002.2945/",
        "-metadata",
        "title=Secret title",
        "-f",
        "mov",
      ],
    });
    // The upload really carries a QuickTime location (©xyz).
    expect((await ffprobe(source)).format.tags?.location).toBe("+48.8584+002.2945/");
    expect((await readFile(source)).includes("+48.8584")).toBe(true);

    const { result, workDir } = await processFile(source, "video/quicktime");
    const ok = expectOk(result);
    expect([ok.width, ok.height]).toEqual([1920, 1080]);
    expect(ok.durationMs).toBeGreaterThanOrEqual(1900);
    expect(ok.durationMs).toBeLessThanOrEqual(2100);
    expect(ok.blurhash).toEqual(expect.any(String));
    expect(ok.variants.map((variant) => variant.name).sort()).toEqual([...VIDEO_VARIANT_NAMES].sort());

    const video = ok.variants.find((variant) => variant.name === "video.mp4")!;
    expect(video).toMatchObject({ contentType: "video/mp4", width: 1280, height: 720 });
    const bytes = await readFile(video.path);
    expect(bytes.length).toBe(video.byteSize);
    const probed = await ffprobe(video.path);
    expect(probed.format.format_name).toContain("mp4");
    const videoStream = probed.streams.find((stream) => stream.codec_type === "video");
    const audioStream = probed.streams.find((stream) => stream.codec_type === "audio");
    expect(videoStream).toMatchObject({ codec_name: "h264", width: 1280, height: 720, pix_fmt: "yuv420p" });
    expect(audioStream).toMatchObject({ codec_name: "aac" });
    expect(Number(probed.format.duration)).toBeCloseTo(2, 0);
    // No location, title or encoder survives, anywhere in the file.
    expect(probed.format.tags?.location).toBeUndefined();
    expect(probed.format.tags?.title).toBeUndefined();
    expect(bytes.includes("+48.8584")).toBe(false);
    expect(bytes.includes("Secret title")).toBe(false);
    expect(bytes.includes("\u00a9xyz", 0, "latin1")).toBe(false);
    // Fast start: the index (moov) comes before the media data.
    const boxes = topLevelBoxes(bytes);
    expect(boxes.indexOf("moov")).toBeGreaterThanOrEqual(0);
    expect(boxes.indexOf("moov")).toBeLessThan(boxes.indexOf("mdat"));

    const poster = ok.variants.find((variant) => variant.name === "poster.jpg")!;
    expect(poster).toMatchObject({ contentType: "image/jpeg", width: 1280, height: 720 });
    const posterMeta = await sharp(poster.path).metadata();
    expect([posterMeta.format, posterMeta.width, posterMeta.height, posterMeta.exif, posterMeta.icc]).toEqual(
      ["jpeg", 1280, 720, undefined, undefined],
    );
    expect((await stat(poster.path)).size).toBe(poster.byteSize);
    expect((await readdir(workDir)).sort()).toEqual([...VIDEO_VARIANT_NAMES].sort());
  });

  it("should handle a WebM without an audio track, and never upscale a small portrait video", async () => {
    const source = await makeClip("silent.webm", {
      size: "360x640",
      seconds: 1,
      audio: false,
      output: ["-c:v", "libvpx", "-b:v", "200k", "-deadline", "realtime", "-f", "webm"],
    });
    const ok = expectOk((await processFile(source, "video/webm")).result);
    expect([ok.width, ok.height]).toEqual([360, 640]);
    const video = ok.variants.find((variant) => variant.name === "video.mp4")!;
    const probed = await ffprobe(video.path);
    expect(probed.streams.map((stream) => stream.codec_type)).toEqual(["video"]);
    expect(probed.streams[0]).toMatchObject({ codec_name: "h264", width: 360, height: 640 });
  });

  it("should apply a phone's rotation: a 1280x720 clip turned 90° comes back 720x1280", async () => {
    const flat = await makeClip("flat.mp4", {
      size: "1280x720",
      seconds: 1,
      audio: true,
      output: ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    });
    const rotated = join(root, "rotated.mp4");
    await run(tools.ffmpegPath, [
      "-nostdin",
      "-loglevel",
      "error",
      "-y",
      "-i",
      flat,
      "-c",
      "copy",
      "-metadata:s:v:0",
      "rotate=90",
      rotated,
    ]);
    const ok = expectOk((await processFile(rotated, "video/mp4")).result);
    expect([ok.width, ok.height]).toEqual([720, 1280]);
    const video = ok.variants.find((variant) => variant.name === "video.mp4")!;
    expect([video.width, video.height]).toEqual([720, 1280]);
    const stream = (await ffprobe(video.path)).streams.find((entry) => entry.codec_type === "video");
    expect([stream?.width, stream?.height]).toEqual([720, 1280]);
  });

  it("should refuse an audio file whose only picture is cover art", async () => {
    const cover = join(root, "cover.png");
    await run(tools.ffmpegPath, [
      "-nostdin",
      "-loglevel",
      "error",
      "-y",
      "-f",
      "lavfi",
      "-i",
      "testsrc=size=320x320",
      "-frames:v",
      "1",
      cover,
    ]);
    const song = join(root, "song.mp4");
    await run(tools.ffmpegPath, [
      "-nostdin",
      "-loglevel",
      "error",
      "-y",
      "-f",
      "lavfi",
      "-i",
      "sine=duration=2",
      "-i",
      cover,
      "-map",
      "0:a",
      "-map",
      "1:v",
      "-c:a",
      "aac",
      "-c:v",
      "mjpeg",
      "-disposition:v:0",
      "attached_pic",
      song,
    ]);
    expect((await ffprobe(song)).streams.map((stream) => stream.codec_type).sort()).toEqual([
      "audio",
      "video",
    ]);
    expect((await processFile(song, "video/mp4")).result).toMatchObject({
      ok: false,
      reason: "UNSUPPORTED_TYPE",
    });
  });

  it("should refuse a video longer than the limit", async () => {
    const source = await makeClip("long.mp4", {
      size: "160x120",
      seconds: 4,
      audio: false,
      output: ["-c:v", "libx264", "-preset", "ultrafast"],
    });
    const { result, workDir } = await processFile(source, "video/mp4", {
      limits: { ...limits, maxVideoSeconds: 3 },
    });
    expect(result).toMatchObject({ ok: false, reason: "TOO_LONG" });
    expect(await readdir(workDir)).toEqual([]);
    expectOk((await processFile(source, "video/mp4", { limits: { ...limits, maxVideoSeconds: 5 } })).result);
  });

  it("should refuse frames over the pixel limit before decoding", async () => {
    const source = await makeClip("big.mp4", {
      size: "640x360",
      seconds: 1,
      audio: false,
      output: ["-c:v", "libx264", "-preset", "ultrafast"],
    });
    const { result, workDir } = await processFile(source, "video/mp4", {
      limits: { ...limits, maxPixels: 640 * 360 - 1 },
    });
    expect(result).toMatchObject({ ok: false, reason: "TOO_MANY_PIXELS" });
    expect(await readdir(workDir)).toEqual([]);
  });

  it("should refuse garbage bytes declared as video", async () => {
    const garbage = Buffer.alloc(64 * 1024);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 151 + 3) % 256;
    expect((await processBytes(garbage, "video/mp4")).result).toMatchObject({
      ok: false,
      reason: "UNSUPPORTED_TYPE",
    });
    expect((await processBytes(Buffer.from("#!/bin/sh\nrm -rf /\n"), "video/webm")).result).toMatchObject({
      ok: false,
      reason: "UNSUPPORTED_TYPE",
    });
    // An MP4 header followed by garbage.
    const fake = Buffer.concat([Buffer.from("\0\0\0\x18ftypisom\0\0\x02\0isomiso2", "latin1"), garbage]);
    const { result, workDir } = await processBytes(fake, "video/mp4");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(["CORRUPT", "TRUNCATED"]).toContain(result.reason);
    expect(await readdir(workDir)).toEqual([]);
  });

  it("should refuse a container that differs from the declared type", async () => {
    const mov = await makeClip("real.mov", {
      size: "160x120",
      seconds: 1,
      audio: false,
      output: ["-c:v", "libx264", "-preset", "ultrafast", "-f", "mov"],
    });
    expect((await processFile(mov, "video/mp4")).result).toMatchObject({
      ok: false,
      reason: "TYPE_MISMATCH",
    });
    expect((await processFile(mov, "video/webm")).result).toMatchObject({
      ok: false,
      reason: "TYPE_MISMATCH",
    });
    expect((await processFile(mov, "image/jpeg", { kind: "VIDEO" })).result).toMatchObject({
      ok: false,
      reason: "UNSUPPORTED_TYPE",
    });
    expect((await processFile(mov, "video/x-msvideo")).result).toMatchObject({
      ok: false,
      reason: "UNSUPPORTED_TYPE",
    });
  });

  it("should refuse a truncated video", async () => {
    // Without fast start the index is at the end: cutting the file loses it.
    const source = await makeClip("whole.mp4", {
      size: "320x240",
      seconds: 2,
      audio: true,
      output: ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    });
    const bytes = await readFile(source);
    const cut = bytes.subarray(0, Math.floor(bytes.length / 2));
    expect((await processBytes(cut, "video/mp4")).result).toMatchObject({ ok: false, reason: "TRUNCATED" });
    expect((await processBytes(cut, "video/mp4", { declaredByteSize: bytes.length })).result).toMatchObject({
      ok: false,
      reason: "TRUNCATED",
    });
    // With fast start the index survives but the frames stop early.
    const faststart = await makeClip("faststart.mp4", {
      size: "320x240",
      seconds: 6,
      audio: false,
      output: ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-movflags", "+faststart"],
    });
    const whole = await readFile(faststart);
    const half = await processBytes(whole.subarray(0, Math.floor(whole.length / 2)), "video/mp4");
    expect(half.result).toMatchObject({ ok: false, reason: "TRUNCATED" });
  });

  it("should reject when ffmpeg runs over its time limit, or is aborted, and when it is missing", async () => {
    const source = await makeClip("slow.mp4", {
      size: "1280x720",
      seconds: 3,
      audio: true,
      output: ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    });
    const timedOut = processFile(source, "video/mp4", {}, { ffmpegTimeoutMs: 1 });
    await expect(timedOut).rejects.toMatchObject({ name: "MediaToolError", kind: "timeout" });

    const controller = new AbortController();
    const aborted = processFile(source, "video/mp4", {}, { signal: controller.signal });
    setImmediate(() => controller.abort(new Error("worker shutting down")));
    await expect(aborted).rejects.toBeInstanceOf(MediaToolError);
    await expect(aborted).rejects.toMatchObject({ kind: "aborted" });

    const missing = processFile(source, "video/mp4", {}, { ffprobePath: join(root, "no-such-ffprobe") });
    await expect(missing).rejects.toMatchObject({ kind: "missing" });
    await expect(
      checkMediaTools({ ffmpegPath: join(root, "no-such-ffmpeg"), ffprobePath: tools.ffprobePath }),
    ).rejects.toThrow(/FFMPEG_PATH/);
    await expect(checkMediaTools(tools)).resolves.toMatchObject({
      ffmpeg: expect.stringMatching(/^ffmpeg version/),
    });
  });
});

describe("video geometry", () => {
  it("should fit 720p in either orientation, keep even sides and never upscale", () => {
    const square = { sampleAspect: 1, rotation: 0 };
    expect(targetSize({ ...square, width: 3840, height: 2160 })).toMatchObject({ width: 1280, height: 720 });
    expect(targetSize({ ...square, width: 1080, height: 1920 })).toMatchObject({ width: 720, height: 1280 });
    expect(targetSize({ ...square, width: 1080, height: 1920, rotation: -90 })).toMatchObject({
      width: 1280,
      height: 720,
    });
    expect(targetSize({ ...square, width: 2000, height: 2000 })).toMatchObject({ width: 720, height: 720 });
    expect(targetSize({ ...square, width: 321, height: 241 })).toMatchObject({ width: 322, height: 242 });
    expect(targetSize({ ...square, width: 1, height: 1 })).toMatchObject({ width: 2, height: 2 });
    // Anamorphic 1440x1080 with 4:3 pixels is 1920x1080 on screen.
    expect(targetSize({ width: 1440, height: 1080, sampleAspect: 4 / 3, rotation: 0 })).toMatchObject({
      displayWidth: 1920,
      width: 1280,
      height: 720,
    });
  });

  it("should read ffprobe's JSON and nothing else", () => {
    expect(parseProbe("not json")).toBeNull();
    expect(parseProbe("[]")).toBeNull();
    expect(parseProbe('{"format":{}}')).toBeNull();
    expect(
      parseProbe(
        '{"format":{"format_name":"mov,mp4","duration":"2.5"},"streams":[{"codec_type":"video","width":4,"height":2,"sample_aspect_ratio":"0:1","side_data_list":[{"rotation":-90}]}]}',
      ),
    ).toEqual({
      formatName: "mov,mp4",
      durationSeconds: 2.5,
      streams: [
        {
          index: 0,
          codecType: "video",
          attachedPic: false,
          codecName: "",
          width: 4,
          height: 2,
          sampleAspect: 1,
          rotation: -90,
          durationSeconds: null,
        },
      ],
    });
  });
});
