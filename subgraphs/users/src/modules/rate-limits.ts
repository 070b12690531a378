import { createRateLimiter, type RateLimiter, type Redis } from "@hv/kit";

/**
 * Budgets for the credential-guessing surface. Each resolver call consumes one point, so a
 * request that batches or aliases fifty `logIn` fields spends fifty.
 */
export interface AccountRateLimits {
  /** Tight: guesses at one account from one address (an IPv6 /64 counts as one address). */
  loginPerAccountAndAddress: RateLimiter;
  /**
   * Loose: guesses at one account from anywhere. Kept well above the tight one so that a stranger
   * who knows an email cannot lock its owner out with a few wrong passwords.
   */
  loginPerAccount: RateLimiter;
  loginPerAddress: RateLimiter;
  signupPerAddress: RateLimiter;
  /** changePassword and deleteAccount: guesses of the current password by a stolen session. */
  passwordCheckPerUser: RateLimiter;
}

export function createAccountRateLimits(redis: Redis): AccountRateLimits {
  return {
    loginPerAccountAndAddress: createRateLimiter(redis, { name: "login-account-address", points: 5, durationSeconds: 15 * 60 }),
    loginPerAccount: createRateLimiter(redis, { name: "login-account", points: 50, durationSeconds: 60 * 60 }),
    loginPerAddress: createRateLimiter(redis, { name: "login-address", points: 50, durationSeconds: 15 * 60 }),
    signupPerAddress: createRateLimiter(redis, { name: "signup-address", points: 10, durationSeconds: 60 * 60 }),
    passwordCheckPerUser: createRateLimiter(redis, { name: "password-check", points: 5, durationSeconds: 15 * 60 }),
  };
}
