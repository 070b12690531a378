/**
 * The Media subgraph alone over HTTP: `User.photos` with signed URLs for a page of 50 people.
 *
 *   pnpm exec tsx bench/media-subgraph.ts [--requests 400] [--concurrency 8] [--photos 3] [--storage local|s3] [--keep]
 *
 * Media runs as its own process (built, as deployed; BENCH_RUN=source: node --import tsx subgraphs/media/src/index.ts) on a database of
 * its own, verifying tokens against a JWKS served by this process. Each client has 50 owners of its
 * own (so a cold page is cold: no other client refills its lists meanwhile), each with `photos`
 * READY profile photos, written straight into Media's database (test/e2e/caching's
 * seedProfilePhotos). A page is what the gateway sends Media for a page of people asking for
 * `photos { id blurhash url }` (its query plan): one `_entities` fetch of the 50 Users' photos, then
 * one `_entities` fetch of those photos' `url` (the representations carry Chat's `readGrant`,
 * null for a profile photo). `requests` pages by `concurrency` clients in a closed loop, signed in
 * as one of 20 viewers, with the profile-photo cache cold (the 50 owners' lists deleted from Redis
 * before each page) and warm. `--storage s3` signs S3 presigned URLs (SigV4) instead of the local
 * driver's HMAC URLs; an S3-compatible server from npm (@20minutes/s3rver) answers Media's
 * readiness check, and signing itself never leaves the process.
 *
 * Reported: pages per second, the round trip p50/p99 of a page (both fetches), and the Media
 * process's CPU time per page; then the first fetch alone (warm), which splits a page's CPU
 * between the photo lists and the signed URLs; PostgreSQL and Redis are not included.
 */
import { randomUUID } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { generateSigningKeyJwk, JWKS_PATH, publicSigningKeyJwk } from "@hv/kit";
import { createMediaDb } from "@hv/media/src/db";
import { photoListKey } from "@hv/media/src/modules/photo-cache";
import { Redis } from "ioredis";
import { seedProfilePhotos } from "../test/e2e/caching/caching-support";
import { freePort } from "../test/support/ports";
import type { TestDatabases } from "../test/support/seed";
import { flag } from "./support/args";
import {
  benchDatabase,
  benchTokenIssuer,
  closedLoop,
  describeLoop,
  dropUnlessKept,
  expectData,
  jsonClient,
  printHeader,
  runBench,
  startChild,
  stopChild,
} from "./support/service";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require("@20minutes/s3rver") as new (options: Record<string, unknown>) => {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
};

const OWNERS = 50;
const PHOTOS = `query($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on User { photos { __typename id blurhash } } }
}`;
const URLS = `query($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on Media { url } }
}`;

function textFlag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? fallback : (process.argv[index + 1] ?? fallback);
}

async function main(): Promise<void> {
  const requests = flag("requests", 400);
  const concurrency = flag("concurrency", 8);
  const photosEach = flag("photos", 3);
  const storage = textFlag("storage", "local");
  if (storage !== "local" && storage !== "s3") throw new Error("--storage is local or s3");
  const keep = process.argv.includes("--keep");
  const stamp = Date.now().toString(36);
  printHeader("media-subgraph.ts");

  const databaseUrl = await benchDatabase("media", "media", stamp);
  const db = createMediaDb(databaseUrl);
  const redis = new Redis(process.env.REDIS_URL || "redis://127.0.0.1:6379");
  const api = jsonClient(concurrency);
  const key = generateSigningKeyJwk("bench-media");
  const jwks = http.createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [publicSigningKeyJwk(key)] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const dir = await mkdtemp(path.join(os.tmpdir(), "hv-bench-media-"));
  let s3: InstanceType<typeof S3rver> | undefined;
  let child: ChildProcess | undefined;
  const owners = Array.from({ length: concurrency }, () =>
    Array.from({ length: OWNERS }, () => randomUUID()),
  );
  try {
    // seedProfilePhotos writes through `dbs.media` only.
    const dbs = { media: db } as TestDatabases;
    for (const owner of owners.flat()) await seedProfilePhotos(dbs, owner, photosEach);
    console.log(`seeded ${concurrency} × ${OWNERS} owners × ${photosEach} READY profile photos`);

    let storageEnv: Record<string, string> = { MEDIA_STORAGE_DRIVER: "local", MEDIA_LOCAL_DIR: dir };
    if (storage === "s3") {
      s3 = new S3rver({
        address: "127.0.0.1",
        port: 0,
        silent: true,
        directory: dir,
        configureBuckets: [{ name: "hv-bench", configs: [] }],
      });
      storageEnv = {
        MEDIA_STORAGE_DRIVER: "s3",
        MEDIA_S3_BUCKET: "hv-bench",
        MEDIA_S3_ENDPOINT: `http://127.0.0.1:${(await s3.run()).port}`,
        MEDIA_S3_FORCE_PATH_STYLE: "true",
        MEDIA_S3_ACCESS_KEY_ID: "S3RVER",
        MEDIA_S3_SECRET_ACCESS_KEY: "S3RVER",
      };
    }
    const port = await freePort();
    child = await startChild(
      "subgraphs/media/src/index.ts",
      {
        MEDIA_DATABASE_URL: databaseUrl,
        MEDIA_PORT: String(port),
        MEDIA_FILES_PORT: String(await freePort()),
        SUBGRAPH_HOST: "127.0.0.1",
        AUTH_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}${JWKS_PATH}`,
        EVENTS_PREFIX: `hvbenchmedia${stamp}`,
        ...storageEnv,
      },
      `http://127.0.0.1:${port}/readyz`,
    );
    const pid = child.pid!;
    const url = `http://127.0.0.1:${port}/graphql`;
    const issuer = benchTokenIssuer(key);
    const viewers: string[] = [];
    for (let i = 0; i < 20; i += 1)
      viewers.push(
        (await issuer.issue({ userId: randomUUID(), sessionId: randomUUID(), role: "USER" })).token,
      );

    const page = async (index: number, client: number, cold: boolean, withUrls = true) => {
      const mine = owners[client]!;
      if (cold) await redis.del(...mine.map(photoListKey));
      const representations = mine.map((id) => ({ __typename: "User", id }));
      const headers = { authorization: `Bearer ${viewers[index % viewers.length]}` };
      const lists = expectData(
        await api.post<{
          data?: { _entities: Array<{ photos: Array<{ __typename: string; id: string }> }> };
        }>(url, { query: PHOTOS, variables: { representations } }, headers),
      );
      const photos = lists._entities.flatMap((user) => user.photos);
      if (photos.length !== OWNERS * photosEach)
        throw new Error(`${photos.length} photos, not ${OWNERS * photosEach}`);
      if (!withUrls) return;
      const signed = expectData(
        await api.post<{ data?: { _entities: Array<{ url: string | null }> } }>(
          url,
          {
            query: URLS,
            variables: {
              representations: photos.map(({ id }) => ({ __typename: "Media", id, readGrant: null })),
            },
          },
          headers,
        ),
      );
      if (signed._entities.some((media) => !media.url)) throw new Error("a photo without a signed URL");
    };
    for (let i = 0; i < concurrency; i += 1) await page(i, i, false); // warm-up: plans, JWKS, pools

    for (const cold of [true, false]) {
      const result = await closedLoop(requests, concurrency, pid, (i, client) => page(i, client, cold));
      console.log(
        describeLoop(
          `${OWNERS} owners' photos (${OWNERS * photosEach}) + their signed URLs (${storage}), photo cache ${cold ? "cold" : "warm"}, ${concurrency} clients; pages`,
          result,
          "Media",
        ),
      );
    }
    // The first fetch alone (warm), to split a page's CPU between the two.
    const listsOnly = await closedLoop(requests, concurrency, pid, (i, client) =>
      page(i, client, false, false),
    );
    console.log(
      describeLoop(
        `the photos fetch alone (no URLs), photo cache warm, ${concurrency} clients; fetches`,
        listsOnly,
        "Media",
      ),
    );
  } finally {
    api.close();
    await stopChild(child);
    await redis.del(...owners.flat().map(photoListKey)).catch(() => undefined);
    redis.disconnect();
    jwks.close();
    await s3?.close();
    await rm(dir, { recursive: true, force: true });
    await db.$disconnect();
    await dropUnlessKept(databaseUrl, keep);
  }
}

runBench(main);
