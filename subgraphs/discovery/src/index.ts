import { loadDiscoveryConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("discovery", loadDiscoveryConfig, start);
