import http from "node:http";
import { listen, probeRoutes, routeRequests, type HttpHandler } from "./http-server";
import type { Logger } from "./logger";
import type { ProcessMetrics } from "./metrics";
import type { ReadinessCheck } from "./readiness";
import type { RunningService } from "./service";

export interface WorkerServiceOptions {
  name: string;
  logger: Logger;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** What the worker needs to do its job (database, Redis, storage…): `/readyz` asks each. */
  readiness: ReadinessCheck[];
  /** Extra GET routes beside /healthz, /readyz and /metrics, by path. */
  routes?: Record<string, HttpHandler>;
  /** Served at GET /metrics (this port is private: it binds SUBGRAPH_HOST). */
  metrics?: ProcessMetrics;
  /** Stop taking jobs and let the running ones finish; then close pools and clients. */
  onStopped: () => Promise<void>;
}

/**
 * The HTTP side of a background worker process (media transcoding, push): `/healthz` and
 * `/readyz` for probes, `/metrics` for Prometheus, plus the worker's own GET `routes`, nothing else. A worker is a `RunningService` like the subgraphs, so
 * `runMain` and `npm start` treat it the same way.
 */
export async function startWorkerService(options: WorkerServiceOptions): Promise<RunningService> {
  const { logger } = options;
  let stopping = false;
  const httpServer = http.createServer(
    routeRequests({
      getRoutes: {
        ...probeRoutes(options.name, options.readiness, () => stopping),
        ...(options.metrics ? { "/metrics": options.metrics.handler } : {}),
        ...options.routes,
      },
      onError: (error) => logger.error({ err: error }, "an HTTP route failed"),
    }),
  );
  const { port, displayHost } = await listen(httpServer, options.port, options.host);
  const url = `http://${displayHost}:${port}/healthz`;
  logger.info({ url }, `${options.name} worker running`);

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      stopping = true;
      logger.info(`${options.name} stopping`);
      await options.onStopped();
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      });
      logger.info(`${options.name} stopped`);
    })();
    return stopped;
  };
  return { name: options.name, port, url, httpServer, stop };
}
