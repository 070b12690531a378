import { Queue, type JobsOptions } from "bullmq";
import { ErrorCode, redisOptions, type Logger, type RateLimiter, type RedisTarget } from "@hv/kit";
import { GraphQLError } from "graphql";

/** The users domain's outgoing account mails: queued by the users subgraph, sent by the users worker. */
export const MAIL_QUEUE = "mail.outgoing";

/**
 * One account mail. Nothing a person typed is ever put in a mail (a stranger can sign up with
 * anybody's address): only the kind, the recipient and, for links, the token. The token travels
 * in Redis only until the mail is sent (the job is removed on completion); the database holds its
 * hash.
 */
export type MailJob =
  | { kind: "verify_email"; to: string; token: string }
  /** Someone signed up with an address that already has a verified account. */
  | { kind: "already_registered"; to: string }
  | { kind: "reset_password"; to: string; token: string }
  /** Sent to the new address; the change happens when its link is opened. */
  | { kind: "confirm_email_change"; to: string; token: string }
  /** Someone asked to move an account to an address that already has one (sent to that address). */
  | { kind: "email_change_address_taken"; to: string }
  /** Sent to the old address once the change is done. */
  | { kind: "email_changed"; to: string; newEmail: string };

/** A finished or given-up mail is kept this long for inspection (data: the recipient, no token once sent). */
const FAILED_JOB_RETENTION_SECONDS = 7 * 24 * 3600;

/** The worker's `backoffStrategy` computes the delays (MAIL_RETRY_BASE_MS); attempts come from the worker too. */
export function mailJobOptions(maxAttempts: number): JobsOptions {
  return {
    attempts: maxAttempts,
    backoff: { type: "mail" },
    removeOnComplete: true,
    removeOnFail: { age: FAILED_JOB_RETENTION_SECONDS },
  };
}

/** What the resolvers need: queue a mail; never waits for it to be sent. */
export interface MailOutbox {
  /** Queues `job` unless its recipient already got too many mails lately (then it is dropped and logged). */
  send(job: MailJob): Promise<void>;
  close(): Promise<void>;
}

export interface MailOutboxOptions {
  redis: RedisTarget;
  /** The event queues' BullMQ prefix (EVENTS_PREFIX): the users worker reads the same. */
  prefix: string;
  logger: Logger;
  /** Mails per recipient address: a flood of sign-ups or reset requests must not flood an inbox. */
  perRecipient: RateLimiter;
  /** Tries per mail (MAIL_MAX_ATTEMPTS), fixed when it is queued. */
  maxAttempts: number;
}

export function createMailOutbox(options: MailOutboxOptions): MailOutbox {
  const queue = new Queue<MailJob>(MAIL_QUEUE, {
    connection: redisOptions(options.redis),
    prefix: options.prefix,
  });
  queue.on("error", (error: Error) => options.logger.warn({ err: error }, "mail queue error"));
  return {
    async send(job) {
      try {
        await options.perRecipient.consume(job.to);
      } catch (error) {
        if (!(error instanceof GraphQLError && error.extensions.code === ErrorCode.RATE_LIMITED)) throw error;
        options.logger.warn({ kind: job.kind }, "mail dropped: its recipient got too many mails lately");
        return;
      }
      await queue.add(job.kind, job, mailJobOptions(options.maxAttempts));
    },
    close: () => queue.close(),
  };
}
