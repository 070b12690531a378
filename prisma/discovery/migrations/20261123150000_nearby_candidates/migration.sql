-- Nearby reads one table: what its filters need of a person's profile is copied onto their
-- location row, kept in sync by triggers in the same transaction as every write to either table
-- (events, updateLocation, tests and backfills alike), so one statement can walk the GiST KNN order.
--
-- The function bodies are E'…' strings with \073 for each semicolon: Prisma's pg driver adapter
-- runs a migration by splitting it at every semicolon, which would cut a plpgsql body apart.

-- AlterTable
ALTER TABLE "user_locations" ADD COLUMN "shown" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN "gender" "Gender",
ADD COLUMN "genders_of_interest" "Gender"[],
ADD COLUMN "birth_date" DATE,
ADD COLUMN "age_min" INTEGER,
ADD COLUMN "age_max" INTEGER;

-- Copies the profile (or its absence: not shown) onto the location row being written.
CREATE FUNCTION "user_locations_copy_profile"() RETURNS trigger LANGUAGE plpgsql AS E'DECLARE p "discovery_profiles"\073 BEGIN SELECT * INTO p FROM "discovery_profiles" WHERE "user_id" = NEW."user_id"\073 NEW."shown" := COALESCE(p."visible" AND NOT p."banned", false)\073 NEW."gender" := p."gender"\073 NEW."genders_of_interest" := p."genders_of_interest"\073 NEW."birth_date" := p."birth_date"\073 NEW."age_min" := p."age_min"\073 NEW."age_max" := p."age_max"\073 RETURN NEW\073 END';

CREATE TRIGGER "user_locations_copy_profile" BEFORE INSERT OR UPDATE OF "user_id" ON "user_locations"
  FOR EACH ROW EXECUTE FUNCTION "user_locations_copy_profile"();

-- Pushes a profile's insert, change or deletion onto its location row.
CREATE FUNCTION "discovery_profiles_sync_location"() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN IF TG_OP = ''DELETE'' THEN UPDATE "user_locations" SET "shown" = false, "gender" = NULL, "genders_of_interest" = NULL, "birth_date" = NULL, "age_min" = NULL, "age_max" = NULL WHERE "user_id" = OLD."user_id"\073 RETURN OLD\073 END IF\073 UPDATE "user_locations" SET "shown" = NEW."visible" AND NOT NEW."banned", "gender" = NEW."gender", "genders_of_interest" = NEW."genders_of_interest", "birth_date" = NEW."birth_date", "age_min" = NEW."age_min", "age_max" = NEW."age_max" WHERE "user_id" = NEW."user_id"\073 RETURN NEW\073 END';

CREATE TRIGGER "discovery_profiles_sync_location" AFTER INSERT OR UPDATE OR DELETE ON "discovery_profiles"
  FOR EACH ROW EXECUTE FUNCTION "discovery_profiles_sync_location"();

-- Backfill.
UPDATE "user_locations" l SET "shown" = p."visible" AND NOT p."banned", "gender" = p."gender",
  "genders_of_interest" = p."genders_of_interest", "birth_date" = p."birth_date",
  "age_min" = p."age_min", "age_max" = p."age_max"
FROM "discovery_profiles" p WHERE p."user_id" = l."user_id";

-- CreateIndex: only people who can be shown, in KNN order.
CREATE INDEX "user_locations_shown_location_idx" ON "user_locations" USING GIST ("location") WHERE "shown";
