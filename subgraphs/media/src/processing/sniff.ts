import { open } from "node:fs/promises";

/** A container format recognised from its first bytes. */
export type SniffedFormat = "jpeg" | "png" | "webp" | "heif" | "mp4" | "mov" | "webm";

export const IMAGE_FORMATS: ReadonlySet<SniffedFormat> = new Set(["jpeg", "png", "webp", "heif"]);
export const VIDEO_FORMATS: ReadonlySet<SniffedFormat> = new Set(["mp4", "mov", "webm"]);

/**
 * The content types a client may declare, and the format the bytes must then have. HEIC, HEIF
 * and AVIF share one container (ISO/IEC 23008-12), told apart only by the codec inside, so they
 * are one family here; whether this build can decode the codec is sharp's to say.
 */
const DECLARED: Readonly<Record<string, SniffedFormat>> = {
  "image/jpeg": "jpeg",
  "image/png": "png",
  "image/webp": "webp",
  "image/heic": "heif",
  "image/heif": "heif",
  "image/avif": "heif",
  "video/mp4": "mp4",
  "video/quicktime": "mov",
  "video/webm": "webm",
};

/** The format a declared content type stands for, or null when we do not take that type. */
export function formatOfContentType(contentType: string): SniffedFormat | null {
  // Parameters (`; charset=…`) and case are not part of the type.
  const essence = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return Object.hasOwn(DECLARED, essence) ? (DECLARED[essence] ?? null) : null;
}

const HEAD_BYTES = 64;

/** Reads the first bytes of a file (fewer if the file is shorter). */
export async function readHead(path: string, length = HEAD_BYTES): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const EBML_MAGIC = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);

/** ISO BMFF major brands of HEIF-family still images (HEIC, HEIF, AVIF). */
const HEIF_BRANDS = new Set(["heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis"]);
/** ISO BMFF major brands of MP4 video (ISO base media, MPEG-4, 3GPP as phones write it). */
const MP4_BRANDS = new Set([
  "isom",
  "iso2",
  "iso3",
  "iso4",
  "iso5",
  "iso6",
  "mp41",
  "mp42",
  "avc1",
  "M4V ",
  "M4VP",
  "dash",
  "3gp4",
  "3gp5",
  "3gp6",
  "3g2a",
  "MSNV",
]);
/** Top-level atoms with which a QuickTime file without an `ftyp` box may start. */
const QUICKTIME_ATOMS = new Set(["moov", "mdat", "wide", "free", "skip", "pnot"]);

/**
 * The format the bytes are, from their magic numbers, or null for anything else. This only
 * classifies; the decoders (sharp, ffprobe) then check that the rest of the file agrees.
 */
export function sniffFormat(head: Buffer): SniffedFormat | null {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "jpeg";
  if (head.length >= 8 && head.subarray(0, 8).equals(PNG_SIGNATURE)) return "png";
  if (
    head.length >= 12 &&
    head.toString("latin1", 0, 4) === "RIFF" &&
    head.toString("latin1", 8, 12) === "WEBP"
  ) {
    return "webp";
  }
  if (head.length >= 12) {
    const boxType = head.toString("latin1", 4, 8);
    if (boxType === "ftyp") {
      const brand = head.toString("latin1", 8, 12);
      if (HEIF_BRANDS.has(brand)) return "heif";
      if (brand === "qt  ") return "mov";
      if (MP4_BRANDS.has(brand)) return "mp4";
      return null;
    }
    if (QUICKTIME_ATOMS.has(boxType)) return "mov";
  }
  if (head.length >= 4 && head.subarray(0, 4).equals(EBML_MAGIC)) {
    // The EBML header names its DocType ("webm" or "matroska") within the first few bytes.
    const text = head.toString("latin1");
    if (text.includes("webm")) return "webm";
    return null; // Matroska that is not WebM: not taken.
  }
  return null;
}

/**
 * The length a container's own header promises, where it states one (RIFF, i.e. WebP); a file
 * shorter than that was cut off.
 */
export function promisedLength(format: SniffedFormat, head: Buffer): number | null {
  if (format === "webp" && head.length >= 8) return head.readUInt32LE(4) + 8;
  return null;
}
