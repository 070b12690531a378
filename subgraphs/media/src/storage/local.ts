import { createHmac, timingSafeEqual } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, mkdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { assertStorageKey, type MediaStorage, type SignedDownload, type SignedUpload } from "./index";

/**
 * Local-disk storage. Upload and download URLs point at the media process's own file endpoint
 * (local-server.ts) and carry an HMAC over method, key, content type, size and expiry, so none of
 * them can be changed without the secret.
 */
export interface LocalStorageOptions {
  dir: string;
  secret: string;
  /** Base URL of the file endpoint as phones reach it; a function so it can follow a port picked at start. */
  publicUrl: () => string;
}

export const FILES_PATH = "/files/";

export interface UrlClaims {
  method: "PUT" | "GET";
  key: string;
  contentType: string;
  /** PUT only: the exact number of bytes. */
  byteSize: number | null;
  /** Unix seconds. */
  expires: number;
}

function canonical(claims: UrlClaims): string {
  return ["v1", claims.method, claims.key, claims.contentType, claims.byteSize ?? "", claims.expires].join(
    "\n",
  );
}

export function signClaims(claims: UrlClaims, secret: string): string {
  return createHmac("sha256", secret).update(canonical(claims)).digest("base64url");
}

export function checkSignature(claims: UrlClaims, signature: string, secret: string): boolean {
  const expected = Buffer.from(signClaims(claims, secret));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export class LocalStorage implements MediaStorage {
  readonly driver = "local" as const;

  constructor(readonly options: LocalStorageOptions) {}

  /** The file of a key, always inside `dir`. */
  pathOf(key: string): string {
    const full = path.resolve(this.options.dir, assertStorageKey(key));
    if (!full.startsWith(path.resolve(this.options.dir) + path.sep))
      throw new Error(`storage key escapes the directory: ${key}`);
    return full;
  }

  private url(claims: UrlClaims): string {
    const query = new URLSearchParams({
      ct: claims.contentType,
      exp: String(claims.expires),
      ...(claims.byteSize === null ? {} : { len: String(claims.byteSize) }),
      sig: signClaims(claims, this.options.secret),
    });
    return `${this.options.publicUrl()}${FILES_PATH}${claims.key}?${query.toString()}`;
  }

  async signUpload(
    key: string,
    options: { contentType: string; byteSize: number; ttlSeconds: number },
  ): Promise<SignedUpload> {
    const expires = Math.floor(Date.now() / 1000) + options.ttlSeconds;
    const claims: UrlClaims = {
      method: "PUT",
      key: assertStorageKey(key),
      contentType: options.contentType,
      byteSize: options.byteSize,
      expires,
    };
    return {
      url: this.url(claims),
      headers: { "content-type": options.contentType, "content-length": String(options.byteSize) },
      expiresAt: new Date(expires * 1000),
    };
  }

  async signDownload(
    key: string,
    options: { contentType: string; ttlSeconds: number },
  ): Promise<SignedDownload> {
    const expires = Math.floor(Date.now() / 1000) + options.ttlSeconds;
    return {
      url: this.url({
        method: "GET",
        key: assertStorageKey(key),
        contentType: options.contentType,
        byteSize: null,
        expires,
      }),
      expiresAt: new Date(expires * 1000),
    };
  }

  async stat(key: string): Promise<{ byteSize: number } | null> {
    try {
      const info = await stat(this.pathOf(key));
      return info.isFile() ? { byteSize: info.size } : null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }

  async download(key: string, toPath: string): Promise<void> {
    await copyFile(this.pathOf(key), toPath);
  }

  async upload(key: string, fromPath: string): Promise<void> {
    const target = this.pathOf(key);
    await mkdir(path.dirname(target), { recursive: true });
    const partial = `${target}.${process.pid}.${Date.now()}.partial`;
    await pipeline(createReadStream(fromPath), createWriteStream(partial));
    await rename(partial, target);
  }

  async delete(keys: string[]): Promise<void> {
    await Promise.all(keys.map((key) => rm(this.pathOf(key), { force: true })));
  }

  async ping(): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
  }

  async close(): Promise<void> {}
}
