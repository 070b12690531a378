// Must stay the first import (tracing patches modules as they load).
import "./tracing";
import { loadGatewayConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("gateway", loadGatewayConfig, start);
