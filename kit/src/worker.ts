import http from "node:http";
import type { AddressInfo } from "node:net";
import express, { type RequestHandler } from "express";
import type { Logger } from "./logger";
import type { ProcessMetrics } from "./metrics";
import { runReadinessChecks, type ReadinessCheck } from "./readiness";
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
  routes?: Record<string, RequestHandler>;
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
  const app = express();
  app.disable("x-powered-by");
  let stopping = false;
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok", service: options.name });
  });
  app.get("/readyz", async (_req, res) => {
    if (stopping) {
      res.status(503).json({ status: "stopping", service: options.name });
      return;
    }
    const report = await runReadinessChecks(options.readiness);
    res.status(report.ready ? 200 : 503).json({ status: report.ready ? "ready" : "not ready", service: options.name, checks: report.checks });
  });
  if (options.metrics) app.get("/metrics", options.metrics.handler);
  for (const [path, handler] of Object.entries(options.routes ?? {})) app.get(path, handler);
  const httpServer = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(options.port, options.host, () => {
      httpServer.off("error", reject);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;
  const displayHost = options.host === "0.0.0.0" || options.host === "::" ? "127.0.0.1" : options.host;
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
