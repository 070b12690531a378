import { stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { isRecord } from "@hv/kit";
import sharp from "sharp";
import type {
  MediaFailureReason,
  MediaLimits,
  ProcessedVariant,
  ProcessOptions,
  ProcessResult,
} from "./index";
import { blurhashOf } from "./blurhash";
import { runTool } from "./run-tool";
import type { SniffedFormat } from "./sniff";

/** 720p: the long side at most 1280 px and the short side at most 720 px, whatever the orientation. */
export const VIDEO_MAX_LONG_SIDE = 1280;
export const VIDEO_MAX_SHORT_SIDE = 720;
const DEFAULT_FFMPEG_TIMEOUT_MS = 10 * 60 * 1000;
const FFPROBE_TIMEOUT_MS = 30 * 1000;
const POSTER_JPEG_QUALITY = 82;

type Failure = Extract<ProcessResult, { ok: false }>;

function failure(reason: MediaFailureReason, detail: string): Failure {
  return { ok: false, reason, detail };
}

interface ProbeStream {
  /** The stream's index in the container (for `-map 0:<index>`). */
  index: number;
  codecType: string;
  /** Cover art stored as a one-frame "video" stream (audio files with artwork). */
  attachedPic: boolean;
  codecName: string;
  width: number;
  height: number;
  /** Sample aspect ratio as a number (1 for square pixels or when unknown). */
  sampleAspect: number;
  /** Degrees the player must rotate the picture (display matrix or legacy `rotate` tag). */
  rotation: number;
  durationSeconds: number | null;
}

export interface Probe {
  formatName: string;
  durationSeconds: number | null;
  streams: ProbeStream[];
}

function numberOf(value: unknown): number | null {
  const parsed = typeof value === "number" ? value : typeof value === "string" ? Number(value) : Number.NaN;
  return Number.isFinite(parsed) ? parsed : null;
}

function ratioOf(value: unknown): number {
  if (typeof value !== "string") return 1;
  const match = /^(\d+):(\d+)$/.exec(value);
  if (!match) return 1;
  const ratio = Number(match[1]) / Number(match[2]);
  return Number.isFinite(ratio) && ratio > 0 ? ratio : 1;
}

function rotationOf(stream: Record<string, unknown>): number {
  const sideData = Array.isArray(stream.side_data_list) ? stream.side_data_list : [];
  for (const entry of sideData) {
    if (isRecord(entry)) {
      const rotation = numberOf(entry.rotation);
      if (rotation !== null) return rotation;
    }
  }
  const tags = isRecord(stream.tags) ? stream.tags : {};
  return numberOf(tags.rotate) ?? 0;
}

/** ffprobe's JSON, reduced to what we use; null when it is not the shape ffprobe writes. */
export function parseProbe(json: string): Probe | null {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    return null;
  }
  if (!isRecord(data) || !isRecord(data.format) || !Array.isArray(data.streams)) return null;
  const streams: ProbeStream[] = data.streams.filter(isRecord).map((stream, position) => ({
    index: numberOf(stream.index) ?? position,
    codecType: typeof stream.codec_type === "string" ? stream.codec_type : "",
    attachedPic: isRecord(stream.disposition) && stream.disposition.attached_pic === 1,
    codecName: typeof stream.codec_name === "string" ? stream.codec_name : "",
    width: numberOf(stream.width) ?? 0,
    height: numberOf(stream.height) ?? 0,
    sampleAspect: ratioOf(stream.sample_aspect_ratio),
    rotation: rotationOf(stream),
    durationSeconds: numberOf(stream.duration),
  }));
  return {
    formatName: typeof data.format.format_name === "string" ? data.format.format_name : "",
    durationSeconds: numberOf(data.format.duration),
    streams,
  };
}

/**
 * Input options that pin the demuxer to the sniffed container and allow only local files: a
 * crafted upload cannot make ffmpeg read a playlist, another local file or a URL.
 */
export function inputArgs(format: SniffedFormat, path: string): string[] {
  return ["-protocol_whitelist", "file", "-f", format === "webm" ? "matroska" : "mov", "-i", `file:${path}`];
}

export async function probe(
  path: string,
  format: SniffedFormat,
  options: ProcessOptions,
): Promise<{ probe: Probe } | { error: string; stderr: string }> {
  const run = await runTool(
    options.ffprobePath,
    ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", ...inputArgs(format, path)],
    { timeoutMs: FFPROBE_TIMEOUT_MS, signal: options.signal },
  );
  if (run.exitCode !== 0) {
    return {
      error: lastLine(run.stderrTail) || `ffprobe exited with ${run.exitCode}`,
      stderr: run.stderrTail,
    };
  }
  const parsed = parseProbe(run.stdout);
  return parsed ? { probe: parsed } : { error: "ffprobe gave no usable description", stderr: "" };
}

function lastLine(text: string): string {
  const lines = text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  return (lines.at(-1) ?? "").slice(0, 300);
}

const even = (value: number) => Math.max(2, 2 * Math.round(value / 2));

/**
 * Output size: the upright display size (non-square pixels and rotation applied) scaled down to
 * fit 1280×720 (or 720×1280), never up, both sides even as H.264 4:2:0 needs.
 */
export function targetSize(stream: {
  width: number;
  height: number;
  sampleAspect: number;
  rotation: number;
}): {
  displayWidth: number;
  displayHeight: number;
  width: number;
  height: number;
} {
  let displayWidth = Math.round(stream.width * stream.sampleAspect);
  let displayHeight = stream.height;
  const quarterTurns = Math.round(stream.rotation / 90);
  if (Math.abs(quarterTurns) % 2 === 1) [displayWidth, displayHeight] = [displayHeight, displayWidth];
  const long = Math.max(displayWidth, displayHeight);
  const short = Math.min(displayWidth, displayHeight);
  const scale = Math.min(1, VIDEO_MAX_LONG_SIDE / long, VIDEO_MAX_SHORT_SIDE / short);
  return {
    displayWidth,
    displayHeight,
    width: even(displayWidth * scale),
    height: even(displayHeight * scale),
  };
}

/**
 * Probes the container (streams, size, duration) before decoding anything, enforces the pixel
 * and duration limits, transcodes to MP4 (H.264 High/AAC, fast start, no metadata, no
 * chapters, no subtitle or data streams) and takes a poster frame from the result.
 */
export async function processVideo(
  sourcePath: string,
  format: SniffedFormat,
  limits: MediaLimits,
  workDir: string,
  options: ProcessOptions,
): Promise<ProcessResult> {
  const probed = await probe(sourcePath, format, options);
  if ("error" in probed) {
    // Without fast start the index (moov) is at the end of the file: a cut file has none.
    return /moov atom not found|end of file|truncat/i.test(probed.stderr)
      ? failure(
          "TRUNCATED",
          lastLine(probed.stderr.replace(/^.*Invalid data found.*$/gm, "")) || probed.error,
        )
      : failure("CORRUPT", probed.error);
  }
  const info = probed.probe;
  const expectedFormat = format === "webm" ? "webm" : "mp4";
  if (!info.formatName.split(",").includes(expectedFormat)) {
    return failure(
      "CORRUPT",
      `the bytes start like ${format} but ffprobe reads ${info.formatName || "nothing"}`,
    );
  }
  const video = info.streams.find(
    (stream) => stream.codecType === "video" && !stream.attachedPic && stream.width > 0 && stream.height > 0,
  );
  if (!video) return failure("UNSUPPORTED_TYPE", "the file has no video stream");
  const pixels = video.width * video.height;
  if (pixels > limits.maxPixels) {
    return failure(
      "TOO_MANY_PIXELS",
      `${video.width}×${video.height} = ${pixels} pixels per frame, more than ${limits.maxPixels}`,
    );
  }
  const duration = info.durationSeconds ?? video.durationSeconds;
  if (duration === null || duration <= 0) return failure("CORRUPT", "the container gives no duration");
  if (duration > limits.maxVideoSeconds) {
    return failure("TOO_LONG", `${duration.toFixed(1)} s, longer than ${limits.maxVideoSeconds} s`);
  }
  const hasAudio = info.streams.some((stream) => stream.codecType === "audio");
  const size = targetSize(video);

  const videoPath = join(workDir, "video.mp4");
  const timeoutMs = options.ffmpegTimeoutMs ?? DEFAULT_FFMPEG_TIMEOUT_MS;
  const transcode = await runTool(
    options.ffmpegPath,
    // prettier-ignore
    [
      "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
      ...inputArgs(format, sourcePath),
      "-map", `0:${video.index}`, ...(hasAudio ? ["-map", "0:a:0"] : []),
      // The probe said how long it is; a container that lies cannot make the output longer.
      "-t", String(limits.maxVideoSeconds),
      // ffmpeg applies the rotation itself before this filter (autorotate), so the size is upright.
      "-vf", `scale=${size.width}:${size.height}:flags=bicubic,setsar=1,format=yuv420p`,
      "-fpsmax", "60",
      "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-profile:v", "high",
      ...(hasAudio ? ["-c:a", "aac", "-b:a", "128k", "-ac", "2"] : ["-an"]),
      "-sn", "-dn",
      // No global (GPS `©xyz`, creation time, device), stream or chapter metadata survives.
      "-map_metadata", "-1", "-map_metadata:s:v", "-1", "-map_metadata:s:a", "-1", "-map_chapters", "-1",
      "-fflags", "+bitexact",
      "-movflags", "+faststart",
      "-f", "mp4", `file:${videoPath}`,
    ],
    { timeoutMs, signal: options.signal },
  );
  if (transcode.exitCode !== 0) {
    const reason = lastLine(transcode.stderrTail) || `ffmpeg exited with ${transcode.exitCode}`;
    if (/no space left|permission denied|cannot allocate memory/i.test(transcode.stderrTail)) {
      throw new Error(`ffmpeg could not write the video: ${reason}`);
    }
    return failure("CORRUPT", reason);
  }

  const output = await probe(videoPath, "mp4", options);
  if ("error" in output) return failure("CORRUPT", `the transcoded video is unreadable: ${output.error}`);
  const outVideo = output.probe.streams.find((stream) => stream.codecType === "video");
  const outDuration = output.probe.durationSeconds;
  if (!outVideo || outDuration === null) return failure("CORRUPT", "the transcode produced no video");
  // A file cut short still has the full duration in its header: the decoder stops early.
  if (outDuration < duration * 0.9 - 0.5) {
    return failure("TRUNCATED", `the video stops at ${outDuration.toFixed(1)} s of ${duration.toFixed(1)} s`);
  }

  const poster = await makePoster(videoPath, outDuration, workDir, options, timeoutMs);
  if (!poster) return failure("CORRUPT", "no frame could be taken for a poster");

  const variants: ProcessedVariant[] = [
    {
      name: "video.mp4",
      contentType: "video/mp4",
      path: videoPath,
      width: outVideo.width,
      height: outVideo.height,
      byteSize: (await stat(videoPath)).size,
    },
    poster.variant,
  ];
  return {
    ok: true,
    width: size.displayWidth,
    height: size.displayHeight,
    durationMs: Math.round(outDuration * 1000),
    blurhash: poster.blurhash,
    variants,
  };
}

/**
 * One frame a little into the video (a first frame is often black), written by ffmpeg as PNG
 * and re-encoded by sharp as a metadata-free JPEG; also the video's blurhash placeholder.
 */
async function makePoster(
  videoPath: string,
  durationSeconds: number,
  workDir: string,
  options: ProcessOptions,
  timeoutMs: number,
): Promise<{ variant: ProcessedVariant; blurhash: string } | null> {
  const framePath = join(workDir, "poster-frame.png");
  for (const at of [Math.min(1, durationSeconds / 3), 0]) {
    const run = await runTool(
      options.ffmpegPath,
      // prettier-ignore
      [
        "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-ss", at.toFixed(3), ...inputArgs("mp4", videoPath),
        "-map", "0:v:0", "-frames:v", "1", "-map_metadata", "-1", "-f", "image2", "-c:v", "png", `file:${framePath}`,
      ],
      { timeoutMs, signal: options.signal },
    );
    if (run.exitCode !== 0) continue;
    try {
      const posterPath = join(workDir, "poster.jpg");
      const frame = await sharp(framePath, { failOn: "error" })
        .toColourspace("srgb")
        .raw()
        .toBuffer({ resolveWithObject: true });
      const raw = () =>
        sharp(frame.data, {
          raw: { width: frame.info.width, height: frame.info.height, channels: frame.info.channels },
        });
      const jpeg = await raw().jpeg({ quality: POSTER_JPEG_QUALITY, progressive: true }).toFile(posterPath);
      const blurhash = await blurhashOf(raw());
      return {
        variant: {
          name: "poster.jpg",
          contentType: "image/jpeg",
          path: posterPath,
          width: jpeg.width,
          height: jpeg.height,
          byteSize: jpeg.size,
        },
        blurhash,
      };
    } catch {
      // An empty or unreadable frame: try the first one.
    } finally {
      await unlink(framePath).catch(() => undefined);
    }
  }
  return null;
}
