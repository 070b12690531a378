import { runMain } from "@hv/kit";
import { loadMediaConfig } from "./config";
import { start } from "./server";

runMain("media", loadMediaConfig, start);
