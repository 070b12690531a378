-- AlterEnum
ALTER TYPE "MediaFailureReason" ADD VALUE 'PROCESSING_TIMEOUT';

-- AlterTable
ALTER TABLE "media" ADD COLUMN     "upload_expires_at" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "blocks" (
    "blocker_id" UUID NOT NULL,
    "blocked_id" UUID NOT NULL,
    "event_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "blocks_pkey" PRIMARY KEY ("blocker_id","blocked_id")
);

-- CreateTable
CREATE TABLE "user_states" (
    "user_id" UUID NOT NULL,
    "banned" BOOLEAN NOT NULL DEFAULT false,
    "event_at" TIMESTAMPTZ(3),

    CONSTRAINT "user_states_pkey" PRIMARY KEY ("user_id")
);

-- CreateIndex
CREATE INDEX "blocks_blocked_id_idx" ON "blocks"("blocked_id");

-- CreateIndex
CREATE INDEX "media_status_upload_expires_at_idx" ON "media"("status", "upload_expires_at");


-- Rows from before this column: their URLs were signed for the default lifetime (900 s).
UPDATE "media" SET "upload_expires_at" = "created_at" + interval '900 seconds' WHERE "upload_expires_at" IS NULL AND "status" = 'PENDING';
