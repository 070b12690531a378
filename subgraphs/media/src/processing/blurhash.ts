import { encode } from "blurhash";
import type sharp from "sharp";

/** Long side of the image the blurhash is computed from (the hash only keeps 4×3 components). */
const SOURCE_SIDE = 32;
const COMPONENTS = { x: 4, y: 3 } as const;

/** The blurhash placeholder of an image, transparent parts shown on white. */
export async function blurhashOf(image: sharp.Sharp): Promise<string> {
  const tiny = await image
    .resize(SOURCE_SIDE, SOURCE_SIDE, { fit: "inside" })
    .flatten({ background: "#ffffff" })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return encode(
    new Uint8ClampedArray(tiny.data.buffer, tiny.data.byteOffset, tiny.data.byteLength),
    tiny.info.width,
    tiny.info.height,
    COMPONENTS.x,
    COMPONENTS.y,
  );
}
