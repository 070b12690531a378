import { appError, ErrorCode, isUuid, outboxEventData, requireUuid, requireViewer } from "@hv/kit";
import type { DiscoveryContext } from "../context";

/** A `matches` row as the Match resolvers receive it. */
export interface MatchRow {
  id: string;
  userAId: string;
  userBId: string;
  createdAt: Date;
}

export const MATCH_SELECT = { id: true, userAId: true, userBId: true, createdAt: true } as const;
export const MATCHES_PAGE_MAX = 50;

/** A pair is stored ordered (CHECK user_a_id < user_b_id), whichever like came second. */
export function orderedPair(one: string, other: string): { userAId: string; userBId: string } {
  return one < other ? { userAId: one, userBId: other } : { userAId: other, userBId: one };
}

/**
 * Serialises everything done to one pair: without it two simultaneous mutual likes would each miss
 * the other's uncommitted like (write skew) and neither would create the match.
 */
export async function lockPair(
  tx: { $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number> },
  a: string,
  b: string,
) {
  await tx.$executeRawUnsafe("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", `swipe-pair:${a}:${b}`);
}

function otherMember(match: MatchRow, viewerId: string): string {
  return match.userAId === viewerId ? match.userBId : match.userAId;
}

function isMember(match: MatchRow, viewerId: string): boolean {
  return match.userAId === viewerId || match.userBId === viewerId;
}

interface Cursor {
  createdAt: Date;
  id: string;
}

/**
 * Opaque to clients: base64url of `{"c":"<ISO time>","i":"<match id>"}`, the bytes JSON.stringify
 * writes for them (neither an ISO time nor a uuid has a character JSON escapes).
 */
export function encodeMatchCursor(match: MatchRow): string {
  return Buffer.from(`{"c":"${match.createdAt.toISOString()}","i":"${match.id}"}`, "latin1").toString(
    "base64url",
  );
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Strict: anything that is not exactly a cursor this server made is BAD_USER_INPUT on `after`. */
export function decodeMatchCursor(value: string): Cursor {
  const bad = () =>
    appError(ErrorCode.BAD_USER_INPUT, "after is not a cursor from this list", { field: "after" });
  if (value.length > 200 || !BASE64URL.test(value)) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw bad();
  const record = parsed as Record<string, unknown>;
  if (Object.keys(record).sort().join(",") !== "c,i") throw bad();
  const { c, i } = record;
  if (typeof c !== "string" || !ISO_MS.test(c) || !isUuid(i)) throw bad();
  const createdAt = new Date(c);
  if (Number.isNaN(createdAt.getTime()) || createdAt.toISOString() !== c) throw bad();
  const cursor = { createdAt, id: i.toLowerCase() };
  // Only the canonical encoding is accepted: no padding, no re-ordered or re-spaced JSON.
  if (encodeMatchCursor({ ...cursor, userAId: "", userBId: "" }) !== value) throw bad();
  return cursor;
}

function pageSize(first: number | null | undefined): number {
  const size = first ?? 20;
  if (!Number.isInteger(size) || size < 1 || size > MATCHES_PAGE_MAX) {
    throw appError(ErrorCode.BAD_USER_INPUT, `first must be between 1 and ${MATCHES_PAGE_MAX}`, {
      field: "first",
    });
  }
  return size;
}

interface MatchSqlRow {
  id: string;
  user_a_id: string;
  user_b_id: string;
  created_at: Date;
}

/**
 * The viewer's active matches, newest first, keyset-paged on (created_at, id). A match whose other
 * person is blocked (either way), banned or hidden is left out: Users would resolve that person to
 * null, and `Match.user` is non-null.
 */
const PAGE_SQL = `
  SELECT m.id::text AS id, m.user_a_id::text AS user_a_id, m.user_b_id::text AS user_b_id, m.created_at
  FROM matches m
  WHERE (m.user_a_id = $1::uuid OR m.user_b_id = $1::uuid)
    AND m.ended_at IS NULL
    AND NOT EXISTS (
      SELECT 1 FROM blocks b
      WHERE (b.blocker_id = m.user_a_id AND b.blocked_id = m.user_b_id)
         OR (b.blocker_id = m.user_b_id AND b.blocked_id = m.user_a_id))
    AND NOT EXISTS (
      SELECT 1 FROM discovery_profiles p
      WHERE p.user_id = CASE WHEN m.user_a_id = $1::uuid THEN m.user_b_id ELSE m.user_a_id END
        AND (p.banned OR NOT p.visible))
    AND ($2::timestamptz IS NULL OR (m.created_at, m.id) < ($2::timestamptz, $3::uuid))
  ORDER BY m.created_at DESC, m.id DESC
  LIMIT $4`;

export const matchResolvers = {
  Query: {
    async matches(
      _: unknown,
      args: { first?: number | null; after?: string | null },
      context: DiscoveryContext,
    ) {
      const viewer = requireViewer(context);
      const size = pageSize(args.first);
      const cursor = args.after == null ? null : decodeMatchCursor(args.after);
      const rows = await context.services.sql.query<MatchSqlRow>({
        name: "discovery_matches_page",
        text: PAGE_SQL,
        values: [viewer.userId, cursor?.createdAt ?? null, cursor?.id ?? null, size + 1],
      });
      const edges = rows.slice(0, size).map((row) => {
        const match: MatchRow = {
          id: row.id,
          userAId: row.user_a_id,
          userBId: row.user_b_id,
          createdAt: row.created_at,
        };
        return { cursor: encodeMatchCursor(match), node: match };
      });
      return {
        edges,
        pageInfo: { hasNextPage: rows.length > size, endCursor: edges.at(-1)?.cursor ?? null },
      };
    },
  },
  Mutation: {
    /**
     * Only a member may unmatch (anyone else: NOT_FOUND, as for an unknown id). Idempotent: an
     * ended match returns true again without a second `match.ended`. Both people's swipes become
     * passes, so the pair never re-matches from the old likes (and the stored pair stays unique).
     */
    async unmatch(_: unknown, args: { matchId: string }, context: DiscoveryContext) {
      const viewer = requireViewer(context);
      const matchId = requireUuid(args.matchId, "matchId");
      const { db } = context.services;
      const ended = await db.$transaction(async (tx) => {
        const match = await tx.match.findUnique({
          where: { id: matchId },
          select: { ...MATCH_SELECT, endedAt: true },
        });
        if (!match || !isMember(match, viewer.userId))
          throw appError(ErrorCode.NOT_FOUND, "No such match", { field: "matchId" });
        await lockPair(tx, match.userAId, match.userBId);
        // Only the transaction that ends it writes the event, however many unmatch at once.
        const { count } = await tx.match.updateMany({
          where: { id: matchId, endedAt: null },
          data: { endedAt: new Date() },
        });
        if (count === 0) return false;
        await tx.swipe.updateMany({
          where: {
            OR: [
              { swiperId: match.userAId, targetId: match.userBId },
              { swiperId: match.userBId, targetId: match.userAId },
            ],
          },
          data: { kind: "PASS" },
        });
        await tx.outboxEvent.create({
          data: outboxEventData("match.ended", { matchId, userIds: [match.userAId, match.userBId] }),
        });
        return true;
      });
      if (ended) context.services.flushEvents();
      return true;
    },
  },
  Match: {
    /** Visible only to its two members; null for everyone else (and for anonymous callers). */
    async __resolveReference(reference: { id: string }, context: DiscoveryContext): Promise<MatchRow | null> {
      if (!context.viewer || !isUuid(reference.id)) return null;
      const match = await context.loaders.matchById.load(reference.id.toLowerCase());
      return match && isMember(match, context.viewer.userId) ? match : null;
    },
    /** The other person, resolved by Users through the gateway. */
    user(match: MatchRow, _: unknown, context: DiscoveryContext) {
      const viewerId = context.viewer?.userId ?? "";
      return { __typename: "User", id: otherMember(match, viewerId) };
    },
  },
};
