// Must stay the first import (tracing patches modules as they load).
import "./tracing";
import { loadDiscoveryConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("discovery", loadDiscoveryConfig, start);
