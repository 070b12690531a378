import { randomUUID } from "node:crypto";
import { readdir } from "node:fs/promises";
import path from "node:path";
import type { EventMeta } from "@hv/kit";
import { mediaEventHandlers } from "@hv/media/src/events";
import type { RunningMedia } from "@hv/media/src/server";
import type { LocalStorage } from "@hv/media/src/storage/local";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { useSystem } from "../../support/fixture";
import { capturingLogger } from "../../support/log-capture";
import type { SignedIn } from "../../support/users-client";
import { COMPLETE_UPLOAD, jpegWithGps, mediaClient, png } from "./media-support";

const UPDATES = "subscription { myMediaUpdates { id status failureReason width } }";

describe("live media updates and deleting media", () => {
  const fixture = useSystem();
  const media = () => mediaClient(fixture);
  const mediaService = () => fixture.system.subgraphs.media as RunningMedia;
  const storage = () => mediaService().services.storage as LocalStorage;
  const clients: Client[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
  });

  /** A graphql-ws subscription, collecting what arrives. */
  async function subscribe(url: string, who: SignedIn) {
    const client = createClient({
      url: url.replace(/^http/, "ws"),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${who.accessToken}` },
    });
    clients.push(client);
    const received: Array<Record<string, unknown>> = [];
    const errors: unknown[] = [];
    client.subscribe(
      { query: UPDATES },
      {
        next: (value) =>
          received.push((value.data?.myMediaUpdates ?? { errors: value.errors }) as Record<string, unknown>),
        error: (error) => errors.push(error),
        complete: () => undefined,
      },
    );
    // Wait until the subscription is live on the server: its Redis fan-out has the owner.
    await new Promise<void>((resolve) => client.on("connected", () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 200));
    return { received, errors };
  }

  async function until(
    what: string,
    condition: () => boolean | Promise<boolean>,
    tries = 400,
  ): Promise<void> {
    for (let attempt = 0; attempt < tries; attempt += 1) {
      if (await condition()) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`never: ${what}`);
  }

  it("should tell the owner, and only the owner, when processing finishes", async () => {
    const owner = await fixture.client.signUp();
    const other = await fixture.client.signUp();
    const mine = await subscribe(mediaService().url, owner);
    const theirs = await subscribe(mediaService().url, other);

    const ready = await media().upload(owner, await jpegWithGps(300, 200), {
      kind: "IMAGE",
      contentType: "image/jpeg",
    });
    const failed = await media().upload(owner, await png(), { kind: "IMAGE", contentType: "image/jpeg" });
    await until("both updates arrive", () => mine.received.length >= 2);
    expect(mine.received).toEqual([
      { id: ready.id, status: "READY", failureReason: null, width: 300 },
      { id: failed.id, status: "FAILED", failureReason: "TYPE_MISMATCH", width: null },
    ]);
    expect(theirs.received).toEqual([]);
    expect(mine.errors).toEqual([]);
  });

  it("should refuse the subscription without a signed-in user", async () => {
    const client = createClient({
      url: mediaService().url.replace(/^http/, "ws"),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    clients.push(client);
    const outcome = await new Promise<unknown>((resolve) => {
      client.subscribe({ query: UPDATES }, { next: resolve, error: resolve, complete: () => undefined });
    });
    expect(JSON.stringify(outcome)).toContain("UNAUTHENTICATED");
  });

  async function filesOf(ownerId: string): Promise<string[]> {
    const dir = path.join(storage().options.dir, "media", ownerId);
    return (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []))
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name);
  }

  it("should delete the stored files with the media, and a deleted user's files with their media", async () => {
    const owner = await fixture.client.signUp();
    const first = await media().upload(owner, await jpegWithGps(200, 200), {
      kind: "IMAGE",
      contentType: "image/jpeg",
    });
    const second = await media().upload(owner, await jpegWithGps(200, 200), {
      kind: "IMAGE",
      contentType: "image/jpeg",
      purpose: "CHAT_ATTACHMENT",
    });
    const pending = await media().createUpload(owner, {
      kind: "IMAGE",
      contentType: "image/png",
      byteSize: (await png()).length,
      purpose: "PROFILE_PHOTO",
    });
    expect((await media().put(pending, await png())).status).toBe(200);
    expect((await filesOf(owner.userId)).length).toBe(13); // 6 + 6 variants + 1 waiting original

    const deleted = await media().send(
      `mutation($id: ID!) { deleteMedia(id: $id) }`,
      { id: first.id },
      owner,
    );
    expect(deleted.body.data).toEqual({ deleteMedia: true });
    expect((await filesOf(owner.userId)).length).toBe(7);
    expect((await fetch(second.url ?? "")).status).toBe(200);
    expect((await fetch(first.url ?? "")).status).toBe(404);
    expect(await media().myMedia(owner, first.id)).toBeNull();
    const completeGone = await media().send(COMPLETE_UPLOAD, { id: first.id }, owner);
    expect(completeGone.body.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");

    // user.deleted (delivered twice, as at-least-once delivery may) purges rows and files.
    const { logger } = capturingLogger("media-events-test");
    const handle = mediaEventHandlers(fixture.dbs.media, logger, storage())["user.deleted"];
    const meta: EventMeta<"user.deleted"> = {
      eventId: randomUUID(),
      type: "user.deleted",
      occurredAt: new Date(),
      attempt: 1,
    };
    await handle({ userId: owner.userId }, meta);
    await handle({ userId: owner.userId }, { ...meta, attempt: 2 });
    expect(await filesOf(owner.userId)).toEqual([]);
    expect(await fixture.dbs.media.media.count({ where: { ownerId: owner.userId } })).toBe(0);
    expect((await fetch(second.url ?? "")).status).toBe(404);
  });
});
