-- CreateEnum
CREATE TYPE "MediaFailureReason" AS ENUM ('EMPTY', 'TRUNCATED', 'TYPE_MISMATCH', 'UNSUPPORTED_TYPE', 'TOO_LARGE', 'TOO_MANY_PIXELS', 'TOO_LONG', 'CORRUPT', 'PROCESSING_ERROR');

-- AlterTable
ALTER TABLE "media" ADD COLUMN     "blurhash" TEXT,
ADD COLUMN     "byte_size" INTEGER,
ADD COLUMN     "content_type" TEXT,
ADD COLUMN     "duration_ms" INTEGER,
ADD COLUMN     "failure_reason" "MediaFailureReason",
ADD COLUMN     "processed_at" TIMESTAMPTZ(3),
ADD COLUMN     "source_key" TEXT,
ADD COLUMN     "uploaded_at" TIMESTAMPTZ(3),
ADD COLUMN     "variants" JSONB NOT NULL DEFAULT '[]';

