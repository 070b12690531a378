import { randomBytes } from "node:crypto";
import { Pool } from "pg";
import { hashAccountToken } from "@hv/users/src/modules/account-tokens";

/**
 * Stands in for a person opening their verification mail, for tests about something else (the
 * mail itself is tested in test/e2e/users/email-accounts.test.ts): copies the address's newest
 * pending sign-up link under a token this test knows. Waits for it, since signUp writes after it
 * answers.
 */
// One small pool per test process; idle connections never keep jest from exiting.
let pool: Pool | undefined;

export async function verificationTokenFor(email: string, timeoutMs = 15_000): Promise<string> {
  const token = `at_${randomBytes(32).toString("base64url")}`;
  if (!pool) {
    pool = new Pool({
      connectionString: process.env.USERS_DATABASE_URL,
      max: 4,
      idleTimeoutMillis: 1_000,
      allowExitOnIdle: true,
    });
    // An idle connection ended by the server (the global teardown drops this run's databases) is
    // no test's failure: the pool drops it and opens another if asked again.
    pool.on("error", () => undefined);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const copied = await pool.query(
      `INSERT INTO account_tokens (id, user_id, purpose, token_hash, email, pending, expires_at)
       SELECT gen_random_uuid(), user_id, purpose, $2, email, pending, expires_at FROM account_tokens
       WHERE email = $1 AND purpose = 'VERIFY_EMAIL' AND used_at IS NULL
       ORDER BY created_at DESC LIMIT 1`,
      [email, hashAccountToken(token)],
    );
    if (copied.rowCount === 1) return token;
    if (Date.now() > deadline) throw new Error(`no pending sign-up for ${email} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
