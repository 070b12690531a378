import { appError, DateTimeScalar, ErrorCode, isUuid, requireViewer, restrictCacheHint } from "@hv/kit";
import type { CompleteResolvers } from "./generated/resolvers-types";
import type { MediaContext } from "./context";
import type { MediaRow } from "./loaders";
import { ownerShown, signedUrl, visible } from "./modules/access";
import { addProfilePhoto, removeProfilePhoto, reorderProfilePhotos } from "./modules/photos";
import { reportMedia } from "./modules/reports";
import { completeUpload, createUpload, deleteMedia, type CreateUploadInput } from "./modules/uploads";
import { variantsOf } from "./variants";

export type { MediaContext } from "./context";

interface Reference {
  id: string;
}

/** A Media as the gateway hands it over for `url`: the row's fields plus Chat's `readGrant`. */
type MediaParent = MediaRow & { readGrant?: unknown };

export const resolvers: CompleteResolvers = {
  DateTime: DateTimeScalar,
  Media: {
    __resolveReference: async (reference: Reference & { readGrant?: unknown }, { loaders }: MediaContext) => {
      if (!isUuid(reference.id)) return null;
      const media = await loaders.mediaById.load(reference.id.toLowerCase());
      return media ? { ...media, readGrant: reference.readGrant } : null;
    },
    failureReason: (media: MediaRow, _: unknown, context: MediaContext) =>
      media.status === "FAILED" && context.viewer?.userId === media.ownerId ? media.failureReason : null,
    // Metadata follows the read rule of `url` (modules/access.ts): hidden fields are null / empty.
    status: (media: MediaParent, _: unknown, context: MediaContext) =>
      visible(media, context, () => media.status, null),
    width: (media: MediaParent, _: unknown, context: MediaContext) =>
      visible(media, context, () => media.width, null),
    height: (media: MediaParent, _: unknown, context: MediaContext) =>
      visible(media, context, () => media.height, null),
    durationMs: (media: MediaParent, _: unknown, context: MediaContext) =>
      visible(media, context, () => media.durationMs, null),
    blurhash: (media: MediaParent, _: unknown, context: MediaContext) =>
      visible(media, context, () => media.blurhash, null),
    variants: (media: MediaParent, _: unknown, context: MediaContext) =>
      visible(
        media,
        context,
        () =>
          media.status === "READY"
            ? variantsOf(media).map(({ name, contentType, width, height }) => ({
                name,
                contentType,
                width,
                height,
              }))
            : [],
        [],
      ),
    // A response holding a signed URL is cached (privately) for at most half the URL's life, so a
    // reused response still has time to download.
    url: (media: MediaParent, args: { variant?: string | null }, context: MediaContext) =>
      signedUrl(media, args.variant, media.readGrant, context, (ttlSeconds) =>
        restrictCacheHint(context, { maxAge: Math.floor(ttlSeconds / 2), scope: "PRIVATE" }),
      ),
  },
  User: {
    __resolveReference: (reference: Reference) => ({ id: reference.id }),
    // The owner's order; nothing for a viewer blocked either way or when the owner is banned.
    photos: async (user: Reference, _: unknown, context: MediaContext) => {
      const { loaders } = context;
      if (!isUuid(user.id)) return [];
      const ownerId = user.id.toLowerCase();
      if (await loaders.ownerHiddenFromViewer.load(ownerId)) return [];
      ownerShown(ownerId, context);
      return loaders.profilePhotosByOwner.load(ownerId);
    },
  },
  Query: {
    myMedia: async (_: unknown, args: { id: string }, context: MediaContext) => {
      const viewer = requireViewer(context);
      if (!isUuid(args.id)) return null;
      const media = await context.loaders.mediaById.load(args.id.toLowerCase());
      return media?.ownerId === viewer.userId ? media : null;
    },
  },
  Subscription: {
    myMediaUpdates: {
      subscribe: (_: unknown, __: unknown, context: MediaContext) => {
        const viewer = requireViewer(context);
        const stop = new AbortController();
        const updates = context.services.updates.updatesOf(viewer.userId, stop.signal);
        const stream: AsyncIterableIterator<{ mediaId: string }> = {
          next: () => updates.next(),
          return: async () => {
            stop.abort();
            return { done: true, value: undefined };
          },
          [Symbol.asyncIterator]: () => stream,
        };
        return stream;
      },
      // Fresh from the database: the update only says which media changed.
      resolve: async (update: { mediaId: string }, _: unknown, context: MediaContext) => {
        const media = await context.services.db.media.findUnique({ where: { id: update.mediaId } });
        if (!media) throw appError(ErrorCode.NOT_FOUND, "This media no longer exists");
        return media;
      },
    },
  },
  Mutation: {
    createUpload: (_: unknown, args: { input: CreateUploadInput }, context: MediaContext) =>
      createUpload(args.input, context),
    completeUpload: (_: unknown, args: { id: string }, context: MediaContext) =>
      completeUpload(args.id, context),
    deleteMedia: (_: unknown, args: { id: string }, context: MediaContext) => deleteMedia(args.id, context),
    addProfilePhoto: (_: unknown, args: { mediaId: string }, context: MediaContext) =>
      addProfilePhoto(args.mediaId, context),
    reorderProfilePhotos: (_: unknown, args: { mediaIds: string[] }, context: MediaContext) =>
      reorderProfilePhotos(args.mediaIds, context),
    removeProfilePhoto: (_: unknown, args: { mediaId: string }, context: MediaContext) =>
      removeProfilePhoto(args.mediaId, context),
    reportMedia: (
      _: unknown,
      args: { mediaId: string; reason: string; note?: string | null; readGrant?: string | null },
      context: MediaContext,
    ) => reportMedia(args, context),
  },
};
