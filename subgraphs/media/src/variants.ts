import type { MediaRow } from "./loaders";

/** A processed variant as stored in `media.variants`. */
export interface StoredVariant {
  name: string;
  contentType: string;
  width: number;
  height: number;
  byteSize: number;
  key: string;
}

function isStoredVariant(value: unknown): value is StoredVariant {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.name === "string" &&
    typeof v.contentType === "string" &&
    typeof v.key === "string" &&
    typeof v.width === "number" &&
    typeof v.height === "number"
  );
}

export function variantsOf(media: Pick<MediaRow, "variants">): StoredVariant[] {
  return Array.isArray(media.variants) ? (media.variants as unknown[]).filter(isStoredVariant) : [];
}

/** The variant `url` serves when none is named: a mid-size JPEG for images, the MP4 for videos. */
export const DEFAULT_VARIANT = { IMAGE: "640.jpg", VIDEO: "video.mp4" } as const;
