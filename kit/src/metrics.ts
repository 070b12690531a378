import type { ApolloServerPlugin, GraphQLRequestContext } from "@apollo/server";
import type { Job, Queue, Worker } from "bullmq";
import { Kind, type GraphQLFormattedError } from "graphql";
import type Redis from "ioredis";
import { Pool, type PoolConfig } from "pg";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { isKnownErrorCode } from "./errors";
import { sendBody, type HttpHandler } from "./http-server";
import type { Logger } from "./logger";

/**
 * Prometheus metrics of one process, on a registry of its own (several "processes" share one Node
 * process in tests, so nothing goes on prom-client's global registry). Every series carries
 * `service`. Served at GET /metrics: on the private port of subgraphs and workers, on
 * GATEWAY_METRICS_PORT for the gateway (see docs/observability.md).
 *
 * Label values that come from clients are bounded: operation names are kept for the first
 * MAX_OPERATION_NAMES distinct well-formed names and counted as `other` after that (anonymous
 * operations are `anonymous`); error codes outside the catalogue are `OTHER`.
 */
export const MAX_OPERATION_NAMES = 200;

/** Seconds; GraphQL requests and subgraph fetches (most take milliseconds, uploads' URLs and nearby a little more). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds; background jobs (events take milliseconds, a video minutes). */
const JOB_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1200];

const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;
/** The gateway names a subgraph fetch `<operation>__<subgraph>__<n>`: subgraphs count it under `<operation>`. */
const GATEWAY_FETCH_NAME = /^(.+)__[A-Za-z0-9]+__\d+$/;

/**
 * prom-client's event-loop lag histogram takes a sample every this many ms, so its `nodejs_eventloop_lag_*`
 * percentiles are this interval plus the lag (docs/observability.md).
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

export const QUEUE_STATES = ["waiting", "active", "delayed", "failed"] as const;

/** What a node-postgres pool reports about itself. */
export interface PoolLike {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
  options?: { max?: number };
}

export interface ProcessMetrics {
  readonly service: string;
  readonly registry: Registry;
  /** Handler of GET /metrics (Prometheus text format). */
  readonly handler: HttpHandler;
  /** A bounded label for a client-chosen operation name. */
  operationLabel(name: string | null | undefined): string;
  /** Counts requests, errors (by code) and latency per operation: add to an Apollo Server's plugins. */
  graphqlPlugin<TContext extends object>(): ApolloServerPlugin<TContext>;
  /** What `graphqlPlugin` counts, for a request answered without Apollo (kit/src/known-queries.ts). */
  observeGraphQLRequest(
    operationName: string | null | undefined,
    type: string,
    seconds: number,
    errors: readonly GraphQLFormattedError[],
  ): void;
  /** One fetch from the gateway to a subgraph. */
  observeSubgraphFetch(
    subgraph: string,
    seconds: number,
    outcome: "ok" | "graphql_error" | "http_error",
  ): void;
  /**
   * Representations of users' public fields the gateway's user cache looked up: `hit` (answered
   * without a fetch of their own), `miss` (fetched as nobody), `owner` (sent again with the
   * viewer's token: their own entity no one else sees, or an answer with errors).
   */
  countUserCache(outcome: "hit" | "miss" | "owner" | "warmed" | "warm_failed", count: number): void;
  /** Open subscriptions and WebSocket connections, read on every scrape. */
  observeSubscriptions(
    read: () => { subscriptions: Record<string, number>; connections: Record<string, number> },
  ): void;
  /** BullMQ waiting/active/delayed/failed of `queue`, read on every scrape. */
  observeQueue(queue: Queue): void;
  /** Duration and outcome of every job `worker` finishes (completed, failed for good, failed to be retried). */
  observeWorker(worker: Worker): void;
  /** Outbox relay: events published, passes that failed. */
  observeOutbox(outcome: { published: number; failed: boolean }): void;
  /** 1 while the client is connected, else 0, read on every scrape. */
  observeRedis(role: string, redis: Pick<Redis, "status">): void;
  observePgPool(name: string, pool: PoolLike): void;
  /** A node-postgres pool observed as `name` (give it to PrismaPg with `disposeExternalPool: true`). */
  pgPool(name: string, config: PoolConfig): Pool;
  /** Stops reading queues (closes the Queue objects made for it). */
  close(): Promise<void>;
}

function codeOf(error: GraphQLFormattedError): string {
  const code = error.extensions?.code;
  return isKnownErrorCode(code) ? String(code) : "OTHER";
}

export function createProcessMetrics(service: string, options: { logger?: Logger } = {}): ProcessMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const registers = [registry];

  const seenOperations = new Set<string>();
  const operationLabel = (raw: string | null | undefined): string => {
    if (raw === null || raw === undefined || raw === "") return "anonymous";
    const name = GATEWAY_FETCH_NAME.exec(raw)?.[1] ?? raw;
    if (!OPERATION_NAME.test(name)) return "other";
    if (seenOperations.has(name)) return name;
    if (seenOperations.size >= MAX_OPERATION_NAMES) return "other";
    seenOperations.add(name);
    return name;
  };

  const requests = new Counter({
    name: "hv_graphql_requests_total",
    help: "GraphQL requests by operation name and type (query, mutation, subscription; unknown when it did not parse)",
    labelNames: ["operation", "type"] as const,
    registers,
  });
  const requestErrors = new Counter({
    name: "hv_graphql_request_errors_total",
    help: "Errors in GraphQL responses, by operation and extensions.code (OTHER: not a catalogued code)",
    labelNames: ["operation", "code"] as const,
    registers,
  });
  const requestDuration = new Histogram({
    name: "hv_graphql_request_duration_seconds",
    help: "Time from receiving a GraphQL request to sending its response",
    labelNames: ["operation", "type"] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const subgraphFetches = new Counter({
    name: "hv_gateway_subgraph_fetches_total",
    help: "Gateway fetches to subgraphs by outcome (ok, graphql_error: answered with errors, http_error: refused or unreachable)",
    labelNames: ["subgraph", "outcome"] as const,
    registers,
  });
  const userCache = new Counter({
    name: "hv_gateway_user_cache_entities_total",
    help: "Users' public-field entities the gateway looked up in its user cache: hit (no fetch of their own), miss (fetched as nobody), owner (sent again with the viewer's token), warmed (fetched as nobody for a subscriber before any request asked), warm_failed (a warming fetch that failed, per fetch)",
    labelNames: ["outcome"] as const,
    registers,
  });
  const subgraphFetchDuration = new Histogram({
    name: "hv_gateway_subgraph_fetch_duration_seconds",
    help: "Duration of gateway fetches to subgraphs",
    labelNames: ["subgraph"] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const jobs = new Counter({
    name: "hv_jobs_total",
    help: "Background jobs finished, by queue and outcome (completed; retried: failed, will run again; failed: failed for good)",
    labelNames: ["queue", "outcome"] as const,
    registers,
  });
  const jobDuration = new Histogram({
    name: "hv_job_duration_seconds",
    help: "Processing time of background jobs, by queue and outcome",
    labelNames: ["queue", "outcome"] as const,
    buckets: JOB_BUCKETS,
    registers,
  });
  const outboxPublished = new Counter({
    name: "hv_outbox_events_published_total",
    help: "Events moved from the transactional outbox to their consumers' queues",
    registers,
  });
  const outboxFailures = new Counter({
    name: "hv_outbox_publish_failures_total",
    help: "Outbox relay passes that failed (Redis or the database away); retried on the next poll",
    registers,
  });

  const subscriptionReaders: Array<
    () => { subscriptions: Record<string, number>; connections: Record<string, number> }
  > = [];
  const openSubscriptions = new Gauge({
    name: "hv_subscriptions_open",
    help: "Open GraphQL subscriptions, by kind (gateway: client, upstream; subgraphs: operations)",
    labelNames: ["kind"] as const,
    registers,
    collect() {
      this.reset();
      for (const read of subscriptionReaders)
        for (const [kind, value] of Object.entries(read().subscriptions)) this.inc({ kind }, value);
    },
  });
  const openConnections = new Gauge({
    name: "hv_websocket_connections_open",
    help: "Open graphql-ws connections, by kind (client: accepted by this process, upstream: to subgraphs)",
    labelNames: ["kind"] as const,
    registers,
    collect() {
      this.reset();
      for (const read of subscriptionReaders)
        for (const [kind, value] of Object.entries(read().connections)) this.inc({ kind }, value);
    },
  });
  void openSubscriptions;
  void openConnections;

  const queues = new Map<string, Queue>();
  new Gauge({
    name: "hv_queue_jobs",
    help: "BullMQ jobs by queue and state, read from Redis on every scrape",
    labelNames: ["queue", "state"] as const,
    registers,
    async collect() {
      this.reset();
      await Promise.all(
        [...queues].map(async ([name, queue]) => {
          try {
            const counts = await queue.getJobCounts(...QUEUE_STATES);
            for (const state of QUEUE_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
          } catch (error) {
            // Redis away: the series go missing for this scrape (hv_redis_up says why).
            options.logger?.debug(
              { err: error, queue: name },
              "metrics: could not read a queue's job counts",
            );
          }
        }),
      );
    },
  });

  const redisClients = new Map<string, Pick<Redis, "status">>();
  new Gauge({
    name: "hv_redis_up",
    help: "1 while the Redis connection is ready, 0 otherwise, by role",
    labelNames: ["role"] as const,
    registers,
    collect() {
      this.reset();
      for (const [role, redis] of redisClients) this.set({ role }, redis.status === "ready" ? 1 : 0);
    },
  });

  const pools = new Map<string, PoolLike>();
  new Gauge({
    name: "hv_db_pool_connections",
    help: "node-postgres pool connections by pool and state (total, idle, waiting: queries waiting for a connection, max: the pool's size)",
    labelNames: ["pool", "state"] as const,
    registers,
    collect() {
      this.reset();
      for (const [name, pool] of pools) {
        this.set({ pool: name, state: "total" }, pool.totalCount);
        this.set({ pool: name, state: "idle" }, pool.idleCount);
        this.set({ pool: name, state: "waiting" }, pool.waitingCount);
        this.set({ pool: name, state: "max" }, pool.options?.max ?? 10);
      }
    },
  });

  const observeGraphQLRequest = (
    operationName: string | null | undefined,
    type: string,
    seconds: number,
    errors: readonly GraphQLFormattedError[],
  ): void => {
    const operation = operationLabel(operationName);
    requests.inc({ operation, type });
    requestDuration.observe({ operation, type }, seconds);
    for (const error of errors) requestErrors.inc({ operation, code: codeOf(error) });
  };

  const graphqlPlugin = <TContext extends object>(): ApolloServerPlugin<TContext> => ({
    async requestDidStart() {
      const startedAt = process.hrtime.bigint();
      return {
        async willSendResponse(context: GraphQLRequestContext<TContext>) {
          const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
          // A request that failed validation has no resolved operation: name it from its document.
          const named = context.document?.definitions.find(
            (definition) => definition.kind === Kind.OPERATION_DEFINITION,
          );
          const body = context.response.body;
          const errors =
            body?.kind === "single"
              ? (body.singleResult.errors ?? [])
              : body?.kind === "incremental"
                ? (body.initialResult.errors ?? [])
                : [];
          observeGraphQLRequest(
            context.operationName ?? context.request.operationName ?? named?.name?.value,
            context.operation?.operation ?? "unknown",
            seconds,
            errors,
          );
        },
      };
    },
  });

  const observeWorker = (worker: Worker): void => {
    const queue = worker.name;
    const record = (job: Job | undefined, outcome: "completed" | "failed" | "retried") => {
      jobs.inc({ queue, outcome });
      if (job?.processedOn !== undefined)
        jobDuration.observe({ queue, outcome }, Math.max(0, Date.now() - job.processedOn) / 1000);
    };
    worker.on("completed", (job) => record(job, "completed"));
    // finishedOn is set only when the job will not run again.
    worker.on("failed", (job) => record(job, job?.finishedOn === undefined ? "retried" : "failed"));
  };

  return {
    service,
    registry,
    handler: async (req, res) => {
      sendBody(req, res, 200, registry.contentType, await registry.metrics());
    },
    operationLabel,
    graphqlPlugin,
    observeGraphQLRequest,
    observeSubgraphFetch(subgraph, seconds, outcome) {
      subgraphFetches.inc({ subgraph, outcome });
      subgraphFetchDuration.observe({ subgraph }, seconds);
    },
    countUserCache(outcome, count) {
      if (count > 0) userCache.inc({ outcome }, count);
    },
    observeSubscriptions(read) {
      subscriptionReaders.push(read);
    },
    observeQueue(queue) {
      queues.set(queue.name, queue);
    },
    observeWorker,
    observeOutbox({ published, failed }) {
      if (published > 0) outboxPublished.inc(published);
      if (failed) outboxFailures.inc();
    },
    observeRedis(role, redis) {
      redisClients.set(role, redis);
    },
    observePgPool(name, pool) {
      pools.set(name, pool);
    },
    pgPool(name, config) {
      const pool = new Pool(config);
      pools.set(name, pool);
      return pool;
    },
    async close() {
      queues.clear();
      redisClients.clear();
      pools.clear();
    },
  };
}
