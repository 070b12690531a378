import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { decode as decodeBlurhash, isBlurhashValid } from "blurhash";
import sharp from "sharp";
import {
  IMAGE_VARIANT_NAMES,
  processMedia,
  type MediaLimits,
  type ProcessInput,
  type ProcessResult,
} from "./processing";
import { formatOfContentType, sniffFormat } from "./processing/sniff";

const tools = {
  ffmpegPath: process.env.FFMPEG_PATH ?? "ffmpeg",
  ffprobePath: process.env.FFPROBE_PATH ?? "ffprobe",
};
const limits: MediaLimits = { maxBytes: 20 * 1024 * 1024, maxPixels: 40_000_000, maxVideoSeconds: 60 };

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function workspace(): Promise<{ dir: string; workDir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "hv-test-image-"));
  dirs.push(dir);
  const workDir = join(dir, "out");
  await import("node:fs/promises").then(({ mkdir }) => mkdir(workDir));
  return { dir, workDir };
}

/** Writes `bytes` as an upload and processes it; `declaredByteSize` defaults to the real size. */
async function processBytes(
  bytes: Buffer,
  declaredContentType: string,
  overrides: Partial<Omit<ProcessInput, "sourcePath" | "workDir">> = {},
): Promise<{ result: ProcessResult; workDir: string }> {
  const { dir, workDir } = await workspace();
  const sourcePath = join(dir, "upload");
  await writeFile(sourcePath, bytes);
  const result = await processMedia(
    {
      kind: "IMAGE",
      declaredContentType,
      declaredByteSize: bytes.length,
      sourcePath,
      workDir,
      limits,
      ...overrides,
    },
    tools,
  );
  return { result, workDir };
}

function expectOk(result: ProcessResult): Extract<ProcessResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected success, got ${result.reason}: ${result.detail}`);
  return result;
}

function expectFailure(result: ProcessResult, reason: string): void {
  expect(result).toMatchObject({ ok: false, reason });
}

/** A picture whose left half is red and right half blue, with some texture so encoders work. */
async function halves(width: number, height: number): Promise<sharp.Sharp> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * 3;
      const grain = (x * 31 + y * 17) % 24;
      if (x < width / 2) pixels.set([230 - grain, grain, grain], offset);
      else pixels.set([grain, grain, 230 - grain], offset);
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } });
}

/** A photo as a phone writes it: EXIF with camera and GPS position, orientation 6, XMP, a P3 profile. */
async function phoneJpeg(width: number, height: number): Promise<Buffer> {
  return (await halves(width, height))
    .withIccProfile("p3")
    .withExif({
      IFD0: { Make: "HaiyveeTestPhone", Model: "Model-Secret-42" },
      IFD3: {
        GPSLatitudeRef: "N",
        GPSLatitude: "48/1 51/1 2964/100",
        GPSLongitudeRef: "E",
        GPSLongitude: "2/1 17/1 4000/100",
        GPSMapDatum: "GPS-WGS-84",
      },
    })
    .withXmp(
      '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
        '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.494N"/></rdf:RDF></x:xmpmeta>',
    )
    .withMetadata({ orientation: 6 })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** Whether a raw EXIF block (as sharp returns it) has a GPS IFD: IFD0 holds tag 0x8825. */
function hasGpsIfd(exif: Buffer): boolean {
  const tiff = exif.subarray(exif.indexOf("Exif\0\0") + 6);
  const little = tiff.toString("latin1", 0, 2) === "II";
  const u16 = (at: number) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  const ifd0 = u32(4);
  const count = u16(ifd0);
  for (let entry = 0; entry < count; entry++) {
    if (u16(ifd0 + 2 + entry * 12) === 0x8825) return true;
  }
  return false;
}

/** A PNG that is only a header claiming `width`×`height` (a decompression bomb's first bytes). */
function pngHeaderClaiming(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", Buffer.from([0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01])),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

describe("processMedia: images", () => {
  it("should strip EXIF, GPS, XMP and ICC from every variant and apply the EXIF orientation", async () => {
    const upload = await phoneJpeg(1600, 800);
    // The upload really carries what must not leak.
    const source = await sharp(upload).metadata();
    expect(source.orientation).toBe(6);
    expect(source.exif && hasGpsIfd(source.exif)).toBe(true);
    expect(upload.includes("GPS-WGS-84")).toBe(true);
    expect(source.exif?.includes("HaiyveeTestPhone")).toBe(true);
    expect(source.xmp).toBeDefined();
    expect(source.icc).toBeDefined();

    const { result, workDir } = await processBytes(upload, "image/jpeg");
    const ok = expectOk(result);
    // Orientation 6 turns the stored 1600×800 into an upright 800×1600.
    expect([ok.width, ok.height]).toEqual([800, 1600]);
    expect(ok.variants.map((variant) => variant.name).sort()).toEqual([...IMAGE_VARIANT_NAMES].sort());

    for (const variant of ok.variants) {
      const bytes = await readFile(variant.path);
      const meta = await sharp(bytes).metadata();
      expect({
        name: variant.name,
        exif: meta.exif,
        xmp: meta.xmp,
        icc: meta.icc,
        iptc: meta.iptc,
        orientation: meta.orientation,
      }).toEqual({
        name: variant.name,
        exif: undefined,
        xmp: undefined,
        icc: undefined,
        iptc: undefined,
        orientation: undefined,
      });
      for (const marker of [
        "GPS",
        "Exif\0",
        "WGS-84",
        "HaiyveeTestPhone",
        "Model-Secret-42",
        "xmpmeta",
        "48,51",
      ]) {
        expect({ name: variant.name, marker, found: bytes.includes(marker) }).toEqual({
          name: variant.name,
          marker,
          found: false,
        });
      }
      // Portrait now: red (the stored left half) is on top after a 90° clockwise turn.
      expect(meta.height).toBeGreaterThan(meta.width);
      const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
      const pixel = (x: number, y: number) => [
        ...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3),
      ];
      const top = pixel(Math.floor(info.width / 2), Math.floor(info.height / 4));
      const bottom = pixel(Math.floor(info.width / 2), Math.floor((info.height * 3) / 4));
      expect(top[0]).toBeGreaterThan(150);
      expect(top[2]).toBeLessThan(80);
      expect(bottom[2]).toBeGreaterThan(150);
      expect(bottom[0]).toBeLessThan(80);
    }
    // Nothing else was left in the work directory.
    expect((await readdir(workDir)).sort()).toEqual([...IMAGE_VARIANT_NAMES].sort());
  });

  it("should make 160, 640 and 1280 px variants in WebP and JPEG, with sizes that match the files", async () => {
    const upload = await (await halves(3000, 2000)).jpeg().toBuffer();
    const ok = expectOk((await processBytes(upload, "image/jpeg")).result);
    expect([ok.width, ok.height, ok.durationMs]).toEqual([3000, 2000, null]);
    const byName = Object.fromEntries(ok.variants.map((variant) => [variant.name, variant]));
    const expected: Record<string, [number, number, string, string]> = {
      "1280.webp": [1280, 853, "image/webp", "webp"],
      "1280.jpg": [1280, 853, "image/jpeg", "jpeg"],
      "640.webp": [640, 427, "image/webp", "webp"],
      "640.jpg": [640, 427, "image/jpeg", "jpeg"],
      "160.webp": [160, 107, "image/webp", "webp"],
      "160.jpg": [160, 107, "image/jpeg", "jpeg"],
    };
    for (const [name, [width, height, contentType, format]] of Object.entries(expected)) {
      const variant = byName[name];
      expect(variant).toMatchObject({ width, height, contentType });
      const meta = await sharp(variant!.path).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual([format, width, height]);
      expect((await stat(variant!.path)).size).toBe(variant!.byteSize);
    }
  });

  it("should never upscale a small image, and give a blurhash that decodes to its colours", async () => {
    const upload = await (await halves(300, 200)).png().toBuffer();
    const ok = expectOk((await processBytes(upload, "image/png")).result);
    const sizes = Object.fromEntries(
      ok.variants.map((variant) => [variant.name, [variant.width, variant.height]]),
    );
    expect(sizes).toEqual({
      "1280.webp": [300, 200],
      "1280.jpg": [300, 200],
      "640.webp": [300, 200],
      "640.jpg": [300, 200],
      "160.webp": [160, 107],
      "160.jpg": [160, 107],
    });
    expect(ok.blurhash).not.toBeNull();
    expect(isBlurhashValid(ok.blurhash!).result).toBe(true);
    const placeholder = decodeBlurhash(ok.blurhash!, 8, 4);
    const at = (x: number, y: number) => [...placeholder.subarray((y * 8 + x) * 4, (y * 8 + x) * 4 + 3)];
    const left = at(0, 2);
    const right = at(7, 2);
    expect(left[0]).toBeGreaterThan(left[2]!); // red on the left
    expect(right[2]).toBeGreaterThan(right[0]!); // blue on the right
  });

  it("should keep transparency in WebP and flatten it onto white in JPEG", async () => {
    const upload = await sharp({
      create: { width: 200, height: 200, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const ok = expectOk((await processBytes(upload, "image/png")).result);
    const webp = ok.variants.find((variant) => variant.name === "160.webp")!;
    const jpeg = ok.variants.find((variant) => variant.name === "160.jpg")!;
    expect((await sharp(webp.path).metadata()).hasAlpha).toBe(true);
    const { data } = await sharp(jpeg.path).raw().toBuffer({ resolveWithObject: true });
    expect(Math.min(...data.subarray(0, 300))).toBeGreaterThan(240);
  });

  it("should take WebP and AVIF uploads", async () => {
    const picture = await halves(400, 300);
    expectOk((await processBytes(await picture.clone().webp().toBuffer(), "image/webp")).result);
    const avif = expectOk((await processBytes(await picture.clone().avif().toBuffer(), "image/avif")).result);
    expect([avif.width, avif.height]).toEqual([400, 300]);
  });

  it("should refuse a PNG declared as a JPEG, and write nothing", async () => {
    const png = await (await halves(100, 100)).png().toBuffer();
    const { result, workDir } = await processBytes(png, "image/jpeg");
    expectFailure(result, "TYPE_MISMATCH");
    expect(await readdir(workDir)).toEqual([]);
  });

  it("should refuse a video declared as an image, and an image declared as a video", async () => {
    const jpeg = await (await halves(100, 100)).jpeg().toBuffer();
    expectFailure((await processBytes(jpeg, "video/mp4", { kind: "VIDEO" })).result, "TYPE_MISMATCH");
    // An MP4's first bytes, declared as a JPEG.
    const mp4Head = Buffer.concat([
      Buffer.from([0, 0, 0, 0x18]),
      Buffer.from("ftypisom\0\0\x02\0isomiso2", "latin1"),
      Buffer.alloc(64),
    ]);
    expectFailure((await processBytes(mp4Head, "image/jpeg")).result, "TYPE_MISMATCH");
  });

  it("should refuse a truncated JPEG, PNG and WebP after decoding them fully", async () => {
    const picture = await halves(800, 600);
    for (const [bytes, type] of [
      [await picture.clone().jpeg().toBuffer(), "image/jpeg"],
      // Large enough that the decoder shrinks on load: it still reads every byte.
      [await (await halves(4000, 3000)).jpeg().toBuffer(), "image/jpeg"],
      [await picture.clone().png().toBuffer(), "image/png"],
      [await picture.clone().webp().toBuffer(), "image/webp"],
    ] as const) {
      const cut = bytes.subarray(0, Math.floor(bytes.length * 0.6));
      const { result, workDir } = await processBytes(cut, type);
      expect({ type, result }).toMatchObject({ type, result: { ok: false, reason: "TRUNCATED" } });
      expect(await readdir(workDir)).toEqual([]);
    }
  });

  it("should refuse a file with fewer bytes than declared as truncated", async () => {
    const jpeg = await (await halves(100, 100)).jpeg().toBuffer();
    expectFailure(
      (await processBytes(jpeg, "image/jpeg", { declaredByteSize: jpeg.length + 1 })).result,
      "TRUNCATED",
    );
  });

  it("should refuse a zero-byte upload", async () => {
    expectFailure((await processBytes(Buffer.alloc(0), "image/jpeg")).result, "EMPTY");
    expectFailure(
      (await processBytes(Buffer.alloc(0), "image/jpeg", { declaredByteSize: 0 })).result,
      "EMPTY",
    );
  });

  it("should refuse a file bigger than declared or than the limit", async () => {
    const jpeg = await (await halves(200, 200)).jpeg().toBuffer();
    const bigger = await processBytes(jpeg, "image/jpeg", { declaredByteSize: jpeg.length - 1 });
    expectFailure(bigger.result, "TOO_LARGE");
    const overLimit = await processBytes(jpeg, "image/jpeg", {
      limits: { ...limits, maxBytes: jpeg.length - 1 },
    });
    expectFailure(overLimit.result, "TOO_LARGE");
  });

  it("should refuse a header that claims too many pixels without decoding it (decompression bomb)", async () => {
    const bomb = pngHeaderClaiming(100_000, 100_000);
    expect(bomb.length).toBeLessThan(100);
    const { result } = await processBytes(bomb, "image/png");
    expect(result).toMatchObject({
      ok: false,
      reason: "TOO_MANY_PIXELS",
      detail: expect.stringContaining("10000000000"),
    });
    // A real image just over a lower limit, too (orientation does not change the count).
    const real = await (await halves(1000, 600)).jpeg().toBuffer();
    expectFailure(
      (await processBytes(real, "image/jpeg", { limits: { ...limits, maxPixels: 599_999 } })).result,
      "TOO_MANY_PIXELS",
    );
    expectOk((await processBytes(real, "image/jpeg", { limits: { ...limits, maxPixels: 600_000 } })).result);
  });

  it("should refuse types it does not take, whatever the bytes", async () => {
    const jpeg = await (await halves(50, 50)).jpeg().toBuffer();
    const gif = await (await halves(50, 50)).gif().toBuffer();
    for (const declared of [
      "image/gif",
      "text/html",
      "",
      "image/svg+xml",
      "application/octet-stream",
      `image/jpeg${"x".repeat(10_000)}`,
      "image/jpeg\u0000",
    ]) {
      const { result } = await processBytes(jpeg, declared);
      expect({ declared: declared.slice(0, 20), result }).toMatchObject({
        declared: declared.slice(0, 20),
        result: { ok: false, reason: "UNSUPPORTED_TYPE" },
      });
      if (!result.ok) expect(result.detail.length).toBeLessThan(200);
    }
    // A GIF's bytes declared as a JPEG: not a format we take.
    expectFailure((await processBytes(gif, "image/jpeg")).result, "UNSUPPORTED_TYPE");
    // Parameters and case do not change the type.
    expectOk((await processBytes(jpeg, "Image/JPEG; charset=binary")).result);
  });

  it("should refuse garbage and hostile bytes", async () => {
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 131 + 7) % 256;
    expectFailure((await processBytes(garbage, "image/jpeg")).result, "UNSUPPORTED_TYPE");
    expectFailure(
      (await processBytes(Buffer.from("<svg onload=alert(1)></svg>"), "image/png")).result,
      "UNSUPPORTED_TYPE",
    );
    // Right magic number, nothing valid after it.
    const fakeJpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), garbage]);
    const fake = await processBytes(fakeJpeg, "image/jpeg");
    expect(fake.result.ok).toBe(false);
    if (!fake.result.ok) expect(["CORRUPT", "TRUNCATED"]).toContain(fake.result.reason);
    expect(await readdir(fake.workDir)).toEqual([]);
  });

  it("should refuse a truncated AVIF, with a detail that does not name the worker's files", async () => {
    const avif = await (await halves(300, 200)).avif().toBuffer();
    const { result } = await processBytes(avif.subarray(0, avif.length >> 1), "image/avif");
    expectFailure(result, "TRUNCATED");
    // libheif names the file it read; the detail is for logs and says "upload" instead.
    if (!result.ok) expect(result.detail).not.toContain(tmpdir());
  });
});

describe("sniffing", () => {
  it("should tell formats from their first bytes", async () => {
    const picture = await halves(16, 16);
    expect(sniffFormat(await picture.clone().jpeg().toBuffer())).toBe("jpeg");
    expect(sniffFormat(await picture.clone().png().toBuffer())).toBe("png");
    expect(sniffFormat(await picture.clone().webp().toBuffer())).toBe("webp");
    expect(sniffFormat(await picture.clone().avif().toBuffer())).toBe("heif");
    expect(sniffFormat(await picture.clone().gif().toBuffer())).toBeNull();
    expect(sniffFormat(Buffer.from("\0\0\0\x14ftypqt  \0\0\0\0qt  ", "latin1"))).toBe("mov");
    expect(sniffFormat(Buffer.from("\0\0\0\x20ftypmp42\0\0\0\0", "latin1"))).toBe("mp4");
    expect(sniffFormat(Buffer.from("\0\0\0\x20ftypheic\0\0\0\0", "latin1"))).toBe("heif");
    expect(sniffFormat(Buffer.from("\0\0\0\x20ftypzzzz\0\0\0\0", "latin1"))).toBeNull();
    expect(sniffFormat(Buffer.alloc(0))).toBeNull();
    expect(sniffFormat(Buffer.from([0xff, 0xd8]))).toBeNull();
  });

  it("should map declared content types and nothing else", () => {
    expect(formatOfContentType("image/jpeg")).toBe("jpeg");
    expect(formatOfContentType(" IMAGE/PNG ; q=1")).toBe("png");
    expect(formatOfContentType("image/heic")).toBe("heif");
    expect(formatOfContentType("video/quicktime")).toBe("mov");
    expect(formatOfContentType("toString")).toBeNull();
    expect(formatOfContentType("__proto__")).toBeNull();
    expect(formatOfContentType("image/jpg")).toBeNull();
  });
});
