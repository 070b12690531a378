import { SCHEMAS, databaseUrlEnvVar, dropDatabase } from "@hv/prisma";

export default async function globalTeardown(): Promise<void> {
  if (!process.env.HV_TEST_RUN_ID) return;
  await Promise.all(
    SCHEMAS.map(async (name) => {
      const url = process.env[databaseUrlEnvVar(name)];
      if (url?.includes(`hv_test_${process.env.HV_TEST_RUN_ID}_`)) await dropDatabase(url);
    }),
  );
}
