import { createReadStream, createWriteStream } from "node:fs";
import { stat as statFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  NotFound,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { assertStorageKey, type MediaStorage, type SignedDownload, type SignedUpload } from "./index";

export interface S3StorageOptions {
  bucket: string;
  region: string;
  endpoint: string | null;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string } | null;
}

/**
 * S3-compatible object storage (AWS SDK v3). Upload URLs are presigned PUTs whose signature
 * covers `content-type` and `content-length`: S3 refuses a body of any other size or type. They
 * also sign `If-None-Match: *` (S3 conditional writes): a second PUT while the original is stored
 * is refused (412) instead of replacing it. Once the original is deleted (processed, or the item
 * deleted) S3 would take a PUT again while the URL lives: that key is purged once more when the
 * URL has expired (keys.ts, the worker's `purge` jobs). Services without conditional writes
 * ignore the header (the test server does).
 */
export class S3Storage implements MediaStorage {
  readonly driver = "s3" as const;
  private readonly client: S3Client;

  constructor(private readonly options: S3StorageOptions) {
    this.client = new S3Client({
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Newer SDKs add a CRC32 checksum to every PutObject by default; a presigned URL would then
      // require the phone to send that checksum for bytes the server never saw. Only when required.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  async signUpload(
    key: string,
    options: { contentType: string; byteSize: number; ttlSeconds: number },
  ): Promise<SignedUpload> {
    const command = new PutObjectCommand({
      Bucket: this.options.bucket,
      Key: assertStorageKey(key),
      ContentType: options.contentType,
      ContentLength: options.byteSize,
      IfNoneMatch: "*",
    });
    const url = await getSignedUrl(this.client, command, {
      expiresIn: options.ttlSeconds,
      // Signed, so they cannot change: the presigner leaves content-length out unless asked.
      signableHeaders: new Set(["content-type", "content-length", "if-none-match"]),
    });
    return {
      url,
      headers: {
        "content-type": options.contentType,
        "content-length": String(options.byteSize),
        "if-none-match": "*",
      },
      expiresAt: new Date(Date.now() + options.ttlSeconds * 1000),
    };
  }

  async signDownload(
    key: string,
    options: { contentType: string; ttlSeconds: number },
  ): Promise<SignedDownload> {
    const command = new GetObjectCommand({
      Bucket: this.options.bucket,
      Key: assertStorageKey(key),
      ResponseContentType: options.contentType,
    });
    const url = await getSignedUrl(this.client, command, { expiresIn: options.ttlSeconds });
    return { url, expiresAt: new Date(Date.now() + options.ttlSeconds * 1000) };
  }

  async stat(key: string): Promise<{ byteSize: number } | null> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.options.bucket, Key: assertStorageKey(key) }),
      );
      return { byteSize: head.ContentLength ?? 0 };
    } catch (error) {
      if (
        error instanceof NotFound ||
        (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404)
      )
        return null;
      throw error;
    }
  }

  async download(key: string, toPath: string): Promise<void> {
    const object = await this.client.send(
      new GetObjectCommand({ Bucket: this.options.bucket, Key: assertStorageKey(key) }),
    );
    if (!object.Body) throw new Error(`s3 object ${key} has no body`);
    await pipeline(object.Body as Readable, createWriteStream(toPath));
  }

  async upload(key: string, fromPath: string, contentType: string): Promise<void> {
    const { size } = await statFile(fromPath);
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: assertStorageKey(key),
        Body: createReadStream(fromPath),
        ContentType: contentType,
        ContentLength: size,
      }),
    );
  }

  /**
   * One DELETE per key, ten at a time: DeleteObjects (a POST with an XML body) would be fewer
   * requests, but not every S3-compatible service accepts its signature the way AWS does, and a
   * media item has only a handful of objects. Deleting a missing key succeeds in S3.
   */
  async delete(keys: string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += 10) {
      await Promise.all(
        keys
          .slice(start, start + 10)
          .map((key) =>
            this.client.send(
              new DeleteObjectCommand({ Bucket: this.options.bucket, Key: assertStorageKey(key) }),
            ),
          ),
      );
    }
  }

  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
