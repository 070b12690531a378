import type { ChatDb } from "../db";

/** A message as resolvers see it (also the snapshot published with its events). */
export interface MessageRow {
  id: string;
  conversationId: string;
  seq: number;
  senderId: string;
  clientMessageId: string;
  text: string | null;
  replyToId: string | null;
  createdAt: Date;
  editedAt: Date | null;
  deletedAt: Date | null;
  /** The conversation's version at this message's latest change (messageChanges). */
  version: number;
  attachmentIds: string[];
  reactions: Array<{ emoji: string; userIds: string[] }>;
}

export const MESSAGE_INCLUDE = {
  attachments: { select: { mediaId: true, position: true }, orderBy: { position: "asc" } },
  reactions: { select: { emoji: true, userId: true }, orderBy: { createdAt: "asc" } },
} as const;

type MessageWithRelations = NonNullable<Awaited<ReturnType<ChatDb["message"]["findFirst"]>>> & {
  attachments: Array<{ mediaId: string; position: number }>;
  reactions: Array<{ emoji: string; userId: string }>;
};

export function toMessageRow(message: MessageWithRelations): MessageRow {
  const reactions = new Map<string, string[]>();
  for (const reaction of message.reactions) {
    const list = reactions.get(reaction.emoji) ?? [];
    list.push(reaction.userId);
    reactions.set(reaction.emoji, list);
  }
  return {
    id: message.id,
    conversationId: message.conversationId,
    seq: message.seq,
    senderId: message.senderId,
    clientMessageId: message.clientMessageId,
    text: message.deletedAt ? null : message.text,
    replyToId: message.replyToId,
    createdAt: message.createdAt,
    editedAt: message.editedAt,
    deletedAt: message.deletedAt,
    version: message.version,
    attachmentIds: message.deletedAt ? [] : message.attachments.map((attachment) => attachment.mediaId),
    reactions: [...reactions].map(([emoji, userIds]) => ({ emoji, userIds })),
  };
}

/** `toMessageRow`'s input as PostgreSQL's `to_json` writes it: dates as ISO strings. */
export type MessageJson = Omit<MessageWithRelations, "createdAt" | "editedAt" | "deletedAt"> & {
  createdAt: string;
  editedAt: string | null;
  deletedAt: string | null;
};

export function messageFromJson(json: MessageJson): MessageRow {
  return toMessageRow({
    ...json,
    createdAt: new Date(json.createdAt),
    editedAt: dateOrNull(json.editedAt),
    deletedAt: dateOrNull(json.deletedAt),
  });
}

function dateOrNull(input: Date | string | null): Date | null {
  return input === null ? null : new Date(input);
}

/** Dates survive JSON (Redis) as ISO strings: turn them back. */
export function reviveMessageRow(value: MessageRow): MessageRow {
  return {
    ...value,
    createdAt: new Date(value.createdAt),
    editedAt: dateOrNull(value.editedAt),
    deletedAt: dateOrNull(value.deletedAt),
  };
}

export interface ConversationRow {
  id: string;
  kind: "DIRECT" | "GROUP";
  title: string | null;
  createdAt: Date;
  closedAt: Date | null;
  closedReason: "UNMATCHED" | "ACCOUNT_DELETED" | null;
  /** DIRECT opened by a match: the match's id (Discovery's Match entity). */
  matchId: string | null;
  lastSeq: number;
  lastActivityAt: Date;
  /** The viewer's membership. */
  me: { role: "OWNER" | "ADMIN" | "MEMBER"; lastReadSeq: number; deliveredSeq: number; muted: boolean };
  /**
   * Present when read together with the row (the matches page): the last message as this viewer
   * may see it, null for none or a sender blocked either way. Absent: `lastMessage` looks it up.
   */
  lastMessage?: MessageRow | null;
}
