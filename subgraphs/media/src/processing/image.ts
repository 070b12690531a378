import { join } from "node:path";
import sharp from "sharp";
import { blurhashOf } from "./blurhash";
import type { MediaFailureReason, MediaLimits, ProcessedVariant, ProcessResult } from "./index";
import { MediaToolError } from "./run-tool";
import type { SniffedFormat } from "./sniff";

/** Long sides of the variants, largest first: each smaller one is made from the one before. */
export const IMAGE_SIZES = [1280, 640, 160] as const;

const WEBP_QUALITY = 80;
const JPEG_QUALITY = 82;

type Failure = Extract<ProcessResult, { ok: false }>;

function failure(reason: MediaFailureReason, detail: string): Failure {
  return { ok: false, reason, detail };
}

/**
 * sharp's (libvips') error text, mapped to what was wrong with the file. What is wrong with the
 * machine instead (sharp's timeout, a full disk, memory running out) throws a MediaToolError: not
 * the file's fault, so it is not CORRUPT (a timeout fails the item, the others are retried).
 */
export function classifyDecodeError(error: unknown): Failure {
  const message = error instanceof Error ? error.message : String(error);
  const firstLine = message.split("\n")[0]?.slice(0, 300) ?? "";
  if (/^timeout: \d+% complete/im.test(message)) {
    throw new MediaToolError("sharp", "timeout", `sharp ran out of time: ${firstLine}`, { cause: error });
  }
  if (
    /no space left on device|ENOSPC|disk quota exceeded|EDQUOT|out of memory|ENOMEM|cannot allocate memory|insufficient memory|memory allocation failed|failed to allocate/i.test(
      message,
    )
  ) {
    throw new MediaToolError("sharp", "resources", `sharp could not finish: ${firstLine}`, { cause: error });
  }
  if (/pixel limit/i.test(message)) return failure("TOO_MANY_PIXELS", firstLine);
  if (
    /premature end|truncated|unexpected end|not enough (data|image data)|end of (file|stream)|read error|short read|bad seek/i.test(
      message,
    )
  ) {
    return failure("TRUNCATED", firstLine);
  }
  if (
    /not been built in|no decoding plugin|unsupported (codec|compression|feature)|not supported/i.test(
      message,
    )
  ) {
    return failure("UNSUPPORTED_TYPE", firstLine);
  }
  return failure("CORRUPT", firstLine);
}

/** What sharp calls each format we sniff. */
const SHARP_FORMAT: Partial<Record<SniffedFormat, string>> = {
  jpeg: "jpeg",
  png: "png",
  webp: "webp",
  heif: "heif",
};

/**
 * Reads the header only (no pixel is decoded), so the pixel limit is enforced before a
 * decompression bomb is inflated; then decodes the whole image once (failing on truncation),
 * upright and in sRGB, at most 1280 px on the long side, and makes every variant from that.
 * The variants are encoded from raw pixels, so no EXIF, GPS, XMP, IPTC or ICC data can reach them.
 */
export async function processImage(
  sourcePath: string,
  format: SniffedFormat,
  limits: MediaLimits,
  workDir: string,
  options: { timeoutSeconds?: number } = {},
): Promise<ProcessResult> {
  try {
    return await decodeAndEncode(sourcePath, format, limits, workDir, options.timeoutSeconds ?? 0);
  } catch (error) {
    if (error instanceof MediaToolError) throw error;
    // Encoding what decoded fine failed: a machine problem (disk, memory, time) becomes a
    // MediaToolError here; anything else stays as it was (retried, like before).
    classifyDecodeError(error);
    throw error;
  }
}

async function decodeAndEncode(
  sourcePath: string,
  format: SniffedFormat,
  limits: MediaLimits,
  workDir: string,
  timeoutSeconds: number,
): Promise<ProcessResult> {
  const timeout = { seconds: timeoutSeconds };
  let header: sharp.Metadata;
  try {
    header = await sharp(sourcePath, { limitInputPixels: false, failOn: "none" }).metadata();
  } catch (error) {
    return classifyDecodeError(error);
  }
  if (header.format !== SHARP_FORMAT[format]) {
    return failure("CORRUPT", `the bytes start like ${format} but the decoder reads ${header.format}`);
  }
  if (!(header.width > 0 && header.height > 0)) return failure("CORRUPT", "the header gives no dimensions");
  const pixels = header.width * header.height;
  if (pixels > limits.maxPixels) {
    return failure(
      "TOO_MANY_PIXELS",
      `${header.width}×${header.height} = ${pixels} pixels, more than ${limits.maxPixels}`,
    );
  }
  const width = header.autoOrient.width;
  const height = header.autoOrient.height;

  // One full decode: truncated or corrupt data fails here, before anything is written.
  let base: { data: Buffer; info: sharp.OutputInfo };
  try {
    base = await sharp(sourcePath, {
      failOn: "truncated",
      limitInputPixels: limits.maxPixels,
      autoOrient: true,
    })
      .resize(IMAGE_SIZES[0], IMAGE_SIZES[0], { fit: "inside", withoutEnlargement: true })
      .toColourspace("srgb")
      .timeout(timeout)
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    return classifyDecodeError(error);
  }

  const raw = (data: Buffer, info: sharp.OutputInfo) =>
    sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }).timeout(
      timeout,
    );

  const variants: ProcessedVariant[] = [];
  let current = base;
  for (const side of IMAGE_SIZES) {
    if (current.info.width > side || current.info.height > side) {
      current = await raw(current.data, current.info)
        .resize(side, side, { fit: "inside", withoutEnlargement: true })
        .raw()
        .toBuffer({ resolveWithObject: true });
    }
    const webpPath = join(workDir, `${side}.webp`);
    const webp = await raw(current.data, current.info).webp({ quality: WEBP_QUALITY }).toFile(webpPath);
    variants.push({
      name: `${side}.webp`,
      contentType: "image/webp",
      path: webpPath,
      width: webp.width,
      height: webp.height,
      byteSize: webp.size,
    });
    const jpegPath = join(workDir, `${side}.jpg`);
    const jpeg = await raw(current.data, current.info)
      .flatten({ background: "#ffffff" }) // JPEG has no alpha: transparent areas become white
      .jpeg({ quality: JPEG_QUALITY, progressive: true, mozjpeg: false })
      .toFile(jpegPath);
    variants.push({
      name: `${side}.jpg`,
      contentType: "image/jpeg",
      path: jpegPath,
      width: jpeg.width,
      height: jpeg.height,
      byteSize: jpeg.size,
    });
  }

  const blurhash = await blurhashOf(raw(current.data, current.info));

  return { ok: true, width, height, durationMs: null, blurhash, variants };
}
