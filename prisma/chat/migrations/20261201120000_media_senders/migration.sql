-- CreateTable
CREATE TABLE "media_senders" (
    "media_id" UUID NOT NULL,
    "sender_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "media_senders_pkey" PRIMARY KEY ("media_id")
);


-- Backfill: each media id already attached belongs to the sender of its earliest message.
INSERT INTO "media_senders" ("media_id", "sender_id", "created_at")
SELECT DISTINCT ON (a."media_id") a."media_id", m."sender_id", m."created_at"
  FROM "message_attachments" a JOIN "messages" m ON m."id" = a."message_id"
 ORDER BY a."media_id", m."created_at", m."seq";
