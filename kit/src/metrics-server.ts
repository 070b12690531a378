import http from "node:http";
import { listen, routeRequests } from "./http-server";
import type { Logger } from "./logger";
import type { ProcessMetrics } from "./metrics";

export interface MetricsServer {
  port: number;
  /** e.g. http://127.0.0.1:4009/metrics */
  url: string;
  stop(): Promise<void>;
}

/**
 * GET /metrics on a listener of its own, for a process whose main port is public (the gateway):
 * Prometheus reaches it on the private interface, phones never do.
 */
export async function startMetricsServer(options: {
  metrics: ProcessMetrics;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  logger: Logger;
}): Promise<MetricsServer> {
  const server = http.createServer(
    routeRequests({
      getRoutes: { "/metrics": options.metrics.handler },
      onError: (error) => options.logger.error({ err: error }, "could not serve metrics"),
    }),
  );
  const { port, displayHost } = await listen(server, options.port, options.host);
  const url = `http://${displayHost}:${port}/metrics`;
  options.logger.info({ url }, "metrics listening");
  return {
    port,
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
