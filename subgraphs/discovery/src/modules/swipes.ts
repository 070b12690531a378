import { appError, ErrorCode, outboxEventData, requireUuid, requireViewer } from "@hv/kit";
import type { DiscoveryContext } from "../context";
import type { SwipeKind } from "../generated/prisma/client";
import { lockPair, MATCH_SELECT, orderedPair, type MatchRow } from "./matches";

interface LikeResult {
  matched: boolean;
  match: MatchRow | null;
}

/**
 * The person swiped on: not the viewer (BAD_USER_INPUT), known to Discovery, neither banned nor
 * hidden, and with no block between the two either way (NOT_FOUND). A block answers NOT_FOUND like an unknown
 * person, so the blocked person cannot learn that they were blocked; the blocker sees the same.
 * The rate limit counts before any lookup, so the answers cannot be used to probe for users.
 */
async function swipeTarget(
  context: DiscoveryContext,
  rawUserId: string,
): Promise<{ viewerId: string; targetId: string }> {
  const viewer = requireViewer(context);
  const targetId = requireUuid(rawUserId, "userId");
  if (targetId === viewer.userId)
    throw appError(ErrorCode.BAD_USER_INPUT, "You cannot swipe on yourself", { field: "userId" });
  await context.services.swipes.consume(viewer.userId);
  const { db } = context.services;
  const [profile, blocks] = await Promise.all([
    db.discoveryProfile.findUnique({ where: { userId: targetId }, select: { banned: true, visible: true } }),
    db.block.count({
      where: {
        OR: [
          { blockerId: viewer.userId, blockedId: targetId },
          { blockerId: targetId, blockedId: viewer.userId },
        ],
      },
    }),
  ]);
  if (!profile || profile.banned || !profile.visible || blocks > 0)
    throw appError(ErrorCode.NOT_FOUND, "No such user", { field: "userId" });
  return { viewerId: viewer.userId, targetId };
}

/**
 * Records a like or super like. When the other person already liked the viewer, the match for the
 * ordered pair is inserted (ON CONFLICT DO NOTHING) in the same transaction, and `match.created`
 * is written only when that insert made the row. Liking again is idempotent: an active match is
 * returned again with `matched: true`, and no second event. A pair whose match was ended stays
 * unmatched (the unique pair includes ended matches): the like is recorded, `matched` is false.
 * Only a block forgets the pair's match (events.ts): after an unblock, two new likes match again.
 */
async function like(
  context: DiscoveryContext,
  rawUserId: string,
  kind: Exclude<SwipeKind, "PASS">,
): Promise<LikeResult> {
  const { viewerId, targetId } = await swipeTarget(context, rawUserId);
  const pair = orderedPair(viewerId, targetId);
  const { result, created } = await context.services.db.$transaction(async (tx) => {
    await lockPair(tx, pair.userAId, pair.userBId);
    await tx.swipe.upsert({
      where: { swiperId_targetId: { swiperId: viewerId, targetId } },
      create: { swiperId: viewerId, targetId, kind },
      update: { kind },
    });
    const existing = await tx.match.findUnique({
      where: { userAId_userBId: pair },
      select: { ...MATCH_SELECT, endedAt: true },
    });
    if (existing) {
      const { endedAt, ...match } = existing;
      return { result: endedAt ? { matched: false, match: null } : { matched: true, match }, created: false };
    }
    const theirs = await tx.swipe.findUnique({
      where: { swiperId_targetId: { swiperId: targetId, targetId: viewerId } },
      select: { kind: true },
    });
    if (!theirs || theirs.kind === "PASS") return { result: { matched: false, match: null }, created: false };
    const [inserted] = await tx.match.createManyAndReturn({
      data: [pair],
      skipDuplicates: true,
      select: MATCH_SELECT,
    });
    if (!inserted) {
      // Unreachable while the pair lock is held; kept so a race can never emit a second event.
      const match = await tx.match.findUniqueOrThrow({
        where: { userAId_userBId: pair },
        select: MATCH_SELECT,
      });
      return { result: { matched: true, match }, created: false };
    }
    await tx.outboxEvent.create({
      data: outboxEventData("match.created", {
        matchId: inserted.id,
        userIds: [inserted.userAId, inserted.userBId],
      }),
    });
    return { result: { matched: true, match: inserted }, created: true };
  });
  if (created) context.services.flushEvents();
  return result;
}

export const swipeResolvers = {
  Mutation: {
    like: (_: unknown, args: { userId: string }, context: DiscoveryContext) =>
      like(context, args.userId, "LIKE"),
    superLike: (_: unknown, args: { userId: string }, context: DiscoveryContext) =>
      like(context, args.userId, "SUPER_LIKE"),
    /**
     * A pass may replace an earlier like (until there is a match) and a like may replace a pass.
     * A pass on an active match is CONFLICT and changes nothing: unmatch instead.
     */
    async pass(_: unknown, args: { userId: string }, context: DiscoveryContext) {
      const { viewerId, targetId } = await swipeTarget(context, args.userId);
      const pair = orderedPair(viewerId, targetId);
      await context.services.db.$transaction(async (tx) => {
        await lockPair(tx, pair.userAId, pair.userBId);
        const active = await tx.match.count({ where: { ...pair, endedAt: null } });
        if (active > 0) {
          throw appError(ErrorCode.CONFLICT, "You have matched with this person: unmatch instead", {
            field: "userId",
          });
        }
        await tx.swipe.upsert({
          where: { swiperId_targetId: { swiperId: viewerId, targetId } },
          create: { swiperId: viewerId, targetId, kind: "PASS" },
          update: { kind: "PASS" },
        });
      });
      return true;
    },
  },
};
