import type http from "node:http";
import type { AddressInfo } from "node:net";
import type { Express } from "express";
import { runReadinessChecks, type ReadinessCheck } from "./readiness";

/** Starts `server` on host:port (0 picks a free port); resolves with the port and a host to show in URLs. */
export async function listen(
  server: http.Server,
  port: number,
  host: string,
): Promise<{ port: number; displayHost: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    displayHost: host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host,
  };
}

/**
 * Every process's probes: `GET /healthz` (200 while the process runs) and `GET /readyz` (200 when
 * every check answers, 503 naming the failing ones, 503 while the process stops).
 */
export function addProbeRoutes(
  app: Express,
  name: string,
  readiness: ReadinessCheck[],
  isStopping: () => boolean,
): void {
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok", service: name });
  });
  app.get("/readyz", async (_req, res) => {
    if (isStopping()) {
      res.status(503).json({ status: "stopping", service: name });
      return;
    }
    const report = await runReadinessChecks(readiness);
    res
      .status(report.ready ? 200 : 503)
      .json({ status: report.ready ? "ready" : "not ready", service: name, checks: report.checks });
  });
}
