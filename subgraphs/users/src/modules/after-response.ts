import type { Logger } from "@hv/kit";

/**
 * Work a resolver starts after it has answered: whatever depends on whether an address has an
 * account (writes, queueing a mail) must not change how long the answer takes. Failures are
 * logged; `stop` waits for what is running (the subgraph stops it before closing the database).
 */
export class AfterResponse {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly logger: Logger) {}

  run(label: string, work: () => Promise<void>): void {
    const task: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(work)
      .catch((error: unknown) => this.logger.error({ err: error }, `${label} failed`))
      .finally(() => this.running.delete(task));
    this.running.add(task);
  }

  async stop(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
