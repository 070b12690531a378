-- AlterTable
ALTER TABLE "conversations" ADD COLUMN     "version" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "messages" ADD COLUMN     "version" INTEGER NOT NULL DEFAULT 0;

-- CreateIndex
CREATE INDEX "messages_conversation_id_version_idx" ON "messages"("conversation_id", "version");


-- Backfill: existing messages count as changed when sent (edits before this migration are not replayed).
UPDATE "messages" SET "version" = "seq";
UPDATE "conversations" SET "version" = "last_seq";
