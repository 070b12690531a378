import type { UsersDb } from "../db";

/** The users database or one of its transactions. */
type Tx = Parameters<Parameters<UsersDb["$transaction"]>[0]>[0];

export type TargetKind = "USER" | "MESSAGE" | "MEDIA";
export type ReportReason =
  "SPAM" | "HARASSMENT" | "INAPPROPRIATE_CONTENT" | "FAKE_PROFILE" | "UNDERAGE" | "SCAM" | "OTHER";

export interface NewReport {
  /** null: an automatic signal. */
  reporterId: string | null;
  targetKind: TargetKind;
  targetId: string;
  /** The account concerned: the user, the message's sender, the media's owner. */
  targetUserId: string;
  reason: ReportReason;
  details: string | null;
  snapshot: Record<string, unknown> | null;
  signal?: string | null;
  /** Files a report once per source (an event's report id): a redelivery changes nothing. */
  sourceId?: string | null;
}

/** Points per distinct human reporter, per automatic signal, and for a young target account. */
export const PRIORITY = {
  perReporter: 10,
  perSignal: 5,
  accountUnder7Days: 10,
  accountUnder30Days: 5,
} as const;

/**
 * Files a report into the open case of its target (opening one if there is none) and recomputes
 * the case's priority, all in `tx`. The case row is locked by the upsert until `tx` ends, so
 * concurrent reports of one target count each other. Returns the report's id and date.
 */
export async function fileReport(
  tx: Tx,
  report: NewReport,
): Promise<{ id: string; createdAt: Date; caseId: string }> {
  if (report.sourceId) {
    const known = await tx.report.findUnique({
      where: { sourceId: report.sourceId },
      select: { id: true, createdAt: true, caseId: true },
    });
    if (known?.caseId) return { id: known.id, createdAt: known.createdAt, caseId: known.caseId };
  }
  const openKey = `${report.targetKind}:${report.targetId}`;
  const snapshot = report.snapshot === null ? null : JSON.stringify(report.snapshot);
  const [opened] = await tx.$queryRaw<Array<{ id: string }>>`
    INSERT INTO moderation_cases (id, target_kind, target_id, target_user_id, open_key, snapshot)
    VALUES (gen_random_uuid(), ${report.targetKind}::"ModerationTargetKind", ${report.targetId}::uuid,
            ${report.targetUserId}::uuid, ${openKey}, ${snapshot}::jsonb)
    ON CONFLICT (open_key) DO UPDATE
      SET last_report_at = now(), snapshot = COALESCE(EXCLUDED.snapshot, moderation_cases.snapshot)
    RETURNING id`;
  if (!opened) throw new Error("moderation case upsert returned no row");
  const created = await tx.report.create({
    data: {
      reporterId: report.reporterId,
      reportedId: report.targetUserId,
      reason: report.reason,
      details: report.details,
      caseId: opened.id,
      targetKind: report.targetKind,
      targetId: report.targetId,
      ...(report.snapshot === null ? {} : { snapshot: report.snapshot as object }),
      signal: report.signal ?? null,
      sourceId: report.sourceId ?? null,
    },
    select: { id: true, createdAt: true },
  });
  await tx.$executeRaw`
    UPDATE moderation_cases c SET
      distinct_reporters = s.reporters,
      signals = s.signals,
      priority = ${PRIORITY.perReporter} * s.reporters + ${PRIORITY.perSignal} * s.signals +
        CASE WHEN u.created_at > now() - interval '7 days' THEN ${PRIORITY.accountUnder7Days}
             WHEN u.created_at > now() - interval '30 days' THEN ${PRIORITY.accountUnder30Days}
             ELSE 0 END
    FROM (SELECT count(DISTINCT reporter_id)::int AS reporters, count(*) FILTER (WHERE reporter_id IS NULL)::int AS signals
          FROM reports WHERE case_id = ${opened.id}::uuid) s
    LEFT JOIN users u ON u.id = ${report.targetUserId}::uuid
    WHERE c.id = ${opened.id}::uuid`;
  return { ...created, caseId: opened.id };
}

/** Seconds since the oldest open case was opened; 0 when the queue is empty. */
export async function oldestOpenCaseAgeSeconds(db: UsersDb): Promise<number> {
  const [row] = await db.$queryRaw<Array<{ age: number | null }>>`
    SELECT EXTRACT(EPOCH FROM now() - min(opened_at))::float8 AS age FROM moderation_cases WHERE status = 'OPEN'`;
  return Math.max(0, row?.age ?? 0);
}
