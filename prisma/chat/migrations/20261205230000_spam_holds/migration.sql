-- CreateTable
CREATE TABLE "held_senders" (
    "user_id" UUID NOT NULL,
    "signal" TEXT NOT NULL,
    "held_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "held_senders_pkey" PRIMARY KEY ("user_id")
);

-- CreateTable
CREATE TABLE "held_messages" (
    "id" UUID NOT NULL,
    "conversation_id" UUID NOT NULL,
    "sender_id" UUID NOT NULL,
    "client_message_id" TEXT NOT NULL,
    "text" TEXT,
    "reply_to_id" UUID,
    "attachment_ids" UUID[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "discarded_at" TIMESTAMPTZ(3),

    CONSTRAINT "held_messages_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "held_messages_sender_id_created_at_idx" ON "held_messages"("sender_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "held_messages_conversation_id_sender_id_client_message_id_key" ON "held_messages"("conversation_id", "sender_id", "client_message_id");

