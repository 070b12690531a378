/**
 * Our gateway for one suite of the federation-gateway-audit: serves `supergraph.graphql` of the
 * current directory on 127.0.0.1:4000 (the audit's address), with every protection on and budgets
 * out of the way. Started by the run.sh that scripts/federation-audit/run.sh writes.
 */
import { readFileSync } from "node:fs";
import { start } from "@hv/gateway";
import { createLogger, loadGatewayConfig } from "@hv/kit";

const supergraphSdl = readFileSync(process.argv[2] ?? "supergraph.graphql", "utf8");
const budget = "1000000/1m";
const config = loadGatewayConfig({
  ...process.env,
  NODE_ENV: "development",
  HOST: "127.0.0.1",
  GATEWAY_PORT: "4000",
  GATEWAY_METRICS_PORT: "0",
  GATEWAY_RATE_LIMIT_IP: budget,
  GATEWAY_RATE_LIMIT_USER: budget,
});
const logger = createLogger({ service: "gateway", level: "warn" });
start(config, logger, { supergraphSdl, supergraphUrls: true }).catch((error: unknown) => {
  logger.error({ err: error }, "could not start the gateway");
  process.exit(1);
});
