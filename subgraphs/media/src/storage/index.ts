/**
 * Where media bytes live, behind one interface: a local directory (the default; the media
 * process serves signed URLs for it, see local-server.ts) or S3-compatible object storage
 * (presigned URLs). Phones send and fetch bytes straight to and from storage; the subgraph only
 * signs URLs, the worker moves files.
 */
export interface SignedUpload {
  url: string;
  /** Headers the PUT must carry exactly (content type and length are part of the signature). */
  headers: Record<string, string>;
  expiresAt: Date;
}

export interface SignedDownload {
  url: string;
  expiresAt: Date;
}

export interface MediaStorage {
  readonly driver: "local" | "s3";
  /** A URL that accepts one PUT of exactly `byteSize` bytes of `contentType` at `key` until it expires. */
  signUpload(
    key: string,
    options: { contentType: string; byteSize: number; ttlSeconds: number },
  ): Promise<SignedUpload>;
  /** A URL that serves `key` (as `contentType`) until it expires. */
  signDownload(key: string, options: { contentType: string; ttlSeconds: number }): Promise<SignedDownload>;
  /** The stored object's size, or null when there is none. */
  stat(key: string): Promise<{ byteSize: number } | null>;
  /** Copies the object to a local file. */
  download(key: string, toPath: string): Promise<void>;
  /** Stores a local file at `key`. */
  upload(key: string, fromPath: string, contentType: string): Promise<void>;
  /** Deletes the objects; missing ones are fine. */
  delete(keys: string[]): Promise<void>;
  /** For /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/** Keys are ours (ids and variant names), never a client's path: anything else is refused. */
export function assertStorageKey(key: string): string {
  if (!KEY.test(key) || key.length > 512 || key.split("/").some((part) => part === "." || part === "..")) {
    throw new Error(`invalid storage key ${JSON.stringify(key)}`);
  }
  return key;
}

export function sourceKey(ownerId: string, mediaId: string): string {
  return `media/${ownerId}/${mediaId}/source`;
}

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const SOURCE_KEY = new RegExp(`^media/(${UUID})/(${UUID})/source$`);

/** The owner and media id of an original's key (`sourceKey`), or null for any other key. */
export function parseSourceKey(key: string): { ownerId: string; mediaId: string } | null {
  const match = SOURCE_KEY.exec(key);
  return match ? { ownerId: match[1] as string, mediaId: match[2] as string } : null;
}

export function variantKey(ownerId: string, mediaId: string, variant: string): string {
  return assertStorageKey(`media/${ownerId}/${mediaId}/${variant}`);
}
