// Must stay the first import (tracing patches modules as they load).
import "./tracing";
import { runMain } from "@hv/kit";
import { loadChatConfig } from "./config";
import { start } from "./server";

runMain("chat", (env) => loadChatConfig(env), start);
