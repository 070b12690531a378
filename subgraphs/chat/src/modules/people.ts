import type { EventPayload } from "@hv/kit";
import type { ChatDb } from "../db";
import { directKey } from "./access";

type Db = Pick<ChatDb, "$executeRaw" | "$queryRaw">;

/**
 * Keeps Chat's copy of an account (table `people`) from `user.profile_changed`: the whole state,
 * applied only if not older than the stored one, and never over a deletion's tombstone.
 */
export async function applyProfileChanged(
  db: Db,
  profile: EventPayload<"user.profile_changed">,
  occurredAt: Date,
): Promise<void> {
  await db.$executeRaw`
    INSERT INTO people (user_id, visible, banned, event_at)
    VALUES (${profile.userId}::uuid, ${profile.visibility === "VISIBLE"}, ${profile.banned}, ${occurredAt})
    ON CONFLICT (user_id) DO UPDATE SET visible = EXCLUDED.visible, banned = EXCLUDED.banned, event_at = EXCLUDED.event_at
    WHERE people.deleted_at IS NULL AND people.event_at <= EXCLUDED.event_at`;
}

/** The tombstone of a deleted account: only its id stays, so nothing can add it again. */
export async function markDeleted(db: Db, userId: string, at: Date): Promise<void> {
  await db.$executeRaw`
    INSERT INTO people (user_id, visible, banned, deleted_at, event_at)
    VALUES (${userId}::uuid, false, false, ${at}, ${at})
    ON CONFLICT (user_id) DO UPDATE SET visible = false, banned = false, deleted_at = COALESCE(people.deleted_at, EXCLUDED.deleted_at)`;
}

/** What `adderId` may do with each candidate id. */
export interface Candidates {
  /** An open match with the adder: added as members at once. */
  matched: string[];
  /** Known, visible, not banned, no block either way: invited. */
  invitable: string[];
  /** Everyone else (unknown, hidden, banned, deleted, blocked either way): refused, all alike. */
  unavailable: string[];
}

interface CandidateRow {
  id: string;
  matched: boolean;
  blocked: boolean;
  banned: boolean;
  visible: boolean | null;
  deleted: boolean;
}

/**
 * Sorts `ids` for `adderId` in one statement. "Matched" is Chat's own record of a match: the pair's
 * DIRECT conversation that `match.created` opened and no `match.ended` closed.
 */
export async function sortCandidates(db: Db, adderId: string, ids: string[]): Promise<Candidates> {
  if (ids.length === 0) return { matched: [], invitable: [], unavailable: [] };
  const keys = ids.map((id) => directKey(adderId, id));
  const rows = await db.$queryRaw<CandidateRow[]>`
    SELECT t.id::text AS id,
           EXISTS (SELECT 1 FROM conversations c
                    WHERE c.direct_key = t.key AND c.kind = 'DIRECT' AND c.match_id IS NOT NULL AND c.closed_at IS NULL) AS matched,
           EXISTS (SELECT 1 FROM blocks b
                    WHERE (b.blocker_id = ${adderId}::uuid AND b.blocked_id = t.id)
                       OR (b.blocker_id = t.id AND b.blocked_id = ${adderId}::uuid)) AS blocked,
           (EXISTS (SELECT 1 FROM banned_users u WHERE u.user_id = t.id) OR COALESCE(p.banned, false)) AS banned,
           p.visible AS visible,
           (p.deleted_at IS NOT NULL) AS deleted
      FROM unnest(${ids}::uuid[], ${keys}::text[]) AS t(id, key)
      LEFT JOIN people p ON p.user_id = t.id`;
  const byId = new Map(rows.map((row) => [row.id, row]));
  const sorted: Candidates = { matched: [], invitable: [], unavailable: [] };
  for (const id of ids) {
    const row = byId.get(id);
    if (!row || row.blocked || row.banned || row.deleted) sorted.unavailable.push(id);
    else if (row.matched) sorted.matched.push(id);
    else if (row.visible === true) sorted.invitable.push(id);
    else sorted.unavailable.push(id);
  }
  return sorted;
}
