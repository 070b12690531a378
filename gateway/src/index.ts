import { loadGatewayConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("gateway", loadGatewayConfig, start);
