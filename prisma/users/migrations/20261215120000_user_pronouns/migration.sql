-- AlterTable
ALTER TABLE "users" ADD COLUMN "pronouns" TEXT;
