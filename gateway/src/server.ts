import { readFileSync } from "node:fs";
import path from "node:path";
import { ApolloGateway } from "@apollo/gateway";
import {
  apolloLogger,
  bearerAuthenticator,
  closeRedis,
  createAccessTokenVerifier,
  createRedis,
  redisReadiness,
  SessionRevocations,
  SUBGRAPH_NAMES,
  startService,
  type GatewayConfig,
  type GatewayInterface,
  type Logger,
  type RunningService,
  type SubgraphName,
} from "@hv/kit";
import { SubgraphDataSource, type GatewayContext } from "./subgraph-data-source";

/** Composed from the subgraphs' SDL by `pnpm run compose`; CI fails when it is stale. */
export const SUPERGRAPH_PATH = path.join(__dirname, "..", "supergraph.graphql");

function isSubgraphName(name: string): name is SubgraphName {
  return (SUBGRAPH_NAMES as readonly string[]).includes(name);
}

export async function start(config: GatewayConfig, logger: Logger): Promise<RunningService> {
  const supergraphSdl = readFileSync(SUPERGRAPH_PATH, "utf8");
  let schemaLoaded = false;
  const gateway = new ApolloGateway({
    supergraphSdl,
    logger: apolloLogger(logger),
    // The committed supergraph names default URLs; the configured ones win, so the same file
    // serves every environment.
    buildService: ({ name }) => {
      if (!isSubgraphName(name)) throw new Error(`supergraph.graphql names an unknown subgraph "${name}"`);
      return new SubgraphDataSource({ url: config.subgraphUrls[name] });
    },
  });
  gateway.onSchemaLoadOrUpdate(() => {
    schemaLoaded = true;
  });
  // Tokens are verified once here at the edge (a bad one never reaches a subgraph) with the keys
  // the users subgraph publishes; revocations live in Redis.
  const redis = createRedis(config.redisUrl, logger);
  const verifier = createAccessTokenVerifier({
    jwks: new URL(config.auth.jwksUrl),
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    revocations: new SessionRevocations(redis),
  });
  return startService<GatewayContext>({
    name: "gateway",
    logger,
    host: config.host,
    port: config.port,
    isProduction: config.isProduction,
    // @apollo/gateway 2.x is typed against gateway-interface 1.x; at run time it is the same contract.
    graphql: { gateway: gateway as unknown as GatewayInterface },
    trustProxy: config.trustProxy,
    authenticate: bearerAuthenticator(verifier),
    readiness: [
      redisReadiness(redis),
      {
        name: "supergraph",
        check: async () => {
          if (!schemaLoaded) throw new Error("supergraph not loaded");
        },
      },
    ],
    context: async ({ req, requestId, logger: requestLogger, viewer, clientIp }) => ({
      requestId,
      logger: requestLogger,
      viewer,
      clientIp,
      authorization: req.headers.authorization ?? null,
    }),
    onStopped: () => closeRedis(redis),
  });
}
