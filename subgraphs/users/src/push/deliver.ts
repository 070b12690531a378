import { UnrecoverableError, type Job } from "bullmq";
import type { Logger } from "@hv/kit";
import type { UsersDb } from "../db";
import { DEFAULT_NOTIFICATION_SETTINGS, inQuietHours, type NotificationPreferences } from "../modules/notification-settings";
import type { PushJob } from "./jobs";
import type { PushMetrics } from "./metrics";
import type { PushProvider, SendResult } from "./providers/types";
import { renderNotification } from "./render";

export type Platform = "IOS" | "ANDROID";

/** Thrown when some devices should be tried again; carries the longest Retry-After asked for. */
export class RetryLaterError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
    this.name = "RetryLaterError";
  }
}

/** Why a notification was not sent on purpose (the `reason` label of the skipped counter). */
export type SkipReason = "recipient_gone" | "actor_gone" | "blocked" | "preference_off" | "quiet_hours" | "no_devices" | "already_sent";

export interface DeliveryOutcome {
  skipped?: SkipReason;
  sent: number;
  pruned: number;
  rejected: number;
  retrying: number;
}

export interface DeliveryDeps {
  db: UsersDb;
  providers: Record<Platform, PushProvider>;
  metrics: PushMetrics;
  logger: Logger;
  maxAttempts: number;
  now?: () => Date;
}

const KIND_PREFERENCE = { message: "messages", match: "matches" } as const satisfies Record<PushJob["kind"], keyof NotificationPreferences>;

/**
 * Sends one job's notification to each of the recipient's devices, at most once per device:
 * devices with a `push_deliveries` row for this subject are skipped, and a row is written as soon
 * as a provider accepts (or refuses for good). Everything that decides whether to notify is read
 * now, at send time, from the users database: the person and the actor still exist and are not
 * banned, neither blocks the other, the kind is wanted, and it is not the recipient's quiet hours.
 *
 * Quiet hours drop the notification (no later delivery): a burst of stale alerts at 7 am helps
 * nobody, and the app shows unread counts when opened.
 *
 * The window that remains: a provider accepts and then the worker dies (or the database refuses
 * the row) before the row is written. The job is tried again and that device is notified twice.
 */
export async function deliver(job: PushJob, attempt: number, deps: DeliveryDeps): Promise<DeliveryOutcome> {
  const { db, metrics, logger } = deps;
  const outcome: DeliveryOutcome = { sent: 0, pruned: 0, rejected: 0, retrying: 0 };
  const skip = (reason: SkipReason): DeliveryOutcome => {
    metrics.skipped.inc({ reason });
    logger.debug({ subjectKey: job.subjectKey, recipientId: job.recipientId, reason }, "push: not sent");
    return { ...outcome, skipped: reason };
  };

  const [recipient, actor, blocks] = await Promise.all([
    db.user.findUnique({ where: { id: job.recipientId }, select: { bannedAt: true, notificationSettings: true } }),
    db.user.findUnique({ where: { id: job.actorId }, select: { displayName: true, bannedAt: true } }),
    db.block.count({
      where: {
        OR: [
          { blockerId: job.recipientId, blockedId: job.actorId },
          { blockerId: job.actorId, blockedId: job.recipientId },
        ],
      },
    }),
  ]);
  if (!recipient || recipient.bannedAt) return skip("recipient_gone");
  if (!actor || actor.bannedAt) return skip("actor_gone");
  if (blocks > 0) return skip("blocked");
  const settings: NotificationPreferences = recipient.notificationSettings ?? DEFAULT_NOTIFICATION_SETTINGS;
  if (!settings[KIND_PREFERENCE[job.kind]]) return skip("preference_off");
  if (inQuietHours(settings, deps.now?.() ?? new Date())) return skip("quiet_hours");

  const devices = await db.device.findMany({ where: { userId: job.recipientId }, select: { id: true, platform: true, pushToken: true } });
  if (devices.length === 0) return skip("no_devices");
  const done = await db.pushDelivery.findMany({
    where: { subjectKey: job.subjectKey, deviceId: { in: devices.map((device) => device.id) } },
    select: { deviceId: true },
  });
  const doneIds = new Set(done.map((row) => row.deviceId));
  const pending = devices.filter((device) => !doneIds.has(device.id));
  if (pending.length === 0) return skip("already_sent");

  const notification = renderNotification(job, actor.displayName, settings.messagePreviews);
  const lastAttempt = attempt >= deps.maxAttempts;
  const retries: Array<Extract<SendResult, { outcome: "retry" }>> = [];
  const rejections: string[] = [];

  await Promise.all(
    pending.map(async (device) => {
      const provider = deps.providers[device.platform];
      const result = await provider.send(device.pushToken, notification);
      const labels = { provider: provider.name };
      const context = { subjectKey: job.subjectKey, deviceId: device.id, provider: provider.name };
      switch (result.outcome) {
        case "sent":
          metrics.sent.inc(labels);
          outcome.sent += 1;
          await db.pushDelivery.createMany({
            data: [{ subjectKey: job.subjectKey, deviceId: device.id, outcome: "SENT", providerId: result.providerId ?? null }],
            skipDuplicates: true,
          });
          return;
        case "unregistered":
          // Only if the token is still this device's: it may have been registered again meanwhile.
          await db.device.deleteMany({ where: { id: device.id, pushToken: device.pushToken } });
          metrics.pruned.inc(labels);
          outcome.pruned += 1;
          logger.info({ ...context, reason: result.reason }, "push: token unregistered; device removed");
          return;
        case "rejected":
          metrics.failed.inc({ ...labels, reason: "rejected" });
          outcome.rejected += 1;
          rejections.push(result.reason);
          await db.pushDelivery.createMany({
            data: [{ subjectKey: job.subjectKey, deviceId: device.id, outcome: "REJECTED", providerId: null }],
            skipDuplicates: true,
          });
          logger.error({ ...context, reason: result.reason }, "push: provider refused the notification; not retried");
          return;
        case "retry":
          if (lastAttempt) {
            metrics.failed.inc({ ...labels, reason: "exhausted" });
            logger.error({ ...context, reason: result.reason, attempt }, "push: giving up on this device");
          } else {
            metrics.retried.inc(labels);
            logger.warn({ ...context, reason: result.reason, attempt }, "push: will try this device again");
          }
          outcome.retrying += 1;
          retries.push(result);
          return;
      }
    }),
  );

  if (retries.length > 0) {
    const message = `push: ${retries.length} device(s) to try again: ${retries.map((retry) => retry.reason).join("; ")}`;
    if (lastAttempt) throw new UnrecoverableError(message);
    const waits = retries.map((retry) => retry.retryAfterMs ?? 0);
    throw new RetryLaterError(message, Math.max(...waits) || undefined);
  }
  if (rejections.length > 0) throw new UnrecoverableError(`push: refused for good: ${rejections.join("; ")}`);
  return outcome;
}

/**
 * The delay before try `attemptsMade + 1`: `baseMs`, doubling each time (±20 %), or the provider's
 * Retry-After when that is longer.
 */
export function pushBackoff(baseMs: number, onDelay?: (jobId: string | undefined, attemptsMade: number, delayMs: number) => void) {
  return (attemptsMade: number, _type?: string, error?: Error, job?: { id?: string | undefined }): number => {
    const exponential = baseMs * 2 ** Math.max(0, attemptsMade - 1) * (0.8 + Math.random() * 0.4);
    const asked = error instanceof RetryLaterError ? (error.retryAfterMs ?? 0) : 0;
    const delay = Math.round(Math.min(Math.max(exponential, asked), 6 * 3600 * 1000));
    onDelay?.(job?.id, attemptsMade, delay);
    return delay;
  };
}

export type PushJobHandler = (job: Job<PushJob>) => Promise<DeliveryOutcome>;
