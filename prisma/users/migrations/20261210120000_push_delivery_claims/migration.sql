-- AlterTable
ALTER TABLE "push_deliveries" ADD COLUMN     "claim_id" UUID;

-- A delivery is claimed (PENDING) before the provider is called, then marked SENT or REJECTED.
ALTER TABLE "push_deliveries" DROP CONSTRAINT "push_deliveries_outcome_check";
ALTER TABLE "push_deliveries" ADD CONSTRAINT "push_deliveries_outcome_check" CHECK ("outcome" IN ('PENDING', 'SENT', 'REJECTED'));
ALTER TABLE "push_deliveries" ADD CONSTRAINT "push_deliveries_claim_check" CHECK ("outcome" <> 'PENDING' OR "claim_id" IS NOT NULL);
