import path from "node:path";
import { loadTypeDefs, prismaDatabase, startEventConsumer, startSubgraph, type Logger, type RunningSubgraph, type SubgraphConfig } from "@hv/kit";
import { createMediaDb } from "./db";
import { mediaEventHandlers } from "./events";
import { createLoaders } from "./loaders";
import { resolvers, type MediaContext } from "./resolvers";

export const typeDefs = loadTypeDefs(path.join(__dirname, "schema.graphql"));

export async function start(config: SubgraphConfig, logger: Logger): Promise<RunningSubgraph> {
  const db = createMediaDb(config.databaseUrl);
  // Events from the other subgraphs' outboxes: the same Redis (and default prefix) as their relays.
  const events = startEventConsumer({
    consumer: "media",
    connection: config.redisUrl,
    prefix: config.eventsPrefix,
    logger,
    handlers: mediaEventHandlers(db, logger),
  });
  return startSubgraph<MediaContext>({
    config,
    logger,
    typeDefs,
    resolvers,
    database: prismaDatabase(db, [events]),
    context: (base) => ({ ...base, loaders: createLoaders(db) }),
  });
}
