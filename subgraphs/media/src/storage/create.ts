import type { StorageConfig } from "../config";
import type { MediaStorage } from "./index";
import { LocalStorage } from "./local";
import { S3Storage } from "./s3";

/**
 * The configured storage. For the local driver, `publicUrl` gives the file endpoint's base URL
 * (it may only be known once that endpoint listens).
 */
export function createStorage(config: StorageConfig, publicUrl: () => string): MediaStorage {
  if (config.driver === "local")
    return new LocalStorage({ dir: config.dir, secret: config.urlSecret, publicUrl });
  return new S3Storage(config);
}
