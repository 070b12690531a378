import { loadSubgraphConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("media", (env) => loadSubgraphConfig("media", env), start);
