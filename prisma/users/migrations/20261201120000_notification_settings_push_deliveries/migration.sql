-- CreateTable
CREATE TABLE "notification_settings" (
    "user_id" UUID NOT NULL,
    "messages" BOOLEAN NOT NULL DEFAULT true,
    "matches" BOOLEAN NOT NULL DEFAULT true,
    "likes" BOOLEAN NOT NULL DEFAULT true,
    "message_previews" BOOLEAN NOT NULL DEFAULT true,
    "time_zone" TEXT NOT NULL DEFAULT 'UTC',
    "quiet_start" SMALLINT,
    "quiet_end" SMALLINT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "notification_settings_pkey" PRIMARY KEY ("user_id")
);

-- CreateTable
CREATE TABLE "push_deliveries" (
    "subject_key" TEXT NOT NULL,
    "device_id" UUID NOT NULL,
    "outcome" TEXT NOT NULL,
    "provider_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "push_deliveries_pkey" PRIMARY KEY ("subject_key","device_id")
);

-- CreateIndex
CREATE INDEX "push_deliveries_device_id_idx" ON "push_deliveries"("device_id");

-- CreateIndex
CREATE INDEX "push_deliveries_created_at_idx" ON "push_deliveries"("created_at");

-- AddForeignKey
ALTER TABLE "notification_settings" ADD CONSTRAINT "notification_settings_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "push_deliveries" ADD CONSTRAINT "push_deliveries_device_id_fkey" FOREIGN KEY ("device_id") REFERENCES "devices"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Checks the API also makes, kept by the database too.
ALTER TABLE "notification_settings" ADD CONSTRAINT "notification_settings_quiet_hours_check" CHECK (
  ("quiet_start" IS NULL AND "quiet_end" IS NULL)
  OR ("quiet_start" BETWEEN 0 AND 1439 AND "quiet_end" BETWEEN 0 AND 1439 AND "quiet_start" <> "quiet_end")
);
ALTER TABLE "push_deliveries" ADD CONSTRAINT "push_deliveries_outcome_check" CHECK ("outcome" IN ('SENT', 'REJECTED'));
