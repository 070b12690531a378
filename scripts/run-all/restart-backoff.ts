/**
 * When `npm start` restarts a crashed process in development: the first restart after
 * `initialDelayMs`, each further one twice as late up to `maxDelayMs`; a process that stayed up
 * `stableAfterMs` before it exited starts again from `initialDelayMs`.
 */
export interface RestartBackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  stableAfterMs: number;
}

export const DEVELOPMENT_RESTART_BACKOFF: RestartBackoffOptions = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  stableAfterMs: 60_000,
};

export class RestartBackoff {
  private consecutiveRestarts = 0;
  private startedAt = 0;

  constructor(private readonly options: RestartBackoffOptions) {}

  /** Call when the process is (re)started. */
  started(now: number): void {
    this.startedAt = now;
  }

  /** Call when the process exited unexpectedly: the delay before starting it again, and which restart in a row that is (1-based). */
  exited(now: number): { delayMs: number; attempt: number } {
    if (now - this.startedAt >= this.options.stableAfterMs) this.consecutiveRestarts = 0;
    const delayMs = Math.min(
      this.options.maxDelayMs,
      this.options.initialDelayMs * 2 ** this.consecutiveRestarts,
    );
    this.consecutiveRestarts += 1;
    return { delayMs, attempt: this.consecutiveRestarts };
  }
}
