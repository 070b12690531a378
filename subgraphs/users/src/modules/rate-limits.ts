import { createRateLimiter, type RateLimiter, type Redis } from "@hv/kit";

/**
 * Budgets for the credential-guessing surface. Each resolver call consumes one point, so a
 * request that batches or aliases fifty `logIn` fields spends fifty.
 */
export interface AccountRateLimits {
  loginPerAccount: RateLimiter;
  loginPerIp: RateLimiter;
  signupPerIp: RateLimiter;
  /** changePassword and deleteAccount: guesses of the current password by a stolen session. */
  passwordCheckPerUser: RateLimiter;
}

export function createAccountRateLimits(redis: Redis): AccountRateLimits {
  return {
    loginPerAccount: createRateLimiter(redis, { name: "login-account", points: 5, durationSeconds: 15 * 60 }),
    loginPerIp: createRateLimiter(redis, { name: "login-ip", points: 50, durationSeconds: 15 * 60 }),
    signupPerIp: createRateLimiter(redis, { name: "signup-ip", points: 10, durationSeconds: 60 * 60 }),
    passwordCheckPerUser: createRateLimiter(redis, { name: "password-check", points: 5, durationSeconds: 15 * 60 }),
  };
}
