import { isUuid, requireViewer } from "@hv/kit";
import type { DiscoveryContext } from "../context";
import { roundDistance, snapToGrid, validateCoordinates, type Distance } from "./geo";

interface UserReference {
  id: string;
  /** Set on nearby's nodes: the distance the search ordered by (loaders.distanceMetres's number). */
  metres?: number;
}

export const locationResolvers = {
  User: {
    __resolveReference: (reference: UserReference) => ({ id: reference.id }),
    isDiscoverable: (user: UserReference, _: unknown, { loaders }: DiscoveryContext) =>
      isUuid(user.id) ? loaders.hasFreshLocation.load(user.id.toLowerCase()) : false,
    /**
     * Viewer-relative and rounded, from snapped locations only (see loaders.distanceMetres);
     * synchronous on nearby's nodes, which carry it.
     */
    distance(
      user: UserReference,
      _: unknown,
      { loaders, viewer }: DiscoveryContext,
    ): Distance | null | Promise<Distance | null> {
      if (!viewer || !isUuid(user.id)) return null;
      if (user.metres !== undefined) return roundDistance(user.metres);
      return loaders.distanceMetres
        .load(user.id.toLowerCase())
        .then((metres) => (metres === null ? null : roundDistance(metres)));
    },
  },
  Mutation: {
    /**
     * Validates, counts against the per-user budget, snaps to the ~500 m grid (geo.ts) and only
     * then stores: the exact coordinates are never written or logged.
     */
    async updateLocation(
      _: unknown,
      args: { latitude: number; longitude: number },
      context: DiscoveryContext,
    ) {
      const viewer = requireViewer(context);
      const snapped = snapToGrid(validateCoordinates(args.latitude, args.longitude));
      await context.services.locationUpdates.consume(viewer.userId);
      const [row] = await context.services.db.$queryRaw<Array<{ updatedAt: Date }>>`
        INSERT INTO user_locations (user_id, location, updated_at)
        VALUES (${viewer.userId}::uuid, ST_SetSRID(ST_MakePoint(${snapped.longitude}, ${snapped.latitude}), 4326)::geography, now())
        ON CONFLICT (user_id) DO UPDATE SET location = EXCLUDED.location, updated_at = EXCLUDED.updated_at
        RETURNING updated_at AS "updatedAt"`;
      context.loaders.hasFreshLocation.clear(viewer.userId);
      context.loaders.distanceMetres.clearAll();
      return { updatedAt: row?.updatedAt ?? new Date() };
    },
  },
};
