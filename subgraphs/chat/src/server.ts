import path from "node:path";
import { loadTypeDefs, prismaDatabase, startSubgraph, type Logger, type RunningSubgraph, type SubgraphConfig } from "@hv/kit";
import { createChatDb } from "./db";
import { createLoaders } from "./loaders";
import { resolvers, type ChatContext } from "./resolvers";

export const typeDefs = loadTypeDefs(path.join(__dirname, "schema.graphql"));

export async function start(config: SubgraphConfig, logger: Logger): Promise<RunningSubgraph> {
  const db = createChatDb(config.databaseUrl);
  return startSubgraph<ChatContext>({
    config,
    logger,
    typeDefs,
    resolvers,
    database: prismaDatabase(db),
    context: (base) => ({ ...base, loaders: createLoaders(db) }),
  });
}
