import { createRateLimiter, type RateLimiter, type Redis } from "@hv/kit";

/**
 * Budgets for the credential-guessing surface. Each resolver call consumes one point, so a
 * request that batches or aliases fifty `logIn` fields spends fifty.
 *
 * logIn from a phone that has signed in to the account before (a live known-device token, see
 * known-devices.ts) spends only that device's budget; every other attempt spends the account's
 * budget for strangers. A stranger guessing from a thousand addresses therefore gets 10 guesses an
 * hour in all, and the owner's phone still signs in while they try.
 */
export interface AccountRateLimits {
  /** Guesses at one account from unknown phones, whatever the address. */
  loginPerAccount: RateLimiter;
  /** Guesses at one account from one known phone (a stolen phone must not guess freely either). */
  loginPerKnownDevice: RateLimiter;
  /** Attempts from one address at any accounts, from unknown phones. */
  loginPerAddress: RateLimiter;
  signupPerAddress: RateLimiter;
  /** changePassword, deleteAccount, requestEmailChange: guesses of the current password by a stolen session. */
  passwordCheckPerUser: RateLimiter;
  /** requestPasswordReset from one address (by address only: the answer must not depend on the email). */
  recoveryPerAddress: RateLimiter;
  /** Mails to one address, whoever asks: over it, mails are dropped silently (no inbox flooding). */
  mailPerRecipient: RateLimiter;
}

export function createAccountRateLimits(redis: Redis): AccountRateLimits {
  return {
    loginPerAccount: createRateLimiter(redis, {
      name: "login-account-unknown-device",
      points: 10,
      durationSeconds: 60 * 60,
    }),
    loginPerKnownDevice: createRateLimiter(redis, {
      name: "login-known-device",
      points: 10,
      durationSeconds: 15 * 60,
    }),
    loginPerAddress: createRateLimiter(redis, {
      name: "login-address",
      points: 50,
      durationSeconds: 15 * 60,
    }),
    signupPerAddress: createRateLimiter(redis, {
      name: "signup-address",
      points: 10,
      durationSeconds: 60 * 60,
    }),
    passwordCheckPerUser: createRateLimiter(redis, {
      name: "password-check",
      points: 5,
      durationSeconds: 15 * 60,
    }),
    recoveryPerAddress: createRateLimiter(redis, {
      name: "recovery-address",
      points: 10,
      durationSeconds: 60 * 60,
    }),
    mailPerRecipient: createRateLimiter(redis, {
      name: "mail-recipient",
      points: 5,
      durationSeconds: 60 * 60,
    }),
  };
}
