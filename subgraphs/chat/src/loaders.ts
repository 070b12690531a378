import DataLoader from "dataloader";
import type { ChatDb } from "./db";

export interface ConversationRow {
  id: string;
  kind: "DIRECT" | "GROUP";
  createdAt: Date;
  memberCount: number;
}

/** One set per request: each loader turns N lookups into one query. */
export function createLoaders(db: ChatDb) {
  return {
    conversationById: new DataLoader<string, ConversationRow | null>(async (ids) => {
      const rows = await db.conversation.findMany({
        where: { id: { in: [...ids] } },
        select: { id: true, kind: true, createdAt: true, _count: { select: { members: true } } },
      });
      const byId = new Map(
        rows.map((row) => [row.id, { id: row.id, kind: row.kind, createdAt: row.createdAt, memberCount: row._count.members }]),
      );
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
}
export type ChatLoaders = ReturnType<typeof createLoaders>;
