-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateExtension
CREATE EXTENSION IF NOT EXISTS "postgis";

-- CreateTable
CREATE TABLE "user_locations" (
    "user_id" UUID NOT NULL,
    "location" geography(Point,4326) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "user_locations_pkey" PRIMARY KEY ("user_id")
);

-- CreateIndex
CREATE INDEX "user_locations_location_idx" ON "user_locations" USING GIST ("location");

-- CreateIndex
CREATE INDEX "user_locations_updated_at_idx" ON "user_locations"("updated_at");

