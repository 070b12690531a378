// Must stay the first import (tracing patches modules as they load).
import "./tracing";
import { loadChatConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("chat", (env) => loadChatConfig(env), start);
