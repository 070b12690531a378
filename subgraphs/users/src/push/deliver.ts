import { randomUUID } from "node:crypto";
import { UnrecoverableError } from "bullmq";
import type { Logger } from "@hv/kit";
import type { UsersDb } from "../db";
import {
  DEFAULT_NOTIFICATION_SETTINGS,
  inQuietHours,
  type NotificationPreferences,
} from "../modules/notification-settings";
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
export type SkipReason =
  | "expired"
  | "recipient_gone"
  | "actor_gone"
  | "blocked"
  | "preference_off"
  | "quiet_hours"
  | "no_devices"
  | "already_sent";

export interface DeliveryOutcome {
  skipped?: SkipReason;
  sent: number;
  pruned: number;
  rejected: number;
  retrying: number;
  /** Devices another run of the same job has claimed and is sending to right now. */
  busy: number;
}

/** How long a PENDING claim holds before another run may take it over (far longer than one send). */
export const CLAIM_LEASE_MS = 120_000;

export interface DeliveryDeps {
  db: UsersDb;
  providers: Record<Platform, PushProvider>;
  metrics: PushMetrics;
  logger: Logger;
  /** The job's own `attempts` (BullMQ `job.opts.attempts`): the try that is the last. */
  maxAttempts: number;
  /** Oldest event still worth a notification, per kind (ms). */
  maxAgeMs: Record<PushJob["kind"], number>;
  claimLeaseMs?: number;
  now?: () => Date;
}

const KIND_PREFERENCE = { message: "messages", match: "matches" } as const satisfies Record<
  PushJob["kind"],
  keyof NotificationPreferences
>;

type DeviceResult =
  | { kind: "sent" | "pruned" | "rejected" }
  | { kind: "retry"; result: Extract<SendResult, { outcome: "retry" }> };

/**
 * Sends one job's notification to each of the recipient's devices, at most once per device.
 *
 * Everything that decides whether to notify is read now, at send time: the event is not older
 * than its kind's max age, the person and the actor still exist and are not banned, neither blocks
 * the other, the kind is wanted, it is not the recipient's quiet hours (quiet hours drop the
 * notification: a burst of stale alerts at 7 am helps nobody), and only devices of sessions that
 * are neither revoked nor expired are notified.
 *
 * Once per device: each device is claimed first, a `push_deliveries` row (subject, device) written
 * as PENDING with this run's claim id by an `INSERT … ON CONFLICT` that succeeds only if no row
 * exists or the row is a PENDING claim older than the lease (its run died). Only claimed devices
 * are sent to; the claim then becomes SENT or REJECTED, or is deleted when the device is to be
 * tried again. Two runs of the same job at once (a stalled job taken over while its first run
 * still sends) therefore never both send; a device another run holds is tried again later.
 *
 * The window that remains: a provider accepts and then the worker dies (or the database refuses
 * the update) before the claim is marked SENT. After the lease another run takes the claim over
 * and the device is notified twice. FCM and APNs have no idempotency key that would close this.
 */
export async function deliver(job: PushJob, attempt: number, deps: DeliveryDeps): Promise<DeliveryOutcome> {
  const { db, metrics, logger } = deps;
  const now = deps.now?.() ?? new Date();
  const outcome: DeliveryOutcome = { sent: 0, pruned: 0, rejected: 0, retrying: 0, busy: 0 };
  const skip = (reason: SkipReason): DeliveryOutcome => {
    metrics.skipped.inc({ reason });
    logger.debug({ subjectKey: job.subjectKey, recipientId: job.recipientId, reason }, "push: not sent");
    return { ...outcome, skipped: reason };
  };

  const occurredAt = Date.parse(job.occurredAt);
  const expiresAt = new Date((Number.isNaN(occurredAt) ? 0 : occurredAt) + deps.maxAgeMs[job.kind]);
  if (now.getTime() >= expiresAt.getTime()) return skip("expired");

  const [recipient, actor, blocks] = await Promise.all([
    db.user.findUnique({
      where: { id: job.recipientId },
      select: { bannedAt: true, notificationSettings: true },
    }),
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
  if (inQuietHours(settings, now)) return skip("quiet_hours");

  // A device belongs to the session that registered it: signed out or expired, it gets nothing.
  const devices = await db.device.findMany({
    where: { userId: job.recipientId, session: { revokedAt: null, expiresAt: { gt: now } } },
    select: { id: true, platform: true, pushToken: true },
    // One order for every run: concurrent claims of the same rows then queue up instead of deadlocking.
    orderBy: { id: "asc" },
  });
  if (devices.length === 0) return skip("no_devices");

  const claimId = randomUUID();
  const leaseSeconds = (deps.claimLeaseMs ?? CLAIM_LEASE_MS) / 1000;
  const claimedRows = await db.$queryRaw<Array<{ device_id: string }>>`
    INSERT INTO push_deliveries (subject_key, device_id, outcome, claim_id, created_at)
    SELECT ${job.subjectKey}, device.id, 'PENDING', ${claimId}::uuid, now()
      FROM unnest(${devices.map((device) => device.id)}::uuid[]) AS device(id)
    ON CONFLICT (subject_key, device_id) DO UPDATE SET claim_id = EXCLUDED.claim_id, created_at = EXCLUDED.created_at
      WHERE push_deliveries.outcome = 'PENDING' AND push_deliveries.created_at < now() - make_interval(secs => ${leaseSeconds})
    RETURNING device_id`;
  const claimedIds = new Set(claimedRows.map((row) => row.device_id));
  const claimed = devices.filter((device) => claimedIds.has(device.id));
  if (claimed.length < devices.length) {
    const held = await db.pushDelivery.count({
      where: {
        subjectKey: job.subjectKey,
        outcome: "PENDING",
        deviceId: { in: devices.filter((device) => !claimedIds.has(device.id)).map((device) => device.id) },
      },
    });
    outcome.busy = held;
  }
  if (claimed.length === 0 && outcome.busy === 0) return skip("already_sent");

  const notification = renderNotification(job, actor.displayName, settings.messagePreviews, {
    expiresAt,
    ttlSeconds: Math.max(1, Math.floor((expiresAt.getTime() - now.getTime()) / 1000)),
  });
  const lastAttempt = attempt >= deps.maxAttempts;
  const mine = (deviceId: string) => ({ subjectKey: job.subjectKey, deviceId, claimId });

  const results = await Promise.allSettled(
    claimed.map(async (device): Promise<DeviceResult> => {
      const provider = deps.providers[device.platform];
      const labels = { provider: provider.name };
      const context = { subjectKey: job.subjectKey, deviceId: device.id, provider: provider.name };
      let result: SendResult;
      try {
        result = await provider.send({ deviceId: device.id, token: device.pushToken }, notification);
      } catch (error) {
        result = {
          outcome: "retry",
          reason: `${provider.name}: ${error instanceof Error ? error.message : String(error)}`,
        };
      }
      switch (result.outcome) {
        case "sent": {
          metrics.sent.inc(labels);
          const marked = await db.pushDelivery.updateMany({
            where: mine(device.id),
            data: { outcome: "SENT", providerId: result.providerId ?? null, createdAt: new Date() },
          });
          if (marked.count === 0) logger.warn(context, "push: sent, but the claim had been taken over");
          return { kind: "sent" };
        }
        case "unregistered":
          // Only if the token is still this device's: it may have been registered again meanwhile.
          // The claim goes with the device; if the device stays, the claim is released.
          if (
            (await db.device.deleteMany({ where: { id: device.id, pushToken: device.pushToken } })).count ===
            0
          ) {
            await db.pushDelivery.deleteMany({ where: mine(device.id) });
          }
          metrics.pruned.inc(labels);
          logger.info({ ...context, reason: result.reason }, "push: token unregistered; device removed");
          return { kind: "pruned" };
        case "rejected":
          metrics.failed.inc({ ...labels, reason: "rejected" });
          await db.pushDelivery.updateMany({
            where: mine(device.id),
            data: { outcome: "REJECTED", createdAt: new Date() },
          });
          logger.warn(
            { ...context, reason: result.reason },
            "push: provider refused the notification for this device; device kept, not retried",
          );
          return { kind: "rejected" };
        case "retry":
          // Release the claim: the next try (or another run) may send.
          await db.pushDelivery.deleteMany({ where: mine(device.id) });
          if (lastAttempt) {
            metrics.failed.inc({ ...labels, reason: "exhausted" });
            logger.error({ ...context, reason: result.reason, attempt }, "push: giving up on this device");
          } else {
            metrics.retried.inc(labels);
            logger.warn({ ...context, reason: result.reason, attempt }, "push: will try this device again");
          }
          return { kind: "retry", result };
      }
    }),
  );

  const retries: Array<Extract<SendResult, { outcome: "retry" }>> = [];
  const failures: string[] = [];
  results.forEach((settled, index) => {
    if (settled.status === "rejected") {
      const error: unknown = settled.reason;
      metrics.failed.inc({ provider: deps.providers[claimed[index]!.platform].name, reason: "database" });
      logger.error(
        { err: error, subjectKey: job.subjectKey, deviceId: claimed[index]?.id },
        "push: database error while delivering to a device",
      );
      failures.push(`database: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    const value = settled.value;
    if (value.kind === "sent") outcome.sent += 1;
    else if (value.kind === "pruned") outcome.pruned += 1;
    else if (value.kind === "rejected") outcome.rejected += 1;
    else if (value.kind === "retry") {
      outcome.retrying += 1;
      retries.push(value.result);
    }
  });

  const reasons = [...retries.map((retry) => retry.reason), ...failures];
  if (reasons.length > 0) {
    const message = `push: ${reasons.length} device(s) to try again: ${reasons.join("; ")}`;
    if (lastAttempt) throw new UnrecoverableError(message);
    const waits = retries.map((retry) => retry.retryAfterMs ?? 0);
    throw new RetryLaterError(message, Math.max(0, ...waits) || undefined);
  }
  if (outcome.busy > 0 && !lastAttempt) {
    // Another run holds these devices' claims: if it fails, a later try sends.
    throw new RetryLaterError(
      `push: ${outcome.busy} device(s) claimed by another run of this job`,
      undefined,
    );
  }
  if (outcome.rejected > 0)
    throw new UnrecoverableError(`push: refused for good for ${outcome.rejected} device(s)`);
  return outcome;
}

/** Longest delay the backoff waits (the provider's Retry-After included). */
export const MAX_RETRY_DELAY_MS = 3_600_000;

/**
 * The delay before try `attemptsMade + 1`: `baseMs`, doubling each time (±20 %), or the provider's
 * Retry-After when that is longer; at most an hour.
 */
export function pushBackoff(
  baseMs: number,
  onDelay?: (jobId: string | undefined, attemptsMade: number, delayMs: number) => void,
) {
  return (attemptsMade: number, _type?: string, error?: Error, job?: { id?: string | undefined }): number => {
    const exponential = baseMs * 2 ** Math.max(0, attemptsMade - 1) * (0.8 + Math.random() * 0.4);
    const asked = error instanceof RetryLaterError ? (error.retryAfterMs ?? 0) : 0;
    const delay = Math.round(Math.min(Math.max(exponential, asked), MAX_RETRY_DELAY_MS));
    onDelay?.(job?.id, attemptsMade, delay);
    return delay;
  };
}

/**
 * The longest time from a job's first try to its last, every delay at its longest (a provider's
 * Retry-After can ask for the cap whatever the base).
 */
export function maxRetrySpanMs(maxAttempts: number): number {
  return Math.max(0, maxAttempts - 1) * MAX_RETRY_DELAY_MS;
}
