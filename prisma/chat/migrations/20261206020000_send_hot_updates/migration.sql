-- Sending updates the conversation's row and the sender's member row: with no index on the columns
-- it changes and room on each page, both are HOT updates (docs/chat.md, "Sending").
DROP INDEX "conversations_last_activity_at_id_idx";

ALTER TABLE "conversations" SET (fillfactor = 80);

ALTER TABLE "conversation_members" SET (fillfactor = 80);
