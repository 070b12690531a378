import { loadSubgraphConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("chat", (env) => loadSubgraphConfig("chat", env), start);
