import { Counter, Registry } from "prom-client";

/**
 * The push worker's own counters, on its process registry (kit/src/metrics.ts, served at GET
 * /metrics beside the kit's queue, job, pool and Redis series); a fresh registry when none is given.
 */
export function createPushMetrics(registry: Registry = new Registry()) {
  return {
    registry,
    /** Accepted by a provider (one per device). */
    sent: new Counter({
      name: "push_notifications_sent_total",
      help: "Notifications a provider accepted, per device",
      labelNames: ["provider"] as const,
      registers: [registry],
    }),
    /**
     * Per device: refused for good by a provider (`rejected`), or given up after the last try
     * (`exhausted`); a database error during a try (`database`, the try is retried). `provider`
     * is `none` when the failure was not one device's (a job that used up its tries on database
     * errors, or stalled too often).
     */
    failed: new Counter({
      name: "push_notifications_failed_total",
      help: "Notifications refused for good (rejected), given up after the last try (exhausted), or tries that failed on a database error (database)",
      labelNames: ["provider", "reason"] as const,
      registers: [registry],
    }),
    /** One per device and failed try that will be tried again. */
    retried: new Counter({
      name: "push_notifications_retried_total",
      help: "Sends that will be tried again (429, 5xx, unreachable)",
      labelNames: ["provider"] as const,
      registers: [registry],
    }),
    /** Devices removed because the provider said their token is dead. */
    pruned: new Counter({
      name: "push_tokens_pruned_total",
      help: "Devices removed because the provider reported the token unregistered",
      labelNames: ["provider"] as const,
      registers: [registry],
    }),
    /** Notifications not sent on purpose: preference off, quiet hours, blocked, no devices… */
    skipped: new Counter({
      name: "push_notifications_skipped_total",
      help: "Notifications not sent on purpose, by reason",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
  };
}

export type PushMetrics = ReturnType<typeof createPushMetrics>;
