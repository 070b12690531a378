import { UnrecoverableError, Worker, type Job } from "bullmq";
import { createTransport } from "nodemailer";
import { redisOptions, type Logger, type MailConfig, type ProcessMetrics, type RedisTarget } from "@hv/kit";
import { MAIL_QUEUE, type MailJob } from "./jobs";
import { renderMail } from "./render";

/** Longest wait between two tries of a mail. */
const MAX_RETRY_DELAY_MS = 15 * 60_000;

/** The delay before try `attemptsMade + 1`: `baseMs`, doubling each time (±20 %), at most 15 minutes. */
export function mailBackoff(baseMs: number) {
  return (attemptsMade: number): number =>
    Math.round(
      Math.min(baseMs * 2 ** Math.max(0, attemptsMade - 1) * (0.8 + Math.random() * 0.4), MAX_RETRY_DELAY_MS),
    );
}

/** An SMTP reply of 5xx refuses the mail for good (bad address, policy): trying again cannot help. */
export function isPermanentSmtpFailure(error: unknown): boolean {
  const code = (error as { responseCode?: unknown } | null)?.responseCode;
  return typeof code === "number" && code >= 500 && code < 600;
}

export interface MailWorkerOptions {
  mail: MailConfig;
  redis: RedisTarget;
  /** EVENTS_PREFIX, as the users subgraph queues with. */
  prefix: string;
  logger: Logger;
  metrics?: ProcessMetrics;
  /** Called when a mail is sent, or given up (tests wait on it). */
  onMailDone?: (job: MailJob, outcome: "sent" | Error) => void;
}

export interface RunningMailWorker {
  /** Stops taking mails and lets the one being sent finish. */
  close(): Promise<void>;
}

/**
 * Sends the account mails the users subgraph queues (`mail.outgoing`) through SMTP with
 * nodemailer. A 4xx reply or an unreachable server is retried with backoff; a 5xx reply is final.
 * Runs in the users worker process beside push.
 */
export function startMailWorker(options: MailWorkerOptions): RunningMailWorker {
  const { mail, logger } = options;
  // One connection per mail (account mails are few); short timeouts so a dead server is a quick retry.
  const transport = createTransport(
    { url: mail.smtpUrl, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 },
    { from: mail.from },
  );

  const processor = async (job: Job<MailJob>): Promise<void> => {
    const { subject, text } = renderMail(job.data, mail.linkBaseUrl);
    try {
      await transport.sendMail({ to: job.data.to, subject, text });
    } catch (error) {
      if (isPermanentSmtpFailure(error))
        throw new UnrecoverableError(`SMTP refused the mail for good: ${(error as Error).message}`);
      throw error;
    }
  };
  const worker = new Worker<MailJob, void>(MAIL_QUEUE, processor, {
    connection: redisOptions(options.redis),
    prefix: options.prefix,
    concurrency: 4,
    settings: { backoffStrategy: mailBackoff(mail.retryBaseMs) },
  });
  worker.on("error", (error: Error) => logger.error({ err: error }, "mail worker error"));
  options.metrics?.observeWorker(worker);
  worker.on("completed", (job) => {
    logger.info({ jobId: job.id, kind: job.data.kind }, "mail sent");
    options.onMailDone?.(job.data, "sent");
  });
  worker.on("failed", (job, error) => {
    if (!job) return;
    const willRetry = job.finishedOn === undefined;
    logger[willRetry ? "info" : "error"](
      { err: error, jobId: job.id, kind: job.data.kind, attempt: job.attemptsMade },
      willRetry ? "mail will be retried" : "mail given up",
    );
    if (!willRetry) options.onMailDone?.(job.data, error);
  });
  return {
    close: async () => {
      await worker.close();
      transport.close();
    },
  };
}
