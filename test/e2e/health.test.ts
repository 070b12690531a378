import { start as startUsers } from "@hv/users";
import { loadUsersConfig } from "@hv/kit";
import { capturingLogger } from "../support/log-capture";
import { testEnv } from "../support/system";
import { freePort } from "../support/ports";

describe("readiness", () => {
  it("should answer /healthz but not /readyz when the database and Redis do not answer", async () => {
    const [deadPostgres, deadRedis] = [await freePort(), await freePort()];
    const { logger } = capturingLogger("users");
    const users = await startUsers(
      loadUsersConfig(
        testEnv({
          USERS_DATABASE_URL: `postgresql://postgres@127.0.0.1:${deadPostgres}/nothing`,
          REDIS_URL: `redis://127.0.0.1:${deadRedis}`,
        }),
      ),
      logger,
    );
    try {
      const base = users.url.replace(/\/graphql$/, "");
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { checks: Record<string, string> };
      expect(body.checks.database).toMatch(/^failed: /);
      expect(body.checks.redis).toMatch(/^failed: /);
    } finally {
      await users.stop();
    }
  });

  it("should close its port when stopped", async () => {
    const { logger } = capturingLogger("users");
    const users = await startUsers(loadUsersConfig(testEnv()), logger);
    const base = users.url.replace(/\/graphql$/, "");
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    await users.stop();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});
