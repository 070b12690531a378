-- Release 2 of dropping the foreign key messages -> conversations (release 1, round 9: Chat deletes a
-- conversation's messages itself where it deletes the conversation). STORE inserts a message only
-- from the conversation row it has locked and updated, so the check could never fail there, and it
-- cost every send a trigger and a key-share lock (docs/chat.md, "Sending").
ALTER TABLE "messages" DROP CONSTRAINT "messages_conversation_id_fkey";
