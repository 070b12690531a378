import path from "node:path";
import { loadTypeDefs, prismaDatabase, startSubgraph, type DiscoveryConfig, type Logger, type RunningSubgraph } from "@hv/kit";
import { createDiscoveryDb } from "./db";
import { createLoaders } from "./loaders";
import { resolvers, type DiscoveryContext } from "./resolvers";

export const typeDefs = loadTypeDefs(path.join(__dirname, "schema.graphql"));

export async function start(config: DiscoveryConfig, logger: Logger): Promise<RunningSubgraph> {
  const db = createDiscoveryDb(config.databaseUrl);
  return startSubgraph<DiscoveryContext>({
    config,
    logger,
    typeDefs,
    resolvers,
    database: prismaDatabase(db),
    context: (base) => ({ ...base, loaders: createLoaders(db, config.locationMaxAgeMinutes) }),
  });
}
