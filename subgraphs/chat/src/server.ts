import path from "node:path";
import { loadTypeDefs, prismaDatabase, startEventConsumer, startSubgraph, type Logger, type RunningSubgraph, type SubgraphConfig } from "@hv/kit";
import { createChatDb } from "./db";
import { chatEventHandlers } from "./events";
import { createLoaders } from "./loaders";
import { resolvers, type ChatContext } from "./resolvers";

export const typeDefs = loadTypeDefs(path.join(__dirname, "schema.graphql"));

export async function start(config: SubgraphConfig, logger: Logger): Promise<RunningSubgraph> {
  const db = createChatDb(config.databaseUrl);
  // Events from the other subgraphs' outboxes: the same Redis (and default prefix) as their relays.
  const events = startEventConsumer({
    consumer: "chat",
    connection: config.redisUrl,
    prefix: config.eventsPrefix,
    logger,
    handlers: chatEventHandlers(db, logger),
  });
  return startSubgraph<ChatContext>({
    config,
    logger,
    typeDefs,
    resolvers,
    database: prismaDatabase(db, [events]),
    context: (base) => ({ ...base, loaders: createLoaders(db) }),
  });
}
