import type { JobsOptions, Queue } from "bullmq";
import type { EventHandlers, EventPayload, Logger } from "@hv/kit";

/** The push worker's own queue: one job per (subject, recipient), fanned out from the events. */
export const PUSH_QUEUE = "push.deliveries";

interface PushJobBase {
  /** What the notification is about; with the device, the key of `push_deliveries`. */
  subjectKey: string;
  recipientId: string;
  /** Who caused it (the sender, the other member of the match): blocks are checked against them. */
  actorId: string;
  /** When the event happened (ISO). */
  occurredAt: string;
}

export type PushJob =
  | (PushJobBase & {
      kind: "message";
      message: {
        messageId: string;
        conversationId: string;
        conversationKind: "DIRECT" | "GROUP";
        seq: number;
        preview: string | null;
        /** The recipient's unread count in this conversation after this message. */
        unreadCount: number;
        /** Unread in all their unmuted conversations (events since it was added): the badge. */
        totalUnreadCount?: number;
      };
    })
  | (PushJobBase & { kind: "match"; match: { matchId: string } });

/**
 * BullMQ drops a job whose id is taken (while the first is kept: `removeOnComplete`), so the same
 * message or match delivered twice, or by two triggers, makes one job per recipient while the first
 * is kept; after that, the delivery rows (and the max age) keep a new job from notifying again.
 * (BullMQ ids must not contain `:`.)
 */
export function pushJobId(subjectKey: string, recipientId: string): string {
  return `${subjectKey.replace(":", ".")}.${recipientId}`;
}

export interface PushJobPolicy {
  maxAttempts: number;
  /** Oldest event still worth a notification, per kind (minutes). */
  maxAgeMinutes: Record<PushJob["kind"], number>;
}

/** Failed jobs are kept this long for inspection (their data holds the message preview). */
export const FAILED_JOB_RETENTION_SECONDS = 24 * 3600;

/**
 * Options of a push job; the delay between tries is the worker's backoff strategy. A job's data
 * holds the message preview whatever the recipient's settings (they are read at send time), so
 * finished jobs are not kept longer than they are useful: a completed job as long as its event
 * could still be notified (the kind's max age: a repeated event is dropped by its id meanwhile, by
 * its age after), a failed one a day.
 */
export function pushJobOptions(policy: PushJobPolicy, kind: PushJob["kind"]): JobsOptions {
  return {
    attempts: policy.maxAttempts,
    backoff: { type: "provider" },
    removeOnComplete: { age: policy.maxAgeMinutes[kind] * 60 },
    removeOnFail: { age: FAILED_JOB_RETENTION_SECONDS },
  };
}

/** The push consumer's event handlers: each turns an event into one job per recipient. */
export function fanOutHandlers(queue: Queue, policy: PushJobPolicy, logger: Logger): EventHandlers<"push"> {
  const add = async (jobs: PushJob[]) => {
    if (jobs.length === 0) return;
    await queue.addBulk(
      jobs.map((data) => ({
        name: data.kind,
        data,
        opts: { ...pushJobOptions(policy, data.kind), jobId: pushJobId(data.subjectKey, data.recipientId) },
      })),
    );
    logger.debug({ subjectKey: jobs[0]?.subjectKey, jobs: jobs.length }, "push: jobs queued");
  };
  return {
    async "message.created"(payload: EventPayload<"message.created">) {
      const subjectKey = `message:${payload.messageId}`;
      const seen = new Set<string>();
      const jobs: PushJob[] = [];
      for (const recipient of payload.recipients) {
        // Chat already leaves out the sender; never notify someone of their own message all the same.
        if (recipient.userId === payload.senderId || seen.has(recipient.userId)) continue;
        seen.add(recipient.userId);
        jobs.push({
          kind: "message",
          subjectKey,
          recipientId: recipient.userId,
          actorId: payload.senderId,
          occurredAt: payload.sentAt,
          message: {
            messageId: payload.messageId,
            conversationId: payload.conversationId,
            conversationKind: payload.conversationKind,
            seq: payload.seq,
            preview: payload.preview,
            unreadCount: recipient.unreadCount,
            ...(recipient.totalUnreadCount !== undefined
              ? { totalUnreadCount: recipient.totalUnreadCount }
              : {}),
          },
        });
      }
      await add(jobs);
    },
    async "match.created"(payload: EventPayload<"match.created">, meta) {
      const [a, b] = payload.userIds;
      const subjectKey = `match:${payload.matchId}`;
      const base = {
        kind: "match" as const,
        subjectKey,
        occurredAt: meta.occurredAt.toISOString(),
        match: { matchId: payload.matchId },
      };
      await add([
        { ...base, recipientId: a, actorId: b },
        { ...base, recipientId: b, actorId: a },
      ]);
    },
  };
}
