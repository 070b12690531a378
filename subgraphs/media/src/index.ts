// Must stay the first import (tracing patches modules as they load).
import "./tracing";
import { runMain } from "@hv/kit";
import { loadMediaConfig } from "./config";
import { start } from "./server";

runMain("media", loadMediaConfig, start);
