-- CreateEnum
CREATE TYPE "Gender" AS ENUM ('WOMAN', 'MAN', 'NONBINARY');

-- CreateEnum
CREATE TYPE "SwipeKind" AS ENUM ('LIKE', 'PASS', 'SUPER_LIKE');

-- CreateTable
CREATE TABLE "discovery_profiles" (
    "user_id" UUID NOT NULL,
    "birth_date" DATE NOT NULL,
    "gender" "Gender",
    "genders_of_interest" "Gender"[],
    "age_min" INTEGER NOT NULL,
    "age_max" INTEGER NOT NULL,
    "max_distance_km" INTEGER NOT NULL,
    "visible" BOOLEAN NOT NULL,
    "banned" BOOLEAN NOT NULL,
    "event_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "discovery_profiles_pkey" PRIMARY KEY ("user_id")
);

-- CreateTable
CREATE TABLE "blocks" (
    "blocker_id" UUID NOT NULL,
    "blocked_id" UUID NOT NULL,
    "event_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "blocks_pkey" PRIMARY KEY ("blocker_id","blocked_id")
);

-- CreateTable
CREATE TABLE "swipes" (
    "swiper_id" UUID NOT NULL,
    "target_id" UUID NOT NULL,
    "kind" "SwipeKind" NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "swipes_pkey" PRIMARY KEY ("swiper_id","target_id")
);

-- CreateTable
CREATE TABLE "matches" (
    "id" UUID NOT NULL,
    "user_a_id" UUID NOT NULL,
    "user_b_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "ended_at" TIMESTAMPTZ(3),

    CONSTRAINT "matches_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "outbox_events" (
    "id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "published_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "blocks_blocked_id_idx" ON "blocks"("blocked_id");

-- CreateIndex
CREATE INDEX "swipes_target_id_idx" ON "swipes"("target_id");

-- CreateIndex
CREATE INDEX "matches_user_b_id_idx" ON "matches"("user_b_id");

-- CreateIndex
CREATE UNIQUE INDEX "matches_user_a_id_user_b_id_key" ON "matches"("user_a_id", "user_b_id");

-- CreateIndex
CREATE INDEX "outbox_events_published_at_created_at_idx" ON "outbox_events"("published_at", "created_at");


-- A pair is stored once, ordered, whichever like came second.
ALTER TABLE "matches" ADD CONSTRAINT "matches_ordered_pair" CHECK ("user_a_id" < "user_b_id");
