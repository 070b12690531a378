-- CreateEnum
CREATE TYPE "ClosedReason" AS ENUM ('UNMATCHED', 'ACCOUNT_DELETED');

-- CreateEnum
CREATE TYPE "InvitationStatus" AS ENUM ('PENDING', 'ACCEPTED', 'DECLINED');

-- AlterTable
ALTER TABLE "conversations" ADD COLUMN     "closed_reason" "ClosedReason";

-- CreateTable
CREATE TABLE "group_invitations" (
    "id" UUID NOT NULL,
    "conversation_id" UUID NOT NULL,
    "invitee_id" UUID NOT NULL,
    "inviter_id" UUID NOT NULL,
    "status" "InvitationStatus" NOT NULL DEFAULT 'PENDING',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "responded_at" TIMESTAMPTZ(3),

    CONSTRAINT "group_invitations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "people" (
    "user_id" UUID NOT NULL,
    "visible" BOOLEAN NOT NULL,
    "banned" BOOLEAN NOT NULL,
    "deleted_at" TIMESTAMPTZ(3),
    "event_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "people_pkey" PRIMARY KEY ("user_id")
);

-- CreateIndex
CREATE INDEX "group_invitations_invitee_id_status_created_at_id_idx" ON "group_invitations"("invitee_id", "status", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "group_invitations_inviter_id_status_idx" ON "group_invitations"("inviter_id", "status");

-- CreateIndex
CREATE UNIQUE INDEX "group_invitations_conversation_id_invitee_id_key" ON "group_invitations"("conversation_id", "invitee_id");

-- AddForeignKey
ALTER TABLE "group_invitations" ADD CONSTRAINT "group_invitations_conversation_id_fkey" FOREIGN KEY ("conversation_id") REFERENCES "conversations"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Backfill: conversations closed before this migration were closed by their match ending.
UPDATE "conversations" SET "closed_reason" = 'UNMATCHED' WHERE "closed_at" IS NOT NULL;

-- Only open one-to-one conversations hold their pair's direct_key now (a new match opens a new one).
UPDATE "conversations" SET "direct_key" = NULL WHERE "closed_at" IS NOT NULL;
