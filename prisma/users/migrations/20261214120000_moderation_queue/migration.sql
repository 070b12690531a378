-- CreateEnum
CREATE TYPE "ModerationTargetKind" AS ENUM ('USER', 'MESSAGE', 'MEDIA');

-- CreateEnum
CREATE TYPE "ModerationCaseStatus" AS ENUM ('OPEN', 'ACTIONED', 'DISMISSED');

-- CreateEnum
CREATE TYPE "ModerationAction" AS ENUM ('DISMISS', 'REMOVE_MESSAGE', 'REMOVE_MEDIA', 'WARN', 'SUSPEND', 'BAN');

-- AlterTable
ALTER TABLE "users" ADD COLUMN     "suspended_until" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "reports" ADD COLUMN     "case_id" UUID,
ADD COLUMN     "signal" TEXT,
ADD COLUMN     "snapshot" JSONB,
ADD COLUMN     "source_id" TEXT,
ADD COLUMN     "target_id" UUID,
ADD COLUMN     "target_kind" "ModerationTargetKind" NOT NULL DEFAULT 'USER',
ALTER COLUMN "reporter_id" DROP NOT NULL;

-- CreateTable
CREATE TABLE "moderation_cases" (
    "id" UUID NOT NULL,
    "target_kind" "ModerationTargetKind" NOT NULL,
    "target_id" UUID NOT NULL,
    "target_user_id" UUID NOT NULL,
    "status" "ModerationCaseStatus" NOT NULL DEFAULT 'OPEN',
    "open_key" TEXT,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "distinct_reporters" INTEGER NOT NULL DEFAULT 0,
    "signals" INTEGER NOT NULL DEFAULT 0,
    "snapshot" JSONB,
    "opened_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_report_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "claimed_by" UUID,
    "claim_expires_at" TIMESTAMPTZ(3),
    "resolved_at" TIMESTAMPTZ(3),
    "resolved_by" UUID,
    "action" "ModerationAction",
    "action_reason" TEXT,
    "action_until" TIMESTAMPTZ(3),

    CONSTRAINT "moderation_cases_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "moderation_audit_log" (
    "id" UUID NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "moderator_id" UUID NOT NULL,
    "case_id" UUID NOT NULL,
    "what" TEXT NOT NULL,
    "reason" TEXT,
    "target_kind" "ModerationTargetKind" NOT NULL,
    "target_id" UUID NOT NULL,
    "until" TIMESTAMPTZ(3),

    CONSTRAINT "moderation_audit_log_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "moderation_cases_open_key_key" ON "moderation_cases"("open_key");

-- CreateIndex
CREATE INDEX "moderation_cases_status_priority_opened_at_id_idx" ON "moderation_cases"("status", "priority" DESC, "opened_at", "id");

-- CreateIndex
CREATE INDEX "moderation_cases_target_user_id_idx" ON "moderation_cases"("target_user_id");

-- CreateIndex
CREATE INDEX "moderation_audit_log_at_id_idx" ON "moderation_audit_log"("at", "id");

-- CreateIndex
CREATE INDEX "moderation_audit_log_case_id_idx" ON "moderation_audit_log"("case_id");

-- CreateIndex
CREATE UNIQUE INDEX "reports_source_id_key" ON "reports"("source_id");

-- CreateIndex
CREATE INDEX "reports_case_id_idx" ON "reports"("case_id");

-- CreateIndex
CREATE INDEX "reports_reporter_id_created_at_idx" ON "reports"("reporter_id", "created_at");

-- AddForeignKey
ALTER TABLE "reports" ADD CONSTRAINT "reports_case_id_fkey" FOREIGN KEY ("case_id") REFERENCES "moderation_cases"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Backfill: each reported account's earlier reports form one open case.
UPDATE "reports" SET "target_id" = "reported_id" WHERE "target_id" IS NULL;

INSERT INTO "moderation_cases" ("id", "target_kind", "target_id", "target_user_id", "open_key", "distinct_reporters", "priority", "opened_at", "last_report_at")
SELECT gen_random_uuid(), 'USER', "reported_id", "reported_id", 'USER:' || "reported_id", count(DISTINCT "reporter_id"), 10 * count(DISTINCT "reporter_id"), min("created_at"), max("created_at")
FROM "reports" GROUP BY "reported_id";

UPDATE "reports" r SET "case_id" = c."id" FROM "moderation_cases" c WHERE c."open_key" = 'USER:' || r."reported_id" AND r."case_id" IS NULL;

-- The audit log is append-only: rows are never changed or removed (body: E'' string, see prisma/README.md).
CREATE FUNCTION "moderation_audit_log_append_only"() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN RAISE EXCEPTION ''moderation_audit_log is append-only''\073 END';

CREATE TRIGGER "moderation_audit_log_append_only" BEFORE UPDATE OR DELETE ON "moderation_audit_log"
  FOR EACH ROW EXECUTE FUNCTION "moderation_audit_log_append_only"();
