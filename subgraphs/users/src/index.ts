import { loadSubgraphConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("users", (env) => loadSubgraphConfig("users", env), start);
