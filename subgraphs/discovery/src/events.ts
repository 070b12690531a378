import { outboxEventData, type EventHandlers, type Logger } from "@hv/kit";
import type { DiscoveryDb } from "./db";
import { lockPair, orderedPair } from "./modules/matches";

/**
 * What Discovery does with the events it subscribes to (see SUBSCRIPTIONS in @hv/kit). Delivery is
 * at least once and in no guaranteed order, so every handler is an idempotent upsert or delete:
 *
 * - `user.profile_changed` carries the whole state: it is applied only if it is not older than the
 *   stored one (`event_at` = the event's `occurredAt`; `<=` so a redelivery is a no-op).
 * - `user.blocked` inserts the pair (keeping the newest `event_at`), ends the pair's match with a
 *   `match.ended` and forgets the pair's swipes and match rows; `user.unblocked` deletes it
 *   unless the stored block is newer than the unblock. Known limit, kept simple on purpose: an
 *   unblock that is handled BEFORE an older block is not remembered (no tombstone), so that late
 *   block wins; the person can unblock again.
 * - `user.banned` sets `banned` (the ban also sends a `user.profile_changed` with `banned: true`).
 * - `user.deleted` purges everything about the person; each of its active matches gets a
 *   `match.ended` in the outbox (same transaction). A `user.profile_changed` older than the
 *   deletion that arrives after it recreates a profile row without a location: it never appears
 *   in nearby (no location can be set for a deleted account).
 */
export function discoveryEventHandlers(db: DiscoveryDb, logger: Logger): EventHandlers<"discovery"> {
  return {
    async "user.deleted"({ userId }, { eventId }) {
      // Active matches end: each gets a `match.ended` in the outbox, in the same transaction as the
      // purge, so Chat closes those conversations (a redelivery finds no match left: no duplicate).
      const { locations, profiles, blocks, swipes, matches } = await db.$transaction(async (tx) => {
        const active = await tx.match.findMany({
          where: { OR: [{ userAId: userId }, { userBId: userId }], endedAt: null },
          select: { id: true, userAId: true, userBId: true },
        });
        for (const match of active)
          await tx.outboxEvent.create({
            data: outboxEventData("match.ended", {
              matchId: match.id,
              userIds: [match.userAId, match.userBId],
            }),
          });
        return {
          locations: await tx.userLocation.deleteMany({ where: { userId } }),
          profiles: await tx.discoveryProfile.deleteMany({ where: { userId } }),
          blocks: await tx.block.deleteMany({
            where: { OR: [{ blockerId: userId }, { blockedId: userId }] },
          }),
          swipes: await tx.swipe.deleteMany({ where: { OR: [{ swiperId: userId }, { targetId: userId }] } }),
          matches: await tx.match.deleteMany({ where: { OR: [{ userAId: userId }, { userBId: userId }] } }),
        };
      });
      logger.info(
        {
          eventId,
          userId,
          locations: locations.count,
          profiles: profiles.count,
          blocks: blocks.count,
          swipes: swipes.count,
          matches: matches.count,
        },
        "user.deleted: discovery data purged",
      );
    },
    async "user.blocked"({ blockerId, blockedId }, { occurredAt, eventId }) {
      // A block ends the pair's match, if any, with its `match.ended` in the same transaction (Chat
      // closes the conversation), and wipes the slate: the pair's swipes and match rows go, so an
      // unblock lets them find and match each other again, as a new match (never the old one). A
      // redelivery finds nothing left to end: no second event.
      const ended = await db.$transaction(async (tx) => {
        await tx.$executeRaw`
          INSERT INTO blocks (blocker_id, blocked_id, event_at)
          VALUES (${blockerId}::uuid, ${blockedId}::uuid, ${occurredAt})
          ON CONFLICT (blocker_id, blocked_id) DO UPDATE SET event_at = GREATEST(blocks.event_at, EXCLUDED.event_at)`;
        const pair = orderedPair(blockerId, blockedId);
        await lockPair(tx, pair.userAId, pair.userBId);
        const match = await tx.match.findFirst({ where: { ...pair, endedAt: null }, select: { id: true } });
        if (match) {
          await tx.outboxEvent.create({
            data: outboxEventData("match.ended", {
              matchId: match.id,
              userIds: [pair.userAId, pair.userBId],
            }),
          });
        }
        await tx.match.deleteMany({ where: pair });
        await tx.swipe.deleteMany({
          where: {
            OR: [
              { swiperId: blockerId, targetId: blockedId },
              { swiperId: blockedId, targetId: blockerId },
            ],
          },
        });
        return match?.id ?? null;
      });
      if (ended) logger.info({ eventId, matchId: ended }, "user.blocked: the pair's match ended");
    },
    async "user.unblocked"({ blockerId, blockedId }, { occurredAt }) {
      await db.block.deleteMany({ where: { blockerId, blockedId, eventAt: { lte: occurredAt } } });
    },
    async "user.profile_changed"(profile, { occurredAt }) {
      await db.$executeRaw`
        INSERT INTO discovery_profiles
          (user_id, birth_date, gender, genders_of_interest, age_min, age_max, max_distance_km, visible, banned, event_at)
        VALUES (
          ${profile.userId}::uuid, ${profile.birthDate}::date, ${profile.gender}::"Gender",
          ${profile.gendersOfInterest}::"Gender"[], ${profile.ageMin}, ${profile.ageMax}, ${profile.maxDistanceKm},
          ${profile.visibility === "VISIBLE"}, ${profile.banned}, ${occurredAt})
        ON CONFLICT (user_id) DO UPDATE SET
          birth_date = EXCLUDED.birth_date, gender = EXCLUDED.gender, genders_of_interest = EXCLUDED.genders_of_interest,
          age_min = EXCLUDED.age_min, age_max = EXCLUDED.age_max, max_distance_km = EXCLUDED.max_distance_km,
          visible = EXCLUDED.visible, banned = EXCLUDED.banned, event_at = EXCLUDED.event_at
        WHERE discovery_profiles.event_at <= EXCLUDED.event_at`;
    },
    async "user.banned"({ userId }) {
      await db.discoveryProfile.updateMany({ where: { userId }, data: { banned: true } });
    },
    /**
     * SUSPEND and BAN hide the account from nearby and matches at once (as `banned`); the
     * `user.profile_changed` Users sends with it, and the one at the first login after a
     * suspension, carry the state from then on. A late SUSPEND whose `until` has passed is ignored.
     */
    async "moderation.action_taken"({ action, targetUserId, until }) {
      if (action !== "SUSPEND" && action !== "BAN") return;
      if (action === "SUSPEND" && until !== undefined && Date.parse(until) <= Date.now()) return;
      await db.discoveryProfile.updateMany({ where: { userId: targetUserId }, data: { banned: true } });
    },
  };
}
