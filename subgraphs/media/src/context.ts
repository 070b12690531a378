import type { RateLimiter, RequestContextBase } from "@hv/kit";
import type { Queue } from "bullmq";
import type { MediaConfig } from "./config";
import type { MediaUpdateHub } from "./live";
import type { MediaDb } from "./db";
import type { MediaLoaders } from "./loaders";
import type { ReusedDownloadUrls } from "./modules/download-urls";
import type { PhotoCache } from "./modules/photo-cache";
import type { MaintenanceJobData, MediaJobData, MediaJobResult } from "./queue";
import type { MediaStorage } from "./storage";

/** What the resolvers use, made once per process. */
export interface MediaServices {
  db: MediaDb;
  storage: MediaStorage;
  queue: Queue<MediaJobData, MediaJobResult>;
  /** Delayed purges of originals' keys (see queue.ts). */
  maintenance: Queue<MaintenanceJobData>;
  config: MediaConfig;
  uploads: RateLimiter;
  updates: MediaUpdateHub;
  /** Owners' profile photo lists in Redis; invalidate after every change to one. */
  photos: PhotoCache;
  /** Signed download URLs, reused while half their life is left (ask only after the read rule). */
  downloadUrls: ReusedDownloadUrls;
  /** Publishes outbox events (media.reported) right after the transaction that wrote them commits. */
  flushEvents(): void;
}

export interface MediaContext extends RequestContextBase {
  services: MediaServices;
  loaders: MediaLoaders;
}
